//! The group-commit message writer. One loop owns every message append of this node: it takes
//! all requests queued while the previous commit was in flight (up to [`MAX_BATCH`]), assigns
//! sequence numbers from the per-conversation counter, writes them in ONE transaction, commits
//! once (one fsync), then acknowledges each request and hands the new messages, in seq order, to
//! the commit hook (live fan-out). A request is acknowledged only after its commit, so an
//! acknowledged message survives a crash.
//!
//! Where the batch is written is a [`Sink`]: on an SQLite file, the writer's own connection on
//! its own thread ([`sqlite`]: prepared statements, no per-statement hand-off to a pool worker,
//! checkpoints off the commit path); otherwise (PostgreSQL, in-memory SQLite) a transaction
//! from the pool. The batching, the idempotency rules and the numbering are the same for both.

mod sqlite;

use crate::apps::InvocationRecord;
use crate::db::Backend;
use crate::messages::{
    Appended, MESSAGE_COLUMNS, NewMessage, message_from_row, rfc3339, sender_columns,
};
use crate::{Result, StoreError};
use minihost_core::{ConversationId, Message, MessageId};
use sqlx::AssertSqlSafe;
use sqlx::{Any, AnyPool, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Called after each commit with the messages it made durable, in commit order and, within a
/// conversation, in seq order. Must not block, and may run on the writer's own thread (outside
/// the caller's tokio runtime): hand work off through channels.
pub type CommitHook = Arc<dyn Fn(&[Message]) + Send + Sync>;

/// Most requests committed together.
pub const MAX_BATCH: usize = 512;
/// Rows per INSERT statement (9 parameters each, well under both databases' limits).
const ROWS_PER_INSERT: usize = 64;
/// Requests that may wait for the writer before senders feel back-pressure.
const QUEUE: usize = 8192;

struct Request {
    message: NewMessage,
    reply: oneshot::Sender<Result<Appended>>,
}

/// An invocation record to write with the next batch.
struct RecordRequest {
    record: InvocationRecord,
    reply: oneshot::Sender<Result<()>>,
}

enum Command {
    Append(Request),
    Record(RecordRequest),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the writer.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<Task>>>,
}

/// Where the writer loop runs.
enum Task {
    /// A task on the caller's runtime (the pool sink).
    Tokio(tokio::task::JoinHandle<()>),
    /// The SQLite writer's own thread, its checkpointer, and the task that answers its batches
    /// on the caller's runtime (if there was one).
    Thread(
        std::thread::JoinHandle<()>,
        sqlite::Checkpointer,
        Option<tokio::task::JoinHandle<()>>,
    ),
}

/// A committed batch: its requests, each with its outcome.
type Committed = (Vec<Request>, Vec<Result<Appended>>);

/// Where a committed batch is answered and handed to the commit hook.
enum Done {
    /// Right where it was committed (the pool writer is a task on the server's runtime).
    Here(Option<CommitHook>),
    /// On one task of the server's runtime, in commit order. The SQLite writer commits on its
    /// own thread, and every answer and fan-out wake-up made from there is a cross-thread wake
    /// of a runtime worker (a futex and an eventfd write each, ~100 per batch); made from a task
    /// on the runtime they are queued locally. One wake per batch crosses threads instead.
    Runtime(mpsc::UnboundedSender<Committed>),
}

impl Done {
    /// On the caller's runtime if there is one, else here.
    fn on_runtime(hook: Option<CommitHook>) -> (Done, Option<tokio::task::JoinHandle<()>>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return (Done::Here(hook), None);
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Committed>();
        let task = handle.spawn(async move {
            while let Some((requests, outcomes)) = rx.recv().await {
                finish(hook.as_ref(), requests, outcomes);
            }
        });
        (Done::Runtime(tx), Some(task))
    }

    fn finish(&self, requests: Vec<Request>, outcomes: Vec<Result<Appended>>) {
        match self {
            Done::Here(hook) => finish(hook.as_ref(), requests, outcomes),
            Done::Runtime(tx) => {
                if let Err(mpsc::error::SendError((requests, outcomes))) =
                    tx.send((requests, outcomes))
                {
                    // The runtime is gone (shutting down): answer from here.
                    finish(None, requests, outcomes);
                }
            }
        }
    }
}

/// Writes one batch: the messages (one outcome each, in order) and the invocation records, in
/// one transaction.
trait Sink {
    async fn commit(
        &mut self,
        batch: &[&NewMessage],
        records: &[&InvocationRecord],
    ) -> Result<Vec<Result<Appended>>>;
}

/// The pool sink: a transaction per batch. On PostgreSQL it keeps one connection from the pool
/// for itself (taking one per batch cost a round trip more: the pool pings a connection before
/// handing it out) and gives it up after an error, so the next batch gets a fresh, checked one.
/// An in-memory SQLite database takes one per batch (its pool may be that one connection).
struct PoolSink {
    pool: AnyPool,
    backend: Backend,
    conn: Option<sqlx::pool::PoolConnection<Any>>,
}

impl PoolSink {
    /// A transaction: on PostgreSQL on the writer's kept connection (taken first if need be),
    /// otherwise one from the pool.
    async fn begin(&mut self) -> Result<Transaction<'_, Any>> {
        if self.backend != Backend::Postgres {
            return crate::db::begin_write(&self.pool, self.backend).await;
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            none => none.insert(self.pool.acquire().await?),
        };
        Ok(sqlx::Connection::begin(&mut **conn).await?)
    }
}

