//! Schema migrations, embedded in the binary and applied in order at start-up, each in its own
//! transaction. Several PostgreSQL nodes starting at once serialise on an advisory lock.

use crate::Result;
use crate::db::Backend;
use sqlx::AnyPool;
use sqlx::AssertSqlSafe;

/// The migrations, in order. A migration, once released, is never edited: add a new one.
/// They are written for PostgreSQL; for SQLite, `BYTEA` reads `BLOB`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "messenger",
        include_str!("../migrations/0001_messenger.sql"),
    ),
    (2, "apps", include_str!("../migrations/0002_apps.sql")),
    (3, "grants", include_str!("../migrations/0003_grants.sql")),
    (4, "tokens", include_str!("../migrations/0004_tokens.sql")),
    (
        5,
        "invocation_queue",
        include_str!("../migrations/0005_invocation_queue.sql"),
    ),
    (
        6,
        "payments",
        include_str!("../migrations/0006_payments.sql"),
    ),
    (
        7,
        "webhooks",
        include_str!("../migrations/0007_webhooks.sql"),
    ),
    (8, "refunds", include_str!("../migrations/0008_refunds.sql")),
    (
        9,
        "payouts_timers",
        include_str!("../migrations/0009_payouts_timers.sql"),
    ),
    (
        10,
        "registry",
        include_str!("../migrations/0010_registry.sql"),
    ),
    (11, "panels", include_str!("../migrations/0011_panels.sql")),
    (
        12,
        "app_policy",
        include_str!("../migrations/0012_app_policy.sql"),
    ),
    (
        13,
        "testers",
        include_str!("../migrations/0013_testers.sql"),
    ),
    (
        14,
        "records",
        include_str!("../migrations/0014_records.sql"),
    ),
    (
        15,
        "sessions",
        include_str!("../migrations/0015_sessions.sql"),
    ),
    (
        16,
        "user_locale",
        include_str!("../migrations/0016_user_locale.sql"),
    ),
    // 17 is taken on another branch.
    (
        18,
        "ws_tickets",
        include_str!("../migrations/0018_ws_tickets.sql"),
    ),
    (
        19,
        "throttles",
        include_str!("../migrations/0019_throttles.sql"),
    ),
    (
        20,
        "consent_requests",
        include_str!("../migrations/0020_consent_requests.sql"),
    ),
    (
        21,
        "cursor_bounds",
        include_str!("../migrations/0021_cursor_bounds.sql"),
    ),
    (
        22,
        "action_keys",
        include_str!("../migrations/0022_action_keys.sql"),
    ),
];

/// Applies every migration not yet recorded in `schema_migrations`.
pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock(7204911)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, backend).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7204911)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    for (version, name, sql) in MIGRATIONS {
        let done: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *conn)
                .await?;
        if done.is_some() {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let sql = match backend {
            Backend::Sqlite => sql.replace("BYTEA", "BLOB"),
            Backend::Postgres => (*sql).to_owned(),
        };
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(minihost_core::now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}
