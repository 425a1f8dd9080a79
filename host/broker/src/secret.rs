//! Secrets: app credentials (shown once, stored as a hash, compared in constant time), the
//! hashing shared by every opaque secret the broker hands out (login codes, refresh tokens),
//! and the platform secret that derives app-scoped user ids.

use crate::ids::{AppId, AppUserId, ClientId, InvalidId};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use minihost_core::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq as _;

/// `n` random bytes from the OS, base64url without padding.
pub(crate) fn random_b64(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(minihost_core::ids::random_bytes(n))
}

/// A new opaque secret: `prefix` then 256 random bits in base64url.
pub(crate) fn new_opaque(prefix: &str) -> String {
    format!("{prefix}{}", random_b64(32))
}

/// What the broker stores instead of a secret: `sha256:` and the hex digest. The secrets it
/// hashes are 256-bit random strings, so a fast hash is enough (no password stretching); the
/// digest is also a safe lookup key (index the column).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash(String);

impl SecretHash {
    const PREFIX: &'static str = "sha256:";

    /// The hash of a secret.
    pub fn of(secret: &str) -> SecretHash {
        SecretHash(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(Sha256::digest(secret.as_bytes()))
        ))
    }

    /// Reads a stored hash back.
    pub fn parse(s: &str) -> Result<SecretHash, InvalidId> {
        let ok = s.strip_prefix(Self::PREFIX).is_some_and(|h| {
            h.len() == 64
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if ok {
            Ok(SecretHash(s.to_owned()))
        } else {
            Err(InvalidId {
                kind: "secret hash",
                reason: "expected `sha256:` and 64 hex digits".into(),
            })
        }
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the secret this is the hash of, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let candidate = SecretHash::of(presented);
        bool::from(self.0.as_bytes().ct_eq(candidate.0.as_bytes()))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.0)
    }
}

impl TryFrom<String> for SecretHash {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        SecretHash::parse(&s)
    }
}

impl From<SecretHash> for String {
    fn from(h: SecretHash) -> String {
        h.0
    }
}

/// An app's client secret: `mhcs_` and 256 random bits. Shown to the developer once, at creation
/// or rotation; only its [`SecretHash`] is stored. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppSecret(String);

impl AppSecret {
    /// The prefix of every app secret (lets secret scanners recognise a leaked one).
    pub const PREFIX: &'static str = "mhcs_";

    /// A new random secret.
    pub fn generate() -> AppSecret {
        AppSecret(new_opaque(Self::PREFIX))
    }

    /// The secret, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What to store.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret([redacted])")
    }
}

/// The credentials of a newly registered app's backend. Persist `client_id` and `secret_hash`;
/// show `secret` once and drop it.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Public client id.
    pub client_id: ClientId,
    /// The secret, to show once.
    pub secret: AppSecret,
    /// What to store.
    pub secret_hash: SecretHash,
}

impl AppCredentials {
    /// New credentials for an app.
    pub fn generate() -> AppCredentials {
        let secret = AppSecret::generate();
        AppCredentials {
            client_id: ClientId::generate(),
            secret_hash: secret.hash(),
            secret,
        }
    }

    /// A new secret for the same client id (the old hash is replaced, so the old secret stops
    /// working as soon as the new hash is stored).
    pub fn rotate(client_id: ClientId) -> AppCredentials {
        let secret = AppSecret::generate();
        AppCredentials {
            client_id,
            secret_hash: secret.hash(),
            secret,
        }
    }
}

/// The platform-wide key of app-scoped user ids. Losing or changing it changes every app's view
/// of every user, so it is generated once and stored (as [`PlatformSecret::to_storage_string`]).
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformSecret([u8; 32]);

/// A stored platform secret could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stored platform secret: expected `mhp1:` and 32 bytes of base64url")]
pub struct InvalidPlatformSecret;

impl PlatformSecret {
    const STORAGE_PREFIX: &'static str = "mhp1:";

    /// A new random platform secret.
    pub fn generate() -> PlatformSecret {
        let mut key = [0u8; 32];
        key.copy_from_slice(&minihost_core::ids::random_bytes(32));
        PlatformSecret(key)
    }

    /// A platform secret from known bytes (tests, or a secret kept in a KMS).
    pub fn from_bytes(key: [u8; 32]) -> PlatformSecret {
        PlatformSecret(key)
    }

