//! The group-commit message writer. One task owns every message append of this node: it takes
//! all requests queued while the previous commit was in flight (up to [`MAX_BATCH`]), assigns
//! sequence numbers from the per-conversation counter, writes them with multi-row inserts in ONE
//! transaction, commits once (one fsync), then acknowledges each request and hands the new
//! messages, in seq order, to the commit hook (live fan-out). A request is acknowledged only after
//! its commit, so an acknowledged message survives a crash.

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
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Called after each commit with the messages it made durable, in commit order and, within a
/// conversation, in seq order. Must not block: hand work off to other tasks.
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

/// Handle to the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    pub(crate) fn start(pool: AnyPool, backend: Backend, hook: Option<CommitHook>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(pool, backend, hook, rx));
        Writer {
            tx,
            task: Arc::new(Mutex::new(Some(task))),
        }
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

    /// Commits everything queued so far, then stops the task.
    pub(crate) async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn run(
    pool: AnyPool,
    backend: Backend,
    hook: Option<CommitHook>,
    mut rx: mpsc::Receiver<Command>,
) {
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
            process(&pool, backend, hook.as_ref(), &mut batch, &mut records).await;
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
        process(&pool, backend, hook.as_ref(), &mut batch, &mut records).await;
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Commits a batch (messages and invocation records), or, if the batch as a whole fails, each
/// request on its own so that one bad request cannot fail its neighbours.
async fn process(
    pool: &AnyPool,
    backend: Backend,
    hook: Option<&CommitHook>,
    batch: &mut Vec<Request>,
    records: &mut Vec<RecordRequest>,
) {
    let messages: Vec<&NewMessage> = batch.iter().map(|r| &r.message).collect();
    let logs: Vec<&InvocationRecord> = records.iter().map(|r| &r.record).collect();
    match commit(pool, backend, &messages, &logs).await {
        Ok(outcomes) => {
            for r in records.drain(..) {
                let _ = r.reply.send(Ok(()));
            }
            finish(hook, std::mem::take(batch), outcomes);
        }
        Err(e) if logs.is_empty() => retry_messages(pool, backend, hook, batch, e).await,
        Err(_) => {
            // Apart: the records each on their own, then the messages.
            for r in records.drain(..) {
                let result = commit(pool, backend, &[], &[&r.record]).await.map(|_| ());
                let _ = r.reply.send(result);
            }
            if !batch.is_empty() {
                let messages: Vec<&NewMessage> = batch.iter().map(|r| &r.message).collect();
                match commit(pool, backend, &messages, &[]).await {
                    Ok(outcomes) => finish(hook, std::mem::take(batch), outcomes),
                    Err(e) => retry_messages(pool, backend, hook, batch, e).await,
                }
            }
        }
    }
}

/// After a failed batch of messages: each on its own (one bad request cannot fail the rest).
async fn retry_messages(
    pool: &AnyPool,
    backend: Backend,
    hook: Option<&CommitHook>,
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
                let result = commit(pool, backend, &[&r.message], &[]).await;
                match result {
                    Ok(outcomes) => finish(hook, vec![r], outcomes),
                    Err(e) => {
                        let _ = r.reply.send(Err(e));
                    }
                }
            }
        }
    }
}

fn finish(hook: Option<&CommitHook>, requests: Vec<Request>, outcomes: Vec<Result<Appended>>) {
    if let Some(hook) = hook {
        let fresh: Vec<Message> = outcomes
            .iter()
            .filter_map(|o| match o {
                Ok(a) if !a.duplicate => Some(a.message.clone()),
                _ => None,
            })
            .collect();
        if !fresh.is_empty() {
            hook(&fresh);
        }
    }
    for (r, outcome) in requests.into_iter().zip(outcomes) {
        let _ = r.reply.send(outcome);
    }
}

/// Writes the messages and invocation records in one transaction. Returns one outcome per
/// message, in order.
async fn commit(
    pool: &AnyPool,
    backend: Backend,
    batch: &[&NewMessage],
    records: &[&InvocationRecord],
) -> Result<Vec<Result<Appended>>> {
    let mut tx = crate::db::begin_write(pool, backend).await?;
    let mut outcomes: Vec<Option<Result<Appended>>> = (0..batch.len()).map(|_| None).collect();

    // 1. Idempotency: earlier messages with the same key, stored or earlier in this batch.
    let mut first_with_key: HashMap<(&str, &str, &str), usize> = HashMap::new();
    let mut same_as: Vec<Option<usize>> = vec![None; batch.len()];
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
        if let Some(existing) = find_by_key(&mut tx, &m.conversation, sender_id, key).await? {
            outcomes[i] = Some(if existing.content == m.content {
                Ok(Appended {
                    message: existing,
                    duplicate: true,
                })
            } else {
                Err(StoreError::IdempotencyKeyReused)
            });
        }
    }

    // 2. Sequence numbers: one counter update per conversation, in this transaction.
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
    let now = minihost_core::now_millis();
    let mut fresh: Vec<(usize, Message)> = Vec::new();
    // One statement advances every conversation's counter of the batch (up to 64 at a time):
    // `last_seq + CASE id WHEN .. THEN n .. END ... RETURNING id, last_seq`.
    let mut last_of: HashMap<&str, i64> = HashMap::new();
    for group in per_conv.chunks(64) {
        let mut sql = String::from("UPDATE conversations SET last_seq = last_seq + CASE id");
        for k in 0..group.len() {
            sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2));
        }
        sql.push_str(" ELSE 0 END WHERE id IN (");
        for k in 0..group.len() {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", 2 * k + 1));
        }
        sql.push_str(") RETURNING id, last_seq");
        let mut q = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql));
        for (conv, idx) in group {
            q = q
                .bind(conv.as_str().to_owned())
                .bind(i64::try_from(idx.len()).unwrap_or(i64::MAX));
        }
        for (id, last) in q.fetch_all(&mut *tx).await? {
            if let Some((conv, _)) = group.iter().find(|(c, _)| c.as_str() == id) {
                last_of.insert(conv.as_str(), last);
            }
        }
    }
    for (conv, idx) in &per_conv {
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

    // 3. The rows, several per statement.
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
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (i, msg) in chunk {
            let (kind, sender_id, sender_name) = sender_columns(&msg.sender);
            let content = serde_json::to_string(&msg.content)
                .map_err(|e| StoreError::Corrupt(format!("content: {e}")))?;
            q = q
                .bind(msg.conversation.as_str().to_owned())
                .bind(msg.seq)
                .bind(msg.id.as_str().to_owned())
                .bind(kind)
                .bind(sender_id.to_owned())
                .bind(sender_name.to_owned())
                .bind(content)
                .bind(msg.created_at_ms)
                .bind(batch[*i].idempotency_key.clone());
        }
        q.execute(&mut *tx).await?;
    }
    // 4. The invocation records that came with the batch.
    crate::apps::insert_invocations(&mut tx, records).await?;
    tx.commit().await?;

    for (i, msg) in fresh {
        outcomes[i] = Some(Ok(Appended {
            message: msg,
            duplicate: false,
        }));
    }
    // Requests that repeated a key used earlier in the same batch get that message.
    for i in 0..batch.len() {
        if let Some(j) = same_as[i] {
            outcomes[i] = Some(match &outcomes[j] {
                _ if batch[i].content != batch[j].content => Err(StoreError::IdempotencyKeyReused),
                Some(Ok(a)) => Ok(Appended {
                    message: a.message.clone(),
                    duplicate: true,
                }),
                _ => Err(StoreError::NotFound),
            });
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Err(StoreError::NotFound)))
        .collect())
}

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
