//! Retention: a background task that bounds the records growing with use. Every
//! [`RetentionOptions::every`] (and once at start) it deletes invocation log entries and privacy
//! record lines older than their maximum age, and each app's (each user's) beyond its newest
//! maximum count. Deletion is in small batches (`minihost_store`'s `retention.rs`); two nodes
//! pruning at once delete the same rows, which is harmless.

use super::Inner;
use minihost_store::Keep;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long and how much of each record is kept, and how often it is pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionOptions {
    /// Invocation log entries older than this are deleted. Default 30 days.
    pub invocations_max_age: Duration,
    /// Invocation log entries kept per app, newest first. Default 10,000.
    pub invocations_per_app: u32,
    /// Privacy record lines older than this are deleted. Default 30 days.
    pub privacy_max_age: Duration,
    /// Privacy record lines kept per user, newest first. Default 10,000.
    pub privacy_per_user: u32,
    /// How often the records are pruned. Default every 10 minutes.
    pub every: Duration,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        const DAY: Duration = Duration::from_secs(24 * 60 * 60);
        RetentionOptions {
            invocations_max_age: 30 * DAY,
            invocations_per_app: 10_000,
            privacy_max_age: 30 * DAY,
            privacy_per_user: 10_000,
            every: Duration::from_secs(10 * 60),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Starts the pruning loop of `inner`'s platform; it ends when the platform is dropped.
pub(super) fn start(inner: &Arc<Inner>, options: RetentionOptions) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(options.every.max(Duration::from_secs(1)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            if let Err(e) = prune(&inner, &options).await {
                tracing::warn!(error = %e, "records not pruned; retrying at the next sweep");
            }
        }
    });
}

async fn prune(inner: &Inner, options: &RetentionOptions) -> anyhow::Result<()> {
    let now = minihost_core::now_millis();
    let invocations = inner
        .store
        .prune_invocations(
            now,
            Keep {
                max_age_ms: millis(options.invocations_max_age),
                max_count: options.invocations_per_app,
            },
        )
        .await?;
    let privacy = inner
        .store
        .prune_privacy(
            now,
            Keep {
                max_age_ms: millis(options.privacy_max_age),
                max_count: options.privacy_per_user,
            },
        )
        .await?;
    if invocations + privacy > 0 {
        tracing::info!(invocations, privacy, "pruned records");
    }
    Ok(())
}