impl Sink for PoolSink {
    async fn commit(
        &mut self,
        batch: &[&NewMessage],
        records: &[&InvocationRecord],
    ) -> Result<Vec<Result<Appended>>> {
        let backend = self.backend;
        let result = async {
            for keys in [Keys::Assumed, Keys::LookedUp] {
                let mut tx = self.begin().await?;
                match commit_in(&mut tx, backend, batch, records, keys).await? {
                    Some(outcomes) => {
                        tx.commit().await?;
                        return Ok(outcomes);
                    }
                    None => tx.rollback().await?,
                }
            }
            Err(stored_after_lookup())
        }
        .await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

/// What a sink answers if even the attempt with [`Keys::LookedUp`] reports a stored key (it
/// cannot: that attempt's INSERT has no `ON CONFLICT` and fails instead).
fn stored_after_lookup() -> StoreError {
    StoreError::Corrupt("a batch whose keys were looked up found one stored".into())
}

/// How [`commit_in`] treats idempotency keys already in the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Assume no keyed message of the batch is stored yet (a retry is rare): no lookups; the
    /// rows go in with `ON CONFLICT .. DO NOTHING` on the key's unique index, and if any was
    /// stored already the attempt answers `None` and the caller rolls it back and runs the
    /// batch again with [`Keys::LookedUp`]. On PostgreSQL a lookup is a round trip per key,
    /// which cost a third of its keyed send rate (BENCHMARKS.md); on SQLite it is one more
    /// search of the key's index per message, which the INSERT makes anyway.
    Assumed,
    /// Look every key up first (a stored message answers its repeats).
    LookedUp,
}

impl Writer {
    /// Starts the writer: on its own SQLite connection and thread when `sqlite_file` names the
    /// database file (with the store's one-connection pool of other writers, to let them in),
    /// else on the pool.
    pub(crate) fn start(
        pool: AnyPool,
        backend: Backend,
        hook: Option<CommitHook>,
        sqlite_file: Option<(&Path, AnyPool)>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = match sqlite_file {
            Some((file, others)) => {
                let (done, answers) = Done::on_runtime(hook);
                let (thread, checkpointer) = sqlite::start(file, others, done, rx)?;
                Task::Thread(thread, checkpointer, answers)
            }
            None => Task::Tokio(tokio::spawn(run(
                PoolSink {
                    pool,
                    backend,
                    conn: None,
                },
                Done::Here(hook),
                rx,
            ))),
        };
        Ok(Writer {
            tx,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub(crate) async fn append(&self, message: NewMessage) -> Result<Appended> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append(Request { message, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes an invocation record in the next batch's transaction (no transaction of its own
    /// competing for the write lock).
    pub(crate) async fn record(&self, record: InvocationRecord) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Record(RecordRequest { record, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits everything queued so far, then stops the writer (and its checkpointer).
    pub(crate) async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
        match self.task.lock().await.take() {
            Some(Task::Tokio(task)) => {
                let _ = task.await;
            }
            Some(Task::Thread(thread, checkpointer, answers)) => {
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = thread.join();
                    checkpointer.stop();
                })
                .await;
                // The thread dropped its end: the task ends once it answered the last batch.
                if let Some(answers) = answers {
                    let _ = answers.await;
                }
            }
            None => {}
        }
    }
}

async fn run<S: Sink>(mut sink: S, done: Done, mut rx: mpsc::Receiver<Command>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut records: Vec<RecordRequest> = Vec::new();
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append(r) => batch.push(r),
                Command::Record(r) => records.push(r),
                Command::Shutdown(done) => {
                    stop = Some(done);
                    break;
                }
            }
            if batch.len() + records.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() || !records.is_empty() {
            process(&mut sink, &done, &mut batch, &mut records).await;
        }
    }
    rx.close();
    // Whatever was queued behind the shutdown still gets committed.
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            Command::Append(r) => batch.push(r),
            Command::Record(r) => records.push(r),
            Command::Shutdown(_) => {}
        }
    }
    if !batch.is_empty() || !records.is_empty() {
        process(&mut sink, &done, &mut batch, &mut records).await;
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Commits a batch (messages and invocation records), or, if the batch as a whole fails, each
/// request on its own so that one bad request cannot fail its neighbours.
async fn process<S: Sink>(
    sink: &mut S,
    done: &Done,
    batch: &mut Vec<Request>,
    records: &mut Vec<RecordRequest>,
) {
    let messages: Vec<&NewMessage> = batch.iter().map(|r| &r.message).collect();
    let logs: Vec<&InvocationRecord> = records.iter().map(|r| &r.record).collect();
    match sink.commit(&messages, &logs).await {
        Ok(outcomes) => {
            for r in records.drain(..) {
                let _ = r.reply.send(Ok(()));
            }
            done.finish(std::mem::take(batch), outcomes);
        }
        Err(e) if logs.is_empty() => retry_messages(sink, done, batch, e).await,
        Err(_) => {
            // Apart: the records each on their own, then the messages.
            for r in records.drain(..) {
                let result = sink.commit(&[], &[&r.record]).await.map(|_| ());
                let _ = r.reply.send(result);
            }
            if !batch.is_empty() {
                let messages: Vec<&NewMessage> = batch.iter().map(|r| &r.message).collect();
                match sink.commit(&messages, &[]).await {
                    Ok(outcomes) => done.finish(std::mem::take(batch), outcomes),
                    Err(e) => retry_messages(sink, done, batch, e).await,
                }
            }
        }
    }
}

/// After a failed batch of messages: each on its own (one bad request cannot fail the rest).
async fn retry_messages<S: Sink>(
    sink: &mut S,
    done: &Done,
    batch: &mut Vec<Request>,
    e: StoreError,
) {
    match e {
        e if batch.len() == 1 => {
            if let Some(r) = batch.pop() {
                let _ = r.reply.send(Err(e));
            }
        }
        e => {
            tracing::warn!(error = %e, size = batch.len(), "batch commit failed; retrying one by one");
            for r in std::mem::take(batch) {
                let result = sink.commit(&[&r.message], &[]).await;
                match result {
                    Ok(outcomes) => done.finish(vec![r], outcomes),
                    Err(e) => {
                        let _ = r.reply.send(Err(e));
                    }
                }
            }
        }
    }
}

/// Answers each request, then hands the fresh messages to the hook: the senders' answers go out
/// first (what a sender waits for before its next send), the fan-out right after.
fn finish(hook: Option<&CommitHook>, requests: Vec<Request>, outcomes: Vec<Result<Appended>>) {
    let fresh: Vec<Message> = match hook {
        Some(_) => outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(a) if !a.duplicate => Some(a.message.clone()),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
    };
    for (r, outcome) in requests.into_iter().zip(outcomes) {
        let _ = r.reply.send(outcome);
    }
    if let Some(hook) = hook
        && !fresh.is_empty()
    {
        hook(&fresh);
    }
}

/// What a batch comes to before anything is written: for each request, the earlier request of
/// the same batch whose idempotency key it repeats, and the keyed requests to look up in the
/// store (the first of each key in the batch).
struct Plan<'a> {
    same_as: Vec<Option<usize>>,
    lookups: Vec<(usize, &'a str, &'a str)>,
}

/// The batch's plan; with [`Keys::Assumed`] it lists no lookups (the INSERT finds stored keys).
fn plan<'a>(batch: &[&'a NewMessage], keys: Keys) -> Plan<'a> {
    let mut first_with_key: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut same_as: Vec<Option<usize>> = vec![None; batch.len()];
    let mut lookups = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        let Some(key) = m.idempotency_key.as_deref() else {
            continue;
        };
        let (_, sender_id, _) = sender_columns(&m.sender);
        let k = (m.conversation.as_str(), sender_id, key);
        if let Some(&j) = first_with_key.get(&k) {
            same_as[i] = Some(j);
            continue;
        }
        first_with_key.insert(k, i);
        if keys == Keys::LookedUp {
            lookups.push((i, sender_id, key));
        }
    }
    Plan { same_as, lookups }
}

