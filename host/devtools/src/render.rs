//! Showing what an app produced: WIT content as the platform's JSON content model
//! (`minihost_core::Content`), and as indented text for the terminal.

use minihost_core as core;
use minihost_runtime::Content;

/// WIT content in the core model (the JSON the messenger stores and sends), by the same
/// conversion the server's capabilities use.
pub(crate) fn to_core(content: &Content) -> core::Content {
    minihost_cap_common::to_core(content.clone())
}

/// The content as JSON.
pub(crate) fn to_json(content: &Content) -> serde_json::Value {
    serde_json::to_value(to_core(content)).unwrap_or(serde_json::Value::Null)
}

/// WIT content as terminal lines.
pub(crate) fn to_text(content: &Content) -> String {
    core_to_text(&to_core(content))
}

/// Messenger content as terminal lines (a card is drawn block by block).
pub(crate) fn core_to_text(content: &core::Content) -> String {
    match content {
        core::Content::Text { text } => text.clone(),
        core::Content::Card(card) => {
            let mut out = String::from("card:");
            for block in &card.blocks {
                out.push_str("\n  | ");
                match block {
                    core::Block::Text { text } => out.push_str(text),
                    core::Block::Button(b) => {
                        out.push_str(&format!("[{}]  (--action {})", b.label, b.id))
                    }
                    core::Block::Image { url } => out.push_str(&format!("<image {url}>")),
                    core::Block::Input(i) => {
                        out.push_str(&format!("[{}____]  (--input {}=...)", i.placeholder, i.id))
                    }
                    core::Block::Divider => out.push_str("----"),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minihost_runtime::bindings::{Block, Button, Card};

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
        assert!(to_text(&card).contains("[A]  (--action a)"));
        assert_eq!(
            to_json(&Content::Text("hi".into())),
            serde_json::json!({"type": "text", "text": "hi"})
        );
    }
}
