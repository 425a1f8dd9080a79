//! The message writer on an SQLite file: its own connection (rusqlite, over the same bundled
//! libsqlite3 as sqlx) on its own thread, outside the read pool. Every statement of a batch runs
//! in-process on that thread from a prepared-statement cache: no hand-off to a pool worker per
//! statement, which is where the pool-based writer spent its time (BENCHMARKS.md, "Where the
//! server's time goes").
//!
//! Checkpoints are moved off the commit path: every connection of the store runs with
//! `wal_autocheckpoint = 0`, and the [`Checkpointer`] thread runs a `PASSIVE` checkpoint from its
//! own connection every [`CHECKPOINT_EVERY`]. Under steady load a passive checkpoint never
//! finds the WAL fully copied (commits land while it runs), so SQLite never starts the WAL
//! over and it grows; past [`MAX_WAL_PAGES`] the checkpointer runs a `RESTART` checkpoint,
//! which holds the write lock while it copies the few frames the passive one left and syncs
//! (~5 ms here), after which the next commit writes from the WAL's start: the WAL's size stays
//! bounded. (`TRUNCATE` did the same and also cut the file, which held every writer for 60-80 ms
//! on this machine's disk every two seconds: the p99 of the open-loop benchmark.)

use super::{
    Command, Done, Keys, Outcomes, Plan, Sink, budgeted, by_conversation, content_json,
    key_conflict_ignored, number, plan, repeated, resolve,
};
use crate::apps::{INVOCATION_INSERT_COLUMNS, InvocationRecord};
use crate::messages::{
    Appended, MESSAGE_COLUMNS, MessageColumns, NewMessage, message_from_columns, sender_columns,
};
use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sqlx::AnyPool;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the checkpointer runs a passive checkpoint.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (4 KiB each: 16 MiB) past which a passive checkpoint is followed by a restarting
/// one, so that the next commit writes the WAL from its start again.
pub const MAX_WAL_PAGES: i64 = 4_096;

/// Starts the writer thread on `file`, and the checkpointer beside it.
pub(super) fn start(
    file: &Path,
    others: AnyPool,
    done: Done,
    rx: mpsc::Receiver<Command>,
) -> Result<(JoinHandle<()>, Checkpointer)> {
    let conn = open(file)?;
    let checkpointer = Checkpointer::start(file)?;
    // The loop is the same async loop as the pool writer's; on this thread every await but the
    // queue's is ready at once, so a current-thread runtime just drives it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| StoreError::Open(format!("writer runtime: {e}")))?;
    let thread = std::thread::Builder::new()
        .name("minihost-writer".into())
        .spawn(move || {
            runtime.block_on(super::run(
                SqliteSink {
                    conn,
                    others,
                    find_by_key: format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 \
                 AND sender_id = ?2 AND idempotency_key = ?3"
                    ),
                },
                done,
                rx,
            ))
        })
        .map_err(|e| StoreError::Open(format!("writer thread: {e}")))?;
    Ok((thread, checkpointer))
}

/// A connection with the store's settings (WAL, `synchronous = FULL`, a busy timeout for the
/// pool's writers, no automatic checkpoints).
fn open(file: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    // This connection polls a taken lock often (it is the hot path; the others are let in
    // first, see `SqliteSink::let_others_in`).
    conn.busy_handler(Some(|tries| {
        std::thread::sleep(Duration::from_micros(200));
        tries < 50_000
    }))?;
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
    )?;
    Ok(conn)
}

struct SqliteSink {
    conn: Connection,
    /// The store's other writers: one connection, checked out while one of them writes or
    /// waits for the lock.
    others: AnyPool,
    /// The lookup of a message by its idempotency key ([`MESSAGE_COLUMNS`], in that order).
    find_by_key: String,
}

const ADVANCE: &str =
    "UPDATE conversations SET last_seq = last_seq + ?2 WHERE id = ?1 RETURNING last_seq";
