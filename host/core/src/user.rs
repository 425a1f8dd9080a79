//! Users: usernames, display names, passwords and roles, with the rules each must follow.

use crate::name::shown_name;
use crate::validation::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A login name: 3 to 32 characters of lowercase ASCII letters, digits and `_`, starting with a
/// letter. Unique across the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Validates a username as typed by a user.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let len = s.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Invalid::new(
                "username",
                "must be between 3 and 32 characters",
            ));
        }
        let mut chars = s.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
            return Err(Invalid::new(
                "username",
                "must start with a lowercase letter",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Invalid::new(
                "username",
                "may contain only lowercase letters, digits and '_'",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// Wraps a username read back from storage, where it was validated on the way in.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    /// The username as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown to other people: 1 to 64 characters, trimmed, in NFC, without control,
/// bidirectional-control or invisible characters, and not mixing scripts whose letters look
/// alike (see [`crate::name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a display name and returns it normalized.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        if t.chars().any(char::is_control) {
            return Err(Invalid::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        let name = shown_name(t).map_err(|p| Invalid::new("display_name", p.to_string()))?;
        let len = name.chars().count();
        if !(1..=64).contains(&len) {
            return Err(Invalid::new(
                "display_name",
                "must be between 1 and 64 characters",
            ));
        }
        Ok(Self(name))
    }

    /// Wraps a display name read back from storage.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    /// The display name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8 to 256 bytes. Never stored; only its argon2id hash is.
pub struct Password(String);

impl Password {
    /// Validates a new password's length.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.len() < 8 {
            return Err(Invalid::new("password", "must be at least 8 characters"));
        }
        if s.len() > 256 {
            return Err(Invalid::new("password", "must be at most 256 bytes"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The password's bytes, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What an account may do on the platform. Roles are ordered only by name: a reviewer is not a
/// developer, and an admin may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Chats and uses mini-apps.
    User,
    /// Also publishes mini-apps.
    Developer,
    /// Also reviews submitted app versions.
    Reviewer,
    /// Everything, including changing roles.
    Admin,
}

impl Role {
    /// The role's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Developer => "developer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may publish and sideload mini-apps.
    pub fn can_develop(self) -> bool {
        matches!(self, Role::Developer | Role::Admin)
    }

    /// Whether this role may review app versions.
    pub fn can_review(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "user" => Ok(Role::User),
            "developer" => Ok(Role::Developer),
            "reviewer" => Ok(Role::Reviewer),
            "admin" => Ok(Role::Admin),
            _ => Err(Invalid::new(
                "role",
                "must be one of user, developer, reviewer, admin",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_username(input: &str, ok: bool) {
        assert_eq!(Username::parse(input).is_ok(), ok, "username {input:?}");
    }

    #[test]
    fn usernames() {
        check_username("alice", true);
        check_username("a_1", true);
        check_username("al", false);
        check_username("Alice", false);
        check_username("1alice", false);
        check_username("al ice", false);
        check_username(&"a".repeat(33), false);
    }

    /// `expected` is the stored name, or the start of the `display_name` error's message.
    fn check_display_name(input: &str, expected: Result<&str, &str>) {
        match (DisplayName::parse(input), expected) {
            (Ok(name), Ok(want)) => assert_eq!(name.as_str(), want, "{input:?}"),
            (Err(e), Err(want)) => {
                assert_eq!(e.field, "display_name", "{input:?}");
                assert!(e.message.starts_with(want), "{input:?}: {:?}", e.message);
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn display_names() {
        check_display_name("  Bob ", Ok("Bob"));
        check_display_name("Zoë", Ok("Zoë"));
        check_display_name("Zoe\u{308}", Ok("Zo\u{EB}"));
        check_display_name("王小明", Ok("王小明"));
        check_display_name("José Álvarez", Ok("José Álvarez"));
        check_display_name("Анна", Ok("Анна"));
        check_display_name("محمد", Ok("محمد"));
        check_display_name("山田 たろう タロウ", Ok("山田 たろう タロウ"));
        check_display_name("Bob 🎉", Ok("Bob 🎉"));
        check_display_name(&"x".repeat(64), Ok(&"x".repeat(64)));
        // 64 characters once composed, 128 as typed.
        check_display_name(&"e\u{301}".repeat(64), Ok(&"é".repeat(64)));
        check_display_name("   ", Err("must be between 1 and 64"));
        check_display_name(&"x".repeat(65), Err("must be between 1 and 64"));
        check_display_name("a\u{7}b", Err("must not contain control characters"));
        check_display_name("B\u{43E}b", Err("must not mix Latin and Cyrillic letters"));
        check_display_name("\u{202E}boB", Err("must not contain bidirectional control"));
        check_display_name("B\u{200B}ob", Err("must not contain invisible characters"));
        check_display_name("Bob\u{FEFF}", Err("must not contain invisible characters"));
    }

    #[test]
    fn passwords_and_roles() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        assert_eq!("reviewer".parse::<Role>().unwrap(), Role::Reviewer);
        assert!("root".parse::<Role>().is_err());
        assert!(format!("{:?}", Password::parse("secret-pass").unwrap()).contains("redacted"));
    }
}
