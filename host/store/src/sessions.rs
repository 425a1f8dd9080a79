//! Sign-in sessions. Only a SHA-256 hash of each bearer token is stored, so a leaked database
//! does not leak live sessions. Each session also has a public id (`ses_...`) by which its user
//! lists and revokes it; the id never lets anyone use the session.

use crate::users::{JOINED_USER_COLUMNS, User, user_from_row};
use crate::{Result, Store};
use minihost_core::{UnixMillis, UserId};
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

/// The stored form of a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A live session as its user sees it in the list (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The public id.
    pub id: String,
    /// When it was signed in.
    pub created_at: UnixMillis,
    /// When it expires.
    pub expires_at: UnixMillis,
}

impl Store {
    /// Records a new session for `user` that expires at `expires_at`; returns its public id.
    pub async fn create_session(
        &self,
        token: &str,
        user: &UserId,
        expires_at: UnixMillis,
    ) -> Result<String> {
        let id = format!("ses_{}", minihost_core::ids::random_hex(12));
        sqlx::query(
            "INSERT INTO sessions (token_hash, id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash_token(token))
        .bind(&id)
        .bind(user.as_str())
        .bind(minihost_core::now_millis())
        .bind(expires_at)
        .execute(&self.write_pool)
        .await?;
        Ok(id)
    }

    /// The user a live (unexpired, unrevoked, not disabled) session token belongs to.
    pub async fn session_user(&self, token: &str, now: UnixMillis) -> Result<Option<User>> {
        Ok(self.session(token, now).await?.map(|(_, user)| user))
    }

    /// The public id and user of a live (unexpired, unrevoked) session token whose account is
    /// not disabled.
    pub async fn session(&self, token: &str, now: UnixMillis) -> Result<Option<(String, User)>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT s.id AS session_id, {JOINED_USER_COLUMNS}
               FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                AND u.disabled_at IS NULL"
        )))
        .bind(hash_token(token))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id: String = row.try_get("session_id")?;
        Ok(Some((id, user_from_row(&row)?.user)))
    }

    /// Whether the session with this public id is still live (for connections that outlive a
    /// request).
    pub async fn session_live(&self, id: &str, now: UnixMillis) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS live FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                AND u.disabled_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The live sessions of `user`, newest first.
    pub async fn sessions_of(&self, user: &UserId, now: UnixMillis) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id, created_at, expires_at FROM sessions
              WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
              ORDER BY created_at DESC, id",
        )
        .bind(user.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionInfo {
                    id: r.try_get("id")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes a session; later uses of the token fail. Returns whether it was live.
    pub async fn revoke_session(&self, token: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(minihost_core::now_millis())
        .bind(hash_token(token))
        .execute(&self.write_pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes `user`'s session with public id `id`. Returns whether it was live (a session of
    /// another user is never touched).
    pub async fn revoke_session_id(&self, user: &UserId, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
              WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
        )
        .bind(minihost_core::now_millis())
        .bind(id)
        .bind(user.as_str())
        .execute(&self.write_pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every live session of `user` but the one with public id `keep`; returns how
    /// many were revoked.
    pub async fn revoke_sessions_of(&self, user: &UserId, keep: Option<&str>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
              WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
        )
        .bind(minihost_core::now_millis())
        .bind(user.as_str())
        .bind(keep.unwrap_or(""))
        .execute(&self.write_pool)
        .await?;
        Ok(done.rows_affected())
    }
}
