//! The seam between the API and the mini-app platform. The API knows nothing of wasmtime: the
//! server wires in an [`AppPlatform`] that validates and runs components. Without one (a
//! messenger-only node), app routes answer 503.

use crate::error::ApiError;
use minihost_core::{Block, Content, Message, Sender};
use minihost_store::{Conversation, GrantRecord, User};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe async methods below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a sideload produced.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sideloaded {
    /// The app id (from the manifest).
    pub app: String,
    /// The version installed.
    pub version: String,
    /// Static-check findings that did not block the install (warnings).
    pub findings: Vec<String>,
}

/// A button press on a card.
#[derive(Debug, Clone)]
pub struct ActionInput {
    /// The button's id.
    pub button: String,
    /// The button's value.
    pub value: String,
    /// Values of the card's inputs.
    pub inputs: Vec<(String, String)>,
}

impl ActionInput {
    /// The press of `button` on `card`, as the messenger accepts it: only on a card an app
    /// sent, only a button the card has (its value comes from the card, not the client), and
    /// only the inputs the card has (others are dropped).
    pub fn from_card(
        card: &Message,
        button: String,
        inputs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ActionInput, ApiError> {
        if !matches!(card.sender, Sender::App { .. }) {
            return Err(ApiError::invalid(
                "message",
                "only cards sent by apps have buttons",
            ));
        }
        let Content::Card(c) = &card.content else {
            return Err(ApiError::invalid("message", "the message is not a card"));
        };
        let value = c
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Button(btn) if btn.id == button => Some(btn.value.clone()),
                _ => None,
            })
            .ok_or_else(|| ApiError::invalid("button", "the card has no such button"))?;
        let inputs = inputs
            .into_iter()
            .filter(|(k, _)| {
                c.blocks
                    .iter()
                    .any(|b| matches!(b, Block::Input(i) if &i.id == k))
            })
            .collect();
        Ok(ActionInput {
            button,
            value,
            inputs,
        })
    }
}

/// The mini-app platform as the API sees it.
pub trait AppPlatform: Send + Sync + 'static {
    /// A user's message was stored: run the apps its `/command` names. Must return quickly;
    /// the work happens in the background and replies arrive as messages.
    fn message_posted(&self, author: &User, message: &Message);

    /// A payment changed state (confirmed, declined, refunded): deliver what the outbox holds
    /// to the apps now rather than at the next sweep. Must return quickly.
    fn payments_changed(&self) {}

    /// Validates a component against its manifest and installs it, unreviewed, in a
    /// conversation the developer owns.
    fn sideload<'a>(
        &'a self,
        developer: &'a User,
        conversation: &'a Conversation,
        manifest: String,
        component: Vec<u8>,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>>;

    /// Validates a version (manifest, component, static import check) and stores it for review.
    fn submit<'a>(
        &'a self,
        developer: &'a User,
        manifest: String,
        component: Vec<u8>,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>>;

    /// Installs (or upgrades to) the newest approved version of `app` in a conversation.
    fn install<'a>(
        &'a self,
        user: &'a User,
        conversation: &'a Conversation,
        app: &'a str,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>>;

    /// A button press on a card that an app sent (the message is one of the app's).
    fn action<'a>(
        &'a self,
        user: &'a User,
        card: &'a Message,
        action: ActionInput,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// The user's answer to a consent request (or a change of an existing grant): exactly
    /// `scopes` are granted; events waiting for the answer then run.
    fn answer_consent<'a>(
        &'a self,
        user: &'a User,
        app: &'a str,
        scopes: Vec<String>,
    ) -> BoxFuture<'a, Result<GrantRecord, ApiError>>;

    /// The consent requests waiting for the user (a JSON array).
    fn consent_requests(&self, user: &User) -> serde_json::Value;

    /// The user opened an installed app's panel.
    fn open<'a>(
        &'a self,
        user: &'a User,
        conversation: &'a Conversation,
        app: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}
