//! Domain types and rules of Minihost: identifiers, users, conversations, messages and their
//! content, with the validation every entry point shares. This crate does no IO and knows nothing
//! of HTTP, SQL or WebAssembly.

pub mod content;
pub mod ids;
pub mod message;
pub mod money;
pub mod name;
pub mod scope;
pub mod secret;
pub mod user;
pub mod validation;

pub use content::{Block, Button, Card, Content, Input};
pub use ids::{ConversationId, MessageId, UserId};
pub use message::{ConversationKind, GroupTitle, Message, Sender};
pub use money::{Currency, MAX_AMOUNT, MoneyError};
pub use name::{NameProblem, shown_name};
pub use scope::{Scope, UnknownScope};
pub use secret::SecretError;
pub use user::{DisplayName, Password, Role, Username};
pub use validation::{Invalid, Limits};

/// Milliseconds since the Unix epoch, the one clock representation stored and compared.
pub type UnixMillis = i64;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> UnixMillis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
