//! Running one event for one user: find the install, ask for consent when needed, build the
//! invocation (app-scoped user, current grant, manifest limits, the actor for capabilities),
//! run it, post the reply, tell the user when the app failed, and log the invocation.

use super::Platform;
use super::consent::{PendingConsent, ScopeAsk};
use super::loader::Loaded;
use minihost_api::ApiError;
use minihost_appsvc::{Actor, Trigger};
use minihost_core::ConversationId;
use minihost_hub::{Event as HubEvent, Topic};
use minihost_runtime::{CallOutcome, Event, Invocation, InvocationReport, Scopes};
use minihost_store::{GrantRecord, Install, InvocationRecord, User};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

impl Platform {
    /// The install of `app` in `conversation` as it runs for `user` (see [`Self::runnable`]).
    pub(super) async fn installed(
        &self,
        user: &User,
        conversation: &ConversationId,
        app: &str,
    ) -> Result<Option<Install>, ApiError> {
        let found = self
            .inner
            .store
            .installs_hot(conversation)
            .await?
            .iter()
            .find(|i| i.app_id == app)
            .cloned();
        match found {
            Some(install) => self.runnable(user, install).await,
            None => Ok(None),
        }
    }

    /// `install` with the version that runs for `user`, or `None` when nothing of it runs for
    /// them: a suspended app runs for nobody; a version in trial only for the developer or
    /// tester who installed it (while they still are one); otherwise the app's release decides (the candidate for users whose bucket
    /// is below the rollout percentage, the stable version for the others, nothing before a
    /// first release). Read at every event from the store, so a suspension or a rollback
    /// applies to the next event.
    pub(super) async fn runnable(
        &self,
        user: &User,
        mut install: Install,
    ) -> Result<Option<Install>, ApiError> {
        if install.suspended {
            return Ok(None);
        }
        if install.sideloaded {
            // A trial: only for whoever installed it, while they develop or test the app.
            let runs = install.installed_by == user.id
                && (install.owner == user.id
                    || self
                        .inner
                        .store
                        .is_tester(&install.app_id, &user.id)
                        .await?);
            return Ok(runs.then_some(install));
        }
        let app_user = self
            .inner
            .svc
            .app_user_id(&install.app_id, &user.id)
            .await
            .map_err(app_err)?;
        let Some(version) = install.release.version_for(bucket(&app_user)) else {
            return Ok(None);
        };
        install.version = version.to_owned();
        Ok(Some(install))
    }

    /// Runs every app installed in the conversation that declares command `name`.
    pub(super) async fn command(
        &self,
        author: &User,
        conversation: &ConversationId,
        name: &str,
        args: &str,
    ) -> Result<(), ApiError> {
        let installs = self.inner.store.installs_hot(conversation).await?;
        for install in installs.iter().cloned() {
            let Some(install) = self.runnable(author, install).await? else {
                continue;
            };
            let loaded = self
                .inner
                .loader
                .get(&install.app_id, &install.version)
                .await?;
            if loaded.manifest.commands.iter().any(|c| c.name == name) {
                self.run(author.clone(), install, Event::command(name, args))
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs `event` in the background.
    pub(super) fn spawn_event(&self, user: User, install: Install, event: Event) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.run(user, install, event).await {
                tracing::warn!(error = %e, "app event failed");
            }
        });
    }

