//! The path from a developer's build to users, in its first form: a developer submits a
//! version for review; a reviewer approves or rejects it with a reason; the owner of a group
//! installs the newest approved version. (Gradual release and rollback come with the registry.)

use crate::apps::Sideload;
use crate::auth::AuthUser;
use crate::conversations::member_conversation;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::platform::Sideloaded;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use minihost_store::VersionStatus;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/apps/{app}/versions",
            post(submit).layer(DefaultBodyLimit::max(crate::apps::MAX_SIDELOAD_BYTES)),
        )
        .route("/api/v1/review/queue", get(queue))
        .route("/api/v1/review/{app}/{version}", post(decide))
        .route("/api/v1/conversations/{id}/apps/{app}", put(install))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/versions", operation_id = "submit_version",
    params(crate::openapi::params::App), security(("session" = [])),
    request_body(content = Sideload, example = json!({"manifest": "id = \"echo\"\nname = \"Echo\"\nversion = \"0.1.0\"\ndescription = \"Replies to /echo TEXT with TEXT.\"\n\n[[commands]]\nname = \"echo\"\nhelp = \"/echo TEXT - repeats TEXT\"\n", "component": "AGFzbQ0AAQA... (the whole .wasm, base64)"})),
    responses((status = 201, description = "Submitted for review", body = crate::Sideloaded),
              (status = 403, description = "Not a developer"),
              (status = 409, description = "The app id belongs to another developer, or this version was submitted already"),
              (status = 422, description = "Manifest or component rejected, with findings, or the manifest's id is not `{app}`"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<Sideload>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let platform = state.platform()?;
    if !me.role.can_develop() {
        return Err(ApiError::Forbidden("only developers submit apps".into()));
    }
    let (manifest, component) = body.decode()?;
    let done = platform.submit(&me, manifest, component).await?;
    if done.app != app {
        return Err(ApiError::invalid(
            "manifest",
            format!("the manifest's id is {:?}, not {app:?}", done.app),
        ));
    }
    Ok((StatusCode::CREATED, Json(done)))
}

/// A version waiting for review.
#[derive(Serialize, ToSchema)]
pub(crate) struct QueueEntry {
    app: String,
    version: String,
}

#[utoipa::path(get, path = "/api/v1/review/queue", operation_id = "review_queue",
    security(("session" = [])),
    responses((status = 200, body = Vec<QueueEntry>), (status = 403, description = "Reviewers only"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn queue(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<QueueEntry>>, ApiError> {
    if !me.role.can_review() {
        return Err(ApiError::Forbidden("reviewers only".into()));
    }
    let list = state
        .store
        .versions_with_status(VersionStatus::Submitted)
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|(app, version)| QueueEntry { app, version })
            .collect(),
    ))
}

/// A reviewer's decision.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// `approve` or `reject`.
    decision: String,
    /// Why (required to reject; shown to the developer).
    #[serde(default)]
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/review/{app}/{version}", operation_id = "decide_review",
    params(crate::openapi::params::App, crate::openapi::params::Version), security(("session" = [])),
    request_body(content = Decision, example = json!({"decision": "reject", "reason": "The card has no text for screen readers"})),
    responses((status = 200, description = "`{app, version, status, reason}`", body = crate::openapi::AnyObject), (status = 403, description = "Reviewers only"),
              (status = 404, description = "No such version"),
              (status = 409, description = "Not waiting for review"),
              (status = 422, description = "Neither `approve` nor `reject`, or a rejection without a reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !me.role.can_review() {
        return Err(ApiError::Forbidden("reviewers only".into()));
    }
    let to = match body.decision.as_str() {
        "approve" => VersionStatus::Approved,
        "reject" if !body.reason.trim().is_empty() => VersionStatus::Rejected,
        "reject" => return Err(ApiError::invalid("reason", "a rejection needs a reason")),
        _ => {
            return Err(ApiError::invalid(
                "decision",
                "must be \"approve\" or \"reject\"",
            ));
        }
    };
    if state.store.version_meta(&app, &version).await?.is_none() {
        return Err(ApiError::NotFound("app version"));
    }
    if !state
        .store
        .set_version_status(&app, &version, VersionStatus::Submitted, to)
        .await?
    {
        return Err(ApiError::Conflict(
            "this version is not waiting for review".into(),
        ));
    }
    tracing::info!(%app, %version, reviewer = %me.username, decision = %body.decision, reason = %body.reason, "review decision");
    Ok(Json(serde_json::json!({
        "app": app, "version": version, "status": to.as_str(), "reason": body.reason
    })))
}

#[utoipa::path(put, path = "/api/v1/conversations/{id}/apps/{app}", operation_id = "install_app",
    params(crate::openapi::params::Conversation, crate::openapi::params::App), security(("session" = [])),
    responses((status = 201, description = "Installed (the newest approved version)", body = crate::Sideloaded),
              (status = 403, description = "Only the group's owner installs apps"),
              (status = 404, description = "No such conversation, or no approved version of the app"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn install(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, app)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let platform = state.platform()?;
    let conv = member_conversation(&state, &id, &me).await?;
    let may = match conv.kind {
        minihost_core::ConversationKind::Group => conv.owner.as_ref() == Some(&me.id),
        minihost_core::ConversationKind::Direct => true,
    };
    if !may {
        return Err(ApiError::Forbidden(
            "only the group's owner installs apps".into(),
        ));
    }
    let done = platform.install(&me, &conv, &app).await?;
    Ok((StatusCode::CREATED, Json(done)))
}
