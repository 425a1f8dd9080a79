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

/// What an upload (a trial install or a submission) produced, or an install.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sideloaded {
    /// The app id (from the manifest).
    pub app: String,
    /// The version.
    pub version: String,
    /// Where it stands: `trial`, `submitted`, or `released` (an install).
    pub status: String,
    /// Hex SHA-256 of the component: the version's content address.
    pub sha256: String,
    /// What the upload checks found (all passed, or it would have been refused), and the
    /// manifest's changes against the released version.
    pub findings: Vec<Finding>,
}

/// One thing the upload checks found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// Which check: `world`, `imports`, `size`, `compile`, `smoke`, `scopes`, `commands`,
    /// `webhook`.
    pub check: String,
    /// `passed`, or `changed` (a difference from the released version to look at).
    pub result: String,
    /// What it found, in words.
    pub message: String,
}

/// The value of a button that opens the card's app in the presser's own panel instead of
/// sending the app an `action` event (`CardBuilder::panel_button` in the SDK).
pub const OPEN_PANEL: &str = "minihost:open-panel";

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

    /// Validates a version of `app` (every blocking check: manifest, imports, compile, smoke
    /// run), computes its findings, and stores it for review with the developer's `notes`.
    /// Nothing is stored unless every blocking check passed.
    fn submit<'a>(
        &'a self,
        developer: &'a User,
        app: &'a str,
        manifest: String,
        component: Vec<u8>,
        notes: String,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>>;

    /// Installs `app` in a conversation (its release decides what runs for whom).
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
    fn consent_requests<'a>(
        &'a self,
        user: &'a User,
    ) -> BoxFuture<'a, Result<serde_json::Value, ApiError>>;

    /// The private conversation where `app` runs in `user`'s own panel, adding the app to the
    /// panel first if needed (released, running apps only); with `open`, the app's `opened`
    /// event runs there.
    fn panel<'a>(
        &'a self,
        user: &'a User,
        app: &'a str,
        open: bool,
    ) -> BoxFuture<'a, Result<String, ApiError>>;

    /// `app` was just suspended: its waiting consent requests are dropped (their events never
    /// run) and its pending payment requests are expired now rather than at the next sweep.
    fn app_suspended(&self, app: &str);

    /// The user opened an installed app's panel.
    fn open<'a>(
        &'a self,
        user: &'a User,
        conversation: &'a Conversation,
        app: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}
