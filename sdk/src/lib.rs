//! The Minihost mini-app SDK: what an app developer depends on. It wraps the WIT bindings of
//! the `minihost:app/miniapp` world in an idiomatic API: the [`App`] trait and [`export_app!`]
//! macro for the handler, card builders, typed errors, and one module per capability.
//!
//! # A complete app
//!
//! ```
//! use minihost_sdk::{App, Command, Context, Content, Reply};
//!
//! struct Echo;
//!
//! impl App for Echo {
//!     fn on_command(_ctx: &Context, command: Command) -> minihost_sdk::Result<Reply> {
//!         match command.name.as_str() {
//!             "echo" if !command.args.is_empty() => Ok(Some(Content::text(command.args))),
//!             _ => Ok(None),
//!         }
//!     }
//! }
//!
//! minihost_sdk::export_app!(Echo);
//! # fn main() {
//! # let ctx = Context { app: "echo".into(), user: "u".into(), conversation: "c".into(), locale: "en".into(), developer: false };
//! # let cmd = Command { name: "echo".into(), args: "hi".into() };
//! # assert_eq!(Echo::on_command(&ctx, cmd).unwrap(), Some(Content::text("hi")));
//! # }
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to upload or run with `minihost app run`.
//!
//! Each event runs in a fresh instance: nothing survives between events except what the app
//! keeps with [`storage`]. Capability calls return [`Result`]: a scope the user did not grant
//! gives [`Error::PermissionDenied`], never a crash.
//!
//! For an app's backend (native targets), [`webhook`] verifies Minihost's signed webhooks.

#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// Lets the generated bindings name this crate by its public path, as apps do.
extern crate self as minihost_sdk;

#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "miniapp",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_miniapp",
        default_bindings_module: "::minihost_sdk::bindings",
        runtime_path: "::minihost_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq, Eq],
    });
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::{App, Content, Context, Error, Event};

    /// Called by the code [`export_app!`](crate::export_app) generates.
    pub fn handle<A: App>(ctx: Context, event: Event) -> Result<Option<Content>, Error> {
        A::handle(&ctx, event)
    }
}

mod card;
#[cfg(not(target_arch = "wasm32"))]
pub mod webhook;
pub use card::CardBuilder;

pub use bindings::minihost::app::types::{
    Action, Block, Button, Card, Command, Content, Context, Error, Event, Incoming, Input,
    InputValue, PaymentStatus, PaymentUpdate,
};

/// What a handler returns: `Some(content)` to reply in the event's conversation, `None` to stay
/// silent.
pub type Reply = Option<Content>;

/// `Result` with the platform's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A mini-app: one method per event kind, each answering with a [`Reply`]. Implement the ones
/// your app handles; the others stay silent. Methods take no `self`: every event runs in a
/// fresh instance, so there is no state to keep between them (use [`storage`]).
///
/// Register the type with [`export_app!`].
pub trait App {
    /// Handles any event by dispatching to the `on_*` methods. Override it to see every event
    /// in one place.
    fn handle(ctx: &Context, event: Event) -> Result<Reply> {
        match event {
            Event::Command(command) => Self::on_command(ctx, command),
            Event::Message(message) => Self::on_message(ctx, message),
            Event::Action(action) => Self::on_action(ctx, action),
            Event::Opened => Self::on_opened(ctx),
            Event::Payment(update) => Self::on_payment(ctx, update),
            Event::Timer(key) => Self::on_timer(ctx, &key),
        }
    }

    /// A `/command` for this app: `/name args`.
    fn on_command(_ctx: &Context, _command: Command) -> Result<Reply> {
        Ok(None)
    }

    /// A plain message in a conversation where the app is installed.
    fn on_message(_ctx: &Context, _message: Incoming) -> Result<Reply> {
        Ok(None)
    }

    /// A button press on one of this app's cards.
    fn on_action(_ctx: &Context, _action: Action) -> Result<Reply> {
        Ok(None)
    }

    /// The user opened the app's panel.
    fn on_opened(_ctx: &Context) -> Result<Reply> {
        Ok(None)
    }

    /// A payment the app requested changed status.
    fn on_payment(_ctx: &Context, _update: PaymentUpdate) -> Result<Reply> {
        Ok(None)
    }

    /// A timer the app set ([`timers::set`]) came due. Timers fire at least once: handle
    /// this idempotently.
    fn on_timer(_ctx: &Context, _key: &str) -> Result<Reply> {
        Ok(None)
    }
}