/// The requests that take a send-budget token: those that will store a new message (not
/// answered by an idempotency key), in the order their buckets' locks are taken (by lock key,
/// so two writers never wait on each other's buckets; within a bucket, in batch order).
fn budgeted(batch: &[&NewMessage], outcomes: &Outcomes, same_as: &[Option<usize>]) -> Vec<usize> {
    let mut takers: Vec<(String, usize)> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| outcomes[*i].is_none() && same_as[*i].is_none())
        .filter_map(|(i, m)| Some((m.budget.as_ref()?.lock_key(m.conversation.as_str()), i)))
        .collect();
    takers.sort();
    takers.into_iter().map(|(_, i)| i).collect()
}

/// The outcome of a request whose key names the stored message `existing`.
fn repeated(existing: &Message, request: &NewMessage) -> Result<Appended> {
    if existing.content == request.content {
        Ok(Appended {
            message: existing.clone(),
            duplicate: true,
        })
    } else {
        Err(StoreError::IdempotencyKeyReused)
    }
}

type Outcomes = Vec<Option<Result<Appended>>>;

/// The requests that need a new seq, grouped by conversation in the order first seen.
fn by_conversation<'a>(
    batch: &[&'a NewMessage],
    outcomes: &Outcomes,
    same_as: &[Option<usize>],
) -> Vec<(&'a ConversationId, Vec<usize>)> {
    let mut per_conv: Vec<(&ConversationId, Vec<usize>)> = Vec::new();
    for (i, m) in batch.iter().enumerate() {
        if outcomes[i].is_some() || same_as[i].is_some() {
            continue;
        }
        match per_conv.iter_mut().find(|(c, _)| *c == &m.conversation) {
            Some((_, idx)) => idx.push(i),
            None => per_conv.push((&m.conversation, vec![i])),
        }
    }
    // Counters are advanced in id order (on PostgreSQL the statement also locks them in that
    // order, whichever node's writer runs it: see `commit_in`).
    per_conv.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    per_conv
}

