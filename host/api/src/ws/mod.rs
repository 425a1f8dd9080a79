//! Live delivery over WebSocket (`GET /api/v1/ws`). A session subscribes to the user's topics
//! FIRST, then serves commands from the client (one file per command: [`resume`], [`ack`]) and
//! events from the hub. Per conversation it remembers the last seq it sent: older or repeated
//! seqs are skipped and a gap is filled from the database, so a client never misses a message
//! and never sees one twice, whatever the order in which fan-out and backlog arrive.
//!
//! Protocol: the server sends `ready`; the client's first frame should be `resume` (with empty
//! `cursors` for a fresh start, and the name of its device to keep delivery cursors: see
//! [`resume`] and [`ack`]). Live events are held until that first frame (or one second),
//! so a backlog is always sent before anything newer. A client's frames are rate-limited (a
//! token bucket per connection): frames beyond it are dropped, and the client is told once per
//! episode with an `error` frame of code `rate_limited`.
//!
//! Close codes: [`CLOSE_REVOKED`] (4001) when the session was signed out or revoked, the
//! password changed or the account was disabled (the token no longer works); [`CLOSE_ACCOUNT_CHANGED`]
//! (4002) when the account's role changed (reconnect with the same token); [`CLOSE_LAGGED`]
//! (4008) when the client fell too far behind; [`CLOSE_RESTARTING`] (1012) when the node shuts
//! down. A revocation on this node or another node of the cluster closes at once; one made
//! elsewhere (`minihost admin` on the database) is noticed within
//! [`crate::ApiConfig::ws_session_check`].

mod ack;
mod resume;
pub mod ticket;

use crate::auth::{authenticate_session, bearer_token};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures_util::SinkExt as _;
use minihost_core::{ConversationId, Message};
use minihost_hub::{Event, Revocation, Subscriber, Topic};
use minihost_store::{HistoryQuery, User};
use serde::Deserialize;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ws", get(upgrade))
        .route("/api/v1/ws/tickets", axum::routing::post(ticket::issue))
}

#[derive(Deserialize)]
struct WsParams {
    token: Option<String>,
    /// A one-time ticket from `POST /api/v1/ws/tickets` (what browsers use).
    ticket: Option<String>,
}

/// Close code sent when the client fell too far behind: reconnect and resume.
const CLOSE_LAGGED: u16 = 4008;
/// Close code sent when the session ended (signed out, revoked, password changed, account
/// disabled): the token no longer works; sign in again.
pub const CLOSE_REVOKED: u16 = 4001;
/// Close code sent when the account changed (its role): reconnect with the same token.
pub const CLOSE_ACCOUNT_CHANGED: u16 = 4002;
/// Close code sent when the node shuts down (RFC 6455's "service restart"): reconnect, to
/// another node or to this one once it is back, and resume.
pub const CLOSE_RESTARTING: u16 = 1012;
/// How long live events are held for a client that sends no first frame.
const HOLD_LIVE: std::time::Duration = std::time::Duration::from_secs(1);
/// A resync waits a random part of this, so that a node's sessions do not all query the
/// database at the same moment (milliseconds).
const RESYNC_SPREAD_MS: u64 = 2_000;
/// Page size when reading a backlog or filling a gap.
const PAGE: u32 = 500;
/// Most queued events written to the socket together before a flush.
const DRAIN: usize = 64;

