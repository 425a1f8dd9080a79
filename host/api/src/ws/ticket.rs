//! One-time WebSocket tickets (`POST /api/v1/ws/tickets`), so that a browser, which cannot set
//! an `Authorization` header on a WebSocket, never puts its session token in a URL (where
//! proxies and logs keep it): it trades the token for a ticket that opens one WebSocket, once,
//! within [`TICKET_TTL`], on this node. Tickets live in this node's memory only.

use crate::auth::AuthSession;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How long a ticket can be redeemed after it was issued.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Tickets held at once; beyond it, expired ones are dropped and then the oldest refused.
const MAX_TICKETS: usize = 100_000;
/// The prefix of a ticket (no other secret shares it).
const PREFIX: &str = "mhwt_";

/// The tickets issued by this node and not yet redeemed: ticket → (session token, issued at).
#[derive(Default)]
pub struct Tickets {
    open: Mutex<HashMap<String, (String, Instant)>>,
}

impl Tickets {
    /// A new ticket for the session `token`, or `None` when the node holds too many.
    fn issue(&self, token: &str) -> Option<String> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= MAX_TICKETS {
            open.retain(|_, (_, at)| at.elapsed() < TICKET_TTL);
            if open.len() >= MAX_TICKETS {
                return None;
            }
        }
        let ticket = format!("{PREFIX}{}", minihost_core::ids::random_hex(24));
        open.insert(ticket.clone(), (token.to_owned(), Instant::now()));
        Some(ticket)
    }

    /// The session token of `ticket`, which is used up; `None` if unknown, used or expired.
    pub(crate) fn redeem(&self, ticket: &str) -> Option<String> {
        let (token, at) = self.open.lock().ok()?.remove(ticket)?;
        (at.elapsed() < TICKET_TTL).then_some(token)
    }
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
    responses((status = 201, body = Ticket, description = "A one-time ticket for `GET /api/v1/ws?ticket=`, valid for 30 s on this node"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let ticket = state
        .tickets
        .issue(&session.token)
        .ok_or(ApiError::Unavailable("too many WebSocket tickets; retry"))?;
    Ok((
        StatusCode::CREATED,
        Json(Ticket {
            ticket,
            expires_in: TICKET_TTL.as_secs(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::Tickets;

    #[test]
    fn a_ticket_opens_once() {
        let tickets = Tickets::default();
        let t = tickets.issue("mhs_token").unwrap_or_default();
        assert!(t.starts_with("mhwt_"));
        assert_eq!(tickets.redeem(&t).as_deref(), Some("mhs_token"));
        assert_eq!(tickets.redeem(&t), None);
        assert_eq!(tickets.redeem("mhwt_unknown"), None);
    }
}
