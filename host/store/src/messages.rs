//! Messages: the append request and its outcome, reading history, and turning rows back into
//! [`Message`]s. Appends themselves go through the group-commit [`writer`](crate::writer).

use crate::{Result, Store, StoreError};
use minihost_core::{Content, ConversationId, MessageId, Sender, UnixMillis, UserId};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use std::time::{Duration, UNIX_EPOCH};

pub use minihost_core::Message;

/// Who is appending a message.
pub type SenderRef = Sender;

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Where it goes. The caller has checked that the sender may post there.
    pub conversation: ConversationId,
    /// Who sends it.
    pub sender: SenderRef,
    /// What it says (already validated).
    pub content: Content,
    /// A client-chosen key: a retry with the same key and the same content from the same sender
    /// in the same conversation returns the first message and stores nothing new; the same key
    /// with other content is [`StoreError::IdempotencyKeyReused`](crate::StoreError).
    pub idempotency_key: Option<String>,
    /// The app send budget this message takes a token from, in the transaction that stores it
    /// (an app's messages). With the bucket empty the append ends in
    /// [`StoreError::BudgetExceeded`](crate::StoreError) and stores nothing.
    pub budget: Option<crate::Budget>,
}

/// The outcome of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The stored message.
    pub message: Message,
    /// True when an earlier message with the same idempotency key was returned instead.
    pub duplicate: bool,
}

/// Which slice of a conversation's history to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    /// Only messages with a smaller seq (the page just before it).
    pub before: Option<i64>,
    /// Only messages with a larger seq (the page just after it).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// RFC 3339 text of a timestamp in milliseconds.
pub fn rfc3339(ms: UnixMillis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn sender_columns(sender: &Sender) -> (&'static str, &str, &str) {
    match sender {
        Sender::User { id, username } => ("user", id.as_str(), username.as_str()),
        Sender::App { id, name } => ("app", id.as_str(), name.as_str()),
    }
}

/// Reads a message from a row whose message columns carry `prefix` (`""` or `"lm_"`).
pub(crate) fn message_from_row(
    row: &AnyRow,
    prefix: &str,
    conversation: &ConversationId,
) -> Result<Message> {
    let col = |name: &str| format!("{prefix}{name}");
    message_from_columns(
        MessageColumns {
            id: row.try_get(col("id").as_str())?,
            seq: row.try_get(col("seq").as_str())?,
            sender_kind: row.try_get(col("sender_kind").as_str())?,
            sender_id: row.try_get(col("sender_id").as_str())?,
            sender_name: row.try_get(col("sender_name").as_str())?,
            content: row.try_get(col("content").as_str())?,
            created_at_ms: row.try_get(col("created_at").as_str())?,
        },
        conversation,
    )
}

/// A message's stored columns ([`MESSAGE_COLUMNS`], in that order), however they were read.
pub(crate) struct MessageColumns {
    pub id: String,
    pub seq: i64,
    pub sender_kind: String,
    pub sender_id: String,
    pub sender_name: String,
    pub content: String,
    pub created_at_ms: i64,
}

/// The message those columns hold.
pub(crate) fn message_from_columns(
    c: MessageColumns,
    conversation: &ConversationId,
) -> Result<Message> {
    let sender = match c.sender_kind.as_str() {
        "user" => Sender::User {
            id: UserId::from_string(c.sender_id),
            username: c.sender_name,
        },
        "app" => Sender::App {
            id: c.sender_id,
            name: c.sender_name,
        },
        other => return Err(StoreError::Corrupt(format!("sender kind {other:?}"))),
    };
    let content: Content = serde_json::from_str(&c.content)
        .map_err(|e| StoreError::Corrupt(format!("message content: {e}")))?;
    Ok(Message {
        id: MessageId::from_string(c.id),
        conversation: conversation.clone(),
        seq: c.seq,
        sender,
        content,
        created_at: rfc3339(c.created_at_ms),
        created_at_ms: c.created_at_ms,
    })
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, seq, sender_kind, sender_id, sender_name, content, created_at";

impl Store {
    /// Appends a message through the group-commit writer. Returns once the message is durable.
    pub async fn append(&self, message: NewMessage) -> Result<Appended> {
        self.writer.append(message).await
    }

    /// One message of a conversation by id.
    pub async fn message(
        &self,
        conversation: &ConversationId,
        id: &str,
    ) -> Result<Option<Message>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND id = $2"
        )))
        .bind(conversation.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| message_from_row(r, "", conversation))
            .transpose()
    }

    /// Replaces the content of a message that app `app` sent; `None` if there is no such message
    /// of that app in the conversation.
    pub async fn update_app_message(
        &self,
        conversation: &ConversationId,
        id: &str,
        app: &str,
        content: &Content,
    ) -> Result<Option<Message>> {
        let json = serde_json::to_string(content)
            .map_err(|e| StoreError::Corrupt(format!("content: {e}")))?;
        let n = sqlx::query(
            "UPDATE messages SET content = $1
              WHERE conversation_id = $2 AND id = $3 AND sender_kind = 'app' AND sender_id = $4",
        )
        .bind(json)
        .bind(conversation.as_str())
        .bind(id)
        .bind(app)
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        self.message(conversation, id).await
    }

    /// A page of history in ascending seq order. With `after`, the oldest messages after it;
    /// otherwise the newest ones (before `before`, if given).
    pub async fn history(
        &self,
        conversation: &ConversationId,
        q: HistoryQuery,
    ) -> Result<Vec<Message>> {
        let limit = i64::from(q.limit.max(1));
        let after = q.after.unwrap_or(0);
        let before = q.before.unwrap_or(i64::MAX);
        let ascending = q.after.is_some();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
              WHERE conversation_id = $1 AND seq > $2 AND seq < $3
              ORDER BY seq {} LIMIT $4",
            if ascending { "ASC" } else { "DESC" }
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(conversation.as_str())
            .bind(after)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| message_from_row(r, "", conversation))
            .collect::<Result<Vec<_>>>()?;
        if !ascending {
            out.reverse();
        }
        Ok(out)
    }
}
