//! Showing what an app produced: WIT content as the platform's JSON content model
//! (`minihost_core::Content`), and as indented text for the terminal.

use minihost_core as core;
use minihost_runtime::Content;
use minihost_runtime::bindings::Block;

/// WIT content in the core model (the JSON the messenger stores and sends).
pub(crate) fn to_core(content: &Content) -> core::Content {
    match content {
        Content::Text(text) => core::Content::Text { text: text.clone() },
        Content::Card(card) => core::Content::Card(core::Card {
            blocks: card
                .blocks
                .iter()
                .map(|block| match block {
                    Block::Text(text) => core::Block::Text { text: text.clone() },
                    Block::Button(b) => core::Block::Button(core::Button {
                        id: b.id.clone(),
                        label: b.label.clone(),
                        value: b.value.clone(),
                    }),
                    Block::Image(url) => core::Block::Image { url: url.clone() },
                    Block::Input(i) => core::Block::Input(core::Input {
                        id: i.id.clone(),
                        placeholder: i.placeholder.clone(),
                    }),
                    Block::Divider => core::Block::Divider,
                })
                .collect(),
        }),
    }
}

/// The content as JSON.
pub(crate) fn to_json(content: &Content) -> serde_json::Value {
    serde_json::to_value(to_core(content)).unwrap_or(serde_json::Value::Null)
}

/// The content as terminal lines (a card is drawn block by block).
pub(crate) fn to_text(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        Content::Card(card) => {
            let mut out = String::from("card:");
            for block in &card.blocks {
                out.push_str("\n  | ");
                match block {
                    Block::Text(text) => out.push_str(text),
                    Block::Button(b) => {
                        out.push_str(&format!("[{}]  (--action {}={})", b.label, b.id, b.value))
                    }
                    Block::Image(url) => out.push_str(&format!("<image {url}>")),
                    Block::Input(i) => {
                        out.push_str(&format!("[{}____]  (--input {}=...)", i.placeholder, i.id))
                    }
                    Block::Divider => out.push_str("----"),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minihost_runtime::bindings::{Button, Card};

    #[test]
    fn json_is_the_core_content_model() {
        let card = Content::Card(Card {
            blocks: vec![
                Block::Text("Pick".into()),
                Block::Button(Button {
                    id: "a".into(),
                    label: "A".into(),
                    value: "1".into(),
                }),
                Block::Divider,
            ],
        });
        assert_eq!(
            to_json(&card),
            serde_json::json!({"type": "card", "blocks": [
                {"kind": "text", "text": "Pick"},
                {"kind": "button", "id": "a", "label": "A", "value": "1"},
                {"kind": "divider"},
            ]})
        );
        assert!(to_core(&card).validate().is_ok());
        assert!(to_text(&card).contains("[A]  (--action a=1)"));
        assert_eq!(
            to_json(&Content::Text("hi".into())),
            serde_json::json!({"type": "text", "text": "hi"})
        );
    }
}