/// The new messages, numbered from each conversation's counter after this batch advanced it
/// (`last_of`); requests of a conversation that no longer exists end as not found.
fn number(
    batch: &[&NewMessage],
    per_conv: &[(&ConversationId, Vec<usize>)],
    last_of: &HashMap<String, i64>,
    now: i64,
    outcomes: &mut Outcomes,
) -> Vec<(usize, Message)> {
    let mut fresh = Vec::new();
    for (conv, idx) in per_conv {
        let n = i64::try_from(idx.len()).unwrap_or(i64::MAX);
        let Some(&last) = last_of.get(conv.as_str()) else {
            for &i in idx {
                outcomes[i] = Some(Err(StoreError::NotFound));
            }
            continue;
        };
        for (k, &i) in idx.iter().enumerate() {
            let m = batch[i];
            fresh.push((
                i,
                Message {
                    id: MessageId::generate(),
                    conversation: m.conversation.clone(),
                    seq: last - n + 1 + i64::try_from(k).unwrap_or(0),
                    sender: m.sender.clone(),
                    content: m.content.clone(),
                    created_at: rfc3339(now),
                    created_at_ms: now,
                },
            ));
        }
    }
    fresh
}

/// Every request's outcome once the batch committed: the new messages, and for requests that
/// repeated a key used earlier in the same batch, the message that key names (the one stored
/// before, from `stored`, else the one this batch wrote for the key's first request).
fn resolve(
    batch: &[&NewMessage],
    mut outcomes: Outcomes,
    same_as: &[Option<usize>],
    fresh: Vec<(usize, Message)>,
    stored: &HashMap<usize, Message>,
) -> Vec<Result<Appended>> {
    for (i, msg) in fresh {
        outcomes[i] = Some(Ok(Appended {
            message: msg,
            duplicate: false,
        }));
    }
    for i in 0..batch.len() {
        if let Some(j) = same_as[i] {
            let named = stored.get(&j).or(match &outcomes[j] {
                Some(Ok(a)) => Some(&a.message),
                _ => None,
            });
            outcomes[i] = Some(match named {
                Some(m) if m.content == batch[i].content => Ok(Appended {
                    message: m.clone(),
                    duplicate: true,
                }),
                Some(_) => Err(StoreError::IdempotencyKeyReused),
                None => Err(StoreError::NotFound),
            });
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Err(StoreError::NotFound)))
        .collect()
}

