//! Firing the timers apps set (`timers.set`). Every second this node claims the due timers (a
//! lease in the store decides between nodes) and runs each one's `timer` event for the user who
//! set it, in the conversation where it was set, if the app is still installed there. A timer is
//! deleted once its event ran (whatever the app answered, as for any event); one whose event
//! could not start (the app's queue was full, or the platform failed) is tried again a few
//! seconds later, at most [`MAX_ATTEMPTS`] times; one whose node died is claimed again when its
//! lease ends. So a timer fires at least once, and apps handle `timer` idempotently.

use super::{Inner, Platform};
use minihost_core::ConversationId;
use minihost_runtime::{ErrorKind, Event};
use minihost_store::Timer;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often due timers are looked for.
const SWEEP: Duration = Duration::from_secs(1);
/// How long a claim holds before another node may take the timer.
const LEASE_MS: i64 = 60_000;
/// How soon an event that could not start is tried again.
const RETRY_MS: i64 = 2_000;
/// Claims of one timer before it is dropped.
pub(super) const MAX_ATTEMPTS: i64 = 5;
/// Timers claimed per sweep.
const BATCH: u32 = 100;

/// Starts the timer loop of `inner`'s platform; it ends when the platform is dropped.
pub(super) fn start(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP).await;
            let Some(inner) = weak.upgrade() else { return };
            let platform = Platform { inner };
            if let Err(e) = platform.fire_timers().await {
                tracing::warn!(error = %e, "timers not fired; retrying at the next sweep");
            }
        }
    });
}

/// What became of one firing.
enum Fired {
    /// The event ran (or was parked behind a consent request), or there is nobody to run it
    /// for: the timer is done.
    Done,
    /// The event could not start: try again.
    Again,
}

impl Platform {
    /// Claims the due timers and fires each in its own task.
    async fn fire_timers(&self) -> anyhow::Result<()> {
        let now = minihost_core::now_millis();
        for timer in self
            .inner
            .store
            .claim_due_timers(now, LEASE_MS, BATCH)
            .await?
        {
            let this = self.clone();
            tokio::spawn(async move {
                let fired = match this.fire(&timer).await {
                    Ok(fired) => fired,
                    Err(e) => {
                        tracing::warn!(error = %e, app = %timer.app_id, key = %timer.key, "timer event failed to start");
                        Fired::Again
                    }
                };
                let store = &this.inner.store;
                let ended = match fired {
                    Fired::Again if timer.attempts < MAX_ATTEMPTS => {
                        let at = minihost_core::now_millis() + RETRY_MS;
                        store.retry_timer(&timer, at).await.map(|_| ())
                    }
                    Fired::Again => {
                        tracing::warn!(app = %timer.app_id, key = %timer.key, attempts = timer.attempts, "timer dropped after its last attempt");
                        store.finish_timer(&timer).await.map(|_| ())
                    }
                    Fired::Done => store.finish_timer(&timer).await.map(|_| ()),
                };
                if let Err(e) = ended {
                    // Its lease ends and it is claimed again.
                    tracing::warn!(error = %e, app = %timer.app_id, key = %timer.key, "timer not settled");
                }
            });
        }
        Ok(())
    }

    /// Runs `timer`'s event, if its user and the app's install are still there.
    async fn fire(&self, timer: &Timer) -> anyhow::Result<Fired> {
        let store = &self.inner.store;
        let Some(user) = store.user_by_id(&timer.user_id).await? else {
            return Ok(Fired::Done);
        };
        let conversation = ConversationId::from_string(timer.conversation_id.clone());
        let Some(install) = self.installed(&user, &conversation, &timer.app_id).await? else {
            return Ok(Fired::Done);
        };
        let ran = self
            .run(user, install, Event::Timer(timer.key.clone()))
            .await?;
        let busy = ran
            .is_some_and(|ran| matches!(&ran.report.outcome, Err(e) if e.kind == ErrorKind::Busy));
        Ok(if busy { Fired::Again } else { Fired::Done })
    }
}
