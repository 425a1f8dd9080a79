//! The HTTP and WebSocket API of Minihost. Each module owns one resource and exposes
//! `router()`; [`router`] merges them. Handlers are thin: they authenticate, validate through
//! `minihost-core`, call the store, and publish live events through the hub. This crate never
//! touches wasmtime.

mod accounts;
mod apps;
mod auth;
pub mod cache;
mod conversations;
mod developer;
mod directory;
mod error;
mod extract;
mod grants;
pub mod health;
pub mod limits;
mod messages;
mod metrics;
mod oauth;
mod open;
mod openapi;
mod payments;
pub mod pin_memory;
pub mod platform;
mod registry;
mod review;
mod schemas;
mod sessions;
mod state;
pub mod throttle;
mod webhooks;
mod ws;

pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use health::Readiness;
pub use limits::{ConnectionLimits, ThrottleLimits};
pub use openapi::document as openapi_document;
pub use platform::{ActionInput, AppPlatform, BoxFuture, Finding, OPEN_PANEL, Sideloaded};
pub use state::{ApiConfig, AppParts, AppState, publish_hook};
pub use throttle::Guards;

use axum::Router;
use axum::extract::DefaultBodyLimit;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole API: client routes under `/api/v1`, health and the OpenAPI document. Every
/// request is bounded in size ([`MAX_BODY_BYTES`] unless its route says otherwise) and in time
/// ([`ConnectionLimits::request_timeout`], its body included).
pub fn router(state: AppState) -> Router {
    let timeout = state.config.connections.request_timeout;
    routes()
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            error::request_timeout,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Every route of the API, without state, fallbacks or layers: what [`router`] serves. Its
/// `Debug` form lists the paths (the tests compare them with the OpenAPI document).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(accounts::router())
        .merge(sessions::router())
        .merge(conversations::router())
        .merge(messages::router())
        .merge(apps::router())
        .merge(grants::router())
        .merge(payments::router())
        .merge(webhooks::router())
        .merge(developer::router())
        .merge(oauth::router())
        .merge(open::router())
        .merge(registry::router())
        .merge(review::router())
        .merge(directory::router())
        .merge(ws::router())
        .merge(openapi::router())
}
