//! An app developer's view of the app's webhooks: the delivery log (newest first, with
//! attempts, last status and error, and when the next attempt is due) and the signing secret,
//! which is made or replaced by `POST .../webhook-secret` and shown only in that answer.
//! Deliveries themselves are the server's (the outbox in `minihost-store`).

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use minihost_store::{WebhookDelivery, rfc3339};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/apps/{app}/webhooks", get(log))
        .route("/api/v1/apps/{app}/webhook-secret", post(rotate_secret))
}

/// Answers 404 unless `me` develops `app`.
async fn own_app(state: &AppState, me: &minihost_store::User, app: &str) -> Result<(), ApiError> {
    match state.store.app(app).await? {
        Some(a) if a.developer == me.id => Ok(()),
        _ => Err(ApiError::NotFound("app")),
    }
}

/// Query of `GET /api/v1/apps/{app}/webhooks`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    /// How many deliveries, newest first (1 to 200, default 50).
    limit: Option<u32>,
}

/// One webhook delivery as its developer reads it.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// The delivery (`wd_…`).
    id: String,
    /// The payment event it tells (`pe_…`; the body's `id`: receivers deduplicate on it).
    event: String,
    /// The order (`po_…`).
    order: String,
    /// Where it is POSTed.
    url: String,
    /// `pending` (not yet answered 2xx: retried with backoff) or `delivered`.
    state: &'static str,
    /// Attempts so far.
    attempts: i64,
    /// The HTTP status of the last attempt, if one came back.
    last_status: Option<i64>,
    /// Why the last attempt failed, if it did.
    last_error: Option<String>,
    /// When the next attempt is due (RFC 3339), while pending.
    next_attempt_at: Option<String>,
    /// When it was delivered (RFC 3339).
    delivered_at: Option<String>,
    /// When the event happened (RFC 3339).
    created_at: String,
    /// The JSON body, exactly as signed and sent.
    body: String,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(d: WebhookDelivery) -> Self {
        DeliveryView {
            state: if d.delivered_at_ms.is_some() {
                "delivered"
            } else {
                "pending"
            },
            next_attempt_at: d
                .delivered_at_ms
                .is_none()
                .then(|| rfc3339(d.next_attempt_at_ms)),
            delivered_at: d.delivered_at_ms.map(rfc3339),
            created_at: rfc3339(d.created_at_ms),
            id: d.id,
            event: d.event_id,
            order: d.order_id,
            url: d.url,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            body: d.body,
        }
    }
}

/// The answer of `GET /api/v1/apps/{app}/webhooks`.
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookLog {
    /// When the current signing secret was made (RFC 3339); `null` if it has none yet (the
    /// first delivery or `POST .../webhook-secret` makes one).
    secret_created_at: Option<String>,
    /// The newest deliveries first.
    deliveries: Vec<DeliveryView>,
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/webhooks", operation_id = "webhook_deliveries",
    params(crate::openapi::params::App, LogParams), security(("session" = [])),
    responses((status = 200, description = "The app's webhook deliveries, newest first, with attempts, last status and error, and the next attempt", body = WebhookLog),
              (status = 404, description = "No such app of yours"),
              (status = 422, description = "A limit out of range"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn log(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiQuery(q): ApiQuery<LogParams>,
) -> Result<Json<WebhookLog>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 200 {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
    own_app(&state, &me, &app).await?;
    let deliveries = state.store.webhook_deliveries(&app, limit).await?;
    Ok(Json(WebhookLog {
        secret_created_at: state
            .store
            .webhook_secret_created_at(&app)
            .await?
            .map(rfc3339),
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// The answer of `POST /api/v1/apps/{app}/webhook-secret`.
#[derive(Serialize, ToSchema)]
pub(crate) struct WebhookSecret {
    /// The signing secret (`whsec_` and 64 hex digits): the HMAC-SHA256 key of the
    /// `Minihost-Signature` header. Shown only here; keep it in the app's backend.
    secret: String,
    /// When it was made (RFC 3339).
    created_at: String,
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/webhook-secret", operation_id = "rotate_webhook_secret",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "A new signing secret, shown only in this answer: the app's first, or a replacement for the old one, which stops signing at once (deliveries sent from now on, retries included, are signed with the new one)", body = WebhookSecret),
              (status = 404, description = "No such app of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<WebhookSecret>, ApiError> {
    own_app(&state, &me, &app).await?;
    let secret = state.store.rotate_webhook_secret(&app).await?;
    let created_at = state
        .store
        .webhook_secret_created_at(&app)
        .await?
        .unwrap_or_else(minihost_core::now_millis);
    Ok(Json(WebhookSecret {
        secret,
        created_at: rfc3339(created_at),
    }))
}
