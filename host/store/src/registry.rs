//! The registry's state: where each version stands in review (claimed by one reviewer, decided
//! with a reason), which versions are released to whom (a stable version, a candidate for a
//! percentage of users, the earlier stable versions a rollback returns to), suspended apps,
//! users' reports, the directory of released apps, and users' own app panels. Every transition is a conditional update (the row count decides a race
//! between two reviewers) written with its line in the audit log, in one transaction.

use crate::apps::VersionStatus;
use crate::db::Store;
use crate::ledger::{self, Tx};
use crate::{Result, StoreError};
use minihost_core::{UnixMillis, UserId};
use serde::Serialize;
use sqlx::Row;

/// A version as review sees it (no component bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionReview {
    /// The app.
    #[serde(rename = "app")]
    pub app_id: String,
    /// Its version.
    pub version: String,
    /// Where it stands.
    pub status: VersionStatus,
    /// The manifest as uploaded.
    pub manifest: String,
    /// Hex sha256 of the component: the version's content address.
    pub wasm_sha256: String,
    /// The component's size in bytes.
    pub wasm_bytes: i64,
    /// What the upload checks found (JSON).
    pub findings: serde_json::Value,
    /// The developer's notes to the reviewer.
    pub notes: String,
    /// The reviewer who claimed or decided it.
    pub reviewer: Option<String>,
    /// Why it was rejected.
    pub reason: String,
    /// Uploaded, ms.
    pub created_at_ms: UnixMillis,
    /// Last changed, ms.
    pub updated_at_ms: UnixMillis,
}

/// What runs for an app's ordinary users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Release {
    /// The version everyone gets (`None`: nothing is released).
    pub stable: Option<String>,
    /// A version in gradual rollout.
    pub candidate: Option<String>,
    /// Which share of users (by bucket, 0..100) get the candidate.
    pub percent: i64,
    /// Earlier stable versions, newest last.
    pub history: Vec<String>,
}

impl Release {
    /// The version a user in `bucket` (0..100) runs.
    pub fn version_for(&self, bucket: u8) -> Option<&str> {
        match &self.candidate {
            Some(c) if i64::from(bucket) < self.percent => Some(c),
            _ => self.stable.as_deref(),
        }
    }
}

/// Why a release or rollback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseRefusal {
    /// The version is not approved.
    #[error("{0} is not approved")]
    NotApproved(String),
    /// There is no earlier release to go back to.
    #[error("there is no earlier release to roll back to")]
    NothingToRollBack,
}

/// A released app as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedApp {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its developer's display name.
    pub developer: String,
    /// The version everyone gets.
    pub version: String,
    /// How many times users reported it.
    pub reports: i64,
}

/// A user's report of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Its id.
    pub id: String,
    /// The app.
    #[serde(rename = "app")]
    pub app_id: String,
    /// Who reported (internal id: shown to reviewers only).
    pub reporter: UserId,
    /// Where.
    pub conversation: Option<String>,
    /// Why, in the reporter's words.
    pub reason: String,
    /// When, ms.
    pub created_at_ms: UnixMillis,
}

const REVIEW_COLUMNS: &str = "app_id, version, status, manifest, wasm_sha256,
     CAST(LENGTH(wasm) AS BIGINT), findings, notes, reviewer, reason, created_at, updated_at";

fn review_from_row(r: &sqlx::any::AnyRow) -> Result<VersionReview> {
    let findings: String = r.try_get(6)?;
    Ok(VersionReview {
        app_id: r.try_get(0)?,
        version: r.try_get(1)?,
        status: VersionStatus::parse(&r.try_get::<String, _>(2)?)?,
        manifest: r.try_get(3)?,
        wasm_sha256: r.try_get(4)?,
        wasm_bytes: r.try_get(5)?,
        findings: serde_json::from_str(&findings)
            .map_err(|e| StoreError::Corrupt(format!("findings: {e}")))?,
        notes: r.try_get(7)?,
        reviewer: r.try_get(8)?,
        reason: r.try_get(9)?,
        created_at_ms: r.try_get(10)?,
        updated_at_ms: r.try_get(11)?,
    })
}