/// The stored text of a message's content.
fn content_json(m: &Message) -> Result<String> {
    serde_json::to_string(&m.content).map_err(|e| StoreError::Corrupt(format!("content: {e}")))
}

/// Writes the messages and invocation records of a batch in `tx`, through the pool
/// (PostgreSQL, and SQLite without a file of its own); the caller commits. Returns one outcome
/// per message, in order; or `None` when `keys` is [`Keys::Assumed`] and a keyed message of
/// the batch turned out to be stored already (then the caller rolls `tx` back).
async fn commit_in(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    batch: &[&NewMessage],
    records: &[&InvocationRecord],
    keys: Keys,
) -> Result<Option<Vec<Result<Appended>>>> {
    let mut outcomes: Outcomes = (0..batch.len()).map(|_| None).collect();

    // 1. Idempotency: earlier messages with the same key, stored or earlier in this batch
    // (stored ones only when looked up; assumed absent, the INSERT finds them).
    let Plan { same_as, lookups } = plan(batch, keys);
    let mut stored = HashMap::new();
    for (i, sender_id, key) in lookups {
        let m = batch[i];
        if let Some(existing) = find_by_key(tx, &m.conversation, sender_id, key).await? {
            outcomes[i] = Some(repeated(&existing, m));
            stored.insert(i, existing);
        }
    }

    // 2. Send budgets: a message whose bucket is empty ends here, unstored.
    // All of the batch's buckets in a fixed number of statements (`take_all_in`).
    // `budgeted` lists only requests with a budget, in lock-key order.
    let (takers, takes): (Vec<usize>, Vec<_>) = budgeted(batch, &outcomes, &same_as)
        .into_iter()
        .filter_map(|i| {
            let m = batch[i];
            let b = m.budget.as_ref()?;
            let bucket = b.bucket(m.conversation.as_str());
            Some((i, (b.app.as_str(), bucket, b.capacity, b.per_minute)))
        })
        .unzip();
    let taken = crate::budgets::take_all_in(tx, backend, &takes).await?;
    for (i, got) in takers.iter().zip(taken) {
        if !got {
            outcomes[*i] = Some(Err(StoreError::BudgetExceeded));
        }
    }

    // 3. Sequence numbers: one statement advances every conversation's counter of the batch
    // (up to 64 at a time): `last_seq + CASE id WHEN .. THEN n .. END ... RETURNING id, last_seq`.
    let per_conv = by_conversation(batch, &outcomes, &same_as);
    let mut last_of: HashMap<String, i64> = HashMap::new();
    for group in per_conv.chunks(64) {
        let sql = advance_sql(backend, group.len());
        let mut q = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
        for (conv, idx) in group {
            q = q
                .bind(conv.as_str().to_owned())
                .bind(i64::try_from(idx.len()).unwrap_or(i64::MAX));
        }
        for (id, last) in q.fetch_all(&mut **tx).await? {
            last_of.insert(id, last);
        }
    }
    let fresh = number(
        batch,
        &per_conv,
        &last_of,
        minihost_core::now_millis(),
        &mut outcomes,
    );

    // 4. The rows, several per statement.
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO messages (conversation_id, seq, id, sender_kind, sender_id, sender_name, \
             content, created_at, idempotency_key) VALUES ",
        );
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push(',');
            }
            let b = r * 9;
            let params: Vec<String> = (1..=9).map(|c| format!("${}", b + c)).collect();
            sql.push('(');
            sql.push_str(&params.join(","));
            sql.push(')');
        }
        if keys == Keys::Assumed {
            sql.push_str(key_conflict_ignored!());
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (i, msg) in chunk {
            let (kind, sender_id, sender_name) = sender_columns(&msg.sender);
            q = q
                .bind(msg.conversation.as_str().to_owned())
                .bind(msg.seq)
                .bind(msg.id.as_str().to_owned())
                .bind(kind)
                .bind(sender_id.to_owned())
                .bind(sender_name.to_owned())
                .bind(content_json(msg)?)
                .bind(msg.created_at_ms)
                .bind(batch[*i].idempotency_key.clone());
        }
        let inserted = q.execute(&mut **tx).await?.rows_affected();
        if usize::try_from(inserted).ok() != Some(chunk.len()) {
            // A key of this chunk is stored already (a retry, or another node's writer).
            return Ok(None);
        }
    }
    // 5. The invocation records that came with the batch.
    crate::apps::insert_invocations(tx, records).await?;
    Ok(Some(resolve(batch, outcomes, &same_as, fresh, &stored)))
}

