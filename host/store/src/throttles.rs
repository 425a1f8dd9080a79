//! Throttle buckets shared by every node on one database: a token bucket per (scope, key),
//! `burst` tokens, one more every `refill_ms`, taken by one conditional `UPDATE` (the row lock
//! decides between nodes; no read-modify-write). The API's throttles use them when nodes are
//! clustered; a single node keeps its buckets in memory.

use crate::{Result, Store};
use minihost_core::UnixMillis;
use sqlx::Row;

/// The shape of a bucket.
#[derive(Debug, Clone, Copy)]
pub struct BucketShape {
    /// Tokens at most (and at first).
    pub burst: f64,
    /// Milliseconds per token refilled.
    pub refill_ms: f64,
}

/// A bucket's tokens at `$3` (now), from its row: `tokens` plus what refilled since `at_ms`,
/// capped at the burst (`$5`); `$4` is the refill in milliseconds.
const REFILLED: &str = "(CASE WHEN tokens + ($3 - at_ms) / $4 > $5 THEN $5 \
                        ELSE tokens + ($3 - at_ms) / $4 END)";

impl Store {
    /// Takes a token from the bucket `(scope, key)`: `None` when taken, else how many
    /// milliseconds until one is there.
    pub async fn throttle_take(
        &self,
        scope: &str,
        key: &str,
        shape: BucketShape,
        now: UnixMillis,
    ) -> Result<Option<i64>> {
        sqlx::query(
            "INSERT INTO throttle_buckets (scope, bucket_key, tokens, at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, bucket_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(shape.burst)
        .bind(now)
        .execute(&self.write_pool)
        .await?;
        let taken = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE throttle_buckets SET tokens = {REFILLED} - 1, at_ms = $3
              WHERE scope = $1 AND bucket_key = $2 AND {REFILLED} >= 1
              RETURNING at_ms"
        )))
        .bind(scope)
        .bind(key)
        .bind(now)
        .bind(shape.refill_ms)
        .bind(shape.burst)
        .fetch_optional(&self.write_pool)
        .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFILLED} AS tokens FROM throttle_buckets WHERE scope = $1 AND bucket_key = $2"
        )))
        .bind(scope)
        .bind(key)
        .bind(now)
        .bind(shape.refill_ms)
        .bind(shape.burst)
        .fetch_optional(&self.pool)
        .await?;
        let tokens: f64 = match row {
            Some(row) => row.try_get("tokens")?,
            None => 0.0,
        };
        // At most one refill period: a float well inside i64.
        #[allow(clippy::cast_possible_truncation)]
        let wait = ((1.0 - tokens).clamp(0.0, 1.0) * shape.refill_ms).ceil() as i64;
        Ok(Some(wait.max(1)))
    }

    /// Gives a token back to the bucket `(scope, key)` (the attempt succeeded, or never ran).
    pub async fn throttle_give_back(
        &self,
        scope: &str,
        key: &str,
        shape: BucketShape,
        now: UnixMillis,
    ) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE throttle_buckets
                SET tokens = CASE WHEN {REFILLED} + 1 > $5 THEN $5 ELSE {REFILLED} + 1 END,
                    at_ms = $3
              WHERE scope = $1 AND bucket_key = $2"
        )))
        .bind(scope)
        .bind(key)
        .bind(now)
        .bind(shape.refill_ms)
        .bind(shape.burst)
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// Deletes the buckets of `scope` untouched since `before` (full again: the same as no
    /// bucket).
    pub async fn throttle_prune(&self, scope: &str, before: UnixMillis) -> Result<u64> {
        let done = sqlx::query("DELETE FROM throttle_buckets WHERE scope = $1 AND at_ms < $2")
            .bind(scope)
            .bind(before)
            .execute(&self.write_pool)
            .await?;
        Ok(done.rows_affected())
    }
}