/// The message row's INSERT (a macro so both statements below are `const` text).
macro_rules! insert_message {
    () => {
        "INSERT INTO messages (conversation_id, seq, id, sender_kind, sender_id, sender_name, \
         content, created_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    };
}
const INSERT: &str = insert_message!();
/// [`INSERT`] that skips a row whose idempotency key is stored (for [`Keys::Assumed`]).
const INSERT_NEW_KEYS: &str = concat!(insert_message!(), key_conflict_ignored!());

impl Sink for SqliteSink {
    async fn commit(
        &mut self,
        batch: &[&NewMessage],
        records: &[&InvocationRecord],
    ) -> Result<Vec<Result<Appended>>> {
        self.let_others_in();
        for keys in [Keys::Assumed, Keys::LookedUp] {
            if let Some(outcomes) = self.attempt(batch, records, keys)? {
                return Ok(outcomes);
            }
        }
        Err(super::stored_after_lookup())
    }
}

impl SqliteSink {
    /// Writes the batch in one transaction and commits it; or, when `keys` is
    /// [`Keys::Assumed`] and a keyed message turns out to be stored already, rolls it back and
    /// answers `None` (see [`Keys`]).
    fn attempt(
        &mut self,
        batch: &[&NewMessage],
        records: &[&InvocationRecord],
        keys: Keys,
    ) -> Result<Option<Vec<Result<Appended>>>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes: Outcomes = (0..batch.len()).map(|_| None).collect();

        // 1. Idempotency: earlier messages with the same key, stored or earlier in this batch
        // (stored ones only when looked up; assumed absent, the INSERT finds them).
        let Plan { same_as, lookups } = plan(batch, keys);
        let mut stored = HashMap::new();
        if !lookups.is_empty() {
            let mut find = tx.prepare_cached(&self.find_by_key)?;
            for (i, sender_id, key) in lookups {
                let m = batch[i];
                let found = find
                    .query_row(params![m.conversation.as_str(), sender_id, key], |r| {
                        Ok(MessageColumns {
                            id: r.get(0)?,
                            seq: r.get(1)?,
                            sender_kind: r.get(2)?,
                            sender_id: r.get(3)?,
                            sender_name: r.get(4)?,
                            content: r.get(5)?,
                            created_at_ms: r.get(6)?,
                        })
                    })
                    .optional()?;
                if let Some(columns) = found {
                    let existing = message_from_columns(columns, &m.conversation)?;
                    outcomes[i] = Some(repeated(&existing, m));
                    stored.insert(i, existing);
                }
            }
        }

        // 2. Send budgets: a message whose bucket is empty ends here, unstored.
        for i in budgeted(batch, &outcomes, &same_as) {
            let m = batch[i];
            if let Some(b) = &m.budget {
                let bucket = b.bucket(m.conversation.as_str());
                let taken =
                    crate::budgets::take_in_sqlite(&tx, &b.app, bucket, b.capacity, b.per_minute)?;
                if taken.is_none() {
                    outcomes[i] = Some(Err(StoreError::BudgetExceeded));
                }
            }
        }

        // 3. Sequence numbers: each conversation's counter advanced once, in this transaction.
        let per_conv = by_conversation(batch, &outcomes, &same_as);
        let mut last_of: HashMap<String, i64> = HashMap::new();
        {
            let mut advance = tx.prepare_cached(ADVANCE)?;
            for (conv, idx) in &per_conv {
                let n = i64::try_from(idx.len()).unwrap_or(i64::MAX);
                let last: Option<i64> = advance
                    .query_row(params![conv.as_str(), n], |r| r.get(0))
                    .optional()?;
                if let Some(last) = last {
                    last_of.insert(conv.as_str().to_owned(), last);
                }
            }
        }
        let fresh = number(
            batch,
            &per_conv,
            &last_of,
            minihost_core::now_millis(),
            &mut outcomes,
        );

        // 4. The rows.
        {
            let mut insert = tx.prepare_cached(if keys == Keys::Assumed {
                INSERT_NEW_KEYS
            } else {
                INSERT
            })?;
            for (i, msg) in &fresh {
                let (kind, sender_id, sender_name) = sender_columns(&msg.sender);
                let inserted = insert.execute(params![
                    msg.conversation.as_str(),
                    msg.seq,
                    msg.id.as_str(),
                    kind,
                    sender_id,
                    sender_name,
                    content_json(msg)?,
                    msg.created_at_ms,
                    batch[*i].idempotency_key.as_deref(),
                ])?;
                if inserted == 0 {
                    // Its key is stored already; dropping `tx` rolls the batch back.
                    return Ok(None);
                }
            }
        }
        // 5. The invocation records that came with the batch.
        if !records.is_empty() {
            let sql = format!(
                "INSERT INTO invocations ({INVOCATION_INSERT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            );
            let mut insert = tx.prepare_cached(&sql)?;
            for r in records {
                insert.execute(params![
                    r.id,
                    r.app_id,
                    r.version,
                    r.conversation,
                    r.app_user_id,
                    r.event_kind,
                    r.outcome,
                    r.error_kind,
                    r.error_message,
                    r.duration_us,
                    r.fuel,
                    r.calls.to_string(),
                    r.logs.to_string(),
                    r.created_at_ms,
                    r.queued_us,
                ])?;
            }
        }
        tx.commit()?;
        Ok(Some(resolve(batch, outcomes, &same_as, fresh, &stored)))
    }

    /// Fairness to the store's other writers. Between two batches this writer holds SQLite's
    /// write lock almost all the time under load, and a connection that finds it taken polls
    /// with sleeps of up to 100 ms (SQLite's busy handler): left alone, it would almost never
    /// get in (payment requests timed out behind chat in the payments benchmark). So while the
    /// other writers' one connection is checked out, this writer does not begin: it waits
    /// until that connection is back, at most [`MAX_YIELD`] per batch.
    fn let_others_in(&self) {
        let start = Instant::now();
        while self.others.size() > 0 && self.others.num_idle() == 0 && start.elapsed() < MAX_YIELD {
            std::thread::sleep(YIELD_POLL);
        }
    }
}

/// Longest pause of the message writer for the store's other writers, per batch.
const MAX_YIELD: Duration = Duration::from_millis(250);
/// How often the paused writer looks again.
const YIELD_POLL: Duration = Duration::from_micros(200);

/// The thread that checkpoints the WAL off the commit path; stopped with the writer.
pub(super) struct Checkpointer {
    stop: std_mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(file: &Path) -> Result<Self> {
        let conn = open(file)?;
        let (stop, stopped) = std_mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("minihost-checkpoint".into())
            .spawn(move || {
                while let Err(std_mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying later");
                    }
                }
            })
            .map_err(|e| StoreError::Open(format!("checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread })
    }

    /// Stops the thread (after its current checkpoint, if any).
    pub(super) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// One passive checkpoint; a truncating one too if the WAL is still longer than
/// [`MAX_WAL_PAGES`] after it.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let wal_pages = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            r.get::<_, i64>(1)
        })
    };
    if wal_pages("PASSIVE")? > MAX_WAL_PAGES {
        wal_pages("RESTART")?;
    }
    Ok(())
}
