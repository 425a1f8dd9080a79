//! What every handler shares: the store, the hub, the fan-out and the configuration.

use crate::limits::{ConnectionLimits, ThrottleLimits};
use crate::platform::AppPlatform;
use crate::throttle::Guards;
use minihost_appsvc::AppServices;
use minihost_broker::service::Broker;
use minihost_core::UserId;
use minihost_hub::{Event, Fanout, Invalidation, LocalHub, Revocation, Topic};
use minihost_store::Store;
use minihost_store::writer::CommitHook;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a sign-in session lasts.
    pub session_ttl: Duration,
    /// WebSocket read buffer per connection, in bytes (small: most connections are idle).
    pub ws_read_buffer: usize,
    /// Largest WebSocket message accepted from a client.
    pub ws_max_message: usize,
    /// Frames per second a WebSocket client may send, on average (a token bucket).
    pub ws_frames_per_second: u32,
    /// Frames a WebSocket client may send in a burst; beyond it frames are dropped with one
    /// `rate_limited` error frame.
    pub ws_frame_burst: u32,
    /// How often an open WebSocket checks in the database that its session is still live, to
    /// notice revocations this node did not make (another node, `minihost admin`); this node's
    /// own close the socket at once. Default 60 s.
    pub ws_session_check: Duration,
    /// Throttles on sign-in, sign-up and PIN attempts, and the cap on hashes at once.
    pub throttle: ThrottleLimits,
    /// Timeouts of connections and requests.
    pub connections: ConnectionLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            ws_read_buffer: 4 * 1024,
            ws_max_message: 64 * 1024,
            ws_frames_per_second: 20,
            ws_frame_burst: 60,
            ws_session_check: Duration::from_secs(60),
            throttle: ThrottleLimits::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// State shared by all handlers. Cheap to clone: one shared [`AppParts`] (axum clones the state
/// for every extractor and middleware of every request; cloning each part apart took a few
/// dozen atomic operations each time).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

impl From<AppParts> for AppState {
    fn from(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

/// What an [`AppState`] holds.
pub struct AppParts {
    /// The database.
    pub store: Store,
    /// This node's subscriptions.
    pub hub: Arc<LocalHub>,
    /// Where events are published (the local hub, or a broker for several nodes).
    pub fanout: Arc<dyn Fanout>,
    /// Tunables.
    pub config: Arc<ApiConfig>,
    /// Short-lived cache of sessions and memberships for the send path.
    pub cache: Arc<crate::cache::HotCache>,
    /// The mini-app platform, when this node runs apps.
    pub platform: Option<Arc<dyn AppPlatform>>,
    /// The token broker: the only issuer and verifier of tokens.
    pub broker: Arc<Broker>,
    /// What apps may do (shared by the sandbox and the Open API).
    pub app_services: AppServices,
    /// Throttles and hash slots (built from `config.throttle` by [`Guards::new`]).
    pub guards: Arc<Guards>,
    /// What `/readyz` checks, and the drain switch.
    pub readiness: Arc<crate::Readiness>,
    /// The node's metrics (`/metrics`).
    pub metrics: Arc<minihost_metrics::Metrics>,
}

/// The store's commit hook that publishes every committed message to its conversation's topic
/// (and counts the batch).
pub fn publish_hook(
    fanout: Arc<dyn Fanout>,
    metrics: Arc<minihost_metrics::Metrics>,
) -> CommitHook {
    Arc::new(move |messages| {
        metrics
            .messages_committed
            .inc_by(u64::try_from(messages.len()).unwrap_or(u64::MAX));
        // usize to f64: a batch is far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        metrics.commit_batch.observe(messages.len() as f64);
        for m in messages {
            fanout.publish(
                Topic::Conversation(m.conversation.clone()),
                Event::message(m.clone()),
            );
        }
    })
}

impl AppState {
    /// Tells every node's cache and connections of `user` that sessions ended or the account
    /// changed: cached sessions are dropped here at once and on other nodes when the
    /// invalidation reaches them, WebSockets close.
    pub fn revoked(&self, user: &UserId, what: Revocation) {
        self.cache.apply(&Invalidation::Sessions {
            user: user.clone(),
            what: what.clone(),
        });
        self.fanout.invalidate(Invalidation::Sessions {
            user: user.clone(),
            what: what.clone(),
        });
        self.fanout
            .publish(Topic::User(user.clone()), Event::Revoked(what));
    }

    /// The mini-app platform, or 503 on a node that runs no apps.
    pub(crate) fn platform(&self) -> Result<&Arc<dyn AppPlatform>, crate::ApiError> {
        self.platform.as_ref().ok_or(crate::ApiError::Unavailable(
            "mini-apps are not enabled on this node",
        ))
    }
}
