//! Conversations and their members: direct (one per pair), groups, membership, read markers,
//! and the list a user sees with last message and unread count.

use crate::messages::{Message, message_from_row};
use crate::{Result, Store, StoreError};
use minihost_core::{ConversationId, ConversationKind, UnixMillis, UserId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title (none for direct conversations).
    pub title: Option<String>,
    /// Group owner (none for direct conversations).
    pub owner: Option<UserId>,
    /// Seq of the newest message (0 when empty).
    pub last_seq: i64,
    /// When it was created.
    pub created_at_ms: UnixMillis,
}

/// A member of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// Their username.
    pub username: String,
    /// Their display name.
    pub display_name: String,
    /// The last seq they marked read.
    pub read_seq: i64,
}

/// One entry of a user's conversation list.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest message.
    pub last_message: Option<Message>,
    /// Messages from others after the user's read marker and after every delivery cursor of
    /// their devices.
    pub unread: i64,
    /// The user's read marker.
    pub read_seq: i64,
}

const CONV_COLUMNS: &str = "c.id, c.kind, c.title, c.owner_id, c.last_seq, c.created_at";

fn conversation_from_row(row: &AnyRow) -> Result<Conversation> {
    let kind: String = row.try_get("kind")?;
    Ok(Conversation {
        id: ConversationId::from_string(row.try_get::<String, _>("id")?),
        kind: kind
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("conversation kind {kind:?}")))?,
        title: row.try_get("title")?,
        owner: row
            .try_get::<Option<String>, _>("owner_id")?
            .map(UserId::from_string),
        last_seq: row.try_get("last_seq")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

impl Store {
    /// The direct conversation between `a` and `b`, created if it does not exist yet. Returns it
    /// and whether it was created now. Safe under concurrent calls: one row per pair.
    pub async fn open_direct(&self, a: &UserId, b: &UserId) -> Result<(Conversation, bool)> {
        let key = if a < b {
            format!("{a}:{b}")
        } else {
            format!("{b}:{a}")
        };
        let now = minihost_core::now_millis();
        let id = ConversationId::generate();
        let mut tx = self.write_pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO conversations (id, kind, direct_key, created_at)
             VALUES ($1, 'direct', $2, $3) ON CONFLICT (direct_key) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(&key)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            for user in [a, b] {
                sqlx::query(
                    "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3)",
                )
                .bind(id.as_str())
                .bind(user.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONV_COLUMNS} FROM conversations c WHERE c.direct_key = $1"
        )))
        .bind(&key)
        .fetch_one(&self.pool)
        .await?;
        Ok((conversation_from_row(&row)?, inserted))
    }

    /// Creates a group owned by `owner` with `members` (the owner is always a member).
    pub async fn create_group(
        &self,
        owner: &UserId,
        title: &str,
        members: &[UserId],
    ) -> Result<Conversation> {
        let now = minihost_core::now_millis();
        let id = ConversationId::generate();
        let mut tx = self.write_pool.begin().await?;
        sqlx::query(
            "INSERT INTO conversations (id, kind, title, owner_id, created_at)
             VALUES ($1, 'group', $2, $3, $4)",
        )
        .bind(id.as_str())
        .bind(title)
        .bind(owner.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut all: Vec<&UserId> = vec![owner];
        all.extend(members.iter().filter(|m| *m != owner));
        all.dedup();
        for user in all {
            sqlx::query(
                "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(user.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Conversation {
            id,
            kind: ConversationKind::Group,
            title: Some(title.to_owned()),
            owner: Some(owner.clone()),
            last_seq: 0,
            created_at_ms: now,
        })
    }

    /// The conversation, if `user` is a member of it. Non-members learn nothing: for them it
    /// does not exist.
    pub async fn conversation_for_member(
        &self,
        id: &ConversationId,
        user: &UserId,
    ) -> Result<Option<Conversation>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONV_COLUMNS} FROM conversations c
               JOIN members m ON m.conversation_id = c.id
              WHERE c.id = $1 AND m.user_id = $2"
        )))
        .bind(id.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(conversation_from_row).transpose()
    }

    /// Whether `user` is a member of the conversation.
    pub async fn is_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The members of a conversation.
    pub async fn members(&self, id: &ConversationId) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.display_name, m.read_seq
               FROM members m JOIN users u ON u.id = m.user_id
              WHERE m.conversation_id = $1 ORDER BY m.joined_at, u.username",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    user: UserId::from_string(r.try_get::<String, _>("id")?),
                    username: r.try_get("username")?,
                    display_name: r.try_get("display_name")?,
                    read_seq: r.try_get("read_seq")?,
                })
            })
            .collect()
    }

    /// Adds users to a group; returns the ones that were not members before.
    pub async fn add_members(&self, id: &ConversationId, users: &[UserId]) -> Result<Vec<UserId>> {
        let now = minihost_core::now_millis();
        let mut added = Vec::new();
        let mut tx = self.write_pool.begin().await?;
        for user in users {
            let n = sqlx::query(
                "INSERT INTO members (conversation_id, user_id, joined_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(user.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                added.push(user.clone());
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes a member; returns whether they were one.
    pub async fn remove_member(&self, id: &ConversationId, user: &UserId) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM members WHERE conversation_id = $1 AND user_id = $2")
            .bind(id.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Their devices' delivery cursors there mean nothing any more.
        sqlx::query("DELETE FROM delivery_cursors WHERE conversation_id = $1 AND user_id = $2")
            .bind(id.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Moves the user's read marker forward to `seq` (never backward, never past the end).
    /// Returns the marker now stored.
    pub async fn mark_read(&self, id: &ConversationId, user: &UserId, seq: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE members SET read_seq = $1
              WHERE conversation_id = $2 AND user_id = $3 AND read_seq < $1
                AND $1 <= (SELECT last_seq FROM conversations WHERE id = $2)",
        )
        .bind(seq)
        .bind(id.as_str())
        .bind(user.as_str())
        .execute(&self.write_pool)
        .await?;
        let row =
            sqlx::query("SELECT read_seq FROM members WHERE conversation_id = $1 AND user_id = $2")
                .bind(id.as_str())
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(row.try_get("read_seq")?)
    }

    /// The ids of every conversation `user` is a member of.
    pub async fn conversation_ids_of(&self, user: &UserId) -> Result<Vec<ConversationId>> {
        let rows = sqlx::query("SELECT conversation_id FROM members WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ConversationId::from_string(
                    r.try_get::<String, _>("conversation_id")?,
                ))
            })
            .collect()
    }

    /// Every conversation the user is a member of, with its last seq: one query, for a resume
    /// that names many conversations.
    pub async fn last_seqs_of(&self, user: &UserId) -> Result<Vec<(ConversationId, i64)>> {
        let rows = sqlx::query(
            "SELECT m.conversation_id, c.last_seq FROM members m
               JOIN conversations c ON c.id = m.conversation_id
              WHERE m.user_id = $1",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    ConversationId::from_string(r.try_get::<String, _>("conversation_id")?),
                    r.try_get::<i64, _>("last_seq")?,
                ))
            })
            .collect()
    }

    /// The user's conversations, most recently active first, each with its newest message and
    /// the number of messages from others after both the user's read marker and the furthest
    /// delivery cursor of their devices (what no device of theirs has acknowledged).
    pub async fn conversations_of(&self, user: &UserId) -> Result<Vec<ConversationSummary>> {
        self.flush_acks().await?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CONV_COLUMNS}, m.read_seq,
                    (SELECT COUNT(*) FROM messages x
                      WHERE x.conversation_id = c.id AND x.seq > m.read_seq
                        AND x.sender_id <> $1
                        AND NOT EXISTS (SELECT 1 FROM delivery_cursors d
                                         WHERE d.user_id = $1 AND d.conversation_id = c.id
                                           AND d.acked_seq >= x.seq)) AS unread,
                    lm.id AS lm_id, lm.seq AS lm_seq, lm.sender_kind AS lm_sender_kind,
                    lm.sender_id AS lm_sender_id, lm.sender_name AS lm_sender_name,
                    lm.content AS lm_content, lm.created_at AS lm_created_at
               FROM members m
               JOIN conversations c ON c.id = m.conversation_id
               LEFT JOIN messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq
              WHERE m.user_id = $1
              ORDER BY COALESCE(lm.created_at, c.created_at) DESC, c.id"
        )))
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let conversation = conversation_from_row(r)?;
                let last_message = match r.try_get::<Option<String>, _>("lm_id")? {
                    Some(_) => Some(message_from_row(r, "lm_", &conversation.id)?),
                    None => None,
                };
                Ok(ConversationSummary {
                    conversation,
                    last_message,
                    unread: r.try_get("unread")?,
                    read_seq: r.try_get("read_seq")?,
                })
            })
            .collect()
    }
}
