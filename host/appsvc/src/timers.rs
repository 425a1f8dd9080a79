//! Timers an app sets from its sandbox: a `timer` event later, in the conversation of the event
//! that set it, on behalf of that event's user (whose grant at firing time applies). Bounded in
//! delay, key size and count per app (`AppLimits`). The platform fires them (`minihost` server).

use crate::payments::check_key;
use crate::{Actor, AppError, AppServices};
use minihost_store::NewTimer;

impl AppServices {
    /// Sets (or moves) the timer `key` of the actor's conversation, due `after_secs` from now.
    pub async fn set_timer(
        &self,
        actor: &Actor,
        key: &str,
        after_secs: u32,
    ) -> Result<(), AppError> {
        let conversation = actor.conversation.as_ref().ok_or_else(|| {
            AppError::Invalid("timers are set from an event in a conversation".into())
        })?;
        check_key(key).map_err(|_| {
            AppError::Invalid("a timer key has 1 to 128 printable ASCII characters".into())
        })?;
        let max_delay = self.limits.max_timer_delay_secs;
        if !(1..=max_delay).contains(&after_secs) {
            return Err(AppError::Invalid(format!(
                "after-seconds must be 1 to {max_delay}"
            )));
        }
        let max_pending = self.limits.max_pending_timers;
        let set = self
            .store
            .set_timer(
                NewTimer {
                    app_id: &actor.app,
                    conversation_id: conversation.as_str(),
                    key,
                    user_id: &actor.user,
                    due_at_ms: minihost_core::now_millis() + i64::from(after_secs) * 1000,
                },
                max_pending,
            )
            .await?;
        if set {
            Ok(())
        } else {
            Err(AppError::QuotaExceeded(format!(
                "at most {max_pending} pending timers per app"
            )))
        }
    }

    /// Cancels the timer `key` of the actor's conversation; whether one was pending.
    pub async fn cancel_timer(&self, actor: &Actor, key: &str) -> Result<bool, AppError> {
        let Some(conversation) = actor.conversation.as_ref() else {
            return Ok(false);
        };
        Ok(self
            .store
            .cancel_timer(&actor.app, conversation.as_str(), key)
            .await?)
    }
}
