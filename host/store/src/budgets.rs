//! Send budgets: token buckets bounding how often an app may post, refilled continuously, taken
//! from in a transaction under the bucket's lock. Unsolicited sends (timers, payment events,
//! backend sends) share a bucket per (app, conversation); replies to a user's own events
//! (commands, button presses, opening the app) have a bucket per (app, conversation, user), so
//! a busy group does not silence an app its members are using.

use crate::{Result, Store};
use minihost_core::UserId;

/// The bucket a message of an app is taken from.
#[derive(Debug, Clone, Copy)]
pub enum SendBucket<'a> {
    /// Unsolicited sends to a conversation.
    Unsolicited {
        /// The conversation.
        conversation: &'a str,
    },
    /// Replies to one user's own events in a conversation.
    Reply {
        /// The conversation.
        conversation: &'a str,
        /// The user whose event is answered.
        user: &'a UserId,
    },
}

impl SendBucket<'_> {
    /// The bucket's table, the SQL naming its row (`$1` app, `$2` conversation, `$3` user),
    /// its key columns, and the lock key serialising takers.
    fn sql(&self, app: &str) -> (&'static str, &'static str, &'static str, String) {
        match self {
            SendBucket::Unsolicited { conversation } => (
                "send_budgets",
                "app_id = $1 AND conversation_id = $2",
                "app_id, conversation_id",
                format!("budget:{app}:{conversation}"),
            ),
            SendBucket::Reply { conversation, user } => (
                "reply_budgets",
                "app_id = $1 AND conversation_id = $2 AND user_id = $3",
                "app_id, conversation_id, user_id",
                format!("reply-budget:{app}:{conversation}:{user}"),
            ),
        }
    }

    fn conversation(&self) -> &str {
        match self {
            SendBucket::Unsolicited { conversation } | SendBucket::Reply { conversation, .. } => {
                conversation
            }
        }
    }

    /// Binds the bucket's key to `q` (after `app`): the conversation, and the user if any.
    fn bind<'q>(
        &self,
        q: sqlx::query::QueryAs<'q, sqlx::Any, (i64, i64), sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, (i64, i64), sqlx::any::AnyArguments> {
        let q = q.bind(self.conversation().to_owned());
        match self {
            SendBucket::Unsolicited { .. } => q,
            SendBucket::Reply { user, .. } => q.bind(user.as_str().to_owned()),
        }
    }
}

/// Tokens in a bucket (in thousandths) at `now`, from its stored row.
fn current(row: Option<(i64, i64)>, now: i64, capacity: i64, per_minute: i64) -> i64 {
    let full = capacity.saturating_mul(1000);
    match row {
        None => full,
        Some((milli, at)) => {
            let refill = (now - at).max(0).saturating_mul(per_minute) / 60;
            milli.saturating_add(refill).min(full)
        }
    }
}

impl Store {
    /// Takes one token from `bucket` of `app`: `capacity` tokens, refilled at `per_minute`.
    /// Returns the tokens left (whole) or `None` if the bucket is empty.
    pub async fn take_send_token(
        &self,
        app: &str,
        bucket: SendBucket<'_>,
        capacity: i64,
        per_minute: i64,
    ) -> Result<Option<i64>> {
        let now = minihost_core::now_millis();
        let (table, row_of, keys, lock) = bucket.sql(app);
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &lock).await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT milli_tokens, updated_at FROM {table} WHERE {row_of}"
        )))
        .bind(app);
        let row: Option<(i64, i64)> = bucket.bind(row).fetch_optional(&mut *tx).await?;
        let current = current(row, now, capacity, per_minute);
        if current < 1000 {
            return Ok(None);
        }
        let left = current - 1000;
        let insert = match bucket {
            SendBucket::Unsolicited { .. } => {
                "INSERT INTO send_budgets (app_id, conversation_id, milli_tokens, updated_at)
                 VALUES ($1, $2, $3, $4)"
            }
            SendBucket::Reply { .. } => {
                "INSERT INTO reply_budgets
                        (app_id, conversation_id, milli_tokens, updated_at, user_id)
                 VALUES ($1, $2, $3, $4, $5)"
            }
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{insert} ON CONFLICT ({keys})
             DO UPDATE SET milli_tokens = excluded.milli_tokens, updated_at = excluded.updated_at"
        )))
        .bind(app)
        .bind(bucket.conversation())
        .bind(left)
        .bind(now);
        if let SendBucket::Reply { user, .. } = bucket {
            q = q.bind(user.as_str());
        }
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(left / 1000))
    }

    /// Tokens left in `bucket` of `app`, without taking one.
    pub async fn send_tokens_left(
        &self,
        app: &str,
        bucket: SendBucket<'_>,
        capacity: i64,
        per_minute: i64,
    ) -> Result<i64> {
        let now = minihost_core::now_millis();
        let (table, row_of, _, _) = bucket.sql(app);
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT milli_tokens, updated_at FROM {table} WHERE {row_of}"
        )))
        .bind(app);
        let row: Option<(i64, i64)> = bucket.bind(row).fetch_optional(&self.pool).await?;
        Ok(current(row, now, capacity, per_minute) / 1000)
    }
}
