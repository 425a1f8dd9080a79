//! One-time WebSocket tickets (`POST /api/v1/ws/tickets`), so that a browser, which cannot set
//! an `Authorization` header on a WebSocket, never puts its session token in a URL (where
//! proxies and logs keep it): it trades the token for a ticket that opens one WebSocket, once,
//! within [`TICKET_TTL`], on any node of the deployment. Tickets are kept in the database by
//! hash (the store's `ws_tickets`), bound to the session's public id, never to its token.

use crate::auth::AuthSession;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use minihost_store::User;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a ticket can be redeemed after it was issued.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// The prefix of a ticket (no other secret shares it).
const PREFIX: &str = "mhwt_";

/// The session (public id and user) `ticket` opens a socket for, using it up; `None` if it is
/// unknown, used or expired, or its session ended.
pub(crate) async fn redeem(
    state: &AppState,
    ticket: &str,
) -> Result<Option<(String, User)>, ApiError> {
    Ok(state
        .store
        .redeem_ws_ticket(ticket, minihost_core::now_millis())
        .await?)
}

/// A ticket for one WebSocket.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ticket {
    /// Open `GET /api/v1/ws?ticket=<ticket>` with it, once.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

#[utoipa::path(post, path = "/api/v1/ws/tickets", operation_id = "websocket_ticket",
    security(("session" = [])),
    responses((status = 201, body = Ticket, description = "A one-time ticket for `GET /api/v1/ws?ticket=`, valid for 30 s on any node"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let ticket = format!("{PREFIX}{}", minihost_core::ids::random_hex(24));
    let now = minihost_core::now_millis();
    let ttl = i64::try_from(TICKET_TTL.as_millis()).unwrap_or(i64::MAX);
    state
        .store
        .issue_ws_ticket(&ticket, &session.id, now.saturating_add(ttl), now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Ticket {
            ticket,
            expires_in: TICKET_TTL.as_secs(),
        }),
    ))
}
