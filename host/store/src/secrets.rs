//! Platform secrets: named values the platform creates once and every node shares (e.g. the key
//! of app-scoped user ids).

use crate::{Result, Store};

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
            .execute(&self.write_pool)
            .await?;
        let (v,): (String,) = sqlx::query_as("SELECT value FROM platform_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(v)
    }
}
