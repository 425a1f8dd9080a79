//! Users: usernames, display names, passwords and roles, with the rules each must follow.

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

/// The name shown to other people: 1 to 64 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a display name.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        let len = t.chars().count();
        if !(1..=64).contains(&len) {
            return Err(Invalid::new(
                "display_name",
                "must be between 1 and 64 characters",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(Invalid::new(
                "display_name",
                "must not contain control characters",
            ));
        }
        Ok(Self(t.to_owned()))
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

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Bob ").unwrap().as_str(), "Bob");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
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
