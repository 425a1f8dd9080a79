//! A user's own sessions: list them, revoke one, and change the password (which revokes every
//! other session). A revoked session's token stops working at once on this node (its cache entry
//! is dropped) and its WebSockets close with code 4001 ([`crate::ws::CLOSE_REVOKED`]).

use crate::auth::{AuthSession, ClientAddr, hash_password, verify_password};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use minihost_core::Password;
use minihost_hub::Revocation;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/sessions", get(list))
        .route("/api/v1/me/sessions/{session}", delete(revoke))
        .route("/api/v1/me/password", post(change_password))
}

/// One live session of the user (never its token).
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionItem {
    /// The session's public id.
    id: String,
    /// When it was signed in (RFC 3339).
    created_at: String,
    /// When it expires (RFC 3339).
    expires_at: String,
    /// Whether it is the session of this request.
    current: bool,
}

/// The user's live sessions.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionList {
    /// Newest first.
    sessions: Vec<SessionItem>,
}

#[utoipa::path(get, path = "/api/v1/me/sessions", operation_id = "list_sessions",
    security(("session" = [])),
    responses((status = 200, body = SessionList, description = "The user's live sessions, newest first; `current` marks this request's"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn list(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<Json<SessionList>, ApiError> {
    let now = minihost_core::now_millis();
    let sessions = state
        .store
        .sessions_of(&session.user.id, now)
        .await?
        .into_iter()
        .map(|s| SessionItem {
            current: s.id == session.id,
            created_at: minihost_store::rfc3339(s.created_at),
            expires_at: minihost_store::rfc3339(s.expires_at),
            id: s.id,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

#[utoipa::path(delete, path = "/api/v1/me/sessions/{session}", operation_id = "revoke_session",
    params(crate::openapi::params::Session), security(("session" = [])),
    responses((status = 204, description = "Revoked: its token stops working and its WebSockets close with code 4001"),
              (status = 404, description = "No such live session of this user"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    session: AuthSession,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.revoke_session_id(&session.user.id, &id).await? {
        return Err(ApiError::NotFound("session"));
    }
    state.revoked(&session.user.id, Revocation::Session { id });
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/me/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePassword {
    /// The password now.
    current_password: String,
    /// The new one (8 to 256 bytes).
    new_password: String,
}

#[utoipa::path(post, path = "/api/v1/me/password", operation_id = "change_password",
    security(("session" = [])),
    request_body(content = ChangePassword, example = json!({"current_password": "correct horse battery", "new_password": "staple of another horse"})),
    responses((status = 204, description = "Changed; every other session of the user is revoked (their WebSockets close with code 4001), this one stays"),
              (status = 403, description = "The current password is wrong (`forbidden`)"),
              (status = 422, description = "The new password breaks a rule"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session,
              crate::openapi::errors::Throttled, crate::openapi::errors::Server))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    session: AuthSession,
    addr: ClientAddr,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let new = Password::parse(&body.new_password).map_err(|mut e| {
        e.field = "new_password".into();
        ApiError::Invalid(e)
    })?;
    check_password(&state, &session.user, addr, body.current_password).await?;
    let hash = hash_password(&state, new.expose().to_owned()).await?;
    state
        .store
        .set_password_hash(&session.user.id, &hash)
        .await?;
    state
        .store
        .revoke_sessions_of(&session.user.id, Some(&session.id))
        .await?;
    state.revoked(
        &session.user.id,
        Revocation::AllSessions {
            keep: Some(session.id),
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a signed-in user's password again (before a sensitive change), throttled per user and
/// client address like PIN attempts; a wrong one is `403 forbidden`.
pub(crate) async fn check_password(
    state: &AppState,
    user: &minihost_store::User,
    addr: ClientAddr,
    password: String,
) -> Result<(), ApiError> {
    let guards = &state.guards;
    let throttles = [&guards.secret_address, &guards.secret_user];
    let admitted = guards
        .admit(
            addr.0,
            &[
                (throttles[0], &addr.key()),
                (throttles[1], user.id.as_str()),
            ],
        )
        .await?;
    let checked = async {
        let stored = state
            .store
            .user_by_username(user.username.as_str())
            .await?
            .map(|u| u.password_hash);
        verify_password(state, password, stored).await
    }
    .await;
    if !admitted.settle(&throttles, checked).await? {
        return Err(ApiError::Forbidden("the password is wrong".into()));
    }
    Ok(())
}
