//! Authentication: bearer session tokens (the [`AuthUser`] extractor) and password hashing with
//! argon2id, run off the async threads.

use crate::error::ApiError;
use crate::state::AppState;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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

/// An argon2id PHC string for `password`.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt_bytes = minihost_core::ids::random_bytes(16);
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("hash: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
}

/// argon2id parameters for payment PINs: 1 MiB and one pass (about a millisecond), not the
/// password defaults (19 MiB, two passes). A six-digit PIN has a million values whatever the
/// hash costs, so what protects it is the lockout after five wrong tries (in the store) and the
/// database's confidentiality; a cheap hash keeps confirming a payment fast.
fn pin_hasher() -> Result<Argon2<'static>, ApiError> {
    let params = argon2::Params::new(1024, 1, 1, None)
        .map_err(|e| ApiError::Internal(format!("PIN hash parameters: {e}")))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// An argon2id PHC string for a payment PIN.
pub async fn hash_pin(pin: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&minihost_core::ids::random_bytes(16))
            .map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
        pin_hasher()?
            .hash_password(pin.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("hash: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hash task: {e}")))?
}

/// Whether `pin` matches the stored PIN hash (whose PHC string carries its parameters).
pub async fn verify_pin(pin: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::Internal(format!("stored PIN hash: {e}")))?;
        Ok(pin_hasher()?
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?
}

/// A hash of a password nobody has, verified when the username is unknown so that sign-in takes
/// as long for unknown users as for wrong passwords.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zb5bU2bS3vX8yqL0pYQZ7cU1yR8t8dX2oVpXh3yQ5nE";

/// Whether `password` matches `hash` (or the dummy hash, when `hash` is `None`).
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::Internal(format!("stored hash: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && ok)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verify task: {e}")))?
}

/// A new session token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_session_token() -> String {
    format!("mhs_{}", minihost_core::ids::random_hex(32))
}
