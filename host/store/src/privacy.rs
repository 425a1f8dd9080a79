//! The privacy record: which app used what of a user's, or tried to and was refused, and when.
//! Written by the app services after an access succeeds or is refused; read by the user.

use crate::{Result, Store};
use minihost_core::{UnixMillis, UserId};
use serde::Serialize;
use sqlx::Row;

/// One line of a user's privacy record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivacyEntry {
    /// The app.
    pub app_id: String,
    /// What it used: the scope (e.g. `profile.read`).
    pub capability: String,
    /// `ok`, or why it was refused: `denied` (not granted), `quota_exceeded`,
    /// `budget_exceeded`.
    pub outcome: String,
    /// When.
    pub at_ms: UnixMillis,
}

impl Store {
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
        .execute(&self.write_pool)
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
}