/// Exports a type implementing [`App`] as the component's `handle`. Use it once per app, at
/// the crate root:
///
/// ```ignore
/// minihost_sdk::export_app!(MyApp);
/// ```
#[macro_export]
macro_rules! export_app {
    ($app:ty) => {
        const _: () = {
            struct __MinihostExport;

            impl $crate::bindings::Guest for __MinihostExport {
                fn handle(
                    ctx: $crate::Context,
                    event: $crate::Event,
                ) -> ::core::result::Result<::core::option::Option<$crate::Content>, $crate::Error>
                {
                    $crate::__private::handle::<$app>(ctx, event)
                }
            }

            $crate::bindings::__export_miniapp!(__MinihostExport);
        };
    };
}

impl Content {
    /// Plain text content.
    ///
    /// ```
    /// # use minihost_sdk::Content;
    /// assert_eq!(Content::text("hi"), Content::Text("hi".to_string()));
    /// ```
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text(text.into())
    }

    /// The text, if this is text content.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(t) => Some(t),
            Content::Card(_) => None,
        }
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content::text(text)
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content::Text(text)
    }
}

impl From<Card> for Content {
    fn from(card: Card) -> Content {
        Content::Card(card)
    }
}

impl Error {
    /// An `invalid` error: the input was wrong, and `why` tells the user how.
    ///
    /// ```
    /// # use minihost_sdk::Error;
    /// assert_eq!(Error::invalid("say what?"), Error::Invalid("say what?".into()));
    /// ```
    pub fn invalid(why: impl Into<String>) -> Error {
        Error::Invalid(why.into())
    }

    /// An `unavailable` error: something the app needs is down.
    pub fn unavailable(what: impl Into<String>) -> Error {
        Error::Unavailable(what.into())
    }

    /// Whether the user did not grant the scope this call needed.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied(_))
    }
}

impl Action {
    /// The value the user typed in the input block `id`, if the card had one.
    pub fn input(&self, id: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.value.as_str())
    }
}

/// Sending and editing messages (scope `messages.send`).
pub mod messaging {
    use crate::bindings::minihost::app::messaging as wit;
    use crate::{Content, Context, Result};

    /// Sends `content` as the app to `conversation`; returns the new message id.
    pub fn send(conversation: &str, content: &Content) -> Result<String> {
        wit::send(conversation, content)
    }

    /// Sends `content` to the conversation of the current event.
    pub fn reply(ctx: &Context, content: &Content) -> Result<String> {
        wit::send(&ctx.conversation, content)
    }

    /// Replaces the content of a message this app sent earlier.
    pub fn update(message: &str, content: &Content) -> Result<()> {
        wit::update(message, content)
    }

    /// How many more messages the app may send to `conversation` right now.
    pub fn budget(conversation: &str) -> Result<u32> {
        wit::budget(conversation)
    }
}

/// Reading profiles (scope `profile.read`).
pub mod profile {
    use crate::bindings::minihost::app::profile as wit;
    pub use crate::bindings::minihost::app::profile::Profile;
    use crate::{Context, Result};

    /// The profile of `user` (the invoking user, or a member who granted it too).
    pub fn get(user: &str) -> Result<Profile> {
        wit::get(user)
    }

    /// The profile of the user who caused the current event.
    pub fn me(ctx: &Context) -> Result<Profile> {
        wit::get(&ctx.user)
    }
}

/// Money: asking the user to pay and refunding them (scope `payments.request`), paying the
/// user out of the app's merchant account (scope `payments.payout`).
pub mod payments {
    use crate::Result;
    use crate::bindings::minihost::app::payments as wit;
    pub use crate::bindings::minihost::app::payments::{Order, Payout};

    /// Asks the invoking user to confirm `order`; returns the request id. The app learns the
    /// outcome from a later `payment` event.
    pub fn request(order: &Order) -> Result<String> {
        wit::request(order)
    }

    /// Gives `amount` minor units of the paid request `request` back to whoever paid it;
    /// returns the refund id. The same key with the same arguments is the same refund.
    pub fn refund(request: &str, amount: u64, idempotency_key: &str) -> Result<String> {
        wit::refund(request, amount, idempotency_key)
    }

