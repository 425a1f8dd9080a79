//! Conversations and messages as the rest of the system sees them.

use crate::UnixMillis;
use crate::content::Content;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::name::shown_name;
use crate::validation::{Invalid, Limits};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Direct (exactly two people, one conversation per pair) or group (titled, owned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationKind {
    /// Two people.
    Direct,
    /// A titled group with an owner.
    Group,
}

impl ConversationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }
}

impl FromStr for ConversationKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "direct" => Ok(Self::Direct),
            "group" => Ok(Self::Group),
            _ => Err(Invalid::new("kind", "must be \"direct\" or \"group\"")),
        }
    }
}

/// A group's title, shown to every member: 1 to [`Limits::MAX_TITLE_CHARS`] characters, trimmed,
/// under the same rules as a display name (NFC, no control, bidirectional-control or invisible
/// characters, no look-alike script mixes; see [`crate::name`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GroupTitle(String);

impl GroupTitle {
    /// Validates a title as typed and returns it normalized.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bounds = || {
            Invalid::new(
                "title",
                format!(
                    "a group needs a title of 1 to {} characters",
                    Limits::MAX_TITLE_CHARS
                ),
            )
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(bounds());
        }
        if t.chars().any(char::is_control) {
            return Err(Invalid::new("title", "must not contain control characters"));
        }
        let title = shown_name(t).map_err(|p| Invalid::new("title", p.to_string()))?;
        if title.chars().count() > Limits::MAX_TITLE_CHARS {
            return Err(bounds());
        }
        Ok(Self(title))
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who sent a message: a person, or a mini-app acting in the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Sender {
    /// A user of the messenger.
    User {
        /// The user's id.
        id: UserId,
        /// The user's username.
        username: String,
    },
    /// A mini-app.
    App {
        /// The app's id.
        id: String,
        /// The app's display name.
        name: String,
    },
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Unique id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// Position in the conversation: 1, 2, 3, ... with no gaps.
    pub seq: i64,
    /// Who sent it.
    pub sender: Sender,
    /// What it says.
    pub content: Content,
    /// When the server accepted it, RFC 3339 in UTC.
    pub created_at: String,
    /// When the server accepted it, milliseconds since the Unix epoch.
    pub created_at_ms: UnixMillis,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected` is the stored title, or the start of the `title` error's message.
    fn check_title(input: &str, expected: Result<&str, &str>) {
        match (GroupTitle::parse(input), expected) {
            (Ok(title), Ok(want)) => assert_eq!(title.as_str(), want, "{input:?}"),
            (Err(e), Err(want)) => {
                assert_eq!(e.field, "title", "{input:?}");
                assert!(e.message.starts_with(want), "{input:?}: {:?}", e.message);
            }
            (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn group_titles() {
        check_title(" Book club ", Ok("Book club"));
        check_title("Cafe\u{301} 读书会 📚", Ok("Café 读书会 📚"));
        check_title(&"t".repeat(128), Ok(&"t".repeat(128)));
        check_title("", Err("a group needs a title of 1 to 128"));
        check_title(&"t".repeat(129), Err("a group needs a title of 1 to 128"));
        check_title("Book\nclub", Err("must not contain control characters"));
        check_title(
            "Admins \u{202E}nimda",
            Err("must not contain bidirectional control"),
        );
        check_title(
            "Ad\u{200B}mins",
            Err("must not contain invisible characters"),
        );
        check_title("Аdmins", Err("must not mix Cyrillic and Latin letters"));
    }
}
