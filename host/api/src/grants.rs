//! A user's control over mini-apps: the consent requests waiting for an answer, the grants they
//! gave (list, answer/change, revoke one scope or the whole app), and their privacy record (which
//! app used what of theirs, or tried to and was refused, when). Revocation applies to the app's
//! very next call.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use minihost_store::{GrantRecord, PrivacyEntry};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/consent-requests", get(consent_requests))
        .route("/api/v1/me/grants", get(list))
        .route(
            "/api/v1/me/grants/{app}",
            axum::routing::put(answer).delete(revoke_app),
        )
        .route(
            "/api/v1/me/grants/{app}/scopes/{scope}",
            delete(revoke_scope),
        )
        .route("/api/v1/me/privacy", get(privacy))
}

#[utoipa::path(get, path = "/api/v1/me/consent-requests", operation_id = "consent_requests",
    security(("session" = [])),
    responses((status = 200, description = "Requests waiting for an answer: app, version, conversation, and each scope with its reason", body = Vec<crate::openapi::AnyObject>),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn consent_requests(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(match state.platform.as_ref() {
        Some(p) => p.consent_requests(&me).await?,
        None => serde_json::json!([]),
    }))
}

#[utoipa::path(get, path = "/api/v1/me/grants", operation_id = "list_grants", security(("session" = [])),
    responses((status = 200, description = "The grants the user gave, one per app", body = Vec<crate::openapi::AnyObject>), crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<GrantRecord>>, ApiError> {
    Ok(Json(state.store.grants_of(&me.id).await?))
}

/// Body of `PUT /api/v1/me/grants/{app}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    /// The scopes granted (any subset of what the app declares; empty refuses all).
    scopes: Vec<String>,
}

#[utoipa::path(put, path = "/api/v1/me/grants/{app}", operation_id = "answer_consent",
    params(crate::openapi::params::App), security(("session" = [])),
    request_body(content = Answer, example = json!({"scopes": ["messages.send"]})),
    responses((status = 200, description = "The grant as it is now", body = crate::openapi::AnyObject), (status = 404, description = "Nothing to answer for this app"),
              (status = 422, description = "A scope the app does not declare"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn answer(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<Answer>,
) -> Result<Json<GrantRecord>, ApiError> {
    let platform = state.platform.as_ref().ok_or(ApiError::Unavailable(
        "mini-apps are not enabled on this node",
    ))?;
    Ok(Json(platform.answer_consent(&me, &app, body.scopes).await?))
}

#[utoipa::path(delete, path = "/api/v1/me/grants/{app}", operation_id = "revoke_app",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 204, description = "Everything revoked"), (status = 404, description = "No grant"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn revoke_app(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    // An empty grant (rather than none) records that the user was asked and said no.
    let grant = state
        .store
        .grant(&me.id, &app)
        .await?
        .ok_or(ApiError::NotFound("grant"))?;
    state
        .store
        .set_grant(&me.id, &app, &[], &grant.version)
        .await?;
    grant_changed(&state, &me.id, app);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/me/grants/{app}/scopes/{scope}", operation_id = "revoke_scope",
    params(crate::openapi::params::App, crate::openapi::params::Scope), security(("session" = [])),
    responses((status = 200, description = "The grant as it is now", body = crate::openapi::AnyObject), (status = 404, description = "Not granted"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn revoke_scope(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, scope)): Path<(String, String)>,
) -> Result<Json<GrantRecord>, ApiError> {
    let grant = state
        .store
        .grant(&me.id, &app)
        .await?
        .filter(|g| g.scopes.contains(&scope))
        .ok_or(ApiError::NotFound("grant of that scope"))?;
    let rest: Vec<String> = grant.scopes.into_iter().filter(|s| *s != scope).collect();
    let now = state
        .store
        .set_grant(&me.id, &app, &rest, &grant.version)
        .await?;
    grant_changed(&state, &me.id, app);
    Ok(Json(now))
}

/// Tells the other nodes that a grant changed (this node's store forgot it already).
fn grant_changed(state: &AppState, user: &minihost_core::UserId, app: String) {
    state.fanout.invalidate(minihost_hub::Invalidation::Grant {
        user: user.clone(),
        app,
    });
}

/// Query of the privacy record.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivacyParams {
    /// How many entries, newest first (1 to 500, default 100).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/me/privacy", operation_id = "privacy",
    params(PrivacyParams), security(("session" = [])),
    responses((status = 200, description = "Which app used what of the user's (`outcome` `ok`), or tried to and was refused (`denied`, `quota_exceeded`, `budget_exceeded`), newest first", body = Vec<crate::openapi::AnyObject>), (status = 422, description = "A limit out of range"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn privacy(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<PrivacyParams>,
) -> Result<Json<Vec<PrivacyEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 500 {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    Ok(Json(state.store.privacy_log(&me.id, limit).await?))
}
