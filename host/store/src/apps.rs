//! Mini-apps: registration, uploaded versions (manifest + component bytes), installs into
//! conversations, and the per-app invocation log that developers read.

use crate::{Result, Store, StoreError};
use minihost_core::{ConversationId, UnixMillis, UserId};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A registered app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRecord {
    /// The app id from its manifest (e.g. `polls`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The developer who owns it.
    pub developer: UserId,
}

/// Where a version stands in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// In trial: runs only for its developer (and their testers), in their own conversations;
    /// unreviewed. A new upload of the same version replaces it.
    Trial,
    /// Waiting for a reviewer.
    Submitted,
    /// Claimed by one reviewer.
    InReview,
    /// Approved: it may be released.
    Approved,
    /// Rejected by a reviewer, with a reason.
    Rejected,
    /// Taken back by its developer before a decision.
    Withdrawn,
}

impl VersionStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Trial => "trial",
            VersionStatus::Submitted => "submitted",
            VersionStatus::InReview => "in_review",
            VersionStatus::Approved => "approved",
            VersionStatus::Rejected => "rejected",
            VersionStatus::Withdrawn => "withdrawn",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "trial" | "sideloaded" => VersionStatus::Trial,
            "submitted" => VersionStatus::Submitted,
            "in_review" => VersionStatus::InReview,
            "approved" => VersionStatus::Approved,
            "rejected" => VersionStatus::Rejected,
            "withdrawn" => VersionStatus::Withdrawn,
            other => return Err(StoreError::Corrupt(format!("version status {other:?}"))),
        })
    }
}

/// One uploaded version of an app.
#[derive(Debug, Clone)]
pub struct AppVersion {
    /// The app.
    pub app_id: String,
    /// Its semver version.
    pub version: String,
    /// The manifest as uploaded (TOML).
    pub manifest: String,
    /// The component.
    pub wasm: Vec<u8>,
    /// Hex sha256 of the component.
    pub wasm_sha256: String,
    /// Review status.
    pub status: VersionStatus,
    /// What the upload checks found (a JSON array), computed once at upload.
    pub findings: String,
    /// The developer's notes to the reviewer.
    pub notes: String,
}

/// An app installed in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Install {
    /// The conversation.
    pub conversation: ConversationId,
    /// The app.
    pub app_id: String,
    /// The app's display name.
    pub app_name: String,
    /// Which version runs there.
    pub version: String,
    /// Who installed it.
    pub installed_by: UserId,
    /// Unreviewed, installed by its developer: it runs only for them.
    pub sideloaded: bool,
    /// The app's developer.
    pub owner: UserId,
    /// Whether the app is suspended (it runs nowhere).
    pub suspended: bool,
    /// What runs for ordinary users (a trial install runs `version` instead).
    pub release: crate::registry::Release,
}

/// One entry of an app's invocation log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationRecord {
    /// Unique id.
    pub id: String,
    /// The app.
    pub app_id: String,
    /// The version that ran.
    pub version: String,
    /// Where.
    pub conversation: String,
    /// For whom (app-scoped id; never the internal user id).
    pub app_user_id: String,
    /// `command`, `action`, `opened`, `message` or `payment`.
    pub event_kind: String,
    /// `ok` or `error`.
    pub outcome: String,
    /// The error kind, when it failed.
    pub error_kind: Option<String>,
    /// The error text, when it failed.
    pub error_message: Option<String>,
    /// Wall time in microseconds.
    pub duration_us: i64,
    /// Microseconds it waited for an execution slot before running.
    pub queued_us: i64,
    /// Fuel consumed.
    pub fuel: i64,
    /// Capability calls (JSON array).
    pub calls: serde_json::Value,
    /// Log lines and captured output (JSON array).
    pub logs: serde_json::Value,
    /// When.
    pub created_at_ms: UnixMillis,
}

fn install_from_row(r: &AnyRow) -> Result<Install> {
    Ok(Install {
        conversation: ConversationId::from_string(r.try_get::<String, _>("conversation_id")?),
        app_id: r.try_get("app_id")?,
        app_name: r.try_get("name")?,
        version: r.try_get("version")?,
        installed_by: UserId::from_string(r.try_get::<String, _>("installed_by")?),
        sideloaded: r.try_get::<i64, _>("sideloaded")? != 0,
        owner: UserId::from_string(r.try_get::<String, _>("developer_id")?),
        suspended: r
            .try_get::<Option<String>, _>("suspended_reason")?
            .is_some(),
        release: crate::registry::Release {
            stable: r.try_get("stable")?,
            candidate: r.try_get("candidate")?,
            percent: r.try_get::<Option<i64>, _>("percent")?.unwrap_or(0),
            history: Vec::new(),
        },
    })
}

