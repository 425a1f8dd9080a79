//! Per-app key-value storage: a shared bucket per app and a private bucket per (app, user),
//! bounded by key and byte quotas. Apps never see each other's keys. Each use of a user's
//! bucket, and each refusal, lands in their privacy record after it happened.

use crate::{Actor, AppError, AppServices};
use minihost_store::{KvQuota, KvRefusal};

/// The scope storage needs.
pub const SCOPE: &str = "storage";

/// Which half of the app's storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Shared by every user of the app.
    Shared,
    /// Private to the acting user.
    User,
}

impl AppServices {
    fn owner<'a>(&self, actor: &'a Actor, bucket: Bucket) -> &'a str {
        match bucket {
            Bucket::Shared => "",
            Bucket::User => &actor.app_user_id,
        }
    }

    /// Writes what came of a use of the user's private bucket (or of any refusal for want of
    /// the scope, which is the user's to grant) to their privacy record, after the fact.
    async fn note<T>(
        &self,
        actor: &Actor,
        bucket: Bucket,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        let denied = matches!(result, Err(AppError::PermissionDenied(_)));
        if bucket == Bucket::User || denied {
            self.noted(&actor.user, actor, SCOPE, result).await
        } else {
            result
        }
    }

    fn check_key(&self, key: &str) -> Result<(), AppError> {
        if key.is_empty() || key.len() > self.limits.max_key_bytes {
            return Err(AppError::Invalid(format!(
                "a key has 1 to {} bytes",
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    /// The value under `key`.
    pub async fn storage_get(
        &self,
        actor: &Actor,
        bucket: Bucket,
        key: &str,
    ) -> Result<Option<Vec<u8>>, AppError> {
        let got = async {
            self.require(actor, SCOPE).await?;
            self.check_key(key)?;
            Ok(self
                .store
                .kv_get(&actor.app, self.owner(actor, bucket), key)
                .await?)
        }
        .await;
        self.note(actor, bucket, got).await
    }

    /// Stores `value` under `key`, within quota.
    pub async fn storage_set(
        &self,
        actor: &Actor,
        bucket: Bucket,
        key: &str,
        value: &[u8],
    ) -> Result<(), AppError> {
        let set = async {
            self.require(actor, SCOPE).await?;
            self.check_key(key)?;
            self.check_value(value)?;
            let quota = self.quota();
            self.store
                .kv_set(&actor.app, self.owner(actor, bucket), key, value, quota)
                .await?
                .map_err(|refused| refused_by(refused, quota))
        }
        .await;
        self.note(actor, bucket, set).await
    }

    /// Stores `value` under `key` only if it now holds `expected` (`None`: absent), within
    /// quota; whether it did.
    pub async fn storage_compare_and_set(
        &self,
        actor: &Actor,
        bucket: Bucket,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, AppError> {
        let set = async {
            self.require(actor, SCOPE).await?;
            self.check_key(key)?;
            self.check_value(value)?;
            let quota = self.quota();
            self.store
                .kv_compare_and_set(
                    &actor.app,
                    self.owner(actor, bucket),
                    key,
                    expected,
                    value,
                    quota,
                )
                .await?
                .map_err(|refused| refused_by(refused, quota))
        }
        .await;
        self.note(actor, bucket, set).await
    }

    fn check_value(&self, value: &[u8]) -> Result<(), AppError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(AppError::Invalid(format!(
                "a value has at most {} bytes",
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }

    fn quota(&self) -> KvQuota {
        KvQuota {
            max_keys: self.limits.storage_keys,
            max_bytes: self.limits.storage_bytes,
        }
    }

    /// Removes `key`; returns whether it existed.
    pub async fn storage_delete(
        &self,
        actor: &Actor,
        bucket: Bucket,
        key: &str,
    ) -> Result<bool, AppError> {
        let deleted = async {
            self.require(actor, SCOPE).await?;
            self.check_key(key)?;
            Ok(self
                .store
                .kv_delete(&actor.app, self.owner(actor, bucket), key)
                .await?)
        }
        .await;
        self.note(actor, bucket, deleted).await
    }

    /// Keys starting with `prefix`, sorted (at most 1000).
    pub async fn storage_keys(
        &self,
        actor: &Actor,
        bucket: Bucket,
        prefix: &str,
    ) -> Result<Vec<String>, AppError> {
        let keys = async {
            self.require(actor, SCOPE).await?;
            if prefix.len() > self.limits.max_key_bytes {
                return Err(AppError::Invalid("prefix too long".into()));
            }
            Ok(self
                .store
                .kv_list(&actor.app, self.owner(actor, bucket), prefix, 1000)
                .await?)
        }
        .await;
        self.note(actor, bucket, keys).await
    }
}

/// The app's error for a write the quota refused.
fn refused_by(refused: KvRefusal, quota: KvQuota) -> AppError {
    match refused {
        KvRefusal::Keys => AppError::QuotaExceeded(format!("at most {} keys", quota.max_keys)),
        KvRefusal::Bytes => AppError::QuotaExceeded(format!("at most {} bytes", quota.max_bytes)),
    }
}