    /// Runs `event` now (`Some` with what it came to), or parks it behind a consent request
    /// (`None`).
    pub(super) async fn run(
        &self,
        user: User,
        install: Install,
        event: Event,
    ) -> Result<Option<Ran>, ApiError> {
        let loaded = self
            .inner
            .loader
            .get(&install.app_id, &install.version)
            .await?;
        // Read once: the consent check and the invocation's scopes both need it.
        let grant = self
            .inner
            .store
            .grant_hot(&user.id, &install.app_id)
            .await?;
        if let Some(request) = self
            .consent_needed(&install, &loaded, grant.as_ref())
            .await?
        {
            let app = install.app_id.clone();
            if let Some(fresh) = self.inner.consent.park(&user.id, request, install, event) {
                // Any node lists it and takes the answer.
                let stored = serde_json::to_string(&fresh)
                    .map_err(|e| ApiError::Internal(format!("consent request: {e}")))?;
                self.inner
                    .store
                    .put_consent_request(&user.id, &app, &stored, minihost_core::now_millis())
                    .await?;
                let mut frame = serde_json::to_value(&fresh).unwrap_or_default();
                frame["type"] = json!("consent_request");
                self.inner
                    .fanout
                    .publish(Topic::User(user.id.clone()), HubEvent::json(&frame));
            }
            return Ok(None);
        }
        let granted = grant.map(|g| g.scopes).unwrap_or_default();
        self.invoke(&user, &install, &loaded, event, granted)
            .await
            .map(Some)
    }

    /// The consent request to send before running, if the user has not answered for every
    /// scope this version declares.
    async fn consent_needed(
        &self,
        install: &Install,
        loaded: &Loaded,
        grant: Option<&GrantRecord>,
    ) -> Result<Option<PendingConsent>, ApiError> {
        let declared = &loaded.manifest.scopes;
        if declared.is_empty() {
            return Ok(None);
        }
        let asked: BTreeSet<String> = match grant {
            None => BTreeSet::new(),
            // A grant emptied by the user (revoked, or everything refused) asks again at their
            // next use of the app, as a first use does.
            Some(g) if g.scopes.is_empty() => BTreeSet::new(),
            Some(g) if g.version == install.version => declared
                .iter()
                .map(|s| s.scope.as_str().to_owned())
                .collect(),
            Some(g) => self.declared_scopes(&install.app_id, &g.version).await?,
        };
        if declared.iter().all(|s| asked.contains(s.scope.as_str())) {
            return Ok(None);
        }
        let granted: BTreeSet<String> = grant
            .map(|g| g.scopes.iter().cloned().collect())
            .unwrap_or_default();
        Ok(Some(PendingConsent {
            request: format!("cr_{}", minihost_core::ids::random_hex(8)),
            app: install.app_id.clone(),
            app_name: install.app_name.clone(),
            version: install.version.clone(),
            conversation: install.conversation.to_string(),
            scopes: declared
                .iter()
                .map(|s| ScopeAsk {
                    name: s.scope.as_str().to_owned(),
                    reason: s.reason.clone(),
                    new: !asked.contains(s.scope.as_str()),
                    granted: granted.contains(s.scope.as_str()),
                })
                .collect(),
        }))
    }