#[utoipa::path(get, path = "/api/v1/ws", operation_id = "websocket",
    security(("session" = []), ("session_query" = []), ("ws_ticket" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol; the server's first frame is `{\"type\": \"ready\"}`"),
              (status = 400, description = "Not a WebSocket handshake (`bad_request`), or a bad query string (`invalid_query`)"),
              (status = 426, description = "The connection cannot be upgraded (`upgrade_required`)"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<WsParams>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (session_id, user) = match (bearer_token(&headers), params.ticket) {
        (Some(token), _) => authenticate_session(&state, token).await?,
        (None, Some(ticket)) => {
            ticket::redeem(&state, &ticket)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "the WebSocket ticket is unknown, used or expired",
                ))?
        }
        (None, None) => {
            let token = params.token.ok_or(ApiError::Unauthorized(
                "missing session token (Authorization header, ?ticket= or ?token=)",
            ))?;
            authenticate_session(&state, &token).await?
        }
    };
    let cfg = state.config.clone();
    Ok(ws
        .read_buffer_size(cfg.ws_read_buffer)
        .write_buffer_size(cfg.ws_read_buffer)
        .max_write_buffer_size(cfg.ws_max_message * 4)
        .max_message_size(cfg.ws_max_message)
        .max_frame_size(cfg.ws_max_message)
        .on_upgrade(move |socket| async move {
            if let Err(e) = Session::start(state, session_id, user, socket).await {
                tracing::debug!(error = %e, "websocket session ended");
            }
        }))
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<minihost_store::StoreError> for SessionError {
    fn from(e: minihost_store::StoreError) -> Self {
        SessionError::Api(e.into())
    }
}

/// Commands a client sends, by `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Command {
    Resume(resume::Resume),
    Ack(ack::Ack),
}

pub(crate) struct Session {
    state: AppState,
    /// The public id of the sign-in session this connection was opened with.
    session_id: String,
    user: User,
    socket: WebSocket,
    /// Last seq sent, per conversation.
    sent: HashMap<ConversationId, i64>,
    /// The conversations the user is in (kept current by `joined`/`left` events).
    members: HashSet<ConversationId>,
    /// The device the client named in `resume`, whose delivery cursors its acks move.
    device: Option<String>,
    /// The client's frame budget.
    frames: FrameBucket,
    /// When to re-read from the database what this session follows (after `Event::Resync`).
    resync_at: Option<tokio::time::Instant>,
    /// Counts this session in the open-connections gauge while it lives.
    _open: OpenConnection,
}

/// One open WebSocket in the node's gauge, from the upgrade until the session ends.
struct OpenConnection(std::sync::Arc<minihost_metrics::Metrics>);

impl OpenConnection {
    fn new(metrics: std::sync::Arc<minihost_metrics::Metrics>) -> Self {
        metrics.ws_connections.inc();
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.ws_connections.dec();
    }
}

/// A token bucket of client frames.
struct FrameBucket {
    tokens: f64,
    per_second: f64,
    burst: f64,
    at: std::time::Instant,
    /// Whether the client was told it is being limited, in this episode.
    told: bool,
}

impl FrameBucket {
    fn new(per_second: u32, burst: u32) -> Self {
        FrameBucket {
            tokens: f64::from(burst),
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            at: std::time::Instant::now(),
            told: false,
        }
    }

