//! What the platform checked of an uploaded version, computed once at upload and stored with it
//! for the developer and the reviewer: the checks that passed (world version, imports, size,
//! compile, a smoke run), and the manifest's changes against the released version (new and
//! removed scopes and commands, a changed webhook), highlighted. A check that blocks (an
//! import, a component that does not compile, a smoke run that traps or exceeds a limit)
//! refuses the upload before anything is stored, so it never appears here.

use minihost_api::{ApiError, Finding};
use minihost_manifest::Manifest;
use minihost_runtime::{ErrorKind, Event, Invocation, InvocationReport, LoadedApp, Runtime};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn passed(check: &str, message: impl Into<String>) -> Finding {
    Finding {
        check: check.to_owned(),
        result: "passed".to_owned(),
        message: message.into(),
    }
}

fn changed(check: &str, message: impl Into<String>) -> Finding {
    Finding {
        check: check.to_owned(),
        result: "changed".to_owned(),
        message: message.into(),
    }
}

/// The checks a version passed to get this far (imports and compile are checked before).
pub(crate) fn checks_passed(
    imports: &[String],
    size: usize,
    max_size: usize,
    smoke: &InvocationReport,
) -> Vec<Finding> {
    let platform: Vec<&str> = imports
        .iter()
        .filter(|i| i.starts_with("minihost:app/"))
        .map(String::as_str)
        .collect();
    let wasi = imports.iter().filter(|i| i.starts_with("wasi:")).count();
    let smoke_text = match &smoke.outcome {
        Ok(Some(_)) => "answered with content".to_owned(),
        Ok(None) => "stayed silent".to_owned(),
        Err(e) => format!("answered with its own error ({})", e.message),
    };
    vec![
        passed(
            "world",
            format!(
                "a component of minihost:app@{}",
                minihost_manifest::PLATFORM_VERSION
            ),
        ),
        passed(
            "imports",
            format!(
                "every platform import is covered by a declared scope ({}); {wasi} WASI imports, none reaching files, sockets or HTTP",
                if platform.is_empty() {
                    "none".to_owned()
                } else {
                    platform.join(", ")
                }
            ),
        ),
        passed("size", format!("{size} bytes (limit {max_size})")),
        passed("compile", "compiles and links against the world"),
        passed(
            "smoke",
            format!(
                "an `opened` event with no grants {smoke_text} in {} ms, fuel {}",
                smoke.duration.as_millis(),
                smoke.fuel_consumed
            ),
        ),
    ]
}

/// Runs an `opened` event with no grants in a fresh sandbox under the manifest's limits: a
/// trap or a limit is a blocking finding (422); the app's own error is not.
pub(crate) async fn smoke_run(
    runtime: &Runtime,
    app: &Arc<LoadedApp>,
    manifest: &Manifest,
) -> Result<InvocationReport, ApiError> {
    // As a real event would run: fuel follows the manifest's time budget.
    let mut limits = runtime
        .config()
        .limits
        .with_deadline(Duration::from_millis(u64::from(manifest.limits.timeout_ms)));
    limits.memory_bytes = (manifest.limits.memory_mib as usize) << 20;
    let invocation = Invocation::new(manifest.id.as_str(), "smoke-test", "smoke-test")
        .limits(limits)
        .owner(format!("upload:{}", manifest.id.as_str()));
    let report = runtime.invoke(app, invocation, Event::Opened).await;
    match &report.outcome {
        Ok(_) => Ok(report),
        Err(e) if matches!(e.kind, ErrorKind::App(_)) => Ok(report),
        Err(e) if e.kind == ErrorKind::Busy => Err(ApiError::Unavailable(
            "the sandbox is busy; upload again in a minute",
        )),
        // Out of time having burned under a tenth of its fuel: the app did not get the CPU to
        // use its time (a busy server, guests at SCHED_IDLE), which says nothing about the app.
        // A real loop burns about half its fuel by its deadline (fuel is twice what the time
        // allows, BENCHMARKS.md "Fuel").
        Err(e) if e.kind == ErrorKind::Timeout && report.fuel_consumed < limits.fuel / 10 => Err(
            ApiError::Unavailable("the sandbox is busy; upload again in a minute"),
        ),
        Err(e) => Err(ApiError::invalid(
            "component",
            format!(
                "smoke run: an `opened` event with no grants failed: {} ({})",
                e.kind, e.message
            ),
        )),
    }
}

/// The manifest's changes against the released version's (`None`: nothing released yet).
pub(crate) fn diff(new: &Manifest, released: Option<(&str, &Manifest)>) -> Vec<Finding> {
    let Some((version, old)) = released else {
        return vec![passed(
            "scopes",
            "first release: every declared scope is new to users",
        )];
    };
    let mut out = Vec::new();
    let scopes = |m: &Manifest| -> BTreeSet<String> {
        m.scopes
            .iter()
            .map(|s| s.scope.as_str().to_owned())
            .collect()
    };
    let commands =
        |m: &Manifest| -> BTreeSet<String> { m.commands.iter().map(|c| c.name.clone()).collect() };
    let (old_scopes, new_scopes) = (scopes(old), scopes(new));
    for s in new_scopes.difference(&old_scopes) {
        let reason = new
            .scopes
            .iter()
            .find(|d| d.scope.as_str() == s)
            .map(|d| d.reason.clone())
            .unwrap_or_default();
        out.push(changed(
            "scopes",
            format!("new scope {s} (not in {version}): {reason:?}"),
        ));
    }
    for s in old_scopes.difference(&new_scopes) {
        out.push(changed("scopes", format!("removed scope {s}")));
    }
    let (old_commands, new_commands) = (commands(old), commands(new));
    for c in new_commands.difference(&old_commands) {
        out.push(changed("commands", format!("new command /{c}")));
    }
    for c in old_commands.difference(&new_commands) {
        out.push(changed("commands", format!("removed command /{c}")));
    }
    if old.webhook != new.webhook {
        out.push(changed(
            "webhook",
            format!(
                "webhook changed from {} to {}",
                old.webhook
                    .as_ref()
                    .map_or("none".into(), ToString::to_string),
                new.webhook
                    .as_ref()
                    .map_or("none".into(), ToString::to_string)
            ),
        ));
    }
    if out.is_empty() {
        out.push(passed(
            "scopes",
            format!("same scopes, commands and webhook as {version}"),
        ));
    }
    out
}
