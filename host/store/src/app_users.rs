//! The app-scoped id map: which user an app-scoped id (`au_…`) names, for each app that has
//! seen that user, so that an app's backend can name a user later.

use crate::{Result, Store};
use minihost_core::UserId;

impl Store {
    /// Records that `app_user_id` is `user` for `app` (idempotent). Every invocation calls it,
    /// so it reads first and writes only the first time: a write transaction per invocation
    /// would contend with the message writer for SQLite's one write lock.
    pub async fn remember_app_user(
        &self,
        app: &str,
        app_user_id: &str,
        user: &UserId,
    ) -> Result<()> {
        if self.user_for_app_user(app, app_user_id).await?.is_some() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO app_users (app_id, app_user_id, user_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(app)
        .bind(app_user_id)
        .bind(user.as_str())
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// The user behind an app-scoped id, if this app has seen them.
    pub async fn user_for_app_user(&self, app: &str, app_user_id: &str) -> Result<Option<UserId>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT user_id FROM app_users WHERE app_id = $1 AND app_user_id = $2")
                .bind(app)
                .bind(app_user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(u,)| UserId::from_string(u)))
    }
}
