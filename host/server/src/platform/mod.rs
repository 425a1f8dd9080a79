//! The mini-app platform of a node: the [`AppPlatform`] the API calls. It turns messenger
//! happenings (a `/command`, a button press, an app opened) into events, asks for consent when
//! the user has not answered for this app version yet, runs the app's released (or, for its
//! developer, sideloaded) version in a fresh sandbox, posts the reply, and logs the invocation.
//! Payment events and webhooks (`payments.rs`, `webhooks.rs`) and app timers (`timers.rs`) are
//! dispatched from background loops; another prunes the invocation log and the privacy record
//! (`retention.rs`).

mod consent;
mod dispatch;
mod findings;
mod loader;
mod notice;
mod payments;
mod retention;
mod timers;
mod webhooks;

pub use consent::PendingConsent;
pub use retention::RetentionOptions;
pub use webhooks::{SIGNATURE_HEADER, WebhookOptions};

use consent::ConsentBook;
use loader::Loader;
use minihost_api::{ActionInput, ApiError, AppPlatform, BoxFuture, Sideloaded};
use minihost_appsvc::AppServices;
use minihost_core::{Message, Sender};
use minihost_hub::Fanout;
use minihost_runtime::bindings::{Action, InputValue};
use minihost_runtime::{Event, Runtime};
use minihost_store::{Conversation, Store, User};
use std::sync::Arc;

/// The platform. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    svc: AppServices,
    fanout: Arc<dyn Fanout>,
    loader: Loader,
    consent: ConsentBook,
    /// Wakes the payment-event dispatcher.
    payments_wake: Arc<tokio::sync::Notify>,
    /// The operator's webhook policy and retry timing.
    webhooks: WebhookOptions,
    /// Wakes the webhook sender.
    webhooks_wake: Arc<tokio::sync::Notify>,
    /// The node's metrics (invocations and capability calls).
    metrics: Arc<minihost_metrics::Metrics>,
}

impl Inner {
    fn loader_runtime(&self) -> &Runtime {
        self.loader.runtime()
    }
}

impl Platform {
    /// A platform running apps on `runtime`, with app operations through `svc`, sending
    /// webhooks under `webhooks` and pruning records under `retention`.
    pub fn new(
        store: Store,
        svc: AppServices,
        fanout: Arc<dyn Fanout>,
        runtime: Runtime,
        webhooks: WebhookOptions,
        retention: RetentionOptions,
        metrics: Arc<minihost_metrics::Metrics>,
    ) -> Self {
        let inner = Arc::new(Inner {
            loader: Loader::new(store.clone(), runtime, webhooks.clone(), fanout.clone()),
            store,
            svc,
            fanout,
            consent: ConsentBook::default(),
            payments_wake: Arc::new(tokio::sync::Notify::new()),
            webhooks,
            webhooks_wake: Arc::new(tokio::sync::Notify::new()),
            metrics,
        });
        payments::start(&inner);
        timers::start(&inner);
        webhooks::start(&inner);
        retention::start(&inner, retention);
        Platform { inner }
    }

