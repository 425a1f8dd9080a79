//! Consent and app data: the platform secret, grants (what each user
//! allowed each app), the privacy record, app key-value storage with quotas, and the token
//! buckets that bound how often an app may post in a conversation.

use crate::{Result, Store, StoreError};
use minihost_core::{UnixMillis, UserId};
use serde::Serialize;
use sqlx::Row;

/// A user's grant to an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRecord {
    /// The app.
    pub app_id: String,
    /// Granted scopes, sorted.
    pub scopes: Vec<String>,
    /// The app version the user last answered a consent request for.
    pub version: String,
    /// First granted.
    pub granted_at_ms: UnixMillis,
    /// Last changed.
    pub updated_at_ms: UnixMillis,
}

/// One line of a user's privacy record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivacyEntry {
    /// The app.
    pub app_id: String,
    /// `interface.function`, e.g. `profile.get`.
    pub capability: String,
    /// `ok`, `denied`, or an error kind.
    pub outcome: String,
    /// When.
    pub at_ms: UnixMillis,
}

/// Storage quota of one app owner (app-wide, or one app-scoped user).
#[derive(Debug, Clone, Copy)]
pub struct KvQuota {
    /// Most keys.
    pub max_keys: i64,
    /// Most bytes of keys and values together.
    pub max_bytes: i64,
}

/// Why a storage write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvRefusal {
    /// Too many keys.
    Keys,
    /// Too many bytes.
    Bytes,
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn grant_from_row(r: &sqlx::any::AnyRow) -> Result<GrantRecord> {
    Ok(GrantRecord {
        app_id: r.try_get("app_id")?,
        scopes: split_scopes(&r.try_get::<String, _>("scopes")?),
        version: r.try_get("version")?,
        granted_at_ms: r.try_get("granted_at")?,
        updated_at_ms: r.try_get("updated_at")?,
    })
}

