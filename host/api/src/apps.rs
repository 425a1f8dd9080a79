//! Mini-apps in conversations: sideload a component in trial (developers), install a released
//! app, list and remove installed apps (a group's owner; either member of a direct
//! conversation), open an app, press a button on an app's card, and read an app's invocation log (its
//! developer only). The work itself is done by the [`AppPlatform`](crate::platform::AppPlatform).

use crate::auth::AuthUser;
use crate::conversations::member_conversation;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, idempotency_key};
use crate::platform::{ActionInput, Sideloaded};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use minihost_core::ConversationKind;
use minihost_store::{ActionClaim, Install, InvocationRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Largest sideload body (a base64 component plus its manifest).
pub const MAX_SIDELOAD_BYTES: usize = 16 * 1024 * 1024;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations/{id}/apps",
            post(sideload)
                .get(list)
                .layer(DefaultBodyLimit::max(MAX_SIDELOAD_BYTES)),
        )
        .route(
            "/api/v1/conversations/{id}/apps/{app}",
            delete(uninstall).put(install),
        )
        .route(
            "/api/v1/conversations/{id}/apps/{app}/trial",
            axum::routing::put(trial),
        )
        .route(
            "/api/v1/conversations/{id}/app-policy",
            get(app_policy).put(set_app_policy),
        )
        .route("/api/v1/conversations/{id}/apps/{app}/open", post(open))
        .route(
            "/api/v1/conversations/{id}/messages/{message}/actions",
            post(action),
        )
        .route("/api/v1/apps/{app}/invocations", get(invocations))
}

/// Body of a sideload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sideload {
    /// The app's `miniapp.toml`, as text.
    pub(crate) manifest: String,
    /// The component (`.wasm`), base64-encoded.
    pub(crate) component: String,
}

