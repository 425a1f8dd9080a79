//! The registry, as a developer uses it: publish a version (every blocking check runs first,
//! findings are stored with it, nothing is stored if one fails), see where each version
//! stands (findings, the reviewer's reason, the release), withdraw a submission, and release
//! an approved version to a share of users or roll back in one step. Releasing and rolling back
//! are also open to reviewers who do not develop the app. Every transition is audited.

use crate::apps::Sideload;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::platform::Sideloaded;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use minihost_store::{AppRecord, Release, ReleaseRefusal, User, VersionReview, VersionStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/apps/{app}/versions",
            post(publish)
                .get(versions)
                .layer(DefaultBodyLimit::max(crate::apps::MAX_SIDELOAD_BYTES)),
        )
        .route(
            "/api/v1/apps/{app}/versions/{version}/withdraw",
            post(withdraw),
        )
        .route("/api/v1/apps/{app}/release", put(release))
        .route("/api/v1/apps/{app}/rollback", post(rollback))
        .route("/api/v1/apps/{app}/stats", axum::routing::get(stats))
        .route("/api/v1/apps/{app}/testers", axum::routing::get(testers))
        .route(
            "/api/v1/apps/{app}/testers/{username}",
            put(add_tester).delete(remove_tester),
        )
}

/// A version to publish: the manifest, the component, and notes to the reviewer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Publish {
    /// The app's `miniapp.toml`, as text.
    manifest: String,
    /// The component (`.wasm`), base64-encoded.
    component: String,
    /// What the reviewer should know (what changed, how to try it).
    #[serde(default)]
    notes: String,
}

/// Longest notes to a reviewer, in bytes.
const MAX_NOTES_BYTES: usize = 4000;

