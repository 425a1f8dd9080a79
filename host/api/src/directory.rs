//! Finding and adding apps: the directory of released, running apps (name, description,
//! developer, the scopes they ask for with their reasons, commands, how often users reported
//! them), searchable; and a user's own app panel, where a released app runs in a private
//! conversation of that user without any group.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use minihost_store::ListedApp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/directory", get(list))
        .route("/api/v1/directory/{app}", get(show))
        .route("/api/v1/me/apps", get(panel))
        .route("/api/v1/me/apps/{app}", put(add).delete(remove))
        .route("/api/v1/me/apps/{app}/open", post(open))
}

/// A scope as the directory shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ScopeView {
    /// `messages.send`, ...
    name: String,
    /// Why the app asks for it.
    reason: String,
}

/// A command as the directory shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct CommandView {
    /// Its name, without the slash.
    name: String,
    /// One line of usage.
    help: String,
}

/// An app in the directory.
#[derive(Serialize, ToSchema)]
pub(crate) struct DirectoryEntry {
    /// Its id.
    id: String,
    /// Its name.
    name: String,
    /// What it does.
    description: String,
    /// Its developer's display name.
    developer: String,
    /// The released version.
    version: String,
    /// Its homepage, if any.
    homepage: Option<String>,
    /// What it asks users for, and why.
    scopes: Vec<ScopeView>,
    /// Its commands.
    commands: Vec<CommandView>,
    /// How many times users reported it.
    reports: i64,
}

async fn entry(state: &AppState, listed: ListedApp) -> Result<DirectoryEntry, ApiError> {
    let (text, _, _) = state
        .store
        .version_meta(&listed.id, &listed.version)
        .await?
        .ok_or(ApiError::NotFound("app"))?;
    let manifest = minihost_manifest::parse(&text).map_err(|e| {
        ApiError::Internal(format!(
            "stored manifest of {}@{}: {e:?}",
            listed.id, listed.version
        ))
    })?;
    Ok(DirectoryEntry {
        description: manifest.description.clone(),
        homepage: manifest.homepage.as_ref().map(ToString::to_string),
        scopes: manifest
            .scopes
            .iter()
            .map(|s| ScopeView {
                name: s.scope.as_str().to_owned(),
                reason: s.reason.clone(),
            })
            .collect(),
        commands: manifest
            .commands
            .iter()
            .map(|c| CommandView {
                name: c.name.clone(),
                help: c.help.clone(),
            })
            .collect(),
        id: listed.id,
        name: listed.name,
        developer: listed.developer,
        version: listed.version,
        reports: listed.reports,
    })
}

/// A directory search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct Search {
    /// Words that must each appear in the app's id, name, description or developer
    /// (case-insensitive); all apps without it.
    q: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/directory", operation_id = "directory",
    params(Search), security(("session" = [])),
    responses((status = 200, description = "Released, running apps, by name", body = Vec<DirectoryEntry>),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AuthUser(_me): AuthUser,
    ApiQuery(search): ApiQuery<Search>,
) -> Result<Json<Vec<DirectoryEntry>>, ApiError> {
    let words: Vec<String> = search
        .q
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut out = Vec::new();
    for listed in state.store.released_apps().await? {
        let e = entry(&state, listed).await?;
        let haystack =
            format!("{} {} {} {}", e.id, e.name, e.description, e.developer).to_lowercase();
        if words.iter().all(|w| haystack.contains(w.as_str())) {
            out.push(e);
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/directory/{app}", operation_id = "directory_app",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, body = DirectoryEntry), (status = 404, description = "No such released, running app"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn show(
    State(state): State<AppState>,
    AuthUser(_me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<DirectoryEntry>, ApiError> {
    let listed = state
        .store
        .released_apps()
        .await?
        .into_iter()
        .find(|a| a.id == app)
        .ok_or(ApiError::NotFound("app"))?;
    Ok(Json(entry(&state, listed).await?))
}

/// An app in the user's panel.
#[derive(Serialize, ToSchema)]
pub(crate) struct PanelEntry {
    /// The app.
    app: String,
    /// Its name.
    name: String,
    /// The private conversation it runs in.
    conversation: String,
}

#[utoipa::path(get, path = "/api/v1/me/apps", operation_id = "my_apps",
    security(("session" = [])),
    responses((status = 200, description = "The apps in the user's own panel, by name", body = Vec<PanelEntry>),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn panel(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<Vec<PanelEntry>>, ApiError> {
    Ok(Json(
        state
            .store
            .panel_of(&me.id)
            .await?
            .into_iter()
            .map(|(app, name, conversation)| PanelEntry {
                app,
                name,
                conversation,
            })
            .collect(),
    ))
}

/// Where an app runs in the user's panel.
#[derive(Serialize, ToSchema)]
pub(crate) struct PanelConversation {
    /// The app.
    app: String,
    /// The private conversation it runs in.
    conversation: String,
}

#[utoipa::path(put, path = "/api/v1/me/apps/{app}", operation_id = "add_my_app",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "In the panel (added now, or before)", body = PanelConversation),
              (status = 404, description = "No such released app"),
              (status = 409, description = "The app is suspended (`app_suspended`)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn add(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<Json<PanelConversation>, ApiError> {
    let conversation = state.platform()?.panel(&me, &app, false).await?;
    Ok(Json(PanelConversation { app, conversation }))
}

#[utoipa::path(post, path = "/api/v1/me/apps/{app}/open", operation_id = "open_my_app",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 202, description = "The app's `opened` event runs in its panel conversation (added first if needed); its answer arrives there", body = PanelConversation),
              (status = 404, description = "No such released app"),
              (status = 409, description = "The app is suspended (`app_suspended`)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn open(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<(StatusCode, Json<PanelConversation>), ApiError> {
    let conversation = state.platform()?.panel(&me, &app, true).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PanelConversation { app, conversation }),
    ))
}

#[utoipa::path(delete, path = "/api/v1/me/apps/{app}", operation_id = "remove_my_app",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 204, description = "Removed from the panel (its conversation and history stay)"),
              (status = 404, description = "Not in the panel"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let conversation = state
        .store
        .remove_panel(&me.id, &app)
        .await?
        .ok_or(ApiError::NotFound("app in your panel"))?;
    let conversation = minihost_core::ConversationId::from_string(conversation);
    state.store.uninstall(&conversation, &app).await?;
    crate::apps::installs_changed(&state, &conversation);
    Ok(StatusCode::NO_CONTENT)
}
