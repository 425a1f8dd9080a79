//! A fresh PostgreSQL database per bench run on the local server, dropped afterwards.

use anyhow::{Context, Result};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection};

/// A database created for this run; call [`Database::drop_now`] when done.
pub struct Database {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl Database {
    /// Creates `minihost_bench_<pid>_<time>` through `admin_url` (a database URL on the server).
    pub async fn create(admin_url: &str) -> Result<Self> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let name = format!("minihost_bench_{}_{stamp}", std::process::id());
        let mut conn = PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        // The name is ours: digits and underscores only.
        conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = conn.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    pub async fn drop_now(self) -> Result<()> {
        let mut conn = PgConnection::connect(&self.admin_url).await?;
        conn.execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        let _ = conn.close().await;
        Ok(())
    }
}