    async fn declared_scopes(
        &self,
        app: &str,
        version: &str,
    ) -> Result<BTreeSet<String>, ApiError> {
        let Some((manifest, _, _)) = self.inner.store.version_meta(app, version).await? else {
            return Ok(BTreeSet::new());
        };
        Ok(minihost_manifest::parse(&manifest)
            .map(|m| {
                m.scopes
                    .iter()
                    .map(|s| s.scope.as_str().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Stores the user's answer for `app` and runs the events that waited for it.
    pub(super) async fn answer(
        &self,
        user: &User,
        app: &str,
        scopes: Vec<String>,
    ) -> Result<GrantRecord, ApiError> {
        if self.inner.store.suspension(app).await?.is_some() {
            self.inner.consent.drop_app(app);
            self.inner.store.drop_consent_requests(app).await?;
            return Err(suspended());
        }
        let waiting = self.inner.consent.take(&user.id, app);
        // The request may have been made on another node: the store has every one.
        let stored = self.inner.store.take_consent_request(&user.id, app).await?;
        let asked: Option<PendingConsent> =
            stored.as_deref().and_then(|s| serde_json::from_str(s).ok());
        let version = match (
            &waiting,
            &asked,
            self.inner.store.grant(&user.id, app).await?,
        ) {
            (Some(w), _, _) => w.request.version.clone(),
            (None, Some(r), _) => r.version.clone(),
            (None, None, Some(g)) => g.version,
            (None, None, None) => return Err(ApiError::NotFound("consent request for this app")),
        };
        let declared = self.declared_scopes(app, &version).await?;
        if let Err(e) = check_answer(&declared, &scopes) {
            // Put the request back: the user can answer again.
            if let Some(stored) = &stored {
                self.inner
                    .store
                    .put_consent_request(&user.id, app, stored, minihost_core::now_millis())
                    .await?;
            }
            if let Some(w) = waiting {
                for e in w.events {
                    self.inner
                        .consent
                        .park(&user.id, w.request.clone(), w.install.clone(), e);
                }
            }
            return Err(e);
        }
        let record = self
            .inner
            .store
            .set_grant(&user.id, app, &scopes, &version)
            .await?;
        if let Some(w) = waiting {
            for event in w.events {
                self.spawn_event(user.clone(), w.install.clone(), event);
            }
        }
        // Events parked on other nodes run there.
        self.inner
            .fanout
            .invalidate(minihost_hub::Invalidation::ConsentAnswered {
                user: user.id.clone(),
                app: app.to_owned(),
            });
        Ok(record)
    }

    /// Runs `event` for `user` now, as if they had just answered the consent request with
    /// `answer` (checked as a real answer is), and returns what happened. For the simulator:
    /// it runs what the server runs, minus the wait for the user.
    pub(crate) async fn run_answered(
        &self,
        user: &User,
        install: &Install,
        event: Event,
        answer: &[String],
    ) -> Result<Ran, ApiError> {
        let loaded = self
            .inner
            .loader
            .get(&install.app_id, &install.version)
            .await?;
        if let Event::Command(command) = &event
            && !loaded
                .manifest
                .commands
                .iter()
                .any(|c| c.name == command.name)
        {
            return Err(ApiError::invalid(
                "command",
                format!(
                    "miniapp.toml declares no command /{}, so a server would not run the app for it",
                    command.name
                ),
            ));
        }
        let declared = self
            .declared_scopes(&install.app_id, &install.version)
            .await?;
        check_answer(&declared, answer)?;
        let grant = self.inner.store.grant(&user.id, &install.app_id).await?;
        if self
            .consent_needed(install, &loaded, grant.as_ref())
            .await?
            .is_some()
        {
            self.inner
                .store
                .set_grant(&user.id, &install.app_id, answer, &install.version)
                .await?;
        }
        let granted = self
            .inner
            .svc
            .granted(&user.id, &install.app_id)
            .await
            .map_err(app_err)?;
        self.invoke(user, install, &loaded, event, granted).await
    }

    /// Runs the event in a fresh sandbox and deals with its outcome: posts the reply, logs the
    /// invocation, tells the user when it failed.
    async fn invoke(
        &self,
        user: &User,
        install: &Install,
        loaded: &Arc<Loaded>,
        event: Event,
        granted: Vec<String>,
    ) -> Result<Ran, ApiError> {
        let svc = &self.inner.svc;
        let app = &install.app_id;
        let app_user_id = svc.app_user_id(app, &user.id).await.map_err(app_err)?;
        let declared: BTreeSet<&str> = loaded
            .manifest
            .scopes
            .iter()
            .map(|s| s.scope.as_str())
            .collect();
        let granted: Vec<String> = granted
            .into_iter()
            .filter(|s| declared.contains(s.as_str()))
            .collect();
        let name = if install.sideloaded {
            format!("{} (unreviewed)", install.app_name)
        } else {
            install.app_name.clone()
        };
        let actor = Actor {
            app: app.clone(),
            app_name: install.app_name.clone(),
            user: user.id.clone(),
            app_user_id: app_user_id.clone(),
            conversation: Some(install.conversation.clone()),
            trigger: trigger_of(&event),
            reviewed_here: Some(!install.sideloaded),
        };
        let ml = loaded.manifest.limits;
        // The fuel follows the app's time budget at the operator's rate.
        let mut limits = self
            .runtime_limits()
            .with_deadline(Duration::from_millis(u64::from(ml.timeout_ms)));
        limits.memory_bytes = (ml.memory_mib as usize) << 20;
        let invocation = Invocation::new(
            app.clone(),
            app_user_id.clone(),
            install.conversation.to_string(),
        )
        // The language the user chose (in the web client's settings), else English.
        .locale(user.locale.as_deref().unwrap_or("en"))
        .grant(Scopes::new(granted.clone()))
        .limits(limits)
        .developer(install.owner == user.id)
        .owner(install.owner.as_str())
        .with(actor.clone());
        let report = self
            .inner
            .loader_runtime()
            .invoke(&loaded.app, invocation, event)
            .await;
        self.note_refused_scopes(&actor, &granted, &report).await;
        let mut failure = report
            .outcome
            .as_ref()
            .err()
            .map(|e| (e.kind.as_str().to_owned(), e.message.clone()));
        if let Ok(Some(reply)) = &report.outcome {
            let content = minihost_cap_common::to_core(reply.clone());
            if let Err(e) = svc.reply(&actor, content).await {
                failure = Some(("reply_rejected".into(), e.to_string()));
            }
        }
        let record = invocation_record(install, &app_user_id, &report, failure.clone());
        count(&self.inner.metrics, &record, &report);
        // The developer's log first, then the user's notice.
        self.inner.store.record_invocation(&record).await?;
        let mut notice = None;
        if let Some((kind, _detail)) = &failure {
            // A sentence for the user; the typed detail is in the developer's log.
            let message =
                super::notice::user_notice(&name, report.outcome.as_ref().err().map(|e| &e.kind));
            notice = Some(message.clone());
            let frame = json!({
                "type": "app_error",
                "app": app,
                "kind": kind,
                "conversation": install.conversation,
                "message": message,
            });
            self.inner
                .fanout
                .publish(Topic::User(user.id.clone()), HubEvent::json(&frame));
        }
        let rejected = match failure {
            Some((kind, detail)) if kind == "reply_rejected" => Some(detail),
            _ => None,
        };
        Ok(Ran {
            report,
            rejected,
            notice,
        })
    }

    /// Writes to the user's privacy record each scope the sandbox refused this invocation
    /// because it was not in its grant (once per scope). Refusals made later, by the app
    /// services (a grant revoked during the invocation, a quota), are written there. A line
    /// that cannot be written is logged: the invocation is done, and its log and reply go on.
    async fn note_refused_scopes(
        &self,
        actor: &Actor,
        granted: &[String],
        report: &InvocationReport,
    ) {
        let refused: BTreeSet<&str> = report
            .calls
            .iter()
            .filter_map(|c| match &c.outcome {
                CallOutcome::Denied(scope) => Some(scope.as_str()),
                _ => None,
            })
            .filter(|scope| !granted.iter().any(|g| g == scope))
            .collect();
        for scope in refused {
            if let Err(e) = self.inner.svc.note_privacy(actor, scope, "denied").await {
                tracing::warn!(error = %e, app = %actor.app, scope, "privacy record line not written");
            }
        }
    }

    fn runtime_limits(&self) -> minihost_runtime::Limits {
        self.inner.loader_runtime().config().limits
    }
}

/// What one invocation came to.
pub(crate) struct Ran {
    /// The runtime's report.
    pub report: InvocationReport,
    /// Why the messenger refused the app's reply, if it did.
    pub rejected: Option<String>,
    /// The sentence the user was shown, if the invocation failed.
    pub notice: Option<String>,
}

/// Which send budget an event's messages take from: a user's own command, button press or
/// opening of the app is answered from that user's reply budget; timers and payment events
/// are unsolicited.
fn trigger_of(event: &Event) -> Trigger {
    match event {
        Event::Command(_) | Event::Message(_) | Event::Action(_) | Event::Opened => Trigger::User,
        Event::Timer(_) | Event::Payment(_) => Trigger::Unsolicited,
    }
}

/// The refusal of anything for a suspended app.
pub(crate) fn suspended() -> ApiError {
    ApiError::Refused {
        status: axum::http::StatusCode::CONFLICT,
        code: "app_suspended",
        message: "the app is suspended: nothing of it runs".into(),
    }
}

/// A user's rollout bucket for an app, 0..100: stable for the (app, user) pair (a hash of the
/// app-scoped id), spread evenly over users.
pub(crate) fn bucket(app_user_id: &str) -> u8 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(app_user_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u8::try_from(u64::from_be_bytes(first) % 100).unwrap_or(0)
}

/// A consent answer may only grant scopes the version declares.
fn check_answer(declared: &BTreeSet<String>, scopes: &[String]) -> Result<(), ApiError> {
    match scopes.iter().find(|s| !declared.contains(*s)) {
        Some(unknown) => Err(ApiError::invalid(
            "scopes",
            format!("{unknown:?} is not a scope this app declares"),
        )),
        None => Ok(()),
    }
}

fn app_err(e: minihost_appsvc::AppError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Counts an invocation and its capability calls in the node's metrics.
fn count(
    metrics: &minihost_metrics::Metrics,
    record: &InvocationRecord,
    report: &InvocationReport,
) {
    let app = record.app_id.as_str();
    metrics
        .invocations
        .with_label_values(&[app, record.outcome.as_str()])
        .inc();
    metrics
        .invocation_duration
        .with_label_values(&[app])
        .observe(report.duration.as_secs_f64());
    // Fuel to f64: a histogram's buckets need no more than f64's precision.
    #[allow(clippy::cast_precision_loss)]
    metrics
        .invocation_fuel
        .with_label_values(&[app])
        .observe(report.fuel_consumed as f64);
    for call in &report.calls {
        metrics
            .capability_calls
            .with_label_values(&[call.interface.name(), call.outcome.as_str()])
            .inc();
    }
}

fn invocation_record(
    install: &Install,
    app_user_id: &str,
    report: &InvocationReport,
    failure: Option<(String, String)>,
) -> InvocationRecord {
    let calls: Vec<_> = report
        .calls
        .iter()
        .map(|c| {
            json!({
                "interface": c.interface.name(),
                "function": c.function,
                "outcome": c.outcome.as_str(),
                "duration_us": u64::try_from(c.duration.as_micros()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let mut logs: Vec<_> = report
        .logs
        .iter()
        .map(|l| json!({"level": l.level_name(), "message": l.message}))
        .collect();
    for (stream, text) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        if !text.is_empty() {
            logs.push(json!({"level": stream, "message": text}));
        }
    }
    InvocationRecord {
        // In creation order: the log's primary key grows at its end (one WAL page per batch of
        // records, not one per record).
        id: format!("inv_{}", minihost_core::ids::time_ordered_hex(6)),
        app_id: install.app_id.clone(),
        version: install.version.clone(),
        conversation: install.conversation.to_string(),
        app_user_id: app_user_id.to_owned(),
        event_kind: report.event.to_owned(),
        outcome: if failure.is_some() { "error" } else { "ok" }.to_owned(),
        error_kind: failure.as_ref().map(|f| f.0.clone()),
        error_message: failure.map(|f| f.1),
        duration_us: i64::try_from(report.duration.as_micros()).unwrap_or(i64::MAX),
        queued_us: i64::try_from(report.queued.as_micros()).unwrap_or(i64::MAX),
        fuel: i64::try_from(report.fuel_consumed).unwrap_or(i64::MAX),
        calls: serde_json::Value::Array(calls),
        logs: serde_json::Value::Array(logs),
        created_at_ms: minihost_core::now_millis(),
    }
}