impl Store {
    /// The named platform secret, created with `make` the first time (race-safe across nodes).
    pub async fn platform_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query("INSERT INTO platform_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(make())
            .execute(&self.pool)
            .await?;
        let (v,): (String,) = sqlx::query_as("SELECT value FROM platform_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }

    /// The user's grant to `app`, if any.
    pub async fn grant(&self, user: &UserId, app: &str) -> Result<Option<GrantRecord>> {
        let row = sqlx::query(
            "SELECT app_id, scopes, version, granted_at, updated_at FROM grants
              WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.as_str())
        .bind(app)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Every grant of a user.
    pub async fn grants_of(&self, user: &UserId) -> Result<Vec<GrantRecord>> {
        let rows = sqlx::query(
            "SELECT app_id, scopes, version, granted_at, updated_at FROM grants
              WHERE user_id = $1 ORDER BY app_id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Stores the user's answer to a consent request: exactly `scopes` are granted for `app`
    /// (as of `version`). An empty set is stored too: it records that the user was asked.
    pub async fn set_grant(
        &self,
        user: &UserId,
        app: &str,
        scopes: &[String],
        version: &str,
    ) -> Result<GrantRecord> {
        let mut sorted: Vec<String> = scopes.to_vec();
        sorted.sort();
        sorted.dedup();
        let now = minihost_core::now_millis();
        // One transaction with the record of the scopes it takes away (tokens issued before
        // then are refused: see `tokens::record_grant_revocation`).
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("grant:{}:{app}", user.as_str()))
            .await?;
        let before: Option<(String,)> =
            sqlx::query_as("SELECT scopes FROM grants WHERE user_id = $1 AND app_id = $2")
                .bind(user.as_str())
                .bind(app)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO grants (user_id, app_id, scopes, version, granted_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (user_id, app_id)
             DO UPDATE SET scopes = excluded.scopes, version = excluded.version,
                           updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(app)
        .bind(sorted.join(" "))
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some((before,)) = &before {
            let mut removed: Vec<&str> = before
                .split_whitespace()
                .filter(|s| !sorted.iter().any(|n| n == s))
                .collect();
            // Emptying a grant revokes all of it, exactly as deleting it does: every token and
            // refresh family issued before now ends for good, whatever is granted later.
            if sorted.is_empty() && !before.trim().is_empty() {
                removed.push("*");
            }
            crate::tokens::record_grant_revocation(&mut tx, user, app, &removed, now).await?;
        }
        tx.commit().await?;
        self.grant(user, app).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes the user's whole grant to `app`; returns whether there was one.
    pub async fn delete_grant(&self, user: &UserId, app: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM grants WHERE user_id = $1 AND app_id = $2")
            .bind(user.as_str())
            .bind(app)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            let now = minihost_core::now_millis();
            crate::tokens::record_grant_revocation(&mut tx, user, app, &["*"], now).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Adds a line to the user's privacy record.
    pub async fn record_privacy(
        &self,
        user: &UserId,
        app: &str,
        capability: &str,
        outcome: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO privacy_log (id, user_id, app_id, capability, outcome, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(format!("pl_{}", minihost_core::ids::random_hex(12)))
        .bind(user.as_str())
        .bind(app)
        .bind(capability)
        .bind(outcome)
        .bind(minihost_core::now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest lines of the user's privacy record, newest first.
    pub async fn privacy_log(&self, user: &UserId, limit: u32) -> Result<Vec<PrivacyEntry>> {
        let rows = sqlx::query(
            "SELECT app_id, capability, outcome, at FROM privacy_log
              WHERE user_id = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(user.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PrivacyEntry {
                    app_id: r.try_get("app_id")?,
                    capability: r.try_get("capability")?,
                    outcome: r.try_get("outcome")?,
                    at_ms: r.try_get("at")?,
                })
            })
            .collect()
    }

    /// A stored value of `app` (owner `""` is app-wide, else an app-scoped user id).
    pub async fn kv_get(&self, app: &str, owner: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT value FROM app_kv WHERE app_id = $1 AND owner = $2 AND key = $3",
        )
        .bind(app)
        .bind(owner)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v,)| v))
    }

    /// Stores a value, unless it would break `quota`; the check and the write share one
    /// transaction, so concurrent writers cannot overshoot it together.
    pub async fn kv_set(
        &self,
        app: &str,
        owner: &str,
        key: &str,
        value: &[u8],
        quota: KvQuota,
    ) -> Result<std::result::Result<(), KvRefusal>> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("kv:{app}:{owner}")).await?;
        let (keys, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM app_kv
              WHERE app_id = $1 AND owner = $2 AND key <> $3",
        )
        .bind(app)
        .bind(owner)
        .bind(key)
        .fetch_one(&mut *tx)
        .await?;
        let new_bytes = i64::try_from(key.len() + value.len()).unwrap_or(i64::MAX);
        if keys + 1 > quota.max_keys {
            return Ok(Err(KvRefusal::Keys));
        }
        if bytes.saturating_add(new_bytes) > quota.max_bytes {
            return Ok(Err(KvRefusal::Bytes));
        }
        sqlx::query(
            "INSERT INTO app_kv (app_id, owner, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (app_id, owner, key) DO UPDATE SET value = excluded.value,
                                                          updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(owner)
        .bind(key)
        .bind(value.to_vec())
        .bind(minihost_core::now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Deletes a value; returns whether it existed.
    pub async fn kv_delete(&self, app: &str, owner: &str, key: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM app_kv WHERE app_id = $1 AND owner = $2 AND key = $3")
            .bind(app)
            .bind(owner)
            .bind(key)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Keys of `app`/`owner` starting with `prefix`, sorted, at most `limit`.
    pub async fn kv_list(
        &self,
        app: &str,
        owner: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT key FROM app_kv WHERE app_id = $1 AND owner = $2 AND substr(key, 1, CAST($3 AS INTEGER)) = $4
              ORDER BY key LIMIT $5",
        )
        .bind(app)
        .bind(owner)
        .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    /// Takes one token from the (app, conversation) bucket: `capacity` tokens, refilled at
    /// `per_minute`. Returns the tokens left (whole) or `None` if the bucket is empty.
    pub async fn take_send_token(
        &self,
        app: &str,
        conversation: &str,
        capacity: i64,
        per_minute: i64,
    ) -> Result<Option<i64>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("budget:{app}:{conversation}"))
            .await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT milli_tokens, updated_at FROM send_budgets WHERE app_id = $1 AND conversation_id = $2",
        )
        .bind(app)
        .bind(conversation)
        .fetch_optional(&mut *tx)
        .await?;
        let full = capacity.saturating_mul(1000);
        let current = match row {
            None => full,
            Some((milli, at)) => {
                let refill = (now - at).max(0).saturating_mul(per_minute) / 60;
                (milli.saturating_add(refill)).min(full)
            }
        };
        if current < 1000 {
            return Ok(None);
        }
        let left = current - 1000;
        sqlx::query(
            "INSERT INTO send_budgets (app_id, conversation_id, milli_tokens, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, conversation_id)
             DO UPDATE SET milli_tokens = excluded.milli_tokens, updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(conversation)
        .bind(left)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(left / 1000))
    }

    /// Tokens left in the (app, conversation) bucket, without taking one.
    pub async fn send_tokens_left(
        &self,
        app: &str,
        conversation: &str,
        capacity: i64,
        per_minute: i64,
    ) -> Result<i64> {
        let now = minihost_core::now_millis();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT milli_tokens, updated_at FROM send_budgets WHERE app_id = $1 AND conversation_id = $2",
        )
        .bind(app)
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await?;
        let full = capacity.saturating_mul(1000);
        Ok(match row {
            None => capacity,
            Some((milli, at)) => {
                let refill = (now - at).max(0).saturating_mul(per_minute) / 60;
                milli.saturating_add(refill).min(full) / 1000
            }
        })
    }
}