    /// Takes a token if one is there.
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Session {
    async fn start(
        state: AppState,
        session_id: String,
        user: User,
        socket: WebSocket,
    ) -> Result<(), SessionError> {
        // Subscribe before reading anything, so nothing committed from now on can be missed.
        let sub = state.hub.subscriber();
        sub.subscribe(Topic::User(user.id.clone()));
        let members: HashSet<ConversationId> = state
            .store
            .conversation_ids_of(&user.id)
            .await?
            .into_iter()
            .collect();
        for conv in &members {
            sub.subscribe(Topic::Conversation(conv.clone()));
        }
        let config = state.config.clone();
        let open = OpenConnection::new(state.metrics.clone());
        let mut session = Session {
            state,
            session_id,
            user,
            socket,
            sent: HashMap::new(),
            members,
            device: None,
            frames: FrameBucket::new(config.ws_frames_per_second, config.ws_frame_burst),
            resync_at: None,
            _open: open,
        };
        session
            .send_json(&json!({"type": "ready", "user": session.user.id}))
            .await?;
        session.run(sub).await
    }

    async fn run(&mut self, mut sub: Subscriber) -> Result<(), SessionError> {
        // Live events wait in the hub queue until the client's first frame (normally `resume`)
        // or HOLD_LIVE, so that a resumed backlog is never overtaken by newer live messages.
        let mut holding = true;
        let hold = tokio::time::sleep(HOLD_LIVE);
        tokio::pin!(hold);
        let period = self
            .state
            .config
            .ws_session_check
            .max(Duration::from_millis(10));
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let draining = self.state.readiness.draining();
        tokio::pin!(draining);
        loop {
            let resync_at = self.resync_at;
            let resync = async move {
                match resync_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut hold, if holding => holding = false,
                () = resync, if !holding => {
                    self.resync_at = None;
                    self.resync().await?;
                }
                () = &mut draining => {
                    return self.close(CLOSE_RESTARTING, "server restarting; reconnect").await;
                }
                _ = check.tick() => {
                    let now = minihost_core::now_millis();
                    if !self.state.store.session_live(&self.session_id, now).await? {
                        return self.close(CLOSE_REVOKED, "session revoked").await;
                    }
                    if self.state.readiness.clustered() && !holding {
                        self.resync().await?;
                    }
                }
                incoming = self.socket.recv() => match incoming {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return Ok(()),
                    Some(Ok(frame @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => {
                        if !self.frames.take() {
                            if !self.frames.told {
                                self.frames.told = true;
                                self.error("rate_limited", "too many frames; slow down").await?;
                            }
                            continue;
                        }
                        self.frames.told = false;
                        match frame {
                            WsMessage::Text(text) => {
                                self.command(&text, &sub).await?;
                                holding = false;
                            }
                            _ => self.error("unsupported", "send JSON text frames").await?,
                        }
                    }
                    Some(Ok(_)) => {} // ping/pong are answered by the socket
                },
                event = sub.recv(), if !holding => match event {
                    Some(first) => {
                        if let Some((code, reason)) = self.events(first, &mut sub).await? {
                            return self.close(code, reason).await;
                        }
                    }
                    None => {
                        let close = CloseFrame {
                            code: CLOSE_LAGGED,
                            reason: Utf8Bytes::from_static("too far behind; reconnect and resume"),
                        };
                        let _ = self.socket.send(WsMessage::Close(Some(close))).await;
                        return Ok(());
                    }
                },
            }
        }
    }

    async fn command(&mut self, text: &str, sub: &Subscriber) -> Result<(), SessionError> {
        match serde_json::from_str::<Command>(text) {
            Ok(Command::Resume(r)) => r.run(self, sub).await,
            Ok(Command::Ack(a)) => a.run(self).await,
            Err(e) => self.error("malformed_command", &e.to_string()).await,
        }
    }

    /// Handles `first` and whatever else is queued behind it (up to [`DRAIN`] events), then
    /// writes the frames out together: one `send` per batch rather than one per frame. Returns
    /// the close code and reason when an event ends the session.
    async fn events(
        &mut self,
        first: Event,
        sub: &mut Subscriber,
    ) -> Result<Option<(u16, &'static str)>, SessionError> {
        let mut next = Some(first);
        let mut handled = 0;
        let mut ends = None;
        while let Some(event) = next.take() {
            match &event {
                Event::Revoked(what) if what.ends(&self.session_id) => {
                    ends = Some((CLOSE_REVOKED, "session revoked"));
                    break;
                }
                Event::Revoked(Revocation::AccountChanged) => {
                    ends = Some((CLOSE_ACCOUNT_CHANGED, "account changed; reconnect"));
                    break;
                }
                Event::Revoked(_) => {}
                _ => self.event(event, sub).await?,
            }
            handled += 1;
            if handled < DRAIN {
                next = sub.try_recv();
            }
        }
        self.socket.flush().await?;
        Ok(ends)
    }

    /// Handles one event; a message frame is queued on the socket, not flushed (see
    /// [`Self::events`]).
    async fn event(&mut self, event: Event, sub: &Subscriber) -> Result<(), SessionError> {
        match event {
            Event::Message { message, frame } => {
                let conv = &message.conversation;
                match self.sent.get(conv).copied() {
                    Some(last) if message.seq <= last => return Ok(()),
                    Some(last) if message.seq > last + 1 => {
                        self.backlog(conv.clone(), last, Some(message.seq)).await?;
                    }
                    _ => {}
                }
                let text = Utf8Bytes::try_from(frame)
                    .map_err(|e| ApiError::Internal(format!("frame: {e}")))?;
                self.socket.feed(WsMessage::Text(text)).await?;
                self.state.metrics.messages_delivered.inc();
                self.sent.insert(conv.clone(), message.seq);
            }
            Event::Joined(conv) => {
                sub.subscribe(Topic::Conversation(conv.clone()));
                self.members.insert(conv.clone());
                self.send_json(&json!({"type": "joined", "conversation": conv}))
                    .await?;
            }
            Event::Left(conv) => {
                sub.unsubscribe(&Topic::Conversation(conv.clone()));
                self.sent.remove(&conv);
                self.members.remove(&conv);
                self.send_json(&json!({"type": "left", "conversation": conv}))
                    .await?;
            }
            Event::Json(bytes) => {
                let text = Utf8Bytes::try_from(bytes)
                    .map_err(|e| ApiError::Internal(format!("frame: {e}")))?;
                self.socket.send(WsMessage::Text(text)).await?;
            }
            // Every session of the node gets it at once: spread their reads of the database.
            Event::Resync => {
                let spread = u64::from_str_radix(&minihost_core::ids::random_hex(4), 16)
                    .unwrap_or(0)
                    % RESYNC_SPREAD_MS;
                self.resync_at
                    .get_or_insert(tokio::time::Instant::now() + Duration::from_millis(spread));
            }
            // Handled in `run`, where they end the session.
            Event::Revoked(_) => {}
        }
        Ok(())
    }

    /// Events may have been lost on their way to this node: every conversation this session
    /// has a position in gets what was stored after it (one query for the user's last seqs,
    /// then a read only where something is newer). What the client never resumed nor was sent
    /// has no position, and starts with the next live message as before.
    async fn resync(&mut self) -> Result<(), SessionError> {
        if self.sent.is_empty() {
            return Ok(());
        }
        let last_seqs = self.state.store.last_seqs_of(&self.user.id).await?;
        for (conv, last) in last_seqs {
            if let Some(&sent) = self.sent.get(&conv)
                && last > sent
            {
                self.backlog(conv, sent, None).await?;
            }
        }
        Ok(())
    }

    /// Sends every stored message of `conv` after `after` (and before `before`), in order.
    pub(crate) async fn backlog(
        &mut self,
        conv: ConversationId,
        after: i64,
        before: Option<i64>,
    ) -> Result<(), SessionError> {
        let mut cursor = after;
        loop {
            let page = self
                .state
                .store
                .history(
                    &conv,
                    HistoryQuery {
                        before,
                        after: Some(cursor),
                        limit: PAGE,
                    },
                )
                .await?;
            let full = page.len() == PAGE as usize;
            for m in page {
                cursor = m.seq;
                self.send_message(&m).await?;
            }
            self.sent.insert(conv.clone(), cursor);
            if !full {
                return Ok(());
            }
        }
    }

    async fn send_message(&mut self, m: &Message) -> Result<(), SessionError> {
        self.send_json(&json!({
            "type": "message", "conversation": m.conversation, "seq": m.seq, "message": m
        }))
        .await?;
        self.state.metrics.messages_delivered.inc();
        Ok(())
    }

    pub(crate) async fn send_json(&mut self, v: &serde_json::Value) -> Result<(), SessionError> {
        self.socket
            .send(WsMessage::Text(Utf8Bytes::from(v.to_string())))
            .await?;
        Ok(())
    }

    /// Sends a close frame with `code` and `reason`; the session ends.
    async fn close(&mut self, code: u16, reason: &'static str) -> Result<(), SessionError> {
        let close = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = self.socket.send(WsMessage::Close(Some(close))).await;
        Ok(())
    }

    pub(crate) async fn error(&mut self, code: &str, message: &str) -> Result<(), SessionError> {
        self.send_json(&json!({"type": "error", "code": code, "message": message}))
            .await
    }
}
