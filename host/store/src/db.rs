//! Opening the database: choosing SQLite or PostgreSQL, connection options, pool and the
//! writers (messages, payment answers).

use crate::migrate;
use crate::payment_writer::PaymentWriter;
use crate::writer::{CommitHook, Writer};
use crate::{Result, StoreError};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::PathBuf;

use std::time::Duration;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file in the data directory.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// How to open the store.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// SQLite database `minihost.db` inside this directory (created if missing).
    Sqlite {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// Any sqlx URL: `postgres://...` or `sqlite://...`.
    Url(String),
}

/// Serialises `tx` with other transactions naming the same `key` (PostgreSQL advisory lock;
/// SQLite's write lock already serialises every writer).
pub(crate) async fn lock_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    key: &str,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The handle every other crate uses to read and write state. Cheap to clone: one shared
/// [`Parts`] (a request clones the API's state, and with it the store, several times; cloning
/// each pool, writer handle and cache apart took a few dozen atomic operations each time).
#[derive(Clone)]
pub struct Store {
    parts: std::sync::Arc<Parts>,
}

impl std::ops::Deref for Store {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

/// What a [`Store`] holds.
pub struct Parts {
    /// Reads (and, on PostgreSQL, writes).
    pub(crate) pool: AnyPool,
    /// Writes outside the message writer. On an SQLite file: ONE connection, so this node's
    /// writers queue for it in order (sqlx's pool is fair) instead of polling SQLite's lock with
    /// its busy handler, and the message writer can see when one is waiting and let it in
    /// (see `writer/sqlite.rs`). Elsewhere the same pool as reads.
    pub(crate) write_pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) writer: Writer,
    pub(crate) payment_writer: PaymentWriter,
    /// Delivery acks not yet written (`cursors.rs`).
    pub(crate) acks: std::sync::Arc<crate::cursors::AckBuffer>,
    /// Installs and grants remembered for event dispatch (`hot.rs`).
    pub(crate) hot: std::sync::Arc<crate::hot::HotReads>,
}

impl Store {
    /// Opens (creating if needed) the database, applies the migrations and starts the message
    /// and payment writers. `hook` is called, in commit order, with every batch of newly stored messages.
    pub async fn open(config: &StoreConfig, hook: Option<CommitHook>) -> Result<Self> {
        install_default_drivers();
        let (url, backend) = match config {
            StoreConfig::Sqlite { data_dir } => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Open(format!("data directory {}: {e}", data_dir.display()))
                })?;
                let path = data_dir.join("minihost.db");
                (
                    format!("sqlite://{}?mode=rwc", path.display()),
                    Backend::Sqlite,
                )
            }
            StoreConfig::Url(url) if url.starts_with("postgres") => {
                (url.clone(), Backend::Postgres)
            }
            StoreConfig::Url(url) if url.starts_with("sqlite:") => (url.clone(), Backend::Sqlite),
            StoreConfig::Url(url) => {
                return Err(StoreError::Open(format!(
                    "unsupported database URL scheme in {:?} (use postgres:// or sqlite://)",
                    redact(url)
                )));
            }
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10));
        let file = sqlite_file(&url);
        let options = if backend == Backend::Sqlite {
            // With a file, the message writer's checkpointer runs every checkpoint.
            let checkpoints = if file.is_some() {
                "PRAGMA wal_autocheckpoint = 0"
            } else {
                "PRAGMA wal_autocheckpoint = 1000"
            };
            options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; FULL makes every acknowledged
                    // commit durable across a power cut; busy_timeout waits out a held write lock.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute(checkpoints).await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let write_options = options.clone().max_connections(1).min_connections(1);
        let pool = options
            .connect(&url)
            .await
            .map_err(|e| StoreError::Open(format!("{}: {e}", redact(&url))))?;
        migrate::run(&pool, backend).await?;
        let write_pool = if file.is_some() {
            write_options
                .connect(&url)
                .await
                .map_err(|e| StoreError::Open(format!("{}: {e}", redact(&url))))?
        } else {
            pool.clone()
        };
        let writer = Writer::start(
            pool.clone(),
            backend,
            hook,
            file.as_deref().map(|f| (f, write_pool.clone())),
        )?;
        let payment_writer = PaymentWriter::start(write_pool.clone(), backend);
        Ok(Store {
            parts: std::sync::Arc::new(Parts {
                write_pool,
                pool,
                backend,
                writer,
                payment_writer,
                acks: std::sync::Arc::default(),
                hot: std::sync::Arc::default(),
            }),
        })
    }

    /// Starts a transaction that will write: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction cannot fail on a stale snapshot.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        begin_write(&self.write_pool, self.backend).await
    }

    /// Serialises the transaction with others naming the same `key` (PostgreSQL advisory lock;
    /// SQLite's write lock already serialises every writer).
    pub(crate) async fn lock_key(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        key: &str,
    ) -> Result<()> {
        lock_key(tx, self.backend, key).await
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Writes pending delivery acks, stops accepting appends and payment answers, lets queued
    /// ones commit, and closes the pool.
    pub async fn close(&self) {
        if let Err(e) = self.flush_acks().await {
            tracing::warn!(error = %e, "delivery cursors not written at close");
        }
        self.payment_writer.shutdown().await;
        self.writer.shutdown().await;
        self.write_pool.close().await;
        self.pool.close().await;
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
}

/// The database file an `sqlite:` URL names, if it names one (not an in-memory database).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!memory).then(|| PathBuf::from(path))
}

/// A URL with its password (if any) hidden, for error messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_sqlite_file() {
        use std::path::PathBuf;
        let file = super::sqlite_file;
        assert_eq!(
            file("sqlite:///data/minihost.db?mode=rwc"),
            Some(PathBuf::from("/data/minihost.db"))
        );
        assert_eq!(file("sqlite:rel.db"), Some(PathBuf::from("rel.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