fn split_history(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

async fn release_in(tx: &mut Tx, app: &str) -> Result<Release> {
    let row: Option<(Option<String>, Option<String>, i64, String)> = sqlx::query_as(
        "SELECT stable, candidate, CAST(percent AS BIGINT), history FROM app_releases
          WHERE app_id = $1",
    )
    .bind(app)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(
        row.map_or_else(Release::default, |(stable, candidate, percent, h)| {
            Release {
                stable,
                candidate,
                percent,
                history: split_history(&h),
            }
        }),
    )
}

async fn write_release(tx: &mut Tx, app: &str, r: &Release, now: UnixMillis) -> Result<()> {
    sqlx::query(
        "INSERT INTO app_releases (app_id, stable, candidate, percent, history, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app_id) DO UPDATE SET stable = excluded.stable,
             candidate = excluded.candidate, percent = excluded.percent,
             history = excluded.history, updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(&r.stable)
    .bind(&r.candidate)
    .bind(r.percent)
    .bind(r.history.join(" "))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// One version as review sees it.
    pub async fn version_review(&self, app: &str, version: &str) -> Result<Option<VersionReview>> {
        let sql =
            format!("SELECT {REVIEW_COLUMNS} FROM app_versions WHERE app_id = $1 AND version = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(review_from_row).transpose()
    }

    /// Every version of `app`, newest upload first.
    pub async fn version_reviews(&self, app: &str) -> Result<Vec<VersionReview>> {
        let sql = format!(
            "SELECT {REVIEW_COLUMNS} FROM app_versions WHERE app_id = $1
              ORDER BY created_at DESC, version DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(review_from_row).collect()
    }

    /// The review queue: versions submitted or in review, oldest first.
    pub async fn review_queue(&self) -> Result<Vec<VersionReview>> {
        let sql = format!(
            "SELECT {REVIEW_COLUMNS} FROM app_versions WHERE status IN ('submitted', 'in_review')
              ORDER BY created_at, app_id, version"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(review_from_row).collect()
    }

    /// Moves a version from one of `from` to `to` (recording `reviewer` and `reason` when
    /// given), with an audit line, if it is in one of `from` (and, with `claimed_by`, claimed
    /// by that reviewer). Returns whether it moved.
    #[allow(clippy::too_many_arguments)]
    pub async fn transition_version(
        &self,
        app: &str,
        version: &str,
        from: &[VersionStatus],
        to: VersionStatus,
        claimed_by: Option<&str>,
        reviewer: Option<&str>,
        reason: &str,
        actor: &str,
    ) -> Result<bool> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let n = sqlx::query(
            "UPDATE app_versions
                SET status = $1, reviewer = COALESCE($2, reviewer), reason = $3, updated_at = $4
              WHERE app_id = $5 AND version = $6
                AND (status = $7 OR status = $8)
                AND ($9 = '' OR reviewer = $9)",
        )
        .bind(to.as_str())
        .bind(reviewer)
        .bind(reason)
        .bind(now)
        .bind(app)
        .bind(version)
        .bind(from.first().copied().unwrap_or(""))
        .bind(from.get(1).or(from.first()).copied().unwrap_or(""))
        .bind(claimed_by.unwrap_or(""))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        let detail = if reason.is_empty() {
            to.as_str().to_owned()
        } else {
            format!("{}: {reason}", to.as_str())
        };
        ledger::audit(
            &mut tx,
            actor,
            &format!("version.{}", to.as_str()),
            &format!("{app}@{version}"),
            &detail,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What runs for `app`'s ordinary users.
    pub async fn release(&self, app: &str) -> Result<Release> {
        let mut tx = self.write_pool.begin().await?;
        let r = release_in(&mut tx, app).await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Releases the approved `version` to `percent` of users (100: to everyone, the earlier
    /// stable version kept for a rollback), with an audit line.
    pub async fn set_release(
        &self,
        app: &str,
        version: &str,
        percent: i64,
        actor: &str,
    ) -> Result<std::result::Result<Release, ReleaseRefusal>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("release:{app}")).await?;
        let status: Option<(String,)> =
            sqlx::query_as("SELECT status FROM app_versions WHERE app_id = $1 AND version = $2")
                .bind(app)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if status.map(|(s,)| s) != Some(VersionStatus::Approved.as_str().to_owned()) {
            return Ok(Err(ReleaseRefusal::NotApproved(format!("{app}@{version}"))));
        }
        let mut r = release_in(&mut tx, app).await?;
        if percent >= 100 {
            if let Some(old) = r.stable.take()
                && old != version
            {
                r.history.push(old);
            }
            r.stable = Some(version.to_owned());
            r.candidate = None;
            r.percent = 0;
        } else if r.stable.as_deref() == Some(version) {
            // Already everyone's: nothing to roll out.
            r.candidate = None;
            r.percent = 0;
        } else {
            r.candidate = Some(version.to_owned());
            r.percent = percent.max(0);
        }
        write_release(&mut tx, app, &r, now).await?;
        ledger::audit(
            &mut tx,
            actor,
            "release",
            app,
            &format!("{version} to {}%", percent.clamp(0, 100)),
            now,
        )
        .await?;
        tx.commit().await?;
        // The release is part of every install of the app.
        self.forget_installs(None);
        Ok(Ok(r))
    }

    /// One step back: a rollout in progress is stopped (everyone on the stable version), or
    /// else the stable version goes back to the one before it. With an audit line.
    pub async fn roll_back(
        &self,
        app: &str,
        actor: &str,
    ) -> Result<std::result::Result<Release, ReleaseRefusal>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, &format!("release:{app}")).await?;
        let mut r = release_in(&mut tx, app).await?;
        let detail = if let Some(candidate) = r.candidate.take() {
            r.percent = 0;
            format!("stopped the rollout of {candidate}")
        } else if let Some(previous) = r.history.pop() {
            let from = r.stable.replace(previous.clone()).unwrap_or_default();
            format!("{from} back to {previous}")
        } else {
            return Ok(Err(ReleaseRefusal::NothingToRollBack));
        };
        write_release(&mut tx, app, &r, now).await?;
        ledger::audit(&mut tx, actor, "rollback", app, &detail, now).await?;
        tx.commit().await?;
        // The release is part of every install of the app.
        self.forget_installs(None);
        Ok(Ok(r))
    }

    /// Suspends `app` everywhere (the kill switch), with an audit line; pending payment requests
    /// of the app expire at once (the payment dispatcher tells their users). Returns whether it
    /// was running before.
    pub async fn suspend_app(&self, app: &str, reason: &str, actor: &str) -> Result<bool> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE apps SET suspended_reason = $1, suspended_at = $2
              WHERE id = $3 AND suspended_reason IS NULL",
        )
        .bind(reason)
        .bind(now)
        .bind(app)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "UPDATE payment_orders SET expires_at = $1
                  WHERE app_id = $2 AND state = 'pending' AND expires_at > $1",
            )
            .bind(now)
            .bind(app)
            .execute(&mut *tx)
            .await?;
            ledger::audit(&mut tx, actor, "suspend", app, reason, now).await?;
        }
        tx.commit().await?;
        self.forget_installs(None);
        Ok(n == 1)
    }

    /// Lifts `app`'s suspension, with an audit line; whether it was suspended.
    pub async fn lift_suspension(&self, app: &str, reason: &str, actor: &str) -> Result<bool> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE apps SET suspended_reason = NULL, suspended_at = NULL
              WHERE id = $1 AND suspended_reason IS NOT NULL",
        )
        .bind(app)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            ledger::audit(&mut tx, actor, "unsuspend", app, reason, now).await?;
        }
        tx.commit().await?;
        self.forget_installs(None);
        Ok(n == 1)
    }

    /// Why `app` is suspended, if it is.
    pub async fn suspension(&self, app: &str) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT suspended_reason FROM apps WHERE id = $1")
                .bind(app)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(r,)| r))
    }

    /// Files a user's report of `app`.
    pub async fn report_app(
        &self,
        app: &str,
        reporter: &UserId,
        conversation: Option<&str>,
        reason: &str,
    ) -> Result<Report> {
        let report = Report {
            id: format!("rp_{}", minihost_core::ids::random_hex(10)),
            app_id: app.to_owned(),
            reporter: reporter.clone(),
            conversation: conversation.map(str::to_owned),
            reason: reason.to_owned(),
            created_at_ms: minihost_core::now_millis(),
        };
        sqlx::query(
            "INSERT INTO app_reports (id, app_id, reporter, conversation_id, reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&report.id)
        .bind(&report.app_id)
        .bind(report.reporter.as_str())
        .bind(&report.conversation)
        .bind(&report.reason)
        .bind(report.created_at_ms)
        .execute(&self.write_pool)
        .await?;
        Ok(report)
    }

    /// Open reports, oldest first.
    pub async fn open_reports(&self, limit: u32) -> Result<Vec<Report>> {
        let rows: Vec<(String, String, String, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT id, app_id, reporter, conversation_id, reason, created_at FROM app_reports
              WHERE resolved_at IS NULL ORDER BY created_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, app_id, reporter, conversation, reason, created_at_ms)| Report {
                    id,
                    app_id,
                    reporter: UserId::from_string(reporter),
                    conversation,
                    reason,
                    created_at_ms,
                },
            )
            .collect())
    }

    /// Marks `app`'s open reports resolved; how many.
    pub async fn resolve_reports(&self, app: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE app_reports SET resolved_at = $1 WHERE app_id = $2 AND resolved_at IS NULL",
        )
        .bind(minihost_core::now_millis())
        .bind(app)
        .execute(&self.write_pool)
        .await?
        .rows_affected())
    }

    /// Released, running apps (the directory): (app, name, developer's display name, stable
    /// version, open reports), by name.
    pub async fn released_apps(&self) -> Result<Vec<ListedApp>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.name, u.display_name, r.stable,
                    (SELECT COUNT(*) FROM app_reports p WHERE p.app_id = a.id)
               FROM apps a JOIN app_releases r ON r.app_id = a.id
               JOIN users u ON u.id = a.developer_id
              WHERE r.stable IS NOT NULL AND a.suspended_reason IS NULL
              ORDER BY a.name, a.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, developer, version, reports)| ListedApp {
                id,
                name,
                developer,
                version,
                reports,
            })
            .collect())
    }

    /// Names `user` a tester of `app`; whether they were not one already.
    pub async fn add_tester(&self, app: &str, user: &UserId) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO app_testers (app_id, user_id, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, user_id) DO NOTHING",
        )
        .bind(app)
        .bind(user.as_str())
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Stops `user` testing `app`; whether they were a tester.
    pub async fn remove_tester(&self, app: &str, user: &UserId) -> Result<bool> {
        let n = sqlx::query("DELETE FROM app_testers WHERE app_id = $1 AND user_id = $2")
            .bind(app)
            .bind(user.as_str())
            .execute(&self.write_pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Whether `user` tests `app`.
    pub async fn is_tester(&self, app: &str, user: &UserId) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT CAST(1 AS BIGINT) FROM app_testers WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app)
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// `app`'s testers' usernames, sorted.
    pub async fn testers_of(&self, app: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT u.username FROM app_testers t JOIN users u ON u.id = t.user_id
              WHERE t.app_id = $1 ORDER BY u.username",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(u,)| u).collect())
    }

    /// Who may add and remove apps in group `conversation`: `owner` (the default) or
    /// `members`.
    pub async fn app_policy(&self, conversation: &str) -> Result<String> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT policy FROM group_app_policies WHERE conversation_id = $1")
                .bind(conversation)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map_or_else(|| "owner".to_owned(), |(p,)| p))
    }

    /// Sets who may add and remove apps in group `conversation` (`owner` or `members`).
    pub async fn set_app_policy(&self, conversation: &str, policy: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_app_policies (conversation_id, policy) VALUES ($1, $2)
             ON CONFLICT (conversation_id) DO UPDATE SET policy = excluded.policy",
        )
        .bind(conversation)
        .bind(policy)
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// (version, ok?, duration µs) of `app`'s latest `limit` invocations, newest first.
    pub async fn invocation_samples(
        &self,
        app: &str,
        limit: u32,
    ) -> Result<Vec<(String, bool, i64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT version, outcome, duration_us FROM invocations WHERE app_id = $1
              ORDER BY created_at DESC LIMIT $2",
        )
        .bind(app)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(v, outcome, d)| (v, outcome == "ok", d))
            .collect())
    }

    /// The private conversation of `user`'s panel for `app`, if they added it.
    pub async fn panel_conversation(&self, user: &UserId, app: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT conversation_id FROM app_panels WHERE user_id = $1 AND app_id = $2",
        )
        .bind(user.as_str())
        .bind(app)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(c,)| c))
    }

    /// Records `app` in `user`'s panel, running in `conversation`; whether it was new (a
    /// concurrent add of the same app keeps the first one's conversation).
    pub async fn add_panel(&self, user: &UserId, app: &str, conversation: &str) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO app_panels (user_id, app_id, conversation_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, app_id) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(app)
        .bind(conversation)
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Removes `app` from `user`'s panel; its conversation, if it had one.
    pub async fn remove_panel(&self, user: &UserId, app: &str) -> Result<Option<String>> {
        let conversation = self.panel_conversation(user, app).await?;
        sqlx::query("DELETE FROM app_panels WHERE user_id = $1 AND app_id = $2")
            .bind(user.as_str())
            .bind(app)
            .execute(&self.write_pool)
            .await?;
        Ok(conversation)
    }

    /// `user`'s panel: (app, name, conversation), by name.
    pub async fn panel_of(&self, user: &UserId) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT p.app_id, a.name, p.conversation_id FROM app_panels p
               JOIN apps a ON a.id = p.app_id
              WHERE p.user_id = $1 ORDER BY a.name, p.app_id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The audit log about `subject` (an app, or `app@version`; a prefix match), newest first.
    pub async fn audit_about(
        &self,
        subject: &str,
        limit: u32,
    ) -> Result<Vec<crate::ledger::AuditEntry>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT actor, action, subject, detail, created_at FROM audit_log
              WHERE subject = $1 OR substr(subject, 1, CAST($2 AS INTEGER)) = $3
              ORDER BY created_at DESC, id LIMIT $4",
        )
        .bind(subject)
        .bind(i64::try_from(subject.len() + 1).unwrap_or(i64::MAX))
        .bind(format!("{subject}@"))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ledger::audit_entries(rows))
    }
}
