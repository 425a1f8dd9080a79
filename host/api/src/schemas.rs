//! The OpenAPI schemas of `minihost-core`'s wire types (a message and its content), which cannot
//! derive `ToSchema` themselves (`core` knows nothing of HTTP). Each mirror has the serde form of
//! its original; the tests below serialize every variant of the originals and read it back
//! through the mirrors, field for field, so that the two cannot drift apart.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored message.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Message)]
pub(crate) struct MessageDoc {
    /// Unique id (`m_` and 24 hex digits).
    id: String,
    /// The conversation it belongs to.
    conversation: String,
    /// Position in the conversation: 1, 2, 3, ... with no gaps.
    seq: i64,
    /// Who sent it.
    sender: SenderDoc,
    /// What it says.
    content: ContentDoc,
    /// When the server accepted it, RFC 3339 in UTC.
    created_at: String,
    /// When the server accepted it, milliseconds since the Unix epoch.
    created_at_ms: i64,
}

/// Who sent a message: a person, or a mini-app acting in the conversation.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[schema(as = Sender)]
pub(crate) enum SenderDoc {
    /// A user of the messenger.
    User {
        /// The user's id.
        id: String,
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

/// What a message carries: plain text, or a card of blocks (cards come from mini-apps only).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = Content)]
pub(crate) enum ContentDoc {
    /// Plain text, 1 byte to 4 KiB.
    Text {
        /// The text.
        text: String,
    },
    /// A card of blocks, top to bottom.
    Card {
        /// The blocks.
        blocks: Vec<BlockDoc>,
    },
}

/// One block of a card.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = Block)]
pub(crate) enum BlockDoc {
    /// A paragraph of text.
    Text {
        /// The paragraph.
        text: String,
    },
    /// A button; pressing it sends an `action` event to the app that sent the card.
    Button {
        /// Which button, as the app will see it in the `action` event.
        id: String,
        /// What the button says.
        label: String,
        /// An app-defined value sent back with the press.
        #[serde(default)]
        value: String,
    },
    /// An image by URL.
    Image {
        /// Where the image is (https or a data URL).
        url: String,
    },
    /// A one-line text input whose value is sent with the next button press.
    Input {
        /// Which input, as the app will see it.
        id: String,
        /// Hint shown in the empty field.
        #[serde(default)]
        placeholder: String,
    },
    /// A horizontal rule.
    Divider,
}

#[cfg(test)]
mod tests {
    use super::*;
    use minihost_core::{
        Block, Button, Card, Content, ConversationId, Input, Message, MessageId, Sender, UserId,
    };
    use serde::de::DeserializeOwned;

    /// `value` serialized, read back through the mirror `M`, serialized again: the same JSON.
    fn same<T: Serialize, M: Serialize + DeserializeOwned>(value: &T) {
        let json = serde_json::to_value(value).unwrap_or_default();
        let mirror: M = match serde_json::from_value(json.clone()) {
            Ok(m) => m,
            Err(e) => panic!("the mirror does not read {json}: {e}"),
        };
        assert_eq!(serde_json::to_value(&mirror).unwrap_or_default(), json);
    }

    #[test]
    fn the_mirrors_read_and_write_what_core_writes() {
        let card = Content::Card(Card {
            blocks: vec![
                Block::Text {
                    text: "Lunch?".into(),
                },
                Block::Button(Button {
                    id: "yes".into(),
                    label: "Yes".into(),
                    value: "1".into(),
                }),
                Block::Image {
                    url: "https://example.com/a.png".into(),
                },
                Block::Input(Input {
                    id: "comment".into(),
                    placeholder: "after noon".into(),
                }),
                Block::Divider,
            ],
        });
        let senders = [
            Sender::User {
                id: UserId::generate(),
                username: "alice".into(),
            },
            Sender::App {
                id: "polls".into(),
                name: "Polls".into(),
            },
        ];
        for content in [Content::text("hi"), card] {
            same::<_, ContentDoc>(&content);
            for sender in &senders {
                same::<_, MessageDoc>(&Message {
                    id: MessageId::generate(),
                    conversation: ConversationId::generate(),
                    seq: 7,
                    sender: sender.clone(),
                    content: content.clone(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    created_at_ms: 1_767_225_600_000,
                });
            }
        }
    }
}
