//! Conversations and messages as the rest of the system sees them.

use crate::UnixMillis;
use crate::content::Content;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::validation::Invalid;
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