impl Store {
    /// Registers an app for `developer`, or returns the existing one. An app id taken by another
    /// developer is [`StoreError::Conflict`]`("app id")`.
    pub async fn register_app(
        &self,
        id: &str,
        name: &str,
        developer: &UserId,
    ) -> Result<AppRecord> {
        sqlx::query(
            "INSERT INTO apps (id, name, developer_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(developer.as_str())
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?;
        let app = self.app(id).await?.ok_or(StoreError::NotFound)?;
        if &app.developer != developer {
            return Err(StoreError::Conflict("app id"));
        }
        if app.name != name {
            sqlx::query("UPDATE apps SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&self.write_pool)
                .await?;
            // The name is part of every install of the app.
            self.forget_installs(None);
        }
        Ok(AppRecord {
            name: name.to_owned(),
            ..app
        })
    }

    /// The app with this id.
    pub async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        let row = sqlx::query("SELECT id, name, developer_id FROM apps WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(AppRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                developer: UserId::from_string(r.try_get::<String, _>("developer_id")?),
            })
        })
        .transpose()
    }

    /// Stores a version. A sideloaded version may be replaced by a new upload of the same
    /// version; a submitted or reviewed one never changes ([`StoreError::Conflict`]).
    pub async fn put_version(&self, v: &AppVersion) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let existing: Option<(String,)> =
            sqlx::query_as("SELECT status FROM app_versions WHERE app_id = $1 AND version = $2")
                .bind(&v.app_id)
                .bind(&v.version)
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some((status,)) if VersionStatus::parse(&status)? != VersionStatus::Trial => {
                return Err(StoreError::Conflict("a reviewed or submitted version"));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE app_versions SET manifest = $1, wasm = $2, wasm_sha256 = $3, status = $4,
                            findings = $7, notes = $8, updated_at = $9
                      WHERE app_id = $5 AND version = $6",
                )
                .bind(&v.manifest)
                .bind(v.wasm.clone())
                .bind(&v.wasm_sha256)
                .bind(v.status.as_str())
                .bind(&v.app_id)
                .bind(&v.version)
                .bind(&v.findings)
                .bind(&v.notes)
                .bind(minihost_core::now_millis())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO app_versions
                        (app_id, version, manifest, wasm, wasm_sha256, status, created_at,
                         findings, notes, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $7)",
                )
                .bind(&v.app_id)
                .bind(&v.version)
                .bind(&v.manifest)
                .bind(v.wasm.clone())
                .bind(&v.wasm_sha256)
                .bind(v.status.as_str())
                .bind(minihost_core::now_millis())
                .bind(&v.findings)
                .bind(&v.notes)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// One version, with its component bytes.
    pub async fn version(&self, app_id: &str, version: &str) -> Result<Option<AppVersion>> {
        let row = sqlx::query(
            "SELECT app_id, version, manifest, wasm, wasm_sha256, status, findings, notes
               FROM app_versions WHERE app_id = $1 AND version = $2",
        )
        .bind(app_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AppVersion {
                app_id: r.try_get("app_id")?,
                version: r.try_get("version")?,
                manifest: r.try_get("manifest")?,
                wasm: r.try_get("wasm")?,
                wasm_sha256: r.try_get("wasm_sha256")?,
                status: VersionStatus::parse(&r.try_get::<String, _>("status")?)?,
                findings: r.try_get("findings")?,
                notes: r.try_get("notes")?,
            })
        })
        .transpose()
    }

    /// A version's manifest, component hash and status, without the component bytes.
    pub async fn version_meta(
        &self,
        app_id: &str,
        version: &str,
    ) -> Result<Option<(String, String, VersionStatus)>> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT manifest, wasm_sha256, status FROM app_versions WHERE app_id = $1 AND version = $2",
        )
        .bind(app_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(m, h, s)| Ok((m, h, VersionStatus::parse(&s)?)))
            .transpose()
    }

    /// Moves a version from status `from` to `to`; returns whether it was in `from` (the row
    /// count decides a race between two reviewers).
    pub async fn set_version_status(
        &self,
        app_id: &str,
        version: &str,
        from: VersionStatus,
        to: VersionStatus,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE app_versions SET status = $1 WHERE app_id = $2 AND version = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(app_id)
        .bind(version)
        .bind(from.as_str())
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Every version of every app with status `status`: (app id, version), oldest first.
    pub async fn versions_with_status(
        &self,
        status: VersionStatus,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT app_id, version FROM app_versions WHERE status = $1 ORDER BY created_at, app_id",
        )
        .bind(status.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The versions of one app with status `status`.
    pub async fn app_versions_with_status(
        &self,
        app_id: &str,
        status: VersionStatus,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT version FROM app_versions WHERE app_id = $1 AND status = $2")
                .bind(app_id)
                .bind(status.as_str())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// Installs (or moves to another version) an app in a conversation.
    pub async fn install(
        &self,
        conversation: &ConversationId,
        app_id: &str,
        version: &str,
        by: &UserId,
        sideloaded: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO installs (conversation_id, app_id, version, installed_by, sideloaded, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (conversation_id, app_id)
             DO UPDATE SET version = excluded.version, installed_by = excluded.installed_by,
                           sideloaded = excluded.sideloaded",
        )
        .bind(conversation.as_str())
        .bind(app_id)
        .bind(version)
        .bind(by.as_str())
        .bind(i64::from(sideloaded))
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?;
        self.forget_installs(Some(conversation));
        Ok(())
    }

    /// Removes an app from a conversation; returns whether it was installed.
    pub async fn uninstall(&self, conversation: &ConversationId, app_id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM installs WHERE conversation_id = $1 AND app_id = $2")
            .bind(conversation.as_str())
            .bind(app_id)
            .execute(&self.write_pool)
            .await?
            .rows_affected();
        self.forget_installs(Some(conversation));
        Ok(n == 1)
    }

    /// The apps installed in a conversation.
    pub async fn installs(&self, conversation: &ConversationId) -> Result<Vec<Install>> {
        let rows = sqlx::query(
            "SELECT i.conversation_id, i.app_id, a.name, a.developer_id, i.version, i.installed_by,
                    i.sideloaded, a.suspended_reason, r.stable, r.candidate,
                    CAST(r.percent AS BIGINT) AS percent
               FROM installs i JOIN apps a ON a.id = i.app_id
               LEFT JOIN app_releases r ON r.app_id = i.app_id
              WHERE i.conversation_id = $1 ORDER BY i.created_at, i.app_id",
        )
        .bind(conversation.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(install_from_row).collect()
    }

    /// Appends to an app's invocation log.
    /// Writes an invocation record. It rides the message writer's group commit (all records
    /// of a batch in one statement): a transaction of its own per record would contend with
    /// the writer, for SQLite's one write lock (whose busy handler sleeps milliseconds at a
    /// time) or PostgreSQL's WAL flush, which a storm of refused invocations turned into chat
    /// latency.
    pub async fn record_invocation(&self, r: &InvocationRecord) -> Result<()> {
        self.writer.record(r.clone()).await
    }

    /// The newest entries of an app's invocation log, newest first.
    pub async fn invocations(&self, app_id: &str, limit: u32) -> Result<Vec<InvocationRecord>> {
        let rows = sqlx::query(
            "SELECT id, app_id, version, conversation_id, app_user_id, event_kind, outcome,
                    error_kind, error_message, duration_us, queued_us, fuel, calls, logs,
                    created_at
               FROM invocations WHERE app_id = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(app_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json = |col: &str| -> Result<serde_json::Value> {
                    let s: String = r.try_get(col)?;
                    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
                };
                Ok(InvocationRecord {
                    id: r.try_get("id")?,
                    app_id: r.try_get("app_id")?,
                    version: r.try_get("version")?,
                    conversation: r.try_get("conversation_id")?,
                    app_user_id: r.try_get("app_user_id")?,
                    event_kind: r.try_get("event_kind")?,
                    outcome: r.try_get("outcome")?,
                    error_kind: r.try_get("error_kind")?,
                    error_message: r.try_get("error_message")?,
                    duration_us: r.try_get("duration_us")?,
                    queued_us: r.try_get("queued_us")?,
                    fuel: r.try_get("fuel")?,
                    calls: json("calls")?,
                    logs: json("logs")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// Columns of an invocation row, in the order [`insert_invocations`] binds them.
const INVOCATION_COLUMNS: usize = 15;
/// The columns an invocation record fills, in the order both writers bind them.
pub(crate) const INVOCATION_INSERT_COLUMNS: &str = "id, app_id, version, conversation_id, \
     app_user_id, event_kind, outcome, error_kind, error_message, duration_us, fuel, calls, logs, \
     created_at, queued_us";
/// Rows per INSERT statement (15 parameters each, well under both databases' limits).
const INVOCATIONS_PER_INSERT: usize = 32;

/// Writes invocation records inside the message writer's transaction, several per statement.
pub(crate) async fn insert_invocations(
    conn: &mut sqlx::AnyConnection,
    records: &[&InvocationRecord],
) -> Result<()> {
    for chunk in records.chunks(INVOCATIONS_PER_INSERT) {
        let mut sql = format!("INSERT INTO invocations ({INVOCATION_INSERT_COLUMNS}) VALUES ");
        for row in 0..chunk.len() {
            if row > 0 {
                sql.push(',');
            }
            let params: Vec<String> = (1..=INVOCATION_COLUMNS)
                .map(|c| format!("${}", row * INVOCATION_COLUMNS + c))
                .collect();
            sql.push('(');
            sql.push_str(&params.join(","));
            sql.push(')');
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(r.id.clone())
                .bind(r.app_id.clone())
                .bind(r.version.clone())
                .bind(r.conversation.clone())
                .bind(r.app_user_id.clone())
                .bind(r.event_kind.clone())
                .bind(r.outcome.clone())
                .bind(r.error_kind.clone())
                .bind(r.error_message.clone())
                .bind(r.duration_us)
                .bind(r.fuel)
                .bind(r.calls.to_string())
                .bind(r.logs.to_string())
                .bind(r.created_at_ms)
                .bind(r.queued_us);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
