//! The broker's newtypes: app ids, app-scoped user ids, client ids, token ids, key ids, issuer
//! and time. Each checks its format when read back from a token or from storage.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a piece of text is not a valid id of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct InvalidId {
    /// Which kind of id (`app id`, `kid`, ...).
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(kind: &'static str, reason: impl Into<String>) -> InvalidId {
    InvalidId {
        kind,
        reason: reason.into(),
    }
}

/// `true` for the characters of base64url and our prefixed ids: `A-Z a-z 0-9 - _`.
fn is_url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

/// A mini-app's id (the `id` of its `miniapp.toml`, and the `aud` of its tokens): 3-40
/// characters of lowercase letters, digits and `-`, starting with a letter. The same rule as
/// `minihost-manifest`'s `AppId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);
string_newtype!(AppId);

impl AppId {
    /// Checks the format and wraps the id.
    pub fn parse(s: &str) -> Result<AppId, InvalidId> {
        let len = s.chars().count();
        if !(3..=40).contains(&len) {
            return Err(invalid(
                "app id",
                format!("must be 3-40 characters, got {len}"),
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("app id", "must start with a lowercase letter"));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid("app id", "only lowercase letters, digits and `-`"));
        }
        Ok(AppId(s.to_owned()))
    }
}

/// A user as one app sees them: stable for that (app, user) pair, unrelated across apps, and
/// never the internal user id. `au_` followed by 32 lowercase hex digits. Derived by
/// [`crate::PlatformSecret::app_user_id`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppUserId(String);
string_newtype!(AppUserId);

impl AppUserId {
    /// The prefix of every app-scoped user id.
    pub const PREFIX: &'static str = "au_";

    pub(crate) fn from_digest(digest: &[u8; 16]) -> AppUserId {
        AppUserId(format!("{}{}", Self::PREFIX, hex::encode(digest)))
    }

    /// Checks the format (as read back from a token or storage) and wraps the id.
    pub fn parse(s: &str) -> Result<AppUserId, InvalidId> {
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|h| {
            h.len() == 32
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if ok {
            Ok(AppUserId(s.to_owned()))
        } else {
            Err(invalid(
                "app user id",
                "expected `au_` and 32 lowercase hex digits",
            ))
        }
    }
}

/// An OAuth client: the credentials an app's backend authenticates with. `mhc_` followed by 24
/// lowercase hex digits; public (not a secret).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);
string_newtype!(ClientId);

impl ClientId {
    /// The prefix of every client id.
    pub const PREFIX: &'static str = "mhc_";

    /// A new random client id.
    pub fn generate() -> ClientId {
        ClientId(format!(
            "{}{}",
            Self::PREFIX,
            minihost_core::ids::random_hex(12)
        ))
    }

    /// Checks the format and wraps the id.
    pub fn parse(s: &str) -> Result<ClientId, InvalidId> {
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|h| {
            h.len() == 24
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if ok {
            Ok(ClientId(s.to_owned()))
        } else {
            Err(invalid(
                "client id",
                "expected `mhc_` and 24 lowercase hex digits",
            ))
        }
    }
}

/// A token's unique id (`jti`), the handle of its revocation. 1-64 base64url characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);
string_newtype!(TokenId);

impl TokenId {
    /// A new random token id (128 bits).
    pub fn generate() -> TokenId {
        TokenId(crate::secret::random_b64(16))
    }

    /// Checks the format and wraps the id.
    pub fn parse(s: &str) -> Result<TokenId, InvalidId> {
        if (1..=64).contains(&s.len()) && s.chars().all(is_url_safe) {
            Ok(TokenId(s.to_owned()))
        } else {
            Err(invalid("jti", "expected 1-64 base64url characters"))
        }
    }
}

/// A signing key's id (`kid`): 1-64 characters of `A-Z a-z 0-9 - _`. Anything else in a token
/// header (paths, quotes, SQL) is rejected before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Kid(String);
string_newtype!(Kid);

impl Kid {
    /// A new random key id: `k-` and 16 hex digits.
    pub fn generate() -> Kid {
        Kid(format!("k-{}", minihost_core::ids::random_hex(8)))
    }

    /// Checks the format and wraps the id.
    pub fn parse(s: &str) -> Result<Kid, InvalidId> {
        if (1..=64).contains(&s.len()) && s.chars().all(is_url_safe) {
            Ok(Kid(s.to_owned()))
        } else {
            Err(invalid(
                "kid",
                "expected 1-64 characters of A-Z a-z 0-9 - _",
            ))
        }
    }
}

/// The issuer (`iss`) of every token: the platform's public base URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Issuer(String);

impl Issuer {
    /// Wraps the platform's public base URL (`https://minihost.example`).
    pub fn new(url: impl Into<String>) -> Issuer {
        Issuer(url.into())
    }

    /// The issuer as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A point in time, whole seconds since the Unix epoch (the JWT `NumericDate`). Every function
/// of the broker takes the current time as an argument; none reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> UnixTime {
        UnixTime(secs)
    }

    /// From the core crate's clock representation (milliseconds); times before the epoch
    /// become the epoch.
    pub fn from_millis(millis: minihost_core::UnixMillis) -> UnixTime {
        UnixTime(u64::try_from(millis / 1000).unwrap_or(0))
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `secs` seconds later (saturating).
    pub const fn plus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_check_their_format() {
        assert!(AppId::parse("polls").is_ok());
        assert!(AppId::parse("Polls").is_err());
        assert!(AppId::parse("po").is_err());
        assert!(Kid::parse("k-0123").is_ok());
        for injected in ["../../etc/passwd", "1' OR '1'='1", "", "a b", "k\u{0}"] {
            assert!(Kid::parse(injected).is_err(), "{injected:?}");
        }
        let client = ClientId::generate();
        assert_eq!(ClientId::parse(client.as_str()), Ok(client));
        assert!(AppUserId::parse("au_0123").is_err());
        assert!(TokenId::parse(TokenId::generate().as_str()).is_ok());
    }
}
