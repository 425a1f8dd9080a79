//! Sign-in sessions. Only a SHA-256 hash of each bearer token is stored, so a leaked database
//! does not leak live sessions.

use crate::users::{User, user_from_row};
use crate::{Result, Store};
use minihost_core::{UnixMillis, UserId};
use sha2::{Digest, Sha256};

/// The stored form of a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Records a new session for `user` that expires at `expires_at`.
    pub async fn create_session(
        &self,
        token: &str,
        user: &UserId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(hash_token(token))
        .bind(user.as_str())
        .bind(minihost_core::now_millis())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user a live (unexpired, unrevoked) session token belongs to.
    pub async fn session_user(&self, token: &str, now: UnixMillis) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.role, u.password_hash
               FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(hash_token(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?.map(|u| u.user))
    }

    /// Revokes a session; later uses of the token fail. Returns whether it was live.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(minihost_core::now_millis())
        .bind(hash_token(token))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
