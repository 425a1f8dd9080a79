//! App registration for developers: `POST /api/v1/apps` registers an app and returns its OAuth
//! client id and secret (the secret is shown once and stored hashed);
//! `POST /api/v1/apps/{app}/secret` replaces the secret (the old one stops working at once).

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use minihost_broker::AppId;
use minihost_broker::service::BrokerError;
use minihost_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest app display name, in characters.
const MAX_APP_NAME_CHARS: usize = 60;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/apps", post(register))
        .route("/api/v1/apps/{app}/secret", post(rotate_secret))
}

fn broker_error(e: BrokerError) -> ApiError {
    match e {
        BrokerError::Store(StoreError::Conflict("app credentials")) => ApiError::Conflict(
            "the app already has credentials; rotate its secret with POST /api/v1/apps/{app}/secret"
                .into(),
        ),
        BrokerError::Store(StoreError::NotFound) => ApiError::NotFound("app credentials"),
        BrokerError::Store(e) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Body of `POST /api/v1/apps`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewApp {
    /// The app id (the `id` of its `miniapp.toml`): 3-40 lowercase letters, digits and `-`.
    id: String,
    /// Display name, 1-60 characters.
    name: String,
}

/// An app's OAuth credentials. `client_secret` is shown here only, once.
#[derive(Serialize, ToSchema)]
pub(crate) struct Credentials {
    /// The app id.
    id: String,
    /// Public client id.
    client_id: String,
    /// The client secret: store it now, it is never shown again.
    client_secret: String,
}

fn secret_reply(status: StatusCode, body: Credentials) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[utoipa::path(post, path = "/api/v1/apps", operation_id = "register_app",
    security(("session" = [])),
    request_body(content = NewApp, example = json!({"id": "shop", "name": "Shop"})),
    responses((status = 201, description = "Registered; the secret is shown once", body = Credentials),
              (status = 403, description = "Only developers and admins register apps"),
              (status = 409, description = "The id belongs to another developer, or the app has credentials already"),
              (status = 422, description = "Bad id or name"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn register(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiJson(body): ApiJson<NewApp>,
) -> Result<Response, ApiError> {
    if !me.role.can_develop() {
        return Err(ApiError::Forbidden(
            "only developers register apps; ask an admin for the developer role".into(),
        ));
    }
    let id = AppId::parse(&body.id).map_err(|e| ApiError::invalid("id", e.reason))?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_APP_NAME_CHARS {
        return Err(ApiError::invalid(
            "name",
            format!("must be 1 to {MAX_APP_NAME_CHARS} characters"),
        ));
    }
    state
        .store
        .register_app(id.as_str(), name, &me.id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ApiError::Conflict("the app id belongs to another developer".into())
            }
            other => other.into(),
        })?;
    let creds = state
        .broker
        .register_client(&id)
        .await
        .map_err(broker_error)?;
    Ok(secret_reply(
        StatusCode::CREATED,
        Credentials {
            id: id.to_string(),
            client_id: creds.client_id.to_string(),
            client_secret: creds.secret.expose().to_owned(),
        },
    ))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/secret", operation_id = "rotate_secret",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "A new secret, shown once; the old one no longer works", body = Credentials),
              (status = 404, description = "No such app of yours, or it has no credentials"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.app(&app).await? {
        Some(record) if record.developer == me.id => {}
        _ => return Err(ApiError::NotFound("app")),
    }
    let id = AppId::parse(&app).map_err(|_| ApiError::NotFound("app"))?;
    let creds = state
        .broker
        .rotate_client_secret(&id)
        .await
        .map_err(broker_error)?;
    Ok(secret_reply(
        StatusCode::OK,
        Credentials {
            id: id.to_string(),
            client_id: creds.client_id.to_string(),
            client_secret: creds.secret.expose().to_owned(),
        },
    ))
}