    /// Drops what `what` makes stale in this node's platform (made here or on another node):
    /// a suspended app's waiting consent requests, what is remembered of an app's versions.
    pub fn invalidated(&self, what: &minihost_hub::Invalidation) {
        use minihost_hub::Invalidation;
        match what {
            Invalidation::AppSuspended { app } => {
                self.inner.store.forget_installs(None);
                let dropped = self.inner.consent.drop_app(app);
                if dropped > 0 {
                    tracing::info!(%app, dropped, "app suspended: consent requests dropped");
                }
                self.wake_payments();
            }
            Invalidation::AppChanged { app } => {
                self.inner.store.forget_installs(None);
                self.inner.loader.forget(Some(app));
            }
            Invalidation::Installs { conversation } => {
                self.inner.store.forget_installs(Some(conversation));
            }
            Invalidation::Grant { user, app } => self.inner.store.forget_grant(user, app),
            Invalidation::ConsentAnswered { user, app } => {
                self.inner.store.forget_grant(user, app);
                // Answered on another node: the events that waited here run here.
                let Some(waiting) = self.inner.consent.take(user, app) else {
                    return;
                };
                let this = self.clone();
                let user = user.clone();
                tokio::spawn(async move {
                    match this.inner.store.user_by_id(&user).await {
                        Ok(Some(user)) => {
                            for event in waiting.events {
                                this.spawn_event(user.clone(), waiting.install.clone(), event);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "waiting events not run"),
                    }
                });
            }
            Invalidation::Everything => {
                self.inner.store.forget_hot();
                self.inner.loader.forget(None);
            }
            Invalidation::Sessions { .. } | Invalidation::Member { .. } => {}
        }
    }

    /// Checks a manifest and component exactly as an upload is checked (for `minihost app
    /// build`).
    pub(crate) async fn check(
        &self,
        manifest: &str,
        component: &[u8],
    ) -> Result<
        (
            minihost_manifest::Manifest,
            Arc<minihost_runtime::LoadedApp>,
        ),
        ApiError,
    > {
        self.inner.loader.validate(manifest, component).await
    }

    /// The conversation of `app` in `user`'s panel (see [`AppPlatform::panel`]).
    async fn panel_conversation(
        &self,
        user: &User,
        app: &str,
        open: bool,
    ) -> Result<String, ApiError> {
        let store = &self.inner.store;
        let conversation = match store.panel_conversation(&user.id, app).await? {
            Some(c) => c,
            None => {
                let record = store
                    .app(app)
                    .await?
                    .ok_or(ApiError::NotFound("released app"))?;
                if store.release(app).await?.stable.is_none() {
                    return Err(ApiError::NotFound("released app"));
                }
                if store.suspension(app).await?.is_some() {
                    return Err(dispatch::suspended());
                }
                let conv = store.create_group(&user.id, &record.name, &[]).await?;
                self.inner.loader.install(user, &conv, app).await?;
                // The user's live sessions subscribe to it, as to any conversation they join.
                self.inner.fanout.publish(
                    minihost_hub::Topic::User(user.id.clone()),
                    minihost_hub::Event::Joined(conv.id.clone()),
                );
                if store.add_panel(&user.id, app, conv.id.as_str()).await? {
                    conv.id.as_str().to_owned()
                } else {
                    // A concurrent add won: use its conversation.
                    store
                        .panel_conversation(&user.id, app)
                        .await?
                        .ok_or(ApiError::NotFound("panel"))?
                }
            }
        };
        if open {
            let id = minihost_core::ConversationId::from_string(conversation.clone());
            match self.installed(user, &id, app).await? {
                Some(install) => self.spawn_event(user.clone(), install, Event::Opened),
                None if store.suspension(app).await?.is_some() => {
                    return Err(dispatch::suspended());
                }
                None => return Err(ApiError::NotFound("released app")),
            }
        }
        Ok(conversation)
    }

    /// The consent requests waiting for `user`'s answer (made on any node).
    pub async fn pending_for(
        &self,
        user: &minihost_core::UserId,
    ) -> Result<Vec<PendingConsent>, ApiError> {
        Ok(self
            .inner
            .store
            .consent_requests_of(user)
            .await?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect())
    }
}

/// Splits `/name args` into its name and argument text.
fn parse_command(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('/')?;
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    ok.then(|| (name.to_owned(), args.to_owned()))
}

/// The event of a button press on `card`.
pub(crate) fn action_event(card: &Message, action: ActionInput) -> Event {
    Event::Action(Action {
        message: card.id.to_string(),
        id: action.button,
        value: action.value,
        inputs: action
            .inputs
            .into_iter()
            .map(|(id, value)| InputValue { id, value })
            .collect(),
    })
}

impl AppPlatform for Platform {
    fn payments_changed(&self) {
        self.wake_payments();
    }

    fn message_posted(&self, author: &User, message: &Message) {
        let Some((name, args)) = message.content.as_text().and_then(parse_command) else {
            return;
        };
        let this = self.clone();
        let author = author.clone();
        let conversation = message.conversation.clone();
        tokio::spawn(async move {
            if let Err(e) = this.command(&author, &conversation, &name, &args).await {
                tracing::warn!(error = %e, command = %name, "command dispatch failed");
            }
        });
    }

