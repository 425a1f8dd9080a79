//! App timers: a `timer` event an app asked for later, per (app, conversation, key). Setting a
//! key again moves it. A node claims a due timer with a conditional update of its lease (so two
//! nodes never run the same firing at once) and deletes it after its event ran, unless the app
//! set it again meanwhile; a claimed timer whose node died is due again when its lease ends.

use crate::Result;
use crate::db::Store;
use minihost_core::{UnixMillis, UserId};
use sqlx::Row;

/// A timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The app.
    pub app_id: String,
    /// Where it fires.
    pub conversation_id: String,
    /// The app's key for it.
    pub key: String,
    /// On whose behalf (the user of the event that set it).
    pub user_id: UserId,
    /// When it is due, ms.
    pub due_at_ms: UnixMillis,
    /// How many times a node has claimed it.
    pub attempts: i64,
}

/// What setting a timer asks for.
#[derive(Debug, Clone)]
pub struct NewTimer<'a> {
    /// The app.
    pub app_id: &'a str,
    /// Where it fires.
    pub conversation_id: &'a str,
    /// The app's key.
    pub key: &'a str,
    /// On whose behalf.
    pub user_id: &'a UserId,
    /// When, ms.
    pub due_at_ms: UnixMillis,
}

const TIMER_COLUMNS: &str =
    "app_id, conversation_id, timer_key, user_id, due_at, CAST(attempts AS BIGINT)";

fn timer_from_row(r: &sqlx::any::AnyRow) -> Result<Timer> {
    Ok(Timer {
        app_id: r.try_get(0)?,
        conversation_id: r.try_get(1)?,
        key: r.try_get(2)?,
        user_id: UserId::from_string(r.try_get::<String, _>(3)?),
        due_at_ms: r.try_get(4)?,
        attempts: r.try_get(5)?,
    })
}

impl Store {
    /// Sets (or moves) a timer, unless the app already has `max_pending` other timers pending:
    /// `Ok(false)` then. The count and the write share one transaction under the app's lock.
    pub async fn set_timer(&self, new: NewTimer<'_>, max_pending: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("timers:{}", new.app_id))
            .await?;
        let (others,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM app_timers
              WHERE app_id = $1 AND NOT (conversation_id = $2 AND timer_key = $3)",
        )
        .bind(new.app_id)
        .bind(new.conversation_id)
        .bind(new.key)
        .fetch_one(&mut *tx)
        .await?;
        if others >= max_pending {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO app_timers (app_id, conversation_id, timer_key, user_id, due_at,
                 lease_until, attempts, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6)
             ON CONFLICT (app_id, conversation_id, timer_key)
             DO UPDATE SET user_id = excluded.user_id, due_at = excluded.due_at,
                           lease_until = 0, attempts = 0",
        )
        .bind(new.app_id)
        .bind(new.conversation_id)
        .bind(new.key)
        .bind(new.user_id.as_str())
        .bind(new.due_at_ms)
        .bind(minihost_core::now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels a pending timer; whether there was one.
    pub async fn cancel_timer(&self, app: &str, conversation: &str, key: &str) -> Result<bool> {
        let n = sqlx::query(
            "DELETE FROM app_timers WHERE app_id = $1 AND conversation_id = $2 AND timer_key = $3",
        )
        .bind(app)
        .bind(conversation)
        .bind(key)
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The timer (app, conversation, key), if pending.
    pub async fn timer(&self, app: &str, conversation: &str, key: &str) -> Result<Option<Timer>> {
        let sql = format!(
            "SELECT {TIMER_COLUMNS} FROM app_timers
              WHERE app_id = $1 AND conversation_id = $2 AND timer_key = $3"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .bind(conversation)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(timer_from_row).transpose()
    }

    /// Claims up to `limit` timers due at `now` and not leased, leasing each until
    /// `now + lease_ms`; a timer another node claimed first is skipped.
    pub async fn claim_due_timers(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Timer>> {
        let sql = format!(
            "SELECT {TIMER_COLUMNS} FROM app_timers WHERE due_at <= $1 AND lease_until <= $1
              ORDER BY due_at LIMIT $2"
        );
        let due = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(timer_from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut timer in due {
            let won = sqlx::query(
                "UPDATE app_timers SET lease_until = $1, attempts = attempts + 1
                  WHERE app_id = $2 AND conversation_id = $3 AND timer_key = $4
                    AND due_at = $5 AND lease_until <= $6",
            )
            .bind(now.saturating_add(lease_ms))
            .bind(&timer.app_id)
            .bind(&timer.conversation_id)
            .bind(&timer.key)
            .bind(timer.due_at_ms)
            .bind(now)
            .execute(&self.write_pool)
            .await?
            .rows_affected();
            if won == 1 {
                timer.attempts += 1;
                claimed.push(timer);
            }
        }
        Ok(claimed)
    }

    /// Ends a claimed timer after its event ran: deleted, unless the app set it again since
    /// (its due time moved). Returns whether it was deleted.
    pub async fn finish_timer(&self, timer: &Timer) -> Result<bool> {
        let n = sqlx::query(
            "DELETE FROM app_timers
              WHERE app_id = $1 AND conversation_id = $2 AND timer_key = $3 AND due_at = $4
                AND attempts = $5",
        )
        .bind(&timer.app_id)
        .bind(&timer.conversation_id)
        .bind(&timer.key)
        .bind(timer.due_at_ms)
        .bind(timer.attempts)
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Leaves a claimed timer for another claim at `at` (its event could not start).
    pub async fn retry_timer(&self, timer: &Timer, at: UnixMillis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE app_timers SET lease_until = $1
              WHERE app_id = $2 AND conversation_id = $3 AND timer_key = $4 AND due_at = $5
                AND attempts = $6",
        )
        .bind(at)
        .bind(&timer.app_id)
        .bind(&timer.conversation_id)
        .bind(&timer.key)
        .bind(timer.due_at_ms)
        .bind(timer.attempts)
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Pending timers of `app`.
    pub async fn timers_of(&self, app: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM app_timers WHERE app_id = $1")
            .bind(app)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