    /// The text to persist: `mhp1:` and base64url.
    pub fn to_storage_string(&self) -> String {
        format!("{}{}", Self::STORAGE_PREFIX, URL_SAFE_NO_PAD.encode(self.0))
    }

    /// Reads back [`PlatformSecret::to_storage_string`].
    pub fn from_storage_string(s: &str) -> Result<PlatformSecret, InvalidPlatformSecret> {
        let bytes = s
            .strip_prefix(Self::STORAGE_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or(InvalidPlatformSecret)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| InvalidPlatformSecret)?;
        Ok(PlatformSecret(key))
    }

    /// The id under which `app` knows `user`: HMAC-SHA256 keyed by this secret over a
    /// domain-separated, length-prefixed encoding of (app id, internal user id), truncated to
    /// 128 bits. Stable for one pair; without the secret, the ids of one user in two apps
    /// cannot be linked.
    pub fn app_user_id(&self, app: &AppId, user: &UserId) -> AppUserId {
        // HMAC pads keys shorter than its block with zeros, so this is HMAC with the 32-byte key.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        mac.update(b"minihost app-user-id v1\0");
        let app = app.as_str().as_bytes();
        mac.update(&u32::try_from(app.len()).unwrap_or(u32::MAX).to_be_bytes());
        mac.update(app);
        mac.update(user.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut truncated = [0u8; 16];
        truncated.copy_from_slice(&digest[..16]);
        AppUserId::from_digest(&truncated)
    }
}

impl fmt::Debug for PlatformSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlatformSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_scoped_ids_are_stable_per_app_and_differ_across_apps() {
        let platform = PlatformSecret::generate();
        let alice = UserId::from_string("u_alice");
        let bob = UserId::from_string("u_bob");
        let polls = AppId::parse("polls").unwrap();
        let shop = AppId::parse("shop").unwrap();

        let in_polls = platform.app_user_id(&polls, &alice);
        assert_eq!(
            in_polls,
            platform.app_user_id(&polls, &alice),
            "stable for one app"
        );
        assert_ne!(
            in_polls,
            platform.app_user_id(&shop, &alice),
            "unlinkable across apps"
        );
        assert_ne!(
            in_polls,
            platform.app_user_id(&polls, &bob),
            "distinct users stay distinct"
        );
        assert!(
            !in_polls.as_str().contains("alice"),
            "never reveals the internal id"
        );
        assert_eq!(AppUserId::parse(in_polls.as_str()), Ok(in_polls.clone()));

        // Another platform secret gives other ids: the secret is what makes them unlinkable.
        assert_ne!(
            in_polls,
            PlatformSecret::generate().app_user_id(&polls, &alice)
        );

        // The stored form reads back to the same derivation.
        let reread = PlatformSecret::from_storage_string(&platform.to_storage_string()).unwrap();
        assert_eq!(reread.app_user_id(&polls, &alice), in_polls);
        assert!(PlatformSecret::from_storage_string("mhp1:short").is_err());
    }

    #[test]
    fn app_user_id_matches_a_known_vector() {
        // Pins the derivation: changing it would silently re-key every user for every app.
        let platform = PlatformSecret::from_bytes([7u8; 32]);
        let id = platform.app_user_id(&AppId::parse("polls").unwrap(), &UserId::from_string("u_1"));
        // Independently computed: HMAC-SHA256(key, "minihost app-user-id v1\0" || be32(5) ||
        // "polls" || "u_1"), first 16 bytes in hex.
        assert_eq!(id.as_str(), "au_7cfcaeb52adfac2864c580de14bba4f2");
    }

    #[test]
    fn app_secrets_are_stored_hashed_and_verified() {
        let creds = AppCredentials::generate();
        let shown = creds.secret.expose().to_owned();
        assert!(shown.starts_with("mhcs_") && shown.len() > 40);
        assert!(!creds.secret_hash.as_str().contains(&shown));
        assert!(creds.secret_hash.matches(&shown));
        assert!(!creds.secret_hash.matches("mhcs_wrong"));
        assert!(!format!("{:?}", creds.secret).contains(&shown));

        let rotated = AppCredentials::rotate(creds.client_id.clone());
        assert_eq!(rotated.client_id, creds.client_id);
        assert!(
            !rotated.secret_hash.matches(&shown),
            "the old secret stops working"
        );
        assert_eq!(
            SecretHash::parse(rotated.secret_hash.as_str()),
            Ok(rotated.secret_hash.clone())
        );
    }
}
