//! Opaque identifiers. Each kind of id has its own newtype and prefix so that a user id can never
//! be passed where a conversation id is expected, and ids reveal nothing about counts or order.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_hex(12)))
            }

            /// Wraps an id read from storage or from a client. Ids are opaque: a malformed one is
            /// simply an id that matches nothing.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

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
    };
}

id_type!(
    /// A user account.
    UserId,
    "u_"
);
id_type!(
    /// A direct or group conversation.
    ConversationId,
    "c_"
);
id_type!(
    /// One message in a conversation.
    MessageId,
    "m_"
);

/// `n` random bytes from the operating system, hex-encoded.
pub fn random_hex(n: usize) -> String {
    hex::encode(random_bytes(n))
}

/// `n` random bytes from the operating system's generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // The OS generator failing is not a recoverable condition for an id or a secret; fall back to
    // aborting the request rather than handing out a predictable value.
    if getrandom::fill(&mut buf).is_err() {
        std::process::abort();
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_differ() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert!(a.as_str().starts_with("u_"));
        assert_eq!(a.as_str().len(), 2 + 24);
        assert_ne!(a, b);
        assert!(ConversationId::generate().as_str().starts_with("c_"));
    }
}
