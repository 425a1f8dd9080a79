//! What a message carries: plain text, or a card of blocks sent by a mini-app. The JSON form is
//! `{"type": "text", "text": "..."}` or `{"type": "card", "blocks": [...]}`; every variant is
//! validated against [`Limits`](crate::Limits) before it is stored.

use crate::validation::{Invalid, Limits};
use serde::{Deserialize, Serialize};

/// The content of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Content {
    /// Plain text.
    Text {
        /// The text, 1 byte to [`Limits::MAX_TEXT_BYTES`].
        text: String,
    },
    /// A card of blocks, as mini-apps send them.
    Card(Card),
}

/// A card: an ordered list of blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// The blocks, top to bottom.
    pub blocks: Vec<Block>,
}

/// One block of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Block {
    /// A paragraph of text.
    Text {
        /// The paragraph.
        text: String,
    },
    /// A button; pressing it sends an `action` event to the app that sent the card.
    Button(Button),
    /// An image by URL.
    Image {
        /// Where the image is (https or a data URL).
        url: String,
    },
    /// A one-line text input whose value is sent with the next button press.
    Input(Input),
    /// A horizontal rule.
    Divider,
}

/// A button on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    /// Which button, as the app will see it in the `action` event.
    pub id: String,
    /// What the button says.
    pub label: String,
    /// An app-defined value sent back with the press.
    #[serde(default)]
    pub value: String,
}

/// A text input on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Which input, as the app will see it.
    pub id: String,
    /// Hint shown in the empty field.
    #[serde(default)]
    pub placeholder: String,
}

impl Content {
    /// Plain text content, unvalidated.
    pub fn text(s: impl Into<String>) -> Self {
        Content::Text { text: s.into() }
    }

    /// The kind as stored and sent (`text` or `card`).
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Text { .. } => "text",
            Content::Card(_) => "card",
        }
    }

    /// The text of a text message (used to recognise `/commands`).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text { text } => Some(text),
            Content::Card(_) => None,
        }
    }

    /// Checks the content against the platform's limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Content::Text { text } => validate_text("text", text),
            Content::Card(card) => card.validate(),
        }
    }

    /// Whether a user (not an app) may send this content. Cards come only from apps.
    pub fn user_may_send(&self) -> bool {
        matches!(self, Content::Text { .. })
    }
}

impl Card {
    /// Checks the card against the platform's limits.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.blocks.is_empty() {
            return Err(Invalid::new("blocks", "a card needs at least one block"));
        }
        if self.blocks.len() > Limits::MAX_CARD_BLOCKS {
            return Err(Invalid::new(
                "blocks",
                format!("a card has at most {} blocks", Limits::MAX_CARD_BLOCKS),
            ));
        }
        for block in &self.blocks {
            match block {
                Block::Text { text } => validate_text("blocks.text", text)?,
                Block::Button(b) => {
                    field("blocks.button.id", &b.id, false)?;
                    field("blocks.button.label", &b.label, false)?;
                    field("blocks.button.value", &b.value, true)?;
                }
                Block::Image { url } => {
                    field("blocks.image.url", url, false)?;
                    if !(url.starts_with("https://") || url.starts_with("data:image/")) {
                        return Err(Invalid::new(
                            "blocks.image.url",
                            "must be an https or data:image URL",
                        ));
                    }
                }
                Block::Input(i) => {
                    field("blocks.input.id", &i.id, false)?;
                    field("blocks.input.placeholder", &i.placeholder, true)?;
                }
                Block::Divider => {}
            }
        }
        Ok(())
    }
}

fn validate_text(name: &str, text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(name, "must not be empty"));
    }
    if text.len() > Limits::MAX_TEXT_BYTES {
        return Err(Invalid::new(
            name,
            format!("must be at most {} bytes", Limits::MAX_TEXT_BYTES),
        ));
    }
    Ok(())
}

fn field(name: &str, value: &str, may_be_empty: bool) -> Result<(), Invalid> {
    if !may_be_empty && value.is_empty() {
        return Err(Invalid::new(name, "must not be empty"));
    }
    if value.len() > Limits::MAX_BLOCK_FIELD_BYTES {
        return Err(Invalid::new(
            name,
            format!("must be at most {} bytes", Limits::MAX_BLOCK_FIELD_BYTES),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str, expected: Result<(), &str>) {
        let parsed: Result<Content, _> = serde_json::from_str(json);
        let got = match parsed {
            Err(e) => Err(format!("parse: {e}")),
            Ok(c) => c.validate().map_err(|e| e.to_string()),
        };
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(g), Err(e)) => assert!(g.contains(e), "{json}: got {g:?}, want {e:?}"),
            (g, e) => panic!("{json}: got {g:?}, want {e:?}"),
        }
    }

    #[test]
    fn content_rules() {
        check(r#"{"type":"text","text":"hi"}"#, Ok(()));
        check(
            r#"{"type":"text","text":"  "}"#,
            Err("text: must not be empty"),
        );
        check(r#"{"type":"text"}"#, Err("parse: missing field `text`"));
        check(
            r#"{"type":"video","url":"x"}"#,
            Err("parse: unknown variant"),
        );
        check(
            r#"{"type":"text","text":"hi","extra":1}"#,
            Err("parse: unknown field"),
        );
        check(
            r#"{"type":"card","blocks":[{"kind":"text","text":"Pick"},{"kind":"button","id":"a","label":"A"},{"kind":"divider"}]}"#,
            Ok(()),
        );
        check(r#"{"type":"card","blocks":[]}"#, Err("at least one block"));
        check(
            r#"{"type":"card","blocks":[{"kind":"image","url":"http://x"}]}"#,
            Err("https"),
        );
        let big = format!(
            r#"{{"type":"text","text":"{}"}}"#,
            "a".repeat(16 * 1024 + 1)
        );
        check(&big, Err("at most"));
    }

    #[test]
    fn only_text_from_users() {
        assert!(Content::text("x").user_may_send());
        let card = Content::Card(Card {
            blocks: vec![Block::Divider],
        });
        assert!(!card.user_may_send());
        assert_eq!(card.kind(), "card");
    }
}
