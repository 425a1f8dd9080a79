//! Building cards: [`Card::builder`] and [`CardBuilder`], a chain of blocks top to bottom.

use crate::{Block, Button, Card, Content, Input};

impl Card {
    /// Starts a card.
    ///
    /// ```
    /// use minihost_sdk::{Block, Card};
    /// let card = Card::builder()
    ///     .text("Lunch?")
    ///     .button("pizza", "Pizza", "p")
    ///     .divider()
    ///     .build();
    /// assert_eq!(card.blocks.len(), 3);
    /// assert!(matches!(&card.blocks[1], Block::Button(b) if b.id == "pizza"));
    /// ```
    pub fn builder() -> CardBuilder {
        CardBuilder { blocks: Vec::new() }
    }

    /// The buttons of the card, in order.
    pub fn buttons(&self) -> impl Iterator<Item = &Button> {
        self.blocks.iter().filter_map(|b| match b {
            Block::Button(button) => Some(button),
            _ => None,
        })
    }
}

/// The button value the messenger reads as "open this app in my panel".
pub const OPEN_PANEL: &str = "minihost:open-panel";

/// Builds a [`Card`] block by block. Finish with [`build`](CardBuilder::build) or
/// [`content`](CardBuilder::content).
#[derive(Debug, Clone, Default)]
pub struct CardBuilder {
    blocks: Vec<Block>,
}

impl CardBuilder {
    /// Adds a paragraph of text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Text(text.into()));
        self
    }

    /// Adds a button; pressing it sends an `action` event with `id` and `value`.
    pub fn button(
        mut self,
        id: impl Into<String>,
        label: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.blocks.push(Block::Button(Button {
            id: id.into(),
            label: label.into(),
            value: value.into(),
        }));
        self
    }

    /// Adds a button that brings whoever presses it to this app in their own app panel (a
    /// private conversation with the app, where its `opened` event runs), instead of sending
    /// the app an `action` event.
    pub fn panel_button(self, label: impl Into<String>) -> Self {
        self.button("open-panel", label, OPEN_PANEL)
    }

    /// Adds an image by https (or data:image) URL.
    pub fn image(mut self, url: impl Into<String>) -> Self {
        self.blocks.push(Block::Image(url.into()));
        self
    }

    /// Adds a one-line text input; its value comes with the next button press.
    pub fn input(mut self, id: impl Into<String>, placeholder: impl Into<String>) -> Self {
        self.blocks.push(Block::Input(Input {
            id: id.into(),
            placeholder: placeholder.into(),
        }));
        self
    }

    /// Adds a horizontal rule.
    pub fn divider(mut self) -> Self {
        self.blocks.push(Block::Divider);
        self
    }

    /// The card.
    pub fn build(self) -> Card {
        Card {
            blocks: self.blocks,
        }
    }

    /// The card as message content.
    pub fn content(self) -> Content {
        Content::Card(self.build())
    }
}
