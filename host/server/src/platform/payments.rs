//! Telling apps what happened to their payment requests. The store writes each change of an
//! order (paid, declined, expired, refunded) to an outbox in the same transaction as the change;
//! this dispatcher takes each event once (a conditional update decides between nodes), and runs
//! the app's `payment` event for the paying user in the conversation where the app asked. It
//! wakes when a user answers ([`Platform::payments_changed`]) and sweeps every second, which is
//! also when pending orders past their expiry become `expired`. If the app's manifest names a
//! `webhook`, the event's signed delivery is enqueued in the same transaction that takes the
//! event (the sender in `webhooks.rs` sends it).

use super::{Inner, Platform};
use minihost_core::ConversationId;
use minihost_runtime::Event;
use minihost_runtime::bindings::{PaymentStatus, PaymentUpdate};
use minihost_store::{NewDelivery, PaymentEvent, VersionStatus};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the outbox is swept without a wake-up.
const SWEEP: Duration = Duration::from_secs(1);
/// Events taken per sweep.
const BATCH: u32 = 200;

/// The WIT status of a stored event kind, for an order that has `refunded` of `amount` back.
fn status(kind: &str, amount: i64, refunded: i64) -> Option<PaymentStatus> {
    match kind {
        "paid" => Some(PaymentStatus::Confirmed),
        "declined" => Some(PaymentStatus::Declined),
        "expired" => Some(PaymentStatus::Expired),
        "refunded" if refunded < amount => Some(PaymentStatus::PartiallyRefunded),
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
            let view = self.inner.svc.payer_view(&order).await?;
            self.inner
                .svc
                .notify_user(&order.user_id, "payment_update", &view);
        }
        for event in store.undispatched_payment_events(BATCH).await? {
            let webhook = match self.webhook_delivery(&event).await {
                Ok(webhook) => webhook,
                Err(e) => {
                    // Left undispatched: the next sweep tries again.
                    tracing::warn!(error = %e, event = %event.id, "payment event's webhook not prepared");
                    continue;
                }
            };
            // Whoever marks it first delivers it (and enqueues its webhook in the same
            // transaction): another node's sweep skips it.
            if !store
                .dispatch_payment_event(&event.id, webhook.as_ref())
                .await?
            {
                continue;
            }
            if webhook.is_some() {
                self.inner.webhooks_wake.notify_one();
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
        let store = &self.inner.store;
        let Some(order) = store.order(&event.order_id).await? else {
            return Ok(());
        };
        let Some(status) = status(&event.kind, order.amount, order.refunded) else {
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
            amount: order.amount.unsigned_abs(),
            currency: order.currency.clone(),
            refunded: order.refunded.unsigned_abs(),
        });
        self.spawn_event(user, install, update);
        Ok(())
    }

    /// The webhook URL of `app`: from the manifest of its newest approved version, or, while
    /// none is approved, of its newest sideloaded one (its developer testing).
    async fn webhook_url(&self, app: &str) -> anyhow::Result<Option<String>> {
        let store = &self.inner.store;
        for status in [VersionStatus::Approved, VersionStatus::Trial] {
            let newest = store
                .app_versions_with_status(app, status)
                .await?
                .into_iter()
                .filter_map(|v| semver::Version::parse(&v).ok())
                .max();
            let Some(version) = newest else { continue };
            let Some((manifest, _, _)) = store.version_meta(app, &version.to_string()).await?
            else {
                continue;
            };
            let manifest = minihost_manifest::parse(&manifest)
                .map_err(|e| anyhow::anyhow!("stored manifest of {app}@{version}: {e:?}"))?;
            return Ok(manifest.webhook.map(|u| u.to_string()));
        }
        Ok(None)
    }

    /// The webhook delivery of `event`, if its app has a webhook.
    async fn webhook_delivery(&self, event: &PaymentEvent) -> anyhow::Result<Option<NewDelivery>> {
        if super::webhooks::event_type(&event.kind).is_none() {
            return Ok(None);
        }
        let Some(url) = self.webhook_url(&event.app_id).await? else {
            return Ok(None);
        };
        let Some(order) = self.inner.store.order(&event.order_id).await? else {
            return Ok(None);
        };
        let app_user = self
            .inner
            .svc
            .app_user_id(&order.app_id, &order.user_id)
            .await?;
        let Some(body) = super::webhooks::body(event, &order, &app_user) else {
            return Ok(None);
        };
        Ok(Some(NewDelivery {
            app_id: event.app_id.clone(),
            event_id: event.id.clone(),
            order_id: event.order_id.clone(),
            url,
            body,
            created_at_ms: event.created_at_ms,
        }))
    }

    /// Wakes the dispatcher (a user answered a payment request).
    pub(crate) fn wake_payments(&self) {
        self.inner.payments_wake.notify_one();
    }
}
