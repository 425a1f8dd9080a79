//! One-time WebSocket tickets: a ticket's hash, the session it opens a socket for, and its
//! expiry. Any node redeems what any node issued, and a redemption deletes the row, so a ticket
//! opens one socket in the whole deployment.

use crate::sessions::hash_token;
use crate::users::{JOINED_USER_COLUMNS, User, user_from_row};
use crate::{Result, Store};
use minihost_core::UnixMillis;
use sqlx::{AssertSqlSafe, Row};

impl Store {
    /// Records `ticket` for the session with public id `session`, until `expires_at`; expired
    /// tickets are deleted on the way.
    pub async fn issue_ws_ticket(
        &self,
        ticket: &str,
        session: &str,
        expires_at: UnixMillis,
        now: UnixMillis,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM ws_tickets WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ws_tickets (ticket_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(hash_token(ticket))
        .bind(session)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up `ticket`: the public id and user of its session, if the ticket was issued, is
    /// unused and unexpired, and the session is still live.
    pub async fn redeem_ws_ticket(
        &self,
        ticket: &str,
        now: UnixMillis,
    ) -> Result<Option<(String, User)>> {
        let row = sqlx::query(
            "DELETE FROM ws_tickets WHERE ticket_hash = $1 RETURNING session_id, expires_at",
        )
        .bind(hash_token(ticket))
        .fetch_optional(&self.write_pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let session: String = row.try_get("session_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT s.id AS session_id, {JOINED_USER_COLUMNS}
               FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                AND u.disabled_at IS NULL"
        )))
        .bind(&session)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((session, user_from_row(&row)?.user))),
            None => Ok(None),
        }
    }
}
