//! Consent requests waiting for a user's answer (per user and app, the request as the platform
//! serialised it), so that any node lists them and takes the answer. Taking one deletes it.

use crate::{Result, Store};
use minihost_core::{UnixMillis, UserId};
use sqlx::Row;

impl Store {
    /// Records (or replaces) the request waiting for `user`'s answer about `app`.
    pub async fn put_consent_request(
        &self,
        user: &UserId,
        app: &str,
        request: &str,
        now: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consent_requests (user_id, app_id, request, created_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, app_id)
             DO UPDATE SET request = excluded.request, created_at = excluded.created_at",
        )
        .bind(user.as_str())
        .bind(app)
        .bind(request)
        .bind(now)
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// Takes (deletes) the request waiting for `user`'s answer about `app`, if any.
    pub async fn take_consent_request(&self, user: &UserId, app: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "DELETE FROM consent_requests WHERE user_id = $1 AND app_id = $2 RETURNING request",
        )
        .bind(user.as_str())
        .bind(app)
        .fetch_optional(&self.write_pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("request")?),
            None => None,
        })
    }

    /// The requests waiting for `user`, oldest first.
    pub async fn consent_requests_of(&self, user: &UserId) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT request FROM consent_requests WHERE user_id = $1 ORDER BY created_at, app_id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("request")?)).collect()
    }

    /// Deletes every request of `app` (it was suspended).
    pub async fn drop_consent_requests(&self, app: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM consent_requests WHERE app_id = $1")
            .bind(app)
            .execute(&self.write_pool)
            .await?;
        Ok(done.rows_affected())
    }
}
