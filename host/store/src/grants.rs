//! Consent: grants, what each user allowed each app (the privacy record is in `privacy.rs`,
//! the platform secrets in `secrets.rs`).

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
        self.forget_grant(user, app);
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
        self.forget_grant(user, app);
        Ok(n == 1)
    }
}
