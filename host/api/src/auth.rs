//! Authentication: bearer session tokens (the [`AuthUser`] extractor), and async wrappers that
//! run `minihost_core::secret`'s argon2id hashing of passwords and PINs off the async threads.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use minihost_core::secret::{self, SecretError};
use minihost_store::User;

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
    state
        .store
        .session_user(token, minihost_core::now_millis())
        .await?
        .ok_or(ApiError::Unauthorized(
            "the session token is invalid, expired or revoked",
        ))
}

/// The signed-in user of a request on the hot send path, possibly from the node's
/// short-lived cache (see [`crate::cache`]). Handlers that decide on roles use [`AuthUser`].
pub struct CachedAuthUser(pub User);

impl FromRequestParts<AppState> for CachedAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer <session token>",
        ))?;
        if let Some(user) = state.cache.session(token) {
            return Ok(CachedAuthUser(user));
        }
        let user = authenticate(state, token).await?;
        state.cache.put_session(token, user.clone());
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

/// Runs a hashing function of [`minihost_core::secret`] off the async threads.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// An argon2id PHC string for `password` ([`secret::hash_password`]).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    off_thread(move || secret::hash_password(&password)).await
}

/// An argon2id PHC string for a payment PIN ([`secret::hash_pin`]: cheap parameters).
pub async fn hash_pin(pin: String) -> Result<String, ApiError> {
    off_thread(move || secret::hash_pin(&pin)).await
}

/// Whether `pin` matches the stored PIN hash ([`secret::verify_pin`]).
pub async fn verify_pin(pin: String, hash: String) -> Result<bool, ApiError> {
    off_thread(move || secret::verify_pin(&pin, &hash)).await
}

/// Whether `password` matches `hash` (or the dummy hash, taking as long, when `hash` is
/// `None`): [`secret::verify_password`].
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    off_thread(move || secret::verify_password(&password, hash.as_deref())).await
}

/// A new session token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_session_token() -> String {
    format!("mhs_{}", minihost_core::ids::random_hex(32))
}