#[utoipa::path(post, path = "/api/v1/apps/{app}/versions", operation_id = "publish_version",
    params(crate::openapi::params::App), security(("session" = []), ("access_token" = [])),
    request_body(content = Publish, example = json!({"manifest": "id = \"echo\"\nname = \"Echo\"\nversion = \"0.1.0\"\ndescription = \"Replies to /echo TEXT with TEXT.\"\n\n[[commands]]\nname = \"echo\"\nhelp = \"/echo TEXT - repeats TEXT\"\n", "component": "AGFzbQ0AAQA... (the whole .wasm, base64)", "notes": "First version."})),
    responses((status = 201, description = "Submitted for review, with its findings and content hash", body = crate::Sideloaded),
              (status = 403, description = "Not a developer"),
              (status = 409, description = "The app id belongs to another developer, or this version number exists already (versions are immutable)"),
              (status = 422, description = "Manifest or component refused by a blocking check (named), or the manifest's id is not `{app}`"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<Publish>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let platform = state.platform()?;
    let me = publisher(&state, &headers, &app).await?;
    if !me.role.can_develop() {
        return Err(ApiError::Forbidden("only developers publish apps".into()));
    }
    if body.notes.len() > MAX_NOTES_BYTES {
        return Err(ApiError::invalid(
            "notes",
            format!("at most {MAX_NOTES_BYTES} bytes"),
        ));
    }
    let (manifest, component) = Sideload {
        manifest: body.manifest,
        component: body.component,
    }
    .decode()?;
    let done = platform
        .submit(&me, &app, manifest, component, body.notes)
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Who publishes: the developer of a session token, or, for an access token the app's backend
/// got with its client credentials, that app's developer (such a token publishes only its app).
async fn publisher(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    app: &str,
) -> Result<User, ApiError> {
    let token = crate::auth::bearer_token(headers).ok_or(ApiError::Unauthorized(
        "missing Authorization: Bearer <session token, or the app's client-credentials token>",
    ))?;
    if let Ok(user) = crate::auth::authenticate(state, token).await {
        return Ok(user);
    }
    let claims = state
        .broker
        .verify(token, None, minihost_broker::service::now())
        .await
        .map_err(|_| {
            ApiError::Unauthorized("the token is neither a session nor a valid app access token")
        })?;
    if !matches!(claims.sub, minihost_broker::Subject::App(_)) || claims.aud.as_str() != app {
        return Err(ApiError::Forbidden(
            "an app's client-credentials token publishes that app only".into(),
        ));
    }
    let record = state
        .store
        .app(app)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    state
        .store
        .user_by_id(&record.developer)
        .await?
        .ok_or(ApiError::NotFound("app's developer"))
}

/// An app's versions, release and suspension, as its developer and reviewers see them.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppVersions {
    /// The app.
    app: String,
    /// What runs for ordinary users.
    #[schema(value_type = crate::openapi::AnyObject)]
    release: Release,
    /// Why it is suspended, if it is.
    suspended: Option<String>,
    /// Every version, newest upload first: status, content hash, findings, notes, reason.
    #[schema(value_type = Vec<crate::openapi::AnyObject>)]
    versions: Vec<VersionReview>,
}

/// The app, if `me` develops it or may review it; 404 otherwise (its existence is not told).
pub(crate) async fn app_for(
    state: &AppState,
    me: &User,
    app: &str,
) -> Result<(AppRecord, bool), ApiError> {
    let record = state
        .store
        .app(app)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    let develops = record.developer == me.id;
    if !develops && !me.role.can_review() {
        return Err(ApiError::NotFound("app"));
    }
    Ok((record, develops))
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/versions", operation_id = "app_versions",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, body = AppVersions), (status = 404, description = "No such app of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn versions(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<AppVersions>, ApiError> {
    app_for(&state, &me, &app).await?;
    Ok(Json(AppVersions {
        release: state.store.release(&app).await?,
        suspended: state.store.suspension(&app).await?,
        versions: state.store.version_reviews(&app).await?,
        app,
    }))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/versions/{version}/withdraw", operation_id = "withdraw_version",
    params(crate::openapi::params::App, crate::openapi::params::Version), security(("session" = [])),
    responses((status = 204, description = "Withdrawn"), (status = 404, description = "No such version of your app"),
              (status = 409, description = "Not waiting for review (decided already, or withdrawn)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (_, develops) = app_for(&state, &me, &app).await?;
    if !develops || state.store.version_review(&app, &version).await?.is_none() {
        return Err(ApiError::NotFound("version of your app"));
    }
    let moved = state
        .store
        .transition_version(
            &app,
            &version,
            &[VersionStatus::Submitted, VersionStatus::InReview],
            VersionStatus::Withdrawn,
            None,
            None,
            "",
            &format!("developer:{}", me.username),
        )
        .await?;
    if !moved {
        return Err(ApiError::Conflict(
            "this version is not waiting for review".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A release: which approved version, to which share of users.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReleaseBody {
    /// The approved version.
    version: String,
    /// Percent of users (0 to 100) who get it; 100 makes it everyone's stable version.
    #[serde(default = "hundred")]
    percent: i64,
}

fn hundred() -> i64 {
    100
}

/// Who may release or roll back `app`: its developer, or a reviewer who does not develop it.
async fn may_release(state: &AppState, me: &User, app: &str) -> Result<String, ApiError> {
    let (_, develops) = app_for(state, me, app).await?;
    Ok(if develops {
        format!("developer:{}", me.username)
    } else {
        format!("reviewer:{}", me.username)
    })
}

fn release_refused(r: ReleaseRefusal) -> ApiError {
    ApiError::Refused {
        status: StatusCode::CONFLICT,
        code: match r {
            ReleaseRefusal::NotApproved(_) => "not_approved",
            ReleaseRefusal::NothingToRollBack => "nothing_to_roll_back",
        },
        message: r.to_string(),
    }
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/release", operation_id = "release_version",
    params(crate::openapi::params::App), security(("session" = [])),
    request_body(content = ReleaseBody, example = json!({"version": "1.1.0", "percent": 50})),
    responses((status = 200, description = "The release now", body = crate::openapi::AnyObject),
              (status = 404, description = "No such app of yours (or to review)"),
              (status = 409, description = "The version is not approved (`not_approved`)"),
              (status = 422, description = "A percentage outside 0 to 100"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn release(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Json<Release>, ApiError> {
    if !(0..=100).contains(&body.percent) {
        return Err(ApiError::invalid("percent", "must be 0 to 100"));
    }
    let actor = may_release(&state, &me, &app).await?;
    let r = state
        .store
        .set_release(&app, &body.version, body.percent, &actor)
        .await?
        .map_err(release_refused)?;
    state
        .fanout
        .invalidate(minihost_hub::Invalidation::AppChanged { app });
    Ok(Json(r))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/rollback", operation_id = "roll_back",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "The release now: a rollout stopped, or the previous stable version back", body = crate::openapi::AnyObject),
              (status = 404, description = "No such app of yours (or to review)"),
              (status = 409, description = "Nothing to roll back to (`nothing_to_roll_back`)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<Release>, ApiError> {
    let actor = may_release(&state, &me, &app).await?;
    let r = state
        .store
        .roll_back(&app, &actor)
        .await?
        .map_err(release_refused)?;
    state
        .fanout
        .invalidate(minihost_hub::Invalidation::AppChanged { app });
    Ok(Json(r))
}

/// The app, if `me` develops it; 404 otherwise.
async fn own_app(state: &AppState, me: &User, app: &str) -> Result<AppRecord, ApiError> {
    match state.store.app(app).await? {
        Some(a) if a.developer == me.id => Ok(a),
        _ => Err(ApiError::NotFound("app of yours")),
    }
}

/// The user `username`, for a change to the testers of `me`'s own `app`.
async fn tester_of_own_app(
    state: &AppState,
    me: &User,
    app: &str,
    username: &str,
) -> Result<User, ApiError> {
    own_app(state, me, app).await?;
    Ok(state
        .store
        .user_by_username(username)
        .await?
        .ok_or(ApiError::NotFound("user"))?
        .user)
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/testers", operation_id = "app_testers",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "The usernames of the app's testers", body = Vec<String>),
              (status = 404, description = "No such app of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn testers(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    own_app(&state, &me, &app).await?;
    Ok(Json(state.store.testers_of(&app).await?))
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/testers/{username}", operation_id = "add_tester",
    params(crate::openapi::params::App, crate::openapi::params::Username), security(("session" = [])),
    responses((status = 204, description = "A tester: they may run the app's versions in trial in groups they own"),
              (status = 404, description = "No such app of yours, or no such user"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn add_tester(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = tester_of_own_app(&state, &me, &app, &username).await?;
    if state.store.add_tester(&app, &user.id).await? {
        tracing::info!(%app, tester = %username, "tester added");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/apps/{app}/testers/{username}", operation_id = "remove_tester",
    params(crate::openapi::params::App, crate::openapi::params::Username), security(("session" = [])),
    responses((status = 204, description = "No longer a tester: their trial installs stop running"),
              (status = 404, description = "No such app of yours, or not a tester"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn remove_tester(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((app, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = tester_of_own_app(&state, &me, &app, &username).await?;
    if !state.store.remove_tester(&app, &user.id).await? {
        return Err(ApiError::NotFound("tester"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// How one version has been doing.
#[derive(Serialize, ToSchema)]
pub(crate) struct VersionStats {
    /// The version.
    version: String,
    /// Invocations counted (of the app's latest [`STATS_WINDOW`]).
    invocations: usize,
    /// Of them, failed (trapped, timed out, refused, or the app's own error).
    errors: usize,
    /// `errors / invocations`.
    error_rate: f64,
    /// Median duration, µs.
    p50_us: i64,
    /// 99th percentile duration, µs.
    p99_us: i64,
}

/// How many of an app's latest invocations the statistics cover.
const STATS_WINDOW: u32 = 10_000;

/// The `q`-quantile (0..=1) of sorted `values` (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/stats", operation_id = "app_stats",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "Per version, over the app's latest 10,000 invocations: count, errors, error rate, p50 and p99 durations", body = Vec<VersionStats>),
              (status = 404, description = "No such app of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<Vec<VersionStats>>, ApiError> {
    app_for(&state, &me, &app).await?;
    let mut by_version: std::collections::BTreeMap<String, (usize, Vec<i64>)> =
        std::collections::BTreeMap::new();
    for (version, ok, duration) in state.store.invocation_samples(&app, STATS_WINDOW).await? {
        let entry = by_version.entry(version).or_default();
        entry.0 += usize::from(!ok);
        entry.1.push(duration);
    }
    Ok(Json(
        by_version
            .into_iter()
            .map(|(version, (errors, mut durations))| {
                durations.sort_unstable();
                VersionStats {
                    invocations: durations.len(),
                    errors,
                    error_rate: errors as f64 / durations.len().max(1) as f64,
                    p50_us: quantile(&durations, 0.5),
                    p99_us: quantile(&durations, 0.99),
                    version,
                }
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
