//! Opaque identifiers. Each kind of id has its own newtype and prefix so that a user id can never
//! be passed where a conversation id is expected, and ids reveal nothing about counts or order,
//! with one exception: a message id starts with its creation time ([`MessageId::generate`]),
//! which its message shows anyway, so that new ids land at the end of the id index instead of
//! on a random page of it.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        id_type!(@common $(#[$doc])* $name, $prefix);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_hex(12)))
            }
        }
    };
    (@common $(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

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
    @common
    /// One message in a conversation.
    MessageId,
    "m_"
);

impl MessageId {
    /// A new id: `m_`, the current Unix time in milliseconds (12 hex digits), then 12 random hex
    /// digits: as long as the other ids, and in creation order, so that the store's unique
    /// index on message ids grows at its end (a random id dirtied a random index page per
    /// message, one more WAL frame each). 48 random bits per millisecond keep collisions out of
    /// reach; the unique index would refuse one anyway.
    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, time_ordered_hex(6)))
    }
}

/// The current Unix time in milliseconds (12 hex digits) followed by `n` random bytes in hex:
/// an id that sorts in creation order, so a database index on it grows at its end instead of
/// dirtying a random page per row (message ids, invocation log ids).
pub fn time_ordered_hex(n: usize) -> String {
    let ms = u64::try_from(crate::now_millis()).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{ms:012x}{}", random_hex(n))
}

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

    #[test]
    fn message_ids_are_as_long_as_others_and_in_creation_order() {
        let first = MessageId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = MessageId::generate();
        assert!(first.as_str().starts_with("m_"));
        assert_eq!(first.as_str().len(), UserId::generate().as_str().len());
        assert!(first < later, "{first} then {later}");
        // The time part is the creation time; the rest differs between two ids of one moment.
        let ms = i64::from_str_radix(&first.as_str()[2..14], 16).unwrap();
        assert!((crate::now_millis() - ms).abs() < 60_000);
        let (a, b) = (MessageId::generate(), MessageId::generate());
        assert_ne!(a.as_str()[14..], b.as_str()[14..]);
    }
}
