//! NATS subject names: one subject per hub topic under the deployment's prefix
//! (`<prefix>.conv.<conversation id>`, `<prefix>.user.<user id>`), plus `<prefix>.inval` for
//! cache invalidations and `<prefix>.resync` for "re-read from the database". An id that is
//! not a plain subject token (letters, digits, `_`, `-`) is written as `=` and its hex.

use minihost_core::{ConversationId, UserId};
use minihost_hub::Topic;

/// Why a prefix was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "NATS subject prefix {0:?}: dot-separated tokens of letters, digits, `_` and `-`, e.g. `minihost`"
)]
pub struct BadPrefix(pub String);

/// The subjects of one deployment.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

/// What a received subject names.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A hub topic.
    Topic(Topic),
    /// The invalidation subject.
    Invalidation,
    /// The resync subject.
    Resync,
}

fn plain(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn encode(id: &str) -> String {
    if plain(id) {
        return id.to_owned();
    }
    let mut out = String::with_capacity(1 + id.len() * 2);
    out.push('=');
    for b in id.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn decode(token: &str) -> Option<String> {
    let Some(hex) = token.strip_prefix('=') else {
        return plain(token).then(|| token.to_owned());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

impl Subjects {
    /// The subjects under `prefix`.
    pub fn new(prefix: &str) -> Result<Self, BadPrefix> {
        if prefix.split('.').all(plain) {
            Ok(Subjects {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(BadPrefix(prefix.to_owned()))
        }
    }

    /// The subject of `topic`.
    pub fn topic(&self, topic: &Topic) -> String {
        match topic {
            Topic::Conversation(c) => format!("{}.conv.{}", self.prefix, encode(c.as_str())),
            Topic::User(u) => format!("{}.user.{}", self.prefix, encode(u.as_str())),
        }
    }

    /// The invalidation subject.
    pub fn invalidation(&self) -> String {
        format!("{}.inval", self.prefix)
    }

    /// The resync subject.
    pub fn resync(&self) -> String {
        format!("{}.resync", self.prefix)
    }

    /// What a node subscribes to: everything under the prefix.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// What `subject` names, if it is one of ours.
    pub fn parse(&self, subject: &str) -> Option<Parsed> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        match rest.split_once('.') {
            Some(("conv", id)) => Some(Parsed::Topic(Topic::Conversation(
                ConversationId::from_string(decode(id)?),
            ))),
            Some(("user", id)) => {
                Some(Parsed::Topic(Topic::User(UserId::from_string(decode(id)?))))
            }
            None if rest == "inval" => Some(Parsed::Invalidation),
            None if rest == "resync" => Some(Parsed::Resync),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(topic: Topic, expected: &str) {
        let s = Subjects::new("mh.test").unwrap();
        let subject = s.topic(&topic);
        assert_eq!(subject, expected);
        assert_eq!(s.parse(&subject), Some(Parsed::Topic(topic)));
    }

    #[test]
    fn topics_round_trip() {
        check(
            Topic::Conversation(ConversationId::from_string("c_0123abcd")),
            "mh.test.conv.c_0123abcd",
        );
        check(
            Topic::User(UserId::from_string("u_42")),
            "mh.test.user.u_42",
        );
        check(
            Topic::User(UserId::from_string("a.b*>")),
            "mh.test.user.=612e622a3e",
        );
        check(Topic::User(UserId::from_string("")), "mh.test.user.=");
    }

    #[test]
    fn other_subjects() {
        let s = Subjects::new("minihost").unwrap();
        assert_eq!(s.parse(&s.invalidation()), Some(Parsed::Invalidation));
        assert_eq!(s.parse(&s.resync()), Some(Parsed::Resync));
        assert_eq!(s.all(), "minihost.>");
        for other in [
            "other.conv.c_1",
            "minihost.conv.=zz",
            "minihost.x.y",
            "minihostx.inval",
        ] {
            assert_eq!(s.parse(other), None, "{other}");
        }
        for bad in ["", "a..b", "a.*", "a.>", "a b"] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
    }
}
