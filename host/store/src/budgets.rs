//! Send budgets: token buckets bounding how often an app may post, refilled continuously, taken
//! from in a transaction under the bucket's lock. Unsolicited sends (timers, payment events,
//! backend sends) share a bucket per (app, conversation); replies to a user's own events
//! (commands, button presses, opening the app) have a bucket per (app, conversation, user), so
//! a busy group does not silence an app its members are using. An app's message takes its token
//! in the same transaction that stores it (the message writer's batch, [`Budget`]), so a budget
//! costs no transaction of its own.

use crate::db::Backend;
use crate::{Result, Store};
use minihost_core::UserId;
use sqlx::AssertSqlSafe;

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

    /// The bucket's row: `$1` app, `$2` conversation, `$3` user (replies).
    fn select_sql(&self) -> String {
        let (table, row_of, _, _) = self.sql("");
        format!("SELECT milli_tokens, updated_at FROM {table} WHERE {row_of}")
    }

    /// Stores the bucket's row: `$1` app, `$2` conversation, `$3` tokens, `$4` time, `$5` user
    /// (replies).
    fn upsert_sql(&self) -> String {
        self.upsert_rows_sql(1)
    }

    /// Stores `rows` rows of this bucket's table, each bound as [`Self::upsert_sql`]'s one.
    fn upsert_rows_sql(&self, rows: usize) -> String {
        let (_, _, keys, _) = self.sql("");
        let (head, per) = match self {
            SendBucket::Unsolicited { .. } => (
                "INSERT INTO send_budgets (app_id, conversation_id, milli_tokens, updated_at)",
                4,
            ),
            SendBucket::Reply { .. } => (
                "INSERT INTO reply_budgets
                        (app_id, conversation_id, milli_tokens, updated_at, user_id)",
                5,
            ),
        };
        let values: Vec<String> = (0..rows)
            .map(|i| {
                let p: Vec<String> = (1..=per).map(|j| format!("${}", i * per + j)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        format!(
            "{head} VALUES {} ON CONFLICT ({keys})
             DO UPDATE SET milli_tokens = excluded.milli_tokens, updated_at = excluded.updated_at",
            values.join(", ")
        )
    }

    fn conversation(&self) -> &str {
        match self {
            SendBucket::Unsolicited { conversation } | SendBucket::Reply { conversation, .. } => {
                conversation
            }
        }
    }

    fn user(&self) -> Option<&str> {
        match self {
            SendBucket::Unsolicited { .. } => None,
            SendBucket::Reply { user, .. } => Some(user.as_str()),
        }
    }

    /// Binds the bucket's key to `q` (after `app`): the conversation, and the user if any.
    fn bind<'q>(
        &self,
        q: sqlx::query::QueryAs<'q, sqlx::Any, (i64, i64), sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, (i64, i64), sqlx::any::AnyArguments> {
        let q = q.bind(self.conversation().to_owned());
        match self.user() {
            None => q,
            Some(user) => q.bind(user.to_owned()),
        }
    }
}

/// A send budget an app's message is charged to, in the transaction that stores the message
/// ([`NewMessage::budget`](crate::NewMessage)): one token of the app's bucket in the message's
/// conversation, the reply bucket of `user` if set, else the unsolicited one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The app sending.
    pub app: String,
    /// Whose event the message answers (its reply bucket), or `None` for unsolicited sends.
    pub user: Option<UserId>,
    /// Tokens in a full bucket (the burst).
    pub capacity: i64,
    /// Tokens added per minute.
    pub per_minute: i64,
}

impl Budget {
    /// The bucket this budget names in `conversation`.
    pub fn bucket<'a>(&'a self, conversation: &'a str) -> SendBucket<'a> {
        match &self.user {
            Some(user) => SendBucket::Reply { conversation, user },
            None => SendBucket::Unsolicited { conversation },
        }
    }