    fn sideload<'a>(
        &'a self,
        developer: &'a User,
        conversation: &'a Conversation,
        manifest: String,
        component: Vec<u8>,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>> {
        Box::pin(async move {
            self.inner
                .loader
                .sideload(developer, conversation, manifest, component)
                .await
        })
    }

    fn submit<'a>(
        &'a self,
        developer: &'a User,
        app: &'a str,
        manifest: String,
        component: Vec<u8>,
        notes: String,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>> {
        Box::pin(async move {
            self.inner
                .loader
                .submit(developer, app, manifest, component, notes)
                .await
        })
    }

    fn install<'a>(
        &'a self,
        user: &'a User,
        conversation: &'a Conversation,
        app: &'a str,
    ) -> BoxFuture<'a, Result<Sideloaded, ApiError>> {
        Box::pin(async move { self.inner.loader.install(user, conversation, app).await })
    }

    fn action<'a>(
        &'a self,
        user: &'a User,
        card: &'a Message,
        action: ActionInput,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let Sender::App { id: app, .. } = &card.sender else {
                return Err(ApiError::invalid("message", "not a card from an app"));
            };
            let install = self
                .installed(user, &card.conversation, app)
                .await?
                .ok_or(ApiError::NotFound("app"))?;
            if action.value == minihost_api::OPEN_PANEL {
                // Brings the presser to the app in their own panel, and tells their clients.
                let conversation = self.panel_conversation(user, app, true).await?;
                let frame = serde_json::json!({
                    "type": "panel_opened", "app": app, "conversation": conversation,
                });
                self.inner.fanout.publish(
                    minihost_hub::Topic::User(user.id.clone()),
                    minihost_hub::Event::json(&frame),
                );
                return Ok(());
            }
            self.spawn_event(user.clone(), install, action_event(card, action));
            Ok(())
        })
    }

    fn open<'a>(
        &'a self,
        user: &'a User,
        conversation: &'a Conversation,
        app: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let install = self
                .installed(user, &conversation.id, app)
                .await?
                .ok_or(ApiError::NotFound("app"))?;
            self.spawn_event(user.clone(), install, Event::Opened);
            Ok(())
        })
    }

    fn answer_consent<'a>(
        &'a self,
        user: &'a User,
        app: &'a str,
        scopes: Vec<String>,
    ) -> BoxFuture<'a, Result<minihost_store::GrantRecord, ApiError>> {
        Box::pin(async move { self.answer(user, app, scopes).await })
    }

    fn consent_requests<'a>(
        &'a self,
        user: &'a User,
    ) -> BoxFuture<'a, Result<serde_json::Value, ApiError>> {
        Box::pin(async move {
            Ok(serde_json::to_value(self.pending_for(&user.id).await?).unwrap_or_default())
        })
    }

    fn panel<'a>(
        &'a self,
        user: &'a User,
        app: &'a str,
        open: bool,
    ) -> BoxFuture<'a, Result<String, ApiError>> {
        Box::pin(async move { self.panel_conversation(user, app, open).await })
    }

    fn app_suspended(&self, app: &str) {
        let dropped = self.inner.consent.drop_app(app);
        tracing::info!(%app, dropped, "app suspended: consent requests dropped");
        let store = self.inner.store.clone();
        let app = app.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.drop_consent_requests(&app).await {
                tracing::warn!(error = %e, %app, "stored consent requests not dropped");
            }
        });
        self.wake_payments();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_command;

    #[test]
    fn commands() {
        let p = |s| parse_command(s);
        assert_eq!(
            p("/echo hi there"),
            Some(("echo".into(), "hi there".into()))
        );
        assert_eq!(p("/poll"), Some(("poll".into(), String::new())));
        assert_eq!(
            p("/poll   Lunch? | a | b  "),
            Some(("poll".into(), "Lunch? | a | b".into()))
        );
        assert_eq!(p("echo hi"), None);
        assert_eq!(p("/"), None);
        assert_eq!(p("/Echo"), None);
        assert_eq!(p("/../etc"), None);
    }
}
