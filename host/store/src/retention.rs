//! Retention of the records that grow with use: each app's invocation log and each user's
//! privacy record are bounded by age and by count. Pruning deletes in small batches (each its
//! own short statement), so it never holds SQLite's write lock for long.

use crate::{Result, Store};
use minihost_core::UnixMillis;
use sqlx::{AssertSqlSafe, Row};

/// How much of a record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// Entries older than this many milliseconds are deleted.
    pub max_age_ms: i64,
    /// Only this many newest entries are kept per owner (app or user).
    pub max_count: u32,
}

/// Rows deleted per statement.
const BATCH: u64 = 1000;

/// A pruned table: its name, the column naming each entry's owner, its time column.
struct Table {
    name: &'static str,
    owner: &'static str,
    at: &'static str,
}

const INVOCATIONS: Table = Table {
    name: "invocations",
    owner: "app_id",
    at: "created_at",
};

const PRIVACY: Table = Table {
    name: "privacy_log",
    owner: "user_id",
    at: "at",
};

impl Store {
    /// Deletes invocation log entries older than `keep.max_age_ms` before `now`, and each app's
    /// entries beyond its `keep.max_count` newest. Returns how many were deleted.
    pub async fn prune_invocations(&self, now: UnixMillis, keep: Keep) -> Result<u64> {
        self.prune(&INVOCATIONS, now, keep).await
    }

    /// Deletes privacy record lines older than `keep.max_age_ms` before `now`, and each user's
    /// lines beyond their `keep.max_count` newest. Returns how many were deleted.
    pub async fn prune_privacy(&self, now: UnixMillis, keep: Keep) -> Result<u64> {
        self.prune(&PRIVACY, now, keep).await
    }

    async fn prune(&self, t: &Table, now: UnixMillis, keep: Keep) -> Result<u64> {
        let Table { name, owner, at } = t;
        let cutoff = now.saturating_sub(keep.max_age_ms);
        let mut deleted = self
            .delete_batched(name, &format!("{at} < $1"), |q| q.bind(cutoff))
            .await?;
        // Owners over the count, then for each the oldest entry it keeps: everything older goes.
        let over = sqlx::query(AssertSqlSafe(format!(
            "SELECT {owner} AS owner FROM {name} GROUP BY {owner} HAVING COUNT(*) > $1"
        )))
        .bind(i64::from(keep.max_count))
        .fetch_all(&self.pool)
        .await?;
        for row in over {
            let who: String = row.try_get("owner")?;
            if keep.max_count == 0 {
                deleted += self
                    .delete_batched(name, &format!("{owner} = $1"), |q| q.bind(who.clone()))
                    .await?;
                continue;
            }
            let oldest_kept = sqlx::query(AssertSqlSafe(format!(
                "SELECT {at} AS at, id FROM {name} WHERE {owner} = $1
                  ORDER BY {at} DESC, id DESC LIMIT 1 OFFSET $2"
            )))
            .bind(&who)
            .bind(i64::from(keep.max_count - 1))
            .fetch_optional(&self.pool)
            .await?;
            let Some(oldest_kept) = oldest_kept else {
                continue;
            };
            let kept_at: i64 = oldest_kept.try_get("at")?;
            let kept_id: String = oldest_kept.try_get("id")?;
            deleted += self
                .delete_batched(
                    name,
                    &format!("{owner} = $1 AND ({at} < $2 OR ({at} = $2 AND id < $3))"),
                    |q| q.bind(who.clone()).bind(kept_at).bind(kept_id.clone()),
                )
                .await?;
        }
        Ok(deleted)
    }

    /// Deletes the rows of `table` matching `filter`, at most [`BATCH`] per statement, until
    /// none is left; `bind` binds the filter's parameters.
    async fn delete_batched<'q>(
        &self,
        table: &str,
        filter: &str,
        bind: impl Fn(
            sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {filter} LIMIT {BATCH})"
        );
        let mut total = 0;
        loop {
            let n = bind(sqlx::query(AssertSqlSafe(sql.clone())))
                .execute(&self.write_pool)
                .await?
                .rows_affected();
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }
}