    /// The key that orders and serialises takers of this bucket.
    pub(crate) fn lock_key(&self, conversation: &str) -> String {
        self.bucket(conversation).sql(&self.app).3
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

/// The milli-tokens left after taking one from a bucket now at `current`, or `None` if it
/// holds less than one token (the same decision on both executors).
fn after_taking_one(current: i64) -> Option<i64> {
    (current >= 1000).then(|| current - 1000)
}

/// Takes one token from `bucket` of `app` inside `tx` (which it first serialises with other
/// takers of the bucket on PostgreSQL). Returns the tokens left (whole) or `None` if the bucket
/// is empty (nothing written).
pub(crate) async fn take_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    app: &str,
    bucket: SendBucket<'_>,
    capacity: i64,
    per_minute: i64,
) -> Result<Option<i64>> {
    let now = minihost_core::now_millis();
    crate::db::lock_key(tx, backend, &bucket.sql(app).3).await?;
    let row = sqlx::query_as(AssertSqlSafe(bucket.select_sql())).bind(app);
    let row: Option<(i64, i64)> = bucket.bind(row).fetch_optional(&mut **tx).await?;
    let Some(left) = after_taking_one(current(row, now, capacity, per_minute)) else {
        return Ok(None);
    };
    let mut q = sqlx::query(AssertSqlSafe(bucket.upsert_sql()))
        .bind(app)
        .bind(bucket.conversation())
        .bind(left)
        .bind(now);
    if let Some(user) = bucket.user() {
        q = q.bind(user);
    }
    q.execute(&mut **tx).await?;
    Ok(Some(left / 1000))
}

/// A bucket of [`take_all_in`]: its app, itself, and its row (tokens, time) once read.
type Taker<'a> = (&'a str, SendBucket<'a>, Option<(i64, i64)>);

/// Buckets per statement of [`take_all_in`] (each binds at most five values).
const BUCKETS_PER_STATEMENT: usize = 100;

/// One token per entry of `takes` (app, bucket, capacity, per minute), taken in the order
/// given (the writer's: by lock key, then batch order), inside `tx`; whether each got one.
/// The same decisions as [`take_in`] once per entry, in a fixed number of statements however
/// many there are: on PostgreSQL one to lock every bucket (in key order), then per bucket table
/// one to read the rows and one to write the changed ones back (a round trip per reply in a
/// batch of app replies was three).
pub(crate) async fn take_all_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    takes: &[(&str, SendBucket<'_>, i64, i64)],
) -> Result<Vec<bool>> {
    use std::collections::BTreeMap;
    let now = minihost_core::now_millis();
    // Each bucket once, by lock key: (app, bucket, its row).
    let mut buckets: BTreeMap<String, Taker<'_>> = BTreeMap::new();
    for (app, bucket, _, _) in takes {
        buckets
            .entry(bucket.sql(app).3)
            .or_insert((*app, *bucket, None));
    }
    let keys: Vec<String> = buckets.keys().cloned().collect();
    // A row read back names its bucket by its columns.
    let by_columns: std::collections::HashMap<(&str, &str, Option<&str>), String> = takes
        .iter()
        .map(|(app, bucket, _, _)| {
            (
                (*app, bucket.conversation(), bucket.user()),
                bucket.sql(app).3,
            )
        })
        .collect();
    if backend == Backend::Postgres {
        for chunk in keys.chunks(BUCKETS_PER_STATEMENT) {
            let values: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
            let sql = format!(
                "SELECT pg_advisory_xact_lock(hashtext(k)) FROM (VALUES {}) AS t(k) ORDER BY k",
                values.join(", ")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k.as_str());
            }
            q.execute(&mut **tx).await?;
        }
    }
    // The rows, per table.
    for replies in [false, true] {
        let wanted: Vec<String> = buckets
            .iter()
            .filter(|(_, (_, b, _))| b.user().is_some() == replies)
            .map(|(k, _)| k.clone())
            .collect();
        for chunk in wanted.chunks(BUCKETS_PER_STATEMENT) {
            let (table, cols, per) = if replies {
                ("reply_budgets", "app_id, conversation_id, user_id", 3)
            } else {
                (
                    "send_budgets",
                    "app_id, conversation_id, CAST(NULL AS TEXT)",
                    2,
                )
            };
            let cond: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = i * per;
                    if replies {
                        format!(
                            "(app_id = ${} AND conversation_id = ${} AND user_id = ${})",
                            p + 1,
                            p + 2,
                            p + 3
                        )
                    } else {
                        format!("(app_id = ${} AND conversation_id = ${})", p + 1, p + 2)
                    }
                })
                .collect();
            let sql = format!(
                "SELECT {cols}, milli_tokens, updated_at FROM {table} WHERE {}",
                cond.join(" OR ")
            );
            let mut q =
                sqlx::query_as::<_, (String, String, Option<String>, i64, i64)>(AssertSqlSafe(sql));
            for key in chunk {
                let (app, bucket, _) = &buckets[key];
                q = q.bind(*app).bind(bucket.conversation());
                if let Some(user) = bucket.user() {
                    q = q.bind(user);
                }
            }
            let found = q.fetch_all(&mut **tx).await?;
            for (app, conversation, user, milli, at) in found {
                let key = by_columns
                    .get(&(app.as_str(), conversation.as_str(), user.as_deref()))
                    .cloned();
                if let Some(entry) = key.and_then(|k| buckets.get_mut(&k)) {
                    entry.2 = Some((milli, at));
                }
            }
        }
    }
    // The decisions, in the order given.
    let mut changed: BTreeMap<String, i64> = BTreeMap::new();
    let mut taken = Vec::with_capacity(takes.len());
    for (app, bucket, capacity, per_minute) in takes {
        let key = bucket.sql(app).3;
        let Some(entry) = buckets.get_mut(&key) else {
            taken.push(false);
            continue;
        };
        match after_taking_one(current(entry.2, now, *capacity, *per_minute)) {
            Some(left) => {
                entry.2 = Some((left, now));
                changed.insert(key, left);
                taken.push(true);
            }
            None => taken.push(false),
        }
    }
    // The changed rows back, per table.
    for replies in [false, true] {
        let rows: Vec<(&str, SendBucket<'_>, i64)> = changed
            .iter()
            .filter_map(|(k, left)| {
                let (app, bucket, _) = buckets.get(k)?;
                (bucket.user().is_some() == replies).then_some((*app, *bucket, *left))
            })
            .collect();
        for chunk in rows.chunks(BUCKETS_PER_STATEMENT) {
            let Some((_, first, _)) = chunk.first() else {
                continue;
            };
            let sql = first.upsert_rows_sql(chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (app, bucket, left) in chunk {
                q = q
                    .bind(*app)
                    .bind(bucket.conversation())
                    .bind(*left)
                    .bind(now);
                if let Some(user) = bucket.user() {
                    q = q.bind(user);
                }
            }
            q.execute(&mut **tx).await?;
        }
    }
    Ok(taken)
}

/// [`take_in`] on the SQLite message writer's own connection (SQLite's write lock, held by
/// `tx`, serialises takers).
pub(crate) fn take_in_sqlite(
    tx: &rusqlite::Connection,
    app: &str,
    bucket: SendBucket<'_>,
    capacity: i64,
    per_minute: i64,
) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    let now = minihost_core::now_millis();
    let mut select = tx.prepare_cached(&bucket.select_sql())?;
    let row: Option<(i64, i64)> = match bucket.user() {
        None => select.query_row(rusqlite::params![app, bucket.conversation()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        }),
        Some(user) => select.query_row(rusqlite::params![app, bucket.conversation(), user], |r| {
            Ok((r.get(0)?, r.get(1)?))
        }),
    }
    .optional()?;
    let Some(left) = after_taking_one(current(row, now, capacity, per_minute)) else {
        return Ok(None);
    };
    let mut upsert = tx.prepare_cached(&bucket.upsert_sql())?;
    match bucket.user() {
        None => upsert.execute(rusqlite::params![app, bucket.conversation(), left, now])?,
        Some(user) => upsert.execute(rusqlite::params![
            app,
            bucket.conversation(),
            left,
            now,
            user
        ])?,
    };
    Ok(Some(left / 1000))
}

impl Store {
    /// Takes one token from `bucket` of `app`: `capacity` tokens, refilled at `per_minute`.
    /// Returns the tokens left (whole) or `None` if the bucket is empty. (An app's message
    /// takes its token in the transaction that stores it: [`Budget`].)
    pub async fn take_send_token(
        &self,
        app: &str,
        bucket: SendBucket<'_>,
        capacity: i64,
        per_minute: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let taken = take_in(&mut tx, self.backend, app, bucket, capacity, per_minute).await?;
        if taken.is_some() {
            tx.commit().await?;
        }
        Ok(taken)
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
        let row = sqlx::query_as(AssertSqlSafe(bucket.select_sql())).bind(app);
        let row: Option<(i64, i64)> = bucket.bind(row).fetch_optional(&self.pool).await?;
        Ok(current(row, now, capacity, per_minute) / 1000)
    }
}
