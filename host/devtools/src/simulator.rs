//! The seam between the CLI and whatever runs apps for it: [`Simulator`]. The server crate
//! implements it with a node of its own, so the CLI never holds a second copy of the platform's
//! rules (scopes, limits, budgets, quotas, content checks).

use std::future::Future;
use std::pin::Pin;

use minihost_runtime::{Event, InvocationReport};

/// A boxed future, as the trait's methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One local run: the app as it would be uploaded, the user's answer to the consent request,
/// and the events to run in order.
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// The text of miniapp.toml.
    pub manifest: String,
    /// The component.
    pub component: Vec<u8>,
    /// The scopes the simulated user granted (each must be one the manifest declares).
    pub grants: Vec<String>,
    /// The event.
    pub event: Event,
    /// A button press on the last card the app sent in answer to `event`: (button id, input
    /// values), resolved against the card exactly as the messenger does.
    pub then_press: Option<(String, Vec<(String, String)>)>,
}

/// A message the app sent into the simulated conversation (final content, after updates).
#[derive(Debug, Clone)]
pub struct SimMessage {
    /// The message id.
    pub id: String,
    /// Its content in the messenger's model.
    pub content: minihost_core::Content,
}

/// A payment request the app made (the simulated user never answers it).
#[derive(Debug, Clone)]
pub struct SimPayment {
    /// The request id the app got.
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The amount as the user would read it, e.g. `€6.50`.
    pub amount_text: String,
    /// What it is for.
    pub description: String,
    /// Its state (`pending`).
    pub state: String,
}

/// What a run did.
#[derive(Debug)]
pub struct SimResult {
    /// One report per event run (the event, then the button press if any).
    pub reports: Vec<InvocationReport>,
    /// Why the platform refused what the app answered, as the invocation log records it
    /// (`reply_rejected` with the reason), for each report that had one.
    pub rejected: Vec<Option<String>>,
    /// The sentence the user would read for each failed report.
    pub notices: Vec<Option<String>>,
    /// The messages the app sent, in conversation order.
    pub messages: Vec<SimMessage>,
    /// The payment requests the app made, oldest first.
    pub payments: Vec<SimPayment>,
}

/// What an upload check found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The app id and version, from the manifest.
    pub app: String,
    /// Its version.
    pub version: String,
    /// The capability interfaces the component imports.
    pub interfaces: Vec<String>,
}

/// Runs apps for the CLI the way a server runs them.
pub trait Simulator: Send + Sync {
    /// Checks a manifest and component as an upload is checked; `Err` is the server's refusal
    /// (the field and reason), for the developer to read.
    fn check<'a>(
        &'a self,
        manifest: String,
        component: Vec<u8>,
    ) -> BoxFuture<'a, anyhow::Result<Result<Checked, String>>>;

    /// Uploads the app into a fresh simulated messenger, records the user's grant and runs the
    /// request's events. `Ok(Err(reason))` is a refusal a server would give (an invalid
    /// manifest, an undeclared scope or command); `Err` is a failure of the simulator itself.
    fn simulate<'a>(
        &'a self,
        request: SimRequest,
    ) -> BoxFuture<'a, anyhow::Result<Result<SimResult, String>>>;
}
