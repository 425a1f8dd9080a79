//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/v1/openapi.json`.

use crate::state::AppState;
use crate::{
    accounts, apps, conversations, developer, grants, health, messages, oauth, open, registry,
};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Minihost API",
        description = "Client API of the Minihost messenger. Authenticate with `Authorization: Bearer <session token>`. Errors are `{\"error\": {\"code\", \"message\"}}`. Live delivery: WebSocket `GET /api/v1/ws`."
    ),
    paths(
        health::healthz,
        accounts::sign_up,
        accounts::sign_in,
        accounts::sign_out,
        accounts::me,
        accounts::set_role,
        conversations::create,
        conversations::list,
        conversations::show,
        conversations::add_members,
        conversations::remove_member,
        conversations::mark_read,
        messages::send,
        messages::history,
        apps::sideload,
        apps::list,
        apps::uninstall,
        apps::open,
        apps::action,
        apps::invocations,
        grants::consent_requests,
        grants::list,
        grants::answer,
        grants::revoke_app,
        grants::revoke_scope,
        grants::privacy,
        registry::submit,
        registry::queue,
        registry::decide,
        registry::install,
        developer::register,
        developer::rotate_secret,
        oauth::jwks,
        oauth::token,
        oauth::revoke,
        oauth::introspect,
        open::me,
        open::send,
        open::profile,
    )
)]
struct ApiDoc;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}
