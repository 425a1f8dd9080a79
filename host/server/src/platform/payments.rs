//! Telling apps what happened to their payment requests. The store writes each change of an
//! order (paid, declined, expired, refunded) to an outbox in the same transaction as the change;
//! this dispatcher takes each event once (a conditional update decides between nodes), and runs
//! the app's `payment` event for the paying user in the conversation where the app asked. It
//! wakes when a user answers ([`Platform::payments_changed`]) and sweeps every second, which is
//! also when pending orders past their expiry become `expired`.

use super::{Inner, Platform};
use minihost_core::ConversationId;
use minihost_runtime::Event;
use minihost_runtime::bindings::{PaymentStatus, PaymentUpdate};
use minihost_store::PaymentEvent;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the outbox is swept without a wake-up.
const SWEEP: Duration = Duration::from_secs(1);
/// Events taken per sweep.
const BATCH: u32 = 200;

/// The WIT status of a stored event kind.
fn status(kind: &str) -> Option<PaymentStatus> {
    match kind {
        "paid" => Some(PaymentStatus::Confirmed),
        "declined" | "expired" => Some(PaymentStatus::Declined),
        "refunded" => Some(PaymentStatus::Refunded),
        _ => None,
    }
}

/// Starts the dispatcher of `inner`'s platform; it ends when the platform is dropped.
pub(super) fn start(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let wake = inner.payments_wake.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            let platform = Platform { inner };
            if let Err(e) = platform.dispatch_payments().await {
                tracing::warn!(error = %e, "payment events not dispatched; retrying at the next sweep");
            }
        }
    });
}

impl Platform {
    /// Expires what is due, then runs the app event of every undispatched payment event.
    async fn dispatch_payments(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        for order in store.expire_orders(minihost_core::now_millis()).await? {
            let view = self.inner.svc.payment_view(&order, "en").await?;
            self.inner
                .svc
                .notify_user(&order.user_id, "payment_update", &view);
        }
        for event in store.undispatched_payment_events(BATCH).await? {
            // Whoever marks it first delivers it: another node's sweep skips it.
            if !store.mark_payment_event_dispatched(&event.id).await? {
                continue;
            }
            if let Err(e) = self.deliver(&event).await {
                tracing::warn!(error = %e, event = %event.id, "payment event not delivered to the app");
            }
        }
        Ok(())
    }

    /// Runs the app's `payment` event for the paying user where the app asked, if the app is
    /// still installed there.
    async fn deliver(&self, event: &PaymentEvent) -> anyhow::Result<()> {
        let Some(status) = status(&event.kind) else {
            return Ok(());
        };
        let store = &self.inner.store;
        let Some(order) = store.order(&event.order_id).await? else {
            return Ok(());
        };
        let Some(conversation) = order.conversation_id.as_deref() else {
            // A backend's order: its webhook tells it.
            return Ok(());
        };
        let Some(user) = store.user_by_id(&order.user_id).await? else {
            return Ok(());
        };
        let conversation = ConversationId::from_string(conversation.to_owned());
        let Some(install) = self.installed(&user, &conversation, &order.app_id).await? else {
            return Ok(());
        };
        let update = Event::Payment(PaymentUpdate {
            request: order.id.clone(),
            status,
        });
        self.spawn_event(user, install, update);
        Ok(())
    }

    /// Wakes the dispatcher (a user answered a payment request).
    pub(crate) fn wake_payments(&self) {
        self.inner.payments_wake.notify_one();
    }
}
