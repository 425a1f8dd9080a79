//! `GET /healthz`: the process is up and the database answers.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz",
    responses((status = 200, description = "Healthy: `{\"status\": \"ok\"}`", body = crate::openapi::AnyObject),
              (status = 503, response = crate::openapi::errors::Unavailable)))]
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::Unavailable("the database does not answer"))?;
    Ok(Json(json!({ "status": "ok" })))
}
