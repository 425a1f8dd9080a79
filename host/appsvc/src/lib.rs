//! What a mini-app may do, whichever way it asks: from inside its sandbox (the capability
//! crates) or from its backend (the Open API). Every operation re-reads the user's CURRENT grant,
//! so a revocation applies to the very next call; sends are bounded by token buckets (replies to
//! a user's own events per user, unsolicited sends per conversation); storage by per-owner
//! quotas; timers by delay and count; and every use of a user's data (and every payout to them),
//! or refused attempt at one, is written to that user's privacy record after the fact. Both
//! entry points share this one implementation; [`AppLimits`] holds every limit.

mod error;
mod messaging;
mod payments;
mod payouts;
mod profile;
mod storage;
mod timers;

pub use error::AppError;
pub use payments::{PaymentAsk, PaymentView, RefundAsk};
pub use payouts::PayoutAsk;
pub use profile::Profile;
pub use storage::Bucket;

use minihost_broker::{AppId, PlatformSecret};
use minihost_core::{ConversationId, UserId};
use minihost_hub::Fanout;
use minihost_store::Store;
use std::sync::Arc;

/// Platform limits on what apps may do. Operators set them through the server's
/// `NodeOptions::app_limits`; each field says its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppLimits {
    /// Replies an app may send in a burst to one user's own events (commands, button presses,
    /// opening the app) in one conversation. Default 20.
    pub reply_burst: i64,
    /// Replies per minute that burst refills at, per user and conversation. Default 60.
    pub replies_per_minute: i64,
    /// Unsolicited messages (from timers, payment events, the app's backend) an app may send
    /// to one conversation in a burst. Default 20.
    pub unsolicited_burst: i64,
    /// Unsolicited messages per minute that burst refills at, per conversation. Default 60.
    pub unsolicited_per_minute: i64,
    /// Keys per storage owner (the app's shared bucket, or one user's bucket). Default 1000.
    pub storage_keys: i64,
    /// Bytes (keys + values) per storage owner. Default 1 MiB.
    pub storage_bytes: i64,
    /// Longest storage key, in bytes. Default 256.
    pub max_key_bytes: usize,
    /// Largest storage value, in bytes. Default 64 KiB.
    pub max_value_bytes: usize,
    /// Longest delay of an app timer, in seconds. Default seven days (604,800).
    pub max_timer_delay_secs: u32,
    /// Pending timers an app may have at once. Default 1000.
    pub max_pending_timers: i64,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            reply_burst: 20,
            replies_per_minute: 60,
            unsolicited_burst: 20,
            unsolicited_per_minute: 60,
            storage_keys: 1000,
            storage_bytes: 1024 * 1024,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_timer_delay_secs: 7 * 24 * 60 * 60,
            max_pending_timers: 1000,
        }
    }
}

/// What set the app acting: a user's own event, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A user's command, button press or opening of the app: messages answer that user and
    /// are taken from the reply budget of (app, conversation, user).
    User,
    /// A timer, a payment event, or the app's backend: messages are taken from the unsolicited
    /// budget of (app, conversation).
    Unsolicited,
}

/// Who is acting: an app, on behalf of one user, possibly within one conversation.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The app's id.
    pub app: String,
    /// The app's name as registered (messages add "(unreviewed)" where it is not reviewed).
    pub app_name: String,
    /// The user on whose behalf it acts (never shown to the app).
    pub user: UserId,
    /// The same user as the app sees them.
    pub app_user_id: String,
    /// The conversation of the invocation (`None` for a backend call).
    pub conversation: Option<ConversationId>,
    /// What set the app acting (which send budget its messages take from).
    pub trigger: Trigger,
    /// Whether the version installed in [`Self::conversation`] was reviewed (not a trial),
    /// when the caller knows it from the install it runs: saves a lookup per message.
    pub reviewed_here: Option<bool>,
}

/// The shared implementation. Cheap to clone.
#[derive(Clone)]
pub struct AppServices {
    pub(crate) store: Store,
    pub(crate) fanout: Arc<dyn Fanout>,
    pub(crate) secret: Arc<PlatformSecret>,
    pub(crate) limits: AppLimits,
    /// (app, app-scoped id) pairs already in the store's map: remembering is a read per
    /// invocation otherwise.
    pub(crate) remembered: Arc<std::sync::Mutex<std::collections::HashSet<(String, String)>>>,
}

