//! Send budgets: a token bucket per (app, conversation) bounding how often an app may post
//! there, refilled continuously, taken from in a transaction under the bucket's lock.

use crate::{Result, Store};

impl Store {
    /// Takes one token from the (app, conversation) bucket: `capacity` tokens, refilled at
    /// `per_minute`. Returns the tokens left (whole) or `None` if the bucket is empty.
    pub async fn take_send_token(
        &self,
        app: &str,
        conversation: &str,
        capacity: i64,
        per_minute: i64,
    ) -> Result<Option<i64>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("budget:{app}:{conversation}"))
            .await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT milli_tokens, updated_at FROM send_budgets WHERE app_id = $1 AND conversation_id = $2",
        )
        .bind(app)
        .bind(conversation)
        .fetch_optional(&mut *tx)
        .await?;
        let full = capacity.saturating_mul(1000);
        let current = match row {
            None => full,
            Some((milli, at)) => {
                let refill = (now - at).max(0).saturating_mul(per_minute) / 60;
                (milli.saturating_add(refill)).min(full)
            }
        };
        if current < 1000 {
            return Ok(None);
        }
        let left = current - 1000;
        sqlx::query(
            "INSERT INTO send_budgets (app_id, conversation_id, milli_tokens, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, conversation_id)
             DO UPDATE SET milli_tokens = excluded.milli_tokens, updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(conversation)
        .bind(left)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(left / 1000))
    }

    /// Tokens left in the (app, conversation) bucket, without taking one.
    pub async fn send_tokens_left(
        &self,
        app: &str,
        conversation: &str,
        capacity: i64,
        per_minute: i64,
    ) -> Result<i64> {
        let now = minihost_core::now_millis();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT milli_tokens, updated_at FROM send_budgets WHERE app_id = $1 AND conversation_id = $2",
        )
        .bind(app)
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await?;
        let full = capacity.saturating_mul(1000);
        Ok(match row {
            None => capacity,
            Some((milli, at)) => {
                let refill = (now - at).max(0).saturating_mul(per_minute) / 60;
                milli.saturating_add(refill).min(full) / 1000
            }
        })
    }
}
