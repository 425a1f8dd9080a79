//! Delivery cursors: the last seq each of a user's devices acknowledged, per conversation. Acks
//! are coalesced in memory (the highest per cursor) and written together, one transaction per
//! flush, [`COALESCE`] after the first pending ack; reading cursors flushes first, so a node
//! always reads its own acks. A cursor only moves forward, and only for a conversation the user
//! is a member of. An ack lost in a crash costs a re-delivery, nothing more.
//!
//! Bounded: a user keeps the cursors of at most [`MAX_DEVICES`] devices (the ones that
//! acknowledged most recently; a client naming a new device on every connection cannot grow the
//! table without end), and leaving a conversation drops its cursors.

use crate::{Result, Store};
use minihost_core::{ConversationId, UserId};
use sqlx::Row;
use std::collections::HashMap;
use std::time::Duration;

/// How long the first pending ack waits for others before they are written together.
const COALESCE: Duration = Duration::from_millis(250);

/// Devices per user whose cursors are kept; acking from one more drops the cursors of the
/// device that acknowledged least recently.
pub const MAX_DEVICES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CursorKey {
    user: String,
    device: String,
    conversation: String,
}

/// Acks not yet written.
#[derive(Default)]
pub(crate) struct AckBuffer {
    pending: std::sync::Mutex<HashMap<CursorKey, i64>>,
    /// Held while a flush writes, so that a read waits for the flush in flight.
    flushing: tokio::sync::Mutex<()>,
}

impl AckBuffer {
    /// Adds acks, keeping the highest per cursor; whether the buffer was empty before.
    fn add(&self, acks: impl IntoIterator<Item = (CursorKey, i64)>) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        let was_empty = pending.is_empty();
        for (key, seq) in acks {
            let e = pending.entry(key).or_insert(seq);
            *e = (*e).max(seq);
        }
        was_empty
    }

    fn take(&self) -> HashMap<CursorKey, i64> {
        self.pending
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

impl Store {
    /// Records that `user`'s `device` has received everything of `conversation` up to `seq`.
    /// Written with the other pending acks within [`COALESCE`]; never moves a cursor back, and
    /// stores nothing for a conversation `user` is not a member of.
    pub fn ack_delivered(
        &self,
        user: &UserId,
        device: &str,
        conversation: &ConversationId,
        seq: i64,
    ) {
        let key = CursorKey {
            user: user.as_str().to_owned(),
            device: device.to_owned(),
            conversation: conversation.as_str().to_owned(),
        };
        if self.acks.add([(key, seq)]) {
            let store = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(COALESCE).await;
                if let Err(e) = store.flush_acks().await {
                    tracing::warn!(error = %e, "delivery cursors not written; kept for the next flush");
                }
            });
        }
    }

    /// Writes every pending ack now, in one transaction. On failure they stay pending.
    pub async fn flush_acks(&self) -> Result<()> {
        let _flushing = self.acks.flushing.lock().await;
        let batch = self.acks.take();
        if batch.is_empty() {
            return Ok(());
        }
        let written = self.write_acks(&batch).await;
        if written.is_err() {
            self.acks.add(batch);
        }
        written
    }

    async fn write_acks(&self, batch: &HashMap<CursorKey, i64>) -> Result<()> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        for (key, seq) in batch {
            sqlx::query(
                "INSERT INTO delivery_cursors (user_id, device, conversation_id, acked_seq,
                                               updated_at)
                 SELECT $1, $2, $3, $4, $5
                  WHERE EXISTS (SELECT 1 FROM members
                                 WHERE conversation_id = $3 AND user_id = $1)
                 ON CONFLICT (user_id, device, conversation_id) DO UPDATE
                    SET acked_seq = excluded.acked_seq, updated_at = excluded.updated_at
                  WHERE delivery_cursors.acked_seq < excluded.acked_seq",
            )
            .bind(&key.user)
            .bind(&key.device)
            .bind(&key.conversation)
            .bind(*seq)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let mut users: Vec<&str> = batch.keys().map(|k| k.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        for user in users {
            // Every device but the MAX_DEVICES that acknowledged most recently.
            sqlx::query(
                "DELETE FROM delivery_cursors WHERE user_id = $1 AND device NOT IN
                   (SELECT device FROM delivery_cursors WHERE user_id = $1
                     GROUP BY device ORDER BY MAX(updated_at) DESC, device LIMIT $2)",
            )
            .bind(user)
            .bind(i64::try_from(MAX_DEVICES).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The cursors of `user`'s `device`, for the conversations the user is in now.
    pub async fn delivery_cursors(
        &self,
        user: &UserId,
        device: &str,
    ) -> Result<Vec<(ConversationId, i64)>> {
        self.flush_acks().await?;
        let rows = sqlx::query(
            "SELECT d.conversation_id, d.acked_seq FROM delivery_cursors d
               JOIN members m ON m.conversation_id = d.conversation_id AND m.user_id = d.user_id
              WHERE d.user_id = $1 AND d.device = $2",
        )
        .bind(user.as_str())
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ConversationId::from_string(r.try_get::<String, _>("conversation_id")?),
                    r.try_get::<i64, _>("acked_seq")?,
                ))
            })
            .collect()
    }
}