impl AppServices {
    /// Loads (or creates, on first start) the platform secret that keys app-scoped ids.
    pub async fn new(
        store: Store,
        fanout: Arc<dyn Fanout>,
        limits: AppLimits,
    ) -> Result<Self, AppError> {
        let stored = store
            .platform_secret("app-user-ids", || {
                PlatformSecret::generate().to_storage_string()
            })
            .await?;
        let secret = PlatformSecret::from_storage_string(&stored)
            .map_err(|_| AppError::Unavailable("the platform secret is corrupt".into()))?;
        Ok(AppServices {
            store,
            fanout,
            secret: Arc::new(secret),
            limits,
            remembered: Arc::default(),
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits in force.
    pub fn limits(&self) -> &AppLimits {
        &self.limits
    }

    /// `user` as `app` sees them: stable for (app, user), unlinkable across apps. Remembered so
    /// that the app's backend can name the user later.
    pub async fn app_user_id(&self, app: &str, user: &UserId) -> Result<String, AppError> {
        let app_id = AppId::parse(app).map_err(|e| AppError::Invalid(e.to_string()))?;
        let id = self.secret.app_user_id(&app_id, user).as_str().to_owned();
        let key = (app.to_owned(), id.clone());
        if self.remembered.lock().is_ok_and(|r| r.contains(&key)) {
            return Ok(id);
        }
        self.store.remember_app_user(app, &id, user).await?;
        if let Ok(mut r) = self.remembered.lock() {
            if r.len() >= 100_000 {
                r.clear();
            }
            r.insert(key);
        }
        Ok(id)
    }

    /// The user behind an app-scoped id this app has seen.
    pub async fn user_for(&self, app: &str, app_user_id: &str) -> Result<Option<UserId>, AppError> {
        Ok(self.store.user_for_app_user(app, app_user_id).await?)
    }

    /// The scopes `user` currently grants `app` (empty when never asked or revoked).
    pub async fn granted(&self, user: &UserId, app: &str) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .grant(user, app)
            .await?
            .map(|g| g.scopes)
            .unwrap_or_default())
    }

    /// Fails with `PermissionDenied(scope)` unless the actor's user grants `scope` right now
    /// (for capabilities whose work happens outside this crate). A refusal is written to the
    /// user's privacy record.
    pub async fn require_scope(&self, actor: &Actor, scope: &str) -> Result<(), AppError> {
        let checked = self.require(actor, scope).await;
        self.noted(&actor.user, actor, scope, checked).await
    }

    /// Adds a line to the actor's user's privacy record.
    pub async fn note_privacy(
        &self,
        actor: &Actor,
        capability: &str,
        outcome: &str,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .record_privacy(&actor.user, &actor.app, capability, outcome)
            .await?)
    }

    /// Writes what came of the actor's use of `scope` to `whose` privacy record: `ok` after a
    /// success, or the refusal (`denied`, `quota_exceeded`, `budget_exceeded`); other failures
    /// (invalid arguments, not found, unavailable) are not a use of the user's data and are
    /// not written. Returns `result`.
    pub(crate) async fn noted<T>(
        &self,
        whose: &UserId,
        actor: &Actor,
        scope: &str,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let outcome = match &result {
            Ok(_) => Some("ok"),
            Err(e) => refusal(e),
        };
        if let Some(outcome) = outcome {
            self.store
                .record_privacy(whose, &actor.app, scope, outcome)
                .await?;
        }
        result
    }

    /// Fails with `PermissionDenied(scope)` unless the actor's user grants it right now.
    pub(crate) async fn require(&self, actor: &Actor, scope: &str) -> Result<(), AppError> {
        if self
            .granted(&actor.user, &actor.app)
            .await?
            .iter()
            .any(|s| s == scope)
        {
            Ok(())
        } else {
            Err(AppError::PermissionDenied(scope.to_owned()))
        }
    }
}

/// The privacy record's word for a refusal, if `e` is one.
pub(crate) fn refusal(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::PermissionDenied(_) => Some("denied"),
        AppError::QuotaExceeded(_) => Some("quota_exceeded"),
        AppError::BudgetExceeded(_) => Some("budget_exceeded"),
        _ => None,
    }
}
