//! The registry, as a reviewer uses it: the queue, one version with its findings and what
//! changed against the released version, claiming it (one reviewer at a time), the decision
//! (a rejection needs a reason, stored and shown to the developer), the kill switch
//! (suspending an app everywhere, and lifting it), users' reports, and for admins the audit
//! log. Nobody reviews an app they develop, admins included. Users report apps here too.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use minihost_core::Role;
use minihost_store::{AuditEntry, Release, Report, User, VersionReview, VersionStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/review/queue", get(queue))
        .route("/api/v1/review/reports", get(reports))
        .route("/api/v1/review/{app}/{version}", get(show).post(decide))
        .route("/api/v1/review/{app}/{version}/claim", post(claim))
        .route(
            "/api/v1/apps/{app}/suspension",
            put(suspend).delete(unsuspend),
        )
        .route("/api/v1/apps/{app}/reports", post(report))
        .route("/api/v1/admin/audit", get(audit))
}

fn reviewer(me: &User) -> Result<String, ApiError> {
    if me.role.can_review() {
        Ok(format!("reviewer:{}", me.username))
    } else {
        Err(ApiError::Forbidden("reviewers only".into()))
    }
}

/// A reviewer who does not develop `app` (admins included): 404 for an unknown app.
async fn reviewer_of(state: &AppState, me: &User, app: &str) -> Result<String, ApiError> {
    let actor = reviewer(me)?;
    let record = state
        .store
        .app(app)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    if record.developer == me.id {
        return Err(ApiError::Forbidden(
            "nobody reviews an app they develop".into(),
        ));
    }
    Ok(actor)
}

