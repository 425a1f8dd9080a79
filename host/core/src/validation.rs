//! The validation error shared by every domain constructor, and the platform's size limits.

use serde::Serialize;

/// A value rejected by a domain rule: which field, and why, in words fit for a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The name of the offending field as the client sent it (`text`, `username`, ...).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Size limits that bound what one request can store.
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl Limits {
    /// Longest text of one message, in bytes of UTF-8.
    pub const MAX_TEXT_BYTES: usize = 16 * 1024;
    /// Most blocks in one card.
    pub const MAX_CARD_BLOCKS: usize = 50;
    /// Longest label, id or value inside a card block, in bytes.
    pub const MAX_BLOCK_FIELD_BYTES: usize = 1024;
    /// Most members of a group conversation.
    pub const MAX_GROUP_MEMBERS: usize = 1000;
    /// Longest group title, in characters.
    pub const MAX_TITLE_CHARS: usize = 128;
    /// Largest page of history one request may read.
    pub const MAX_PAGE: u32 = 500;
    /// Page size when the client names none.
    pub const DEFAULT_PAGE: u32 = 50;
    /// Longest idempotency key, in bytes.
    pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
}
