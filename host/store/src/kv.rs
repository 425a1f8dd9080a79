//! App key-value storage: per app, an app-wide half (owner `""`) and a half per app-scoped user,
//! each bounded by a quota of keys and bytes checked in the transaction that writes.

use crate::ledger::Tx;
use crate::{Result, Store};

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

/// Whether writing `value` under `key` keeps `app`/`owner` within `quota` (the key's current
/// value, being replaced, does not count).
async fn within_quota(
    tx: &mut Tx,
    app: &str,
    owner: &str,
    key: &str,
    value: &[u8],
    quota: KvQuota,
) -> Result<std::result::Result<(), KvRefusal>> {
    let (keys, bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM app_kv
          WHERE app_id = $1 AND owner = $2 AND key <> $3",
    )
    .bind(app)
    .bind(owner)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    let new_bytes = i64::try_from(key.len() + value.len()).unwrap_or(i64::MAX);
    if keys + 1 > quota.max_keys {
        return Ok(Err(KvRefusal::Keys));
    }
    if bytes.saturating_add(new_bytes) > quota.max_bytes {
        return Ok(Err(KvRefusal::Bytes));
    }
    Ok(Ok(()))
}

/// Writes `value` under `key`, replacing what was there.
async fn upsert(tx: &mut Tx, app: &str, owner: &str, key: &str, value: &[u8]) -> Result<()> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
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
        if let Err(refused) = within_quota(&mut tx, app, owner, key, value, quota).await? {
            return Ok(Err(refused));
        }
        upsert(&mut tx, app, owner, key, value).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Stores `value` under `key` only if the key now holds `expected` (`None`: absent), within
    /// `quota`; `Ok(Ok(true))` if it did, `Ok(Ok(false))` if the key held something else. The
    /// comparison, the quota check and the write share one transaction under the owner's lock,
    /// so of concurrent writers that read the same value exactly one succeeds.
    pub async fn kv_compare_and_set(
        &self,
        app: &str,
        owner: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: KvQuota,
    ) -> Result<std::result::Result<bool, KvRefusal>> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("kv:{app}:{owner}")).await?;
        let current: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT value FROM app_kv WHERE app_id = $1 AND owner = $2 AND key = $3",
        )
        .bind(app)
        .bind(owner)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if current.as_ref().map(|(v,)| v.as_slice()) != expected {
            return Ok(Ok(false));
        }
        if let Err(refused) = within_quota(&mut tx, app, owner, key, value, quota).await? {
            return Ok(Err(refused));
        }
        upsert(&mut tx, app, owner, key, value).await?;
        tx.commit().await?;
        Ok(Ok(true))
    }

    /// Deletes a value; returns whether it existed.
    pub async fn kv_delete(&self, app: &str, owner: &str, key: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM app_kv WHERE app_id = $1 AND owner = $2 AND key = $3")
            .bind(app)
            .bind(owner)
            .bind(key)
            .execute(&self.write_pool)
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
}