#[utoipa::path(get, path = "/api/v1/review/queue", operation_id = "review_queue",
    security(("session" = [])),
    responses((status = 200, description = "Versions submitted or in review, oldest first (status, claimer, notes, findings)", body = Vec<crate::openapi::AnyObject>),
              (status = 403, description = "Reviewers only"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn queue(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<VersionReview>>, ApiError> {
    reviewer(&me)?;
    Ok(Json(state.store.review_queue().await?))
}

/// One version as a reviewer reads it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReviewView {
    /// The version: status, manifest, content hash, size, findings (`changed` ones are what
    /// differs from the released version), notes, reviewer, reason.
    #[schema(value_type = crate::openapi::AnyObject)]
    version: VersionReview,
    /// What runs for users now.
    #[schema(value_type = crate::openapi::AnyObject)]
    release: Release,
    /// The app's recent audit log.
    #[schema(value_type = Vec<crate::openapi::AnyObject>)]
    history: Vec<AuditEntry>,
}

#[utoipa::path(get, path = "/api/v1/review/{app}/{version}", operation_id = "review_show",
    params(crate::openapi::params::App, crate::openapi::params::Version), security(("session" = [])),
    responses((status = 200, body = ReviewView), (status = 403, description = "Reviewers only, and not of their own app"),
              (status = 404, description = "No such version"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn show(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<ReviewView>, ApiError> {
    reviewer_of(&state, &me, &app).await?;
    let v = state
        .store
        .version_review(&app, &version)
        .await?
        .ok_or(ApiError::NotFound("app version"))?;
    Ok(Json(ReviewView {
        version: v,
        release: state.store.release(&app).await?,
        history: state.store.audit_about(&app, 50).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/review/{app}/{version}/claim", operation_id = "review_claim",
    params(crate::openapi::params::App, crate::openapi::params::Version), security(("session" = [])),
    responses((status = 204, description = "Claimed: it is yours to decide"), (status = 403, description = "Reviewers only, and not of their own app"),
              (status = 404, description = "No such version"),
              (status = 409, description = "Not waiting for a reviewer (claimed by another, or decided)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn claim(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = reviewer_of(&state, &me, &app).await?;
    if state.store.version_review(&app, &version).await?.is_none() {
        return Err(ApiError::NotFound("app version"));
    }
    let moved = state
        .store
        .transition_version(
            &app,
            &version,
            &[VersionStatus::Submitted],
            VersionStatus::InReview,
            None,
            Some(me.username.as_str()),
            "",
            &actor,
        )
        .await?;
    if !moved {
        return Err(ApiError::Conflict(
            "this version is not waiting for a reviewer".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
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

/// Longest rejection reason, in bytes.
const MAX_REASON_BYTES: usize = 2000;

#[utoipa::path(post, path = "/api/v1/review/{app}/{version}", operation_id = "decide_review",
    params(crate::openapi::params::App, crate::openapi::params::Version), security(("session" = [])),
    request_body(content = Decision, example = json!({"decision": "reject", "reason": "The card has no text for screen readers"})),
    responses((status = 200, description = "`{app, version, status, reason}`", body = crate::openapi::AnyObject), (status = 403, description = "Reviewers only, and not of their own app"),
              (status = 404, description = "No such version"),
              (status = 409, description = "Not claimed by you (claim it first), or decided already"),
              (status = 422, description = "Neither `approve` nor `reject`, or a rejection without a reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, version)): Path<(String, String)>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let actor = reviewer_of(&state, &me, &app).await?;
    let reason = body.reason.trim();
    let to = match body.decision.as_str() {
        "approve" => VersionStatus::Approved,
        "reject" if reason.is_empty() => {
            return Err(ApiError::invalid("reason", "a rejection needs a reason"));
        }
        "reject" => VersionStatus::Rejected,
        _ => {
            return Err(ApiError::invalid(
                "decision",
                "must be \"approve\" or \"reject\"",
            ));
        }
    };
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::invalid(
            "reason",
            format!("at most {MAX_REASON_BYTES} bytes"),
        ));
    }
    if state.store.version_review(&app, &version).await?.is_none() {
        return Err(ApiError::NotFound("app version"));
    }
    let moved = state
        .store
        .transition_version(
            &app,
            &version,
            &[VersionStatus::InReview],
            to,
            Some(me.username.as_str()),
            None,
            reason,
            &actor,
        )
        .await?;
    if !moved {
        return Err(ApiError::Conflict(
            "this version is not in review by you: claim it first".into(),
        ));
    }
    Ok(Json(serde_json::json!({
        "app": app, "version": version, "status": to.as_str(), "reason": reason
    })))
}

/// Why an app is suspended, or reported.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Why {
    /// In words (1 to 2000 bytes); shown to the developer (a suspension) or the reviewers (a
    /// report).
    reason: String,
    /// Where (a report from a conversation).
    #[serde(default)]
    conversation: Option<String>,
}

fn reason_of(why: &Why) -> Result<&str, ApiError> {
    let r = why.reason.trim();
    if r.is_empty() || r.len() > MAX_REASON_BYTES {
        return Err(ApiError::invalid(
            "reason",
            format!("1 to {MAX_REASON_BYTES} bytes"),
        ));
    }
    Ok(r)
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/suspension", operation_id = "suspend_app",
    params(crate::openapi::params::App), security(("session" = [])),
    request_body(content = Why, example = json!({"reason": "Posts scam links"})),
    responses((status = 204, description = "Suspended: no version of it runs anywhere from now; its pending payment requests expire"),
              (status = 403, description = "Reviewers and admins only, and not of their own app"),
              (status = 404, description = "No such app"), (status = 409, description = "Suspended already"),
              (status = 422, description = "No reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn suspend(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiJson(why): ApiJson<Why>,
) -> Result<StatusCode, ApiError> {
    let actor = reviewer_of(&state, &me, &app).await?;
    let reason = reason_of(&why)?;
    if !state.store.suspend_app(&app, reason, &actor).await? {
        return Err(ApiError::Conflict("the app is suspended already".into()));
    }
    state.store.resolve_reports(&app).await?;
    if let Ok(platform) = state.platform() {
        platform.app_suspended(&app);
    }
    // Other nodes drop what waits for it too (this node's platform did just above).
    state
        .fanout
        .invalidate(minihost_hub::Invalidation::AppSuspended { app });
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/apps/{app}/suspension", operation_id = "lift_suspension",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 204, description = "Lifted: the app runs again"),
              (status = 403, description = "Reviewers and admins only, and not of their own app"),
              (status = 404, description = "No such app, or it is not suspended"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn unsuspend(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = reviewer_of(&state, &me, &app).await?;
    if !state.store.lift_suspension(&app, "lifted", &actor).await? {
        return Err(ApiError::NotFound("suspension of that app"));
    }
    // Other nodes' dispatch caches still hold the app as suspended (this node's store forgot).
    state
        .fanout
        .invalidate(minihost_hub::Invalidation::AppChanged { app });
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/reports", operation_id = "report_app",
    params(crate::openapi::params::App), security(("session" = [])),
    request_body(content = Why, example = json!({"reason": "It asked me to pay twice", "conversation": "c_0123456789abcdef01234567"})),
    responses((status = 201, description = "Reported: reviewers see it in their queue", body = crate::openapi::AnyObject),
              (status = 404, description = "No such app, or not a member of that conversation"),
              (status = 422, description = "No reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn report(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiJson(why): ApiJson<Why>,
) -> Result<(StatusCode, Json<Report>), ApiError> {
    let reason = reason_of(&why)?;
    if state.store.app(&app).await?.is_none() {
        return Err(ApiError::NotFound("app"));
    }
    let conversation = match &why.conversation {
        Some(id) => Some(
            crate::conversations::member_conversation(&state, id, &me)
                .await?
                .id
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let r = state
        .store
        .report_app(&app, &me.id, conversation.as_deref(), reason)
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A report with what the app did lately.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportView {
    /// The report.
    #[schema(value_type = crate::openapi::AnyObject)]
    report: Report,
    /// The app's latest invocations (outcome, error kind, duration).
    #[schema(value_type = Vec<crate::openapi::AnyObject>)]
    recent: Vec<serde_json::Value>,
}

#[utoipa::path(get, path = "/api/v1/review/reports", operation_id = "review_reports",
    security(("session" = [])),
    responses((status = 200, description = "Open reports, oldest first, each with the app's recent invocation outcomes", body = Vec<ReportView>),
              (status = 403, description = "Reviewers only"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn reports(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<ReportView>>, ApiError> {
    reviewer(&me)?;
    let mut out = Vec::new();
    for report in state.store.open_reports(200).await? {
        let recent = state
            .store
            .invocations(&report.app_id, 20)
            .await?
            .into_iter()
            .map(|i| {
                serde_json::json!({
                    "version": i.version, "event": i.event_kind, "outcome": i.outcome,
                    "error_kind": i.error_kind, "duration_us": i.duration_us,
                    "at": minihost_store::rfc3339(i.created_at_ms),
                })
            })
            .collect();
        out.push(ReportView { report, recent });
    }
    Ok(Json(out))
}

/// Which part of the audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// An app id: its lines and its versions' lines.
    subject: String,
}

#[utoipa::path(get, path = "/api/v1/admin/audit", operation_id = "audit_log",
    params(AuditParams), security(("session" = [])),
    responses((status = 200, description = "Who did what to the subject, when and why, newest first", body = Vec<crate::openapi::AnyObject>),
              (status = 403, description = "Admins only"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    if me.role != Role::Admin {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    Ok(Json(state.store.audit_about(&q.subject, 500).await?))
}
