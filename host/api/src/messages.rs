//! Messages of a conversation: send (with an optional `Idempotency-Key`) and read history by
//! `before`/`after` cursors. Live delivery is the WebSocket's job ([`crate::ws`]).

use crate::auth::{AuthUser, CachedAuthUser};
use crate::conversations::{member_conversation, member_conversation_cached};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, idempotency_key};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use minihost_core::{Content, Limits, Message, Sender};
use minihost_store::{HistoryQuery, NewMessage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/conversations/{id}/messages",
        post(send).get(history),
    )
}

/// Body of `POST /api/v1/conversations/{id}/messages`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMessage {
    /// `{"type": "text", "text": "..."}`.
    #[schema(value_type = crate::schemas::ContentDoc)]
    content: Content,
}

#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", operation_id = "send_message",
    params(crate::openapi::params::Conversation, ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: a repeat with the same body returns the first message; the same key with another body is 422 idempotency_key_reused")),
    security(("session" = [])),
    request_body(content = SendMessage, example = json!({"content": {"type": "text", "text": "hello"}})),
    responses((status = 201, description = "Stored", body = crate::schemas::MessageDoc),
              (status = 200, description = "A repeat of an earlier request with the same Idempotency-Key", body = crate::schemas::MessageDoc),
              (status = 404, description = "No such conversation, or not a member"),
              (status = 422, description = "Empty or oversized text, a card, a bad Idempotency-Key, or one reused with a different body (code idempotency_key_reused)"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn send(
    State(state): State<AppState>,
    CachedAuthUser(me): CachedAuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let key = idempotency_key(&headers)?;
    if !body.content.user_may_send() {
        return Err(ApiError::invalid(
            "content.type",
            "users send text; cards come from mini-apps",
        ));
    }
    body.content
        .validate()
        .map_err(|e| ApiError::invalid(&format!("content.{}", e.field), e.message))?;
    let conv = member_conversation_cached(&state, &id, &me).await?;
    let appended = state
        .store
        .append(NewMessage {
            conversation: conv,
            sender: Sender::User {
                id: me.id.clone(),
                username: me.username.to_string(),
            },
            content: body.content,
            idempotency_key: key,
            budget: None,
        })
        .await?;
    let status = if appended.duplicate {
        StatusCode::OK
    } else {
        if let Some(platform) = &state.platform {
            platform.message_posted(&me, &appended.message);
        }
        StatusCode::CREATED
    };
    Ok((status, Json(appended.message)))
}

/// Query of `GET /api/v1/conversations/{id}/messages`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    /// Only messages with a smaller seq.
    before: Option<i64>,
    /// Only messages with a larger seq (oldest first from there).
    after: Option<i64>,
    /// Page size, 1 to 500 (default 50).
    limit: Option<u32>,
}

/// A page of history, oldest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryPage {
    #[schema(value_type = Vec<crate::schemas::MessageDoc>)]
    messages: Vec<Message>,
}

#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", operation_id = "list_messages",
    params(crate::openapi::params::Conversation, HistoryParams), security(("session" = [])),
    responses((status = 200, body = HistoryPage), (status = 404, description = "No such conversation, or not a member"),
              (status = 422, description = "A limit out of range, or a negative cursor"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let limit = q.limit.unwrap_or(Limits::DEFAULT_PAGE);
    if limit == 0 || limit > Limits::MAX_PAGE {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {}", Limits::MAX_PAGE),
        ));
    }
    for (name, v) in [("before", q.before), ("after", q.after)] {
        if v.is_some_and(|v| v < 0) {
            return Err(ApiError::invalid(name, "must not be negative"));
        }
    }
    let conv = member_conversation(&state, &id, &me).await?;
    let messages = state
        .store
        .history(
            &conv.id,
            HistoryQuery {
                before: q.before,
                after: q.after,
                limit,
            },
        )
        .await?;
    Ok(Json(HistoryPage { messages }))
}