/// The statement that advances `n` conversations' counters at once (parameters: each
/// conversation's id and how many messages it takes, in the batch's id order) and returns
/// `(id, last_seq)` after the advance.
fn advance_sql(backend: Backend, n: usize) -> String {
    let mut sql = String::from("UPDATE conversations SET last_seq = last_seq + CASE id");
    for k in 0..n {
        sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2));
    }
    let ids: Vec<String> = (0..n).map(|k| format!("${}", 2 * k + 1)).collect();
    let ids = ids.join(",");
    if backend == Backend::Postgres {
        // The rows are locked in id order (bytewise, as `by_conversation` sorts them, also
        // across statements of 64) before any is updated (a plain `WHERE id IN` locks
        // them in the order its scan meets them, heap order for a bitmap or sequential scan,
        // which updates keep changing): two writers whose batches share conversations
        // (several nodes on one PostgreSQL) then wait for each other instead of deadlocking.
        sql.push_str(&format!(
            " ELSE 0 END WHERE id IN (SELECT id FROM conversations WHERE id IN ({ids}) \
             ORDER BY id COLLATE \"C\" FOR UPDATE) RETURNING id, last_seq"
        ));
    } else {
        sql.push_str(&format!(
            " ELSE 0 END WHERE id IN ({ids}) RETURNING id, last_seq"
        ));
    }
    sql
}

/// Skips a row whose idempotency key is stored already (the partial unique index
/// `messages_idempotency`); any other conflict still fails the statement. A macro so that both
/// sinks' statements are `const` text.
macro_rules! key_conflict_ignored {
    () => {
        " ON CONFLICT (conversation_id, sender_id, idempotency_key) \
         WHERE idempotency_key IS NOT NULL DO NOTHING"
    };
}
use key_conflict_ignored;

