//! Fresh databases for tests: a SQLite file in a temporary directory always, and a new
//! PostgreSQL database when `MINIHOST_TEST_POSTGRES` (or `DATABASE_URL`) names a server.
//! Used by this crate's tests and by the black-box tests.

use crate::writer::CommitHook;
use crate::{Store, StoreConfig, StoreError};
use sqlx::{AssertSqlSafe, Connection};

/// The PostgreSQL server tests should use, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("MINIHOST_TEST_POSTGRES")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| u.starts_with("postgres"))
}

/// A database made for one test; [`TestDb::cleanup`] removes it.
pub struct TestDb {
    /// Which backend (`sqlite` or `postgres`), for assertion messages.
    pub name: &'static str,
    /// How to open it (again, e.g. after a simulated restart).
    pub config: StoreConfig,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite database in a new temporary directory.
    pub fn sqlite() -> Result<Self, StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Open(e.to_string()))?;
        Ok(TestDb {
            name: "sqlite",
            config: StoreConfig::Sqlite {
                data_dir: dir.path().to_path_buf(),
            },
            _dir: Some(dir),
            drop_pg: None,
        })
    }

    /// A fresh, empty PostgreSQL database on `server` (a URL naming any existing database).
    pub async fn postgres(server: &str) -> Result<Self, StoreError> {
        let name = format!("mh_test_{}", minihost_core::ids::random_hex(8));
        let mut admin = sqlx::PgConnection::connect(server).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let base = match server.rfind('/') {
            Some(i) if i > "postgres://".len() => &server[..i],
            _ => server,
        };
        Ok(TestDb {
            name: "postgres",
            config: StoreConfig::Url(format!("{base}/{name}")),
            _dir: None,
            drop_pg: Some((server.to_owned(), name)),
        })
    }

    /// The PostgreSQL database's URL (`None` for SQLite).
    pub fn url(&self) -> Option<&str> {
        match &self.config {
            StoreConfig::Url(url) => Some(url),
            StoreConfig::Sqlite { .. } => None,
        }
    }

    /// Every backend configured for this run: SQLite, and PostgreSQL when available.
    pub async fn all() -> Result<Vec<Self>, StoreError> {
        let mut dbs = vec![Self::sqlite()?];
        if let Some(server) = postgres_server() {
            dbs.push(Self::postgres(&server).await?);
        }
        Ok(dbs)
    }

    /// Opens a store on this database.
    pub async fn open(&self, hook: Option<CommitHook>) -> Result<Store, StoreError> {
        Store::open(&self.config, hook).await
    }

    /// Drops the PostgreSQL database (SQLite's directory goes with the value).
    pub async fn cleanup(self) -> Result<(), StoreError> {
        if let Some((server, name)) = &self.drop_pg {
            let mut admin = sqlx::PgConnection::connect(server).await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

/// Runs `sql` on `store` behind its back (e.g. changing a balance without a ledger entry), for
/// tests that show a check notices what no store operation would do. Returns the rows changed.
pub async fn tamper(store: &Store, sql: &str) -> Result<u64, StoreError> {
    Ok(sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&store.pool)
        .await?
        .rows_affected())
}