impl Sideload {
    /// The manifest text and the decoded component bytes.
    pub(crate) fn decode(self) -> Result<(String, Vec<u8>), ApiError> {
        use base64::Engine;
        let component = base64::engine::general_purpose::STANDARD
            .decode(self.component.as_bytes())
            .map_err(|e| ApiError::invalid("component", format!("not base64: {e}")))?;
        Ok((self.manifest, component))
    }
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/apps", operation_id = "sideload",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    request_body(content = Sideload, example = json!({"manifest": "id = \"echo\"\nname = \"Echo\"\nversion = \"0.1.0\"\ndescription = \"Replies to /echo TEXT with TEXT.\"\n\n[[commands]]\nname = \"echo\"\nhelp = \"/echo TEXT - repeats TEXT\"\n", "component": "AGFzbQ0AAQA... (the whole .wasm, base64)"})),
    responses((status = 201, description = "Installed, unreviewed, for its developer only", body = crate::Sideloaded),
              (status = 403, description = "Not a developer, or not the group's owner"),
              (status = 404, description = "No such conversation, or not a member"),
              (status = 409, description = "The app id belongs to another developer, or this version was submitted and cannot change"),
              (status = 422, description = "Manifest or component rejected, with findings"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn sideload(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Sideload>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let platform = state.platform()?;
    if !me.role.can_develop() {
        return Err(ApiError::Forbidden(
            "only developers sideload apps; ask an admin for the developer role".into(),
        ));
    }
    let conv = member_conversation(&state, &id, &me).await?;
    if conv.kind != ConversationKind::Group || conv.owner.as_ref() != Some(&me.id) {
        return Err(ApiError::Forbidden(
            "apps are sideloaded into groups you own".into(),
        ));
    }
    let (manifest, component) = body.decode()?;
    let done = platform.sideload(&me, &conv, manifest, component).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Which uploaded version to run in trial.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trial {
    /// A version of the app that is neither rejected nor withdrawn.
    version: String,
}

#[utoipa::path(put, path = "/api/v1/conversations/{id}/apps/{app}/trial", operation_id = "install_trial",
    params(crate::openapi::params::Conversation, crate::openapi::params::App), security(("session" = [])),
    request_body(content = Trial, example = json!({"version": "1.1.0"})),
    responses((status = 201, description = "Installed in trial: it runs only for you, marked unreviewed", body = crate::Sideloaded),
              (status = 403, description = "Not the app's developer or one of its testers, or not a group you own"),
              (status = 404, description = "No such conversation, app or version"),
              (status = 409, description = "The version was rejected or withdrawn, or the app is suspended"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn trial(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, app)): Path<(String, String)>,
    ApiJson(body): ApiJson<Trial>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    let record = state
        .store
        .app(&app)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    if record.developer != me.id && !state.store.is_tester(&app, &me.id).await? {
        return Err(ApiError::Forbidden(
            "only the app's developer and its testers run it in trial".into(),
        ));
    }
    if conv.kind != ConversationKind::Group || conv.owner.as_ref() != Some(&me.id) {
        return Err(ApiError::Forbidden("trials run in groups you own".into()));
    }
    let (_, sha256, status) = state
        .store
        .version_meta(&app, &body.version)
        .await?
        .ok_or(ApiError::NotFound("version of that app"))?;
    if matches!(
        status,
        minihost_store::VersionStatus::Rejected | minihost_store::VersionStatus::Withdrawn
    ) || state.store.suspension(&app).await?.is_some()
    {
        return Err(ApiError::Conflict(format!(
            "{app}@{} is {} and cannot run",
            body.version,
            if state.store.suspension(&app).await?.is_some() {
                "suspended"
            } else {
                status.as_str()
            }
        )));
    }
    state
        .store
        .install(&conv.id, &app, &body.version, &me.id, true)
        .await?;
    installs_changed(&state, &conv.id);
    Ok((
        StatusCode::CREATED,
        Json(Sideloaded {
            app,
            version: body.version,
            status: "trial".into(),
            sha256,
            findings: Vec::new(),
        }),
    ))
}

/// An installed app as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct InstallView {
    app: String,
    name: String,
    /// The version installed in trial, or the app's stable release.
    version: String,
    /// In trial (unreviewed): runs only for the developer who installed it.
    sideloaded: bool,
    /// Suspended by the platform: nothing of it runs until the suspension is lifted.
    suspended: bool,
}

impl From<Install> for InstallView {
    fn from(i: Install) -> Self {
        InstallView {
            app: i.app_id,
            name: i.app_name,
            version: if i.sideloaded {
                i.version
            } else {
                i.release.stable.unwrap_or(i.version)
            },
            sideloaded: i.sideloaded,
            suspended: i.suspended,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/apps", operation_id = "list_apps",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    responses((status = 200, body = Vec<InstallView>),
              (status = 404, description = "No such conversation, or not a member"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<InstallView>>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    let installs = state.store.installs(&conv.id).await?;
    Ok(Json(
        installs
            .into_iter()
            // A sideloaded app is visible only to the developer who installed it.
            .filter(|i| !i.sideloaded || i.installed_by == me.id)
            .map(InstallView::from)
            .collect(),
    ))
}

/// Whether `me` (a member) may add or remove apps in `conv`: in a group, its owner, or any
/// member when the owner set the group's app policy to `members`; either member of a direct
/// conversation.
async fn manages_apps(
    state: &AppState,
    conv: &minihost_store::Conversation,
    me: &minihost_store::User,
) -> Result<bool, ApiError> {
    Ok(match conv.kind {
        ConversationKind::Group => {
            conv.owner.as_ref() == Some(&me.id)
                || state.store.app_policy(conv.id.as_str()).await? == "members"
        }
        ConversationKind::Direct => true,
    })
}

/// Who may add and remove apps in a group.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppPolicy {
    /// `owner` (the default) or `members`.
    policy: String,
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/app-policy", operation_id = "app_policy",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    responses((status = 200, body = AppPolicy), (status = 404, description = "No such conversation of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn app_policy(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<AppPolicy>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    let policy = match conv.kind {
        ConversationKind::Group => state.store.app_policy(conv.id.as_str()).await?,
        ConversationKind::Direct => "members".to_owned(),
    };
    Ok(Json(AppPolicy { policy }))
}

#[utoipa::path(put, path = "/api/v1/conversations/{id}/app-policy", operation_id = "set_app_policy",
    params(crate::openapi::params::Conversation), security(("session" = [])),
    request_body(content = AppPolicy, example = json!({"policy": "members"})),
    responses((status = 200, body = AppPolicy), (status = 403, description = "Only the group's owner sets it"),
              (status = 404, description = "No such conversation of yours"),
              (status = 422, description = "Neither `owner` nor `members`, or not a group"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn set_app_policy(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AppPolicy>,
) -> Result<Json<AppPolicy>, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    if conv.kind != ConversationKind::Group {
        return Err(ApiError::invalid(
            "policy",
            "only groups have an app policy",
        ));
    }
    if conv.owner.as_ref() != Some(&me.id) {
        return Err(ApiError::Forbidden(
            "only the group's owner sets who adds apps".into(),
        ));
    }
    if !matches!(body.policy.as_str(), "owner" | "members") {
        return Err(ApiError::invalid(
            "policy",
            "must be \"owner\" or \"members\"",
        ));
    }
    state
        .store
        .set_app_policy(conv.id.as_str(), &body.policy)
        .await?;
    Ok(Json(body))
}

#[utoipa::path(put, path = "/api/v1/conversations/{id}/apps/{app}", operation_id = "install_app",
    params(crate::openapi::params::Conversation, crate::openapi::params::App), security(("session" = [])),
    responses((status = 201, description = "Installed: the app's release decides which version runs for whom", body = crate::Sideloaded),
              (status = 403, description = "Only the group's owner installs apps"),
              (status = 404, description = "No such conversation, or nothing of the app is released"),
              (status = 409, description = "The app is suspended"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn install(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, app)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Sideloaded>), ApiError> {
    let platform = state.platform()?;
    let conv = member_conversation(&state, &id, &me).await?;
    if !manages_apps(&state, &conv, &me).await? {
        return Err(ApiError::Forbidden(
            "only the group's owner installs apps".into(),
        ));
    }
    let done = platform.install(&me, &conv, &app).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

#[utoipa::path(delete, path = "/api/v1/conversations/{id}/apps/{app}", operation_id = "uninstall_app",
    params(crate::openapi::params::Conversation, crate::openapi::params::App), security(("session" = [])),
    responses((status = 204, description = "Removed"), (status = 403, description = "Only the group's owner removes apps (in a direct conversation, either member)"),
              (status = 404, description = "No such conversation, or the app is not installed there"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn uninstall(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let conv = member_conversation(&state, &id, &me).await?;
    if !manages_apps(&state, &conv, &me).await? {
        return Err(ApiError::Forbidden(
            "only the group's owner removes apps".into(),
        ));
    }
    if !state.store.uninstall(&conv.id, &app).await? {
        return Err(ApiError::NotFound("app"));
    }
    installs_changed(&state, &conv.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the other nodes that the apps installed in `conversation` changed (this node's store
/// forgot them already).
pub(crate) fn installs_changed(state: &AppState, conversation: &minihost_core::ConversationId) {
    state
        .fanout
        .invalidate(minihost_hub::Invalidation::Installs {
            conversation: conversation.clone(),
        });
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/apps/{app}/open", operation_id = "open_app",
    params(crate::openapi::params::Conversation, crate::openapi::params::App), security(("session" = [])),
    responses((status = 202, description = "The app is running; its reply arrives as a message"),
              (status = 404, description = "No such conversation, or the app is not installed here"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn open(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, app)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let platform = state.platform()?;
    let conv = member_conversation(&state, &id, &me).await?;
    platform.open(&me, &conv, &app).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Body of a button press.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Action {
    /// The button's id.
    button: String,
    /// Values of the card's input blocks, by input id.
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

impl Action {
    /// What tells two presses apart under one idempotency key: a SHA-256 of the button and the
    /// inputs (in key order).
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in
            std::iter::once(&self.button).chain(self.inputs.iter().flat_map(|(k, v)| [k, v]))
        {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{message}/actions", operation_id = "press_button",
    params(crate::openapi::params::Conversation, crate::openapi::params::Message,
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: a repeat of the same press with the same key is answered 202 and not delivered again (for a day); the same key with another button or inputs is 422 idempotency_key_reused")),
    security(("session" = [])),
    request_body(content = Action, example = json!({"button": "yes", "inputs": {"comment": "after noon"}})),
    responses((status = 202, description = "Delivered to the app (or, with an Idempotency-Key already used for this press, delivered before)"),
              (status = 404, description = "No such card, or not a member"),
              (status = 422, description = "Not a card from an app, no such button on the card, a bad Idempotency-Key, or one used for another press (code idempotency_key_reused)"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn action(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((id, message)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Action>,
) -> Result<StatusCode, ApiError> {
    let key = idempotency_key(&headers)?;
    let platform = state.platform()?;
    let conv = member_conversation(&state, &id, &me).await?;
    let card = state
        .store
        .message(&conv.id, &message)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    let hash = body.hash();
    let input = ActionInput::from_card(&card, body.button, body.inputs)?;
    // With a key, the press is claimed first: a repeat (its answer was lost) is not delivered
    // again; if delivering fails, the claim is dropped so that sending it again tries again.
    if let Some(key) = &key {
        let now = minihost_core::now_millis();
        let claim = state
            .store
            .claim_action_key(me.id.as_str(), card.id.as_str(), key, &hash, now)
            .await?;
        if claim == ActionClaim::Repeat {
            return Ok(StatusCode::ACCEPTED);
        }
    }
    if let Err(e) = platform.action(&me, &card, input).await {
        if let Some(key) = &key
            && let Err(release) = state
                .store
                .release_action_key(me.id.as_str(), card.id.as_str(), key)
                .await
        {
            tracing::warn!(error = %release, "could not release a failed press's key");
        }
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}

/// Query of the invocation log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogParams {
    /// How many entries, newest first (1 to 500, default 50).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/invocations", operation_id = "invocations",
    params(crate::openapi::params::App, LogParams), security(("session" = [])),
    responses((status = 200, description = "The app's invocation log, newest first", body = Vec<crate::openapi::AnyObject>), (status = 404, description = "No such app of yours"),
              (status = 422, description = "A limit out of range"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn invocations(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
    ApiQuery(q): ApiQuery<LogParams>,
) -> Result<Json<Vec<InvocationRecord>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    let record = state.store.app(&app).await?;
    match record {
        Some(a) if a.developer == me.id => {}
        _ => return Err(ApiError::NotFound("app")),
    }
    Ok(Json(state.store.invocations(&app, limit).await?))
}
