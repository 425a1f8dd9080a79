//! What a mini-app may do, whichever way it asks: from inside its sandbox (the capability
//! crates) or from its backend (the Open API). Every operation re-reads the user's CURRENT grant,
//! so a revocation applies to the very next call; sends are bounded by a per-app,
//! per-conversation token bucket; storage by per-owner quotas; timers by delay and count; and
//! every read of a user's data (and every payout to them) is written to that user's privacy
//! record. Both entry points share this one implementation.

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

/// Platform limits on what apps may do.
#[derive(Debug, Clone, Copy)]
pub struct AppLimits {
    /// Messages an app may send to one conversation in a burst.
    pub send_burst: i64,
    /// Messages per minute the burst refills at.
    pub sends_per_minute: i64,
    /// Keys per storage owner (the app's shared bucket, or one user's bucket).
    pub storage_keys: i64,
    /// Bytes (keys + values) per storage owner.
    pub storage_bytes: i64,
    /// Longest storage key, in bytes.
    pub max_key_bytes: usize,
    /// Largest storage value, in bytes.
    pub max_value_bytes: usize,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            send_burst: 20,
            sends_per_minute: 60,
            storage_keys: 1000,
            storage_bytes: 1024 * 1024,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
        }
    }
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
    pub fn limits(&self) -> AppLimits {
        self.limits
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
    /// (for capabilities whose work happens outside this crate).
    pub async fn require_scope(&self, actor: &Actor, scope: &str) -> Result<(), AppError> {
        self.require(actor, scope).await
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
