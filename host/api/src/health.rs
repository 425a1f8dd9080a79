//! `GET /healthz`: the process is up and the database answers (liveness). `GET /readyz`: the
//! node should get traffic: it is not draining, the database answers, and so does the broker
//! between nodes when there is one. [`Readiness`] holds the drain switch that also tells every
//! WebSocket session to close with [`crate::ws::CLOSE_RESTARTING`].

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::watch;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Whether the broker between nodes (NATS) is connected.
pub type BrokerProbe = Arc<dyn Fn() -> bool + Send + Sync>;

/// What `/readyz` asks besides the database, and the node's drain switch.
pub struct Readiness {
    broker: Option<BrokerProbe>,
    draining: watch::Sender<bool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(None)
    }
}

impl Readiness {
    /// Readiness of a node with `broker` between it and the others (`None`: a single node).
    pub fn new(broker: Option<BrokerProbe>) -> Self {
        Readiness {
            broker,
            draining: watch::channel(false).0,
        }
    }

    /// Starts draining: `/readyz` answers 503 from now on, and every WebSocket session closes
    /// with a reconnect code.
    pub fn drain(&self) {
        self.draining.send_replace(true);
    }

    /// Whether the node is one of several (events from other nodes may be missed, so sessions
    /// resync at their periodic check).
    pub fn clustered(&self) -> bool {
        self.broker.is_some()
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once the node starts draining.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.draining.subscribe();
        async move {
            let _ = rx.wait_for(|d| *d).await;
        }
    }
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz",
    responses((status = 200, description = "Healthy: `{\"status\": \"ok\"}`", body = crate::openapi::AnyObject),
              (status = 503, response = crate::openapi::errors::Unavailable)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer"))?;
    Ok(Json(json!({ "status": "ok" })))
}

#[utoipa::path(get, path = "/readyz", operation_id = "readyz",
    responses((status = 200, description = "Ready for traffic: `{\"status\": \"ready\", \"database\": \"ok\", \"nats\": \"ok\" | \"off\"}` (`off`: a single node)", body = crate::openapi::AnyObject),
              (status = 503, response = crate::openapi::errors::Unavailable)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.readiness.is_draining() {
        return Err(ApiError::Unavailable("the node is shutting down"));
    }
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer"))?;
    let nats = match &state.readiness.broker {
        None => "off",
        Some(connected) if connected() => "ok",
        Some(_) => return Err(ApiError::Unavailable("NATS is not connected")),
    };
    Ok(Json(
        json!({ "status": "ready", "database": "ok", "nats": nats }),
    ))
}