    /// Pays the user of the current event `payout` from the app's merchant account; returns
    /// the payout id. The same key with the same arguments is the same payout.
    pub fn pay_user(payout: &Payout) -> Result<String> {
        wit::pay_user(payout)
    }
}

/// Waking the app later (no scope): a `timer` event ([`App::on_timer`]) in this conversation,
/// for this user.
pub mod timers {
    use crate::Result;
    use crate::bindings::minihost::app::timers as wit;

    /// A `timer(key)` event `after_seconds` from now (1 s to 7 days); setting a pending key
    /// again moves it.
    pub fn set(key: &str, after_seconds: u32) -> Result<()> {
        wit::set(key, after_seconds)
    }

    /// Cancels the pending timer `key`; whether there was one.
    pub fn cancel(key: &str) -> Result<bool> {
        wit::cancel(key)
    }
}

/// Per-app key-value storage (scope `storage`).
pub mod storage {
    use crate::Result;
    use crate::bindings::minihost::app::storage as wit;
    pub use crate::bindings::minihost::app::storage::Bucket;

    /// The value under `key`.
    pub fn get(bucket: Bucket, key: &str) -> Result<Option<Vec<u8>>> {
        wit::get(bucket, key)
    }

    /// The value under `key` as UTF-8 text (invalid UTF-8 is replaced).
    pub fn get_string(bucket: Bucket, key: &str) -> Result<Option<String>> {
        Ok(wit::get(bucket, key)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores `value` under `key`.
    pub fn set(bucket: Bucket, key: &str, value: impl AsRef<[u8]>) -> Result<()> {
        wit::set(bucket, key, value.as_ref())
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(bucket: Bucket, key: &str) -> Result<bool> {
        wit::delete(bucket, key)
    }

    /// The keys starting with `prefix`, sorted.
    pub fn keys(bucket: Bucket, prefix: &str) -> Result<Vec<String>> {
        wit::keys(bucket, prefix)
    }

    /// Stores `value` under `key` only if the key now holds `expected` (`None`: absent);
    /// whether it did. See [`update`] for the loop around it.
    pub fn compare_and_set(
        bucket: Bucket,
        key: &str,
        expected: Option<&[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<bool> {
        wit::compare_and_set(bucket, key, expected, value.as_ref())
    }

    /// Changes the value under `key` without losing a concurrent event's change: reads it,
    /// asks `change` for the new value (`None`: leave it as it is), and writes it only if
    /// nobody wrote in between, else reads again. Returns what `change` last returned beside
    /// the value, after at most `attempts` tries (`quota-exceeded` if every one lost a race).
    pub fn update<T>(
        bucket: Bucket,
        key: &str,
        attempts: u32,
        mut change: impl FnMut(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T)>,
    ) -> Result<T> {
        for _ in 0..attempts {
            let current = wit::get(bucket, key)?;
            let (next, out) = change(current.as_deref())?;
            let Some(next) = next else { return Ok(out) };
            if wit::compare_and_set(bucket, key, current.as_deref(), &next)? {
                return Ok(out);
            }
        }
        Err(crate::Error::QuotaExceeded)
    }
}

/// Lines for the developer's invocation log (no scope needed). Bounded: extra lines are
/// dropped, never an error.
pub mod log {
    use crate::bindings::minihost::app::log as wit;
    pub use crate::bindings::minihost::app::log::Level;

    /// Writes a line at `level`.
    pub fn write(level: Level, message: &str) {
        wit::write(level, message)
    }

    /// Writes a debug line.
    pub fn debug(message: &str) {
        wit::write(Level::Debug, message)
    }

    /// Writes an info line.
    pub fn info(message: &str) {
        wit::write(Level::Info, message)
    }

    /// Writes a warning.
    pub fn warn(message: &str) {
        wit::write(Level::Warn, message)
    }

    /// Writes an error line.
    pub fn error(message: &str) {
        wit::write(Level::Error, message)
    }
}

/// Linking the user to the app's own backend (scope `auth.login`).
pub mod auth {
    use crate::Result;
    use crate::bindings::minihost::app::auth as wit;

    /// A one-time code (valid 5 minutes) the app's backend exchanges for an access token.
    /// `code_challenge` is the backend's PKCE S256 challenge: BASE64URL(SHA-256(verifier)),
    /// 43 characters; the backend presents the verifier when it exchanges the code.
    pub fn login_code(code_challenge: &str) -> Result<String> {
        wit::login_code(code_challenge)
    }
}
