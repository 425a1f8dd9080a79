//! Authentication: bearer session tokens (the [`AuthUser`] and [`AuthSession`] extractors), the
//! client's address ([`ClientAddr`], what throttles count by), and async wrappers that run
//! `minihost_core::secret`'s argon2id hashing of passwords and PINs off the async threads, in
//! one of the node's bounded hash slots ([`crate::throttle::HashSlots`]).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use minihost_core::secret::{self, SecretError};
use minihost_store::User;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The signed-in user of a request.
pub struct AuthUser(pub User);

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The user a session token belongs to, or 401.
pub async fn authenticate(state: &AppState, token: &str) -> Result<User, ApiError> {
    authenticate_session(state, token).await.map(|(_, u)| u)
}

/// The session id and user of a session token, or 401.
pub async fn authenticate_session(
    state: &AppState,
    token: &str,
) -> Result<(String, User), ApiError> {
    state
        .store
        .session(token, minihost_core::now_millis())
        .await?
        .ok_or(ApiError::Unauthorized(
            "the session token is invalid, expired or revoked",
        ))
}

/// The signed-in session of a request: its public id, its token and its user (for the routes
/// that manage sessions).
pub struct AuthSession {
    /// The session's public id.
    pub id: String,
    /// The bearer token.
    pub token: String,
    /// Its user.
    pub user: User,
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <session token>",
        ))?;
        let (id, user) = authenticate_session(state, token).await?;
        Ok(AuthSession {
            id,
            token: token.to_owned(),
            user,
        })
    }
}

/// The client's address as throttles count it: the TCP peer's IP (behind a reverse proxy, the
/// proxy's), IPv4-mapped IPv6 as IPv4, and IPv6 by its /64 (one host usually holds a whole
/// /64). Unspecified when the server did not record the peer (routers served without
/// connection info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The throttle key of this address.
    pub fn key(&self) -> String {
        self.0.to_string()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| {
                c.0.ip().to_canonical()
            });
        Ok(ClientAddr(match ip {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        }))
    }
}

/// The signed-in user of a request on the hot send path, possibly from the node's
/// short-lived cache (see [`crate::cache`]). Handlers that decide on roles use [`AuthUser`].
pub struct CachedAuthUser(pub std::sync::Arc<User>);

impl FromRequestParts<AppState> for CachedAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <session token>",
        ))?;
        if let Some((_, user)) = state.cache.session(token) {
            return Ok(CachedAuthUser(user));
        }
        let (id, user) = authenticate_session(state, token).await?;
        let user = std::sync::Arc::new(user);
        state.cache.put_session(token, id, user.clone());
        Ok(CachedAuthUser(user))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <session token>",
        ))?;
        authenticate(state, token).await.map(AuthUser)
    }
}

/// Runs a hashing function of [`minihost_core::secret`] off the async threads, in one of the
/// node's hash slots (held until the hash is done, even if the request is given up).
async fn off_thread<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, ApiError> {
    let slot = state.guards.hashes.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let out = f();
        drop(slot);
        out
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// An argon2id PHC string for `password` ([`secret::hash_password`]).
pub async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    off_thread(state, move || secret::hash_password(&password)).await
}

/// An argon2id PHC string for a payment PIN ([`secret::hash_pin`]: cheap parameters).
pub async fn hash_pin(state: &AppState, pin: String) -> Result<String, ApiError> {
    off_thread(state, move || secret::hash_pin(&pin)).await
}

/// Whether `pin` matches the stored PIN hash ([`secret::verify_pin`]).
pub async fn verify_pin(state: &AppState, pin: String, hash: String) -> Result<bool, ApiError> {
    off_thread(state, move || secret::verify_pin(&pin, &hash)).await
}

/// Whether `password` matches `hash` (or the dummy hash, taking as long, when `hash` is
/// `None`): [`secret::verify_password`].
pub async fn verify_password(
    state: &AppState,
    password: String,
    hash: Option<String>,
) -> Result<bool, ApiError> {
    off_thread(state, move || {
        secret::verify_password(&password, hash.as_deref())
    })
    .await
}

/// A new session token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_session_token() -> String {
    format!("mhs_{}", minihost_core::ids::random_hex(32))
}