async fn find_by_key(
    tx: &mut Transaction<'_, Any>,
    conversation: &ConversationId,
    sender_id: &str,
    key: &str,
) -> Result<Option<Message>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages
          WHERE conversation_id = $1 AND sender_id = $2 AND idempotency_key = $3"
    )))
    .bind(conversation.as_str())
    .bind(sender_id)
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(|r| message_from_row(r, "", conversation))
        .transpose()
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use minihost_core::{Content, Sender, UserId};

    fn request(conv: &ConversationId, body: &str) -> NewMessage {
        NewMessage {
            conversation: conv.clone(),
            sender: Sender::User {
                id: UserId::from_string("u1"),
                username: "alice".into(),
            },
            content: Content::text(body),
            idempotency_key: Some("k".into()),
            budget: None,
        }
    }

    /// A batch whose key's first request differs from the stored message, followed by one with
    /// the stored body: the first is refused, the second gets the stored message.
    #[test]
    fn repeats_within_a_batch_are_judged_against_the_stored_message() {
        let conv = ConversationId::from_string("c1");
        let (odd, even) = (request(&conv, "odd"), request(&conv, "even"));
        let batch = [&odd, &even, &odd];
        let Plan { same_as, lookups } = plan(&batch, Keys::LookedUp);
        assert_eq!(same_as, vec![None, Some(0), Some(0)]);
        assert_eq!(lookups.len(), 1);
        let existing = Message {
            id: MessageId::generate(),
            conversation: conv.clone(),
            seq: 1,
            sender: even.sender.clone(),
            content: even.content.clone(),
            created_at: rfc3339(0),
            created_at_ms: 0,
        };
        let mut outcomes: Outcomes = vec![Some(repeated(&existing, &odd)), None, None];
        assert!(by_conversation(&batch, &outcomes, &same_as).is_empty());
        outcomes[1] = None;
        let stored = HashMap::from([(0, existing.clone())]);
        let got = resolve(&batch, outcomes, &same_as, Vec::new(), &stored);
        assert!(matches!(got[0], Err(StoreError::IdempotencyKeyReused)));
        match &got[1] {
            Ok(a) => assert!(a.duplicate && a.message.id == existing.id),
            Err(e) => panic!("the stored body was refused: {e}"),
        }
        assert!(matches!(got[2], Err(StoreError::IdempotencyKeyReused)));
    }

    /// On PostgreSQL the counters' statement locks its rows in id order whatever order the
    /// table keeps them in: here the heap holds them in reverse (inserted c3, c2, c1); another
    /// transaction holds c2; the statement, waiting for c2, holds c1 and not yet c3. (Locking
    /// in heap order it would hold c3 and not c1: two writers locking in different orders can
    /// deadlock.)
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn postgres_counters_are_locked_in_id_order() {
        use sqlx::{Connection as _, PgConnection};
        let Some(server) = crate::testing::postgres_server() else {
            return;
        };
        let db = crate::testing::TestDb::postgres(&server).await.unwrap();
        let store = db.open(None).await.unwrap();
        crate::testing::tamper(
            &store,
            "INSERT INTO conversations (id, kind, created_at) \
             VALUES ('c3', 'group', 0), ('c2', 'group', 0), ('c1', 'group', 0)",
        )
        .await
        .unwrap();
        let url = db.url().unwrap().to_owned();
        let mut holder = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN; SELECT id FROM conversations WHERE id = 'c2' FOR UPDATE")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut writer = PgConnection::connect(&url).await.unwrap();
        let advance = tokio::spawn(async move {
            let mut tx = writer.begin().await.unwrap();
            let mut q = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(advance_sql(
                Backend::Postgres,
                3,
            )));
            for (id, n) in [("c1", 1_i64), ("c2", 2), ("c3", 3)] {
                q = q.bind(id).bind(n);
            }
            let mut rows = q.fetch_all(&mut *tx).await.unwrap();
            tx.rollback().await.unwrap();
            rows.sort();
            rows
        });
        // Once the statement waits for c2's lock, see which of c1 and c3 it holds.
        let mut probe = PgConnection::connect(&url).await.unwrap();
        for tries in 0.. {
            assert!(tries < 1_000, "the statement never waited for c2's lock");
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&mut probe)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut free = Vec::new();
        for id in ["c1", "c3"] {
            let mut tx = probe.begin().await.unwrap();
            let got = sqlx::query(AssertSqlSafe(format!(
                "SELECT id FROM conversations WHERE id = '{id}' FOR UPDATE NOWAIT"
            )))
            .execute(&mut *tx)
            .await;
            if got.is_ok() {
                free.push(id);
            }
            tx.rollback().await.unwrap();
        }
        assert_eq!(free, vec!["c3"], "c1 locked first, c3 not yet");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .unwrap();
        let rows = advance.await.unwrap();
        assert_eq!(
            rows,
            vec![("c1".into(), 1), ("c2".into(), 2), ("c3".into(), 3)]
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}
