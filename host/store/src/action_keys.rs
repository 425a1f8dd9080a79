//! Idempotency keys of card button presses: a person's press sent again with the same key
//! (after its answer was lost) reaches the app once. A key is claimed before the press is
//! handed to the app and released if that fails, so a retry of a press that never arrived is
//! not swallowed; keys are forgotten [`ACTION_KEY_TTL_MS`] after their claim (deleted on the
//! way by later claims).

use crate::{Result, Store, StoreError};
use minihost_core::UnixMillis;
use sqlx::Row;

/// How long a claimed key is remembered: a day.
pub const ACTION_KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// What claiming a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionClaim {
    /// The key is new: hand the press to the app.
    New,
    /// The same press was claimed with this key before: answer as the first time, do nothing.
    Repeat,
}

impl Store {
    /// Claims `key` for `user`'s press on `message`, whose body hashes to `body_hash`. A key
    /// claimed before for another body is [`StoreError::IdempotencyKeyReused`].
    pub async fn claim_action_key(
        &self,
        user: &str,
        message: &str,
        key: &str,
        body_hash: &str,
        now: UnixMillis,
    ) -> Result<ActionClaim> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM action_keys WHERE created_at <= $1")
            .bind(now.saturating_sub(ACTION_KEY_TTL_MS))
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO action_keys (user_id, message_id, idempotency_key, body_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, message_id, idempotency_key) DO NOTHING",
        )
        .bind(user)
        .bind(message)
        .bind(key)
        .bind(body_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let claim = if inserted == 1 {
            ActionClaim::New
        } else {
            let first: String = sqlx::query(
                "SELECT body_hash FROM action_keys
                  WHERE user_id = $1 AND message_id = $2 AND idempotency_key = $3",
            )
            .bind(user)
            .bind(message)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?
            .try_get("body_hash")?;
            if first != body_hash {
                return Err(StoreError::IdempotencyKeyReused);
            }
            ActionClaim::Repeat
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Forgets a key claimed by [`Store::claim_action_key`] (the press did not reach the app,
    /// so sending it again may try again).
    pub async fn release_action_key(&self, user: &str, message: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM action_keys
              WHERE user_id = $1 AND message_id = $2 AND idempotency_key = $3",
        )
        .bind(user)
        .bind(message)
        .bind(key)
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }
}
