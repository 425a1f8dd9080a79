//! The durable outbox of signed webhooks: each app's signing secret (created on first use,
//! rotated by its developer), one delivery per payment event (enqueued in the same transaction
//! that marks the event dispatched), claiming due deliveries with a conditional update so two
//! nodes never send the same attempt at once, recording each attempt with exponential backoff
//! until a 2xx, and the delivery log a developer reads. An order's deliveries go out in the
//! order of its events: a delivery is not due while an earlier one of its order is undelivered.

use crate::Result;
use crate::db::Store;
use minihost_core::UnixMillis;
use sqlx::Row;

/// A delivery to enqueue: one payment event for one app's webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The app whose webhook it is.
    pub app_id: String,
    /// The payment event it tells (at most one delivery per event).
    pub event_id: String,
    /// The order the event is about (deliveries of one order go out in event order).
    pub order_id: String,
    /// Where to POST it.
    pub url: String,
    /// The JSON body, exactly as it will be signed and sent.
    pub body: String,
    /// When the event happened, ms (orders an order's deliveries).
    pub created_at_ms: UnixMillis,
}

/// A delivery and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookDelivery {
    /// Its id (`wd_…`).
    pub id: String,
    /// The app.
    pub app_id: String,
    /// The payment event it tells.
    pub event_id: String,
    /// The order.
    pub order_id: String,
    /// Where it is POSTed.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Attempts made (or under way) so far.
    pub attempts: i64,
    /// When it is next due, ms (meaningless once delivered).
    pub next_attempt_at_ms: UnixMillis,
    /// When a 2xx answered it, ms.
    pub delivered_at_ms: Option<UnixMillis>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the event happened, ms.
    pub created_at_ms: UnixMillis,
}

/// How long to wait before retrying: `base` after the first failed attempt, doubling with each
/// further one, never more than `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait, ms.
    pub base_ms: i64,
    /// The longest wait, ms.
    pub cap_ms: i64,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, ... capped at one hour.
    fn default() -> Self {
        Backoff {
            base_ms: 1_000,
            cap_ms: 3_600_000,
        }
    }
}

impl Backoff {
    /// The wait after the `attempts`-th failed attempt (1 for the first), ms.
    pub fn after(&self, attempts: i64) -> i64 {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
        let factor = 1_i64.checked_shl(doublings).unwrap_or(i64::MAX);
        self.base_ms
            .max(1)
            .saturating_mul(factor)
            .min(self.cap_ms.max(1))
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered 2xx with this status.
    Delivered(u16),
    /// Anything else: the status if one came back, and why it counts as a failure.
    Failed(Option<u16>, String),
}

/// Longest stored error text, in characters.
const MAX_ERROR_CHARS: usize = 500;

const DELIVERY_COLUMNS: &str = "id, app_id, event_id, order_id, url, body, attempts, \
     next_attempt_at, delivered_at, last_status, last_error, created_at";

fn delivery_from_row(r: &sqlx::any::AnyRow) -> Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.try_get(0)?,
        app_id: r.try_get(1)?,
        event_id: r.try_get(2)?,
        order_id: r.try_get(3)?,
        url: r.try_get(4)?,
        body: r.try_get(5)?,
        attempts: r.try_get(6)?,
        next_attempt_at_ms: r.try_get(7)?,
        delivered_at_ms: r.try_get(8)?,
        last_status: r.try_get(9)?,
        last_error: r.try_get(10)?,
        created_at_ms: r.try_get(11)?,
    })
}

/// A fresh signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> String {
    format!("whsec_{}", minihost_core::ids::random_hex(32))
}

async fn insert_delivery<'e, E>(executor: E, new: &NewDelivery, now: UnixMillis) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n = sqlx::query(
        "INSERT INTO webhook_deliveries (id, app_id, event_id, order_id, url, body, attempts,
             next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(format!("wd_{}", minihost_core::ids::random_hex(10)))
    .bind(&new.app_id)
    .bind(&new.event_id)
    .bind(&new.order_id)
    .bind(&new.url)
    .bind(&new.body)
    .bind(now)
    .bind(new.created_at_ms)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(n == 1)
}

impl Store {
    /// `app`'s webhook signing secret, created (and stored) if it has none yet.
    pub async fn webhook_secret(&self, app: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO webhook_secrets (app_id, secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (app_id) DO NOTHING",
        )
        .bind(app)
        .bind(new_secret())
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?;
        let (secret,): (String,) =
            sqlx::query_as("SELECT secret FROM webhook_secrets WHERE app_id = $1")
                .bind(app)
                .fetch_one(&self.pool)
                .await?;
        Ok(secret)
    }

    /// Replaces `app`'s signing secret with a new one (creating it if it had none) and returns
    /// it. Deliveries sent from now on, retries included, are signed with it.
    pub async fn rotate_webhook_secret(&self, app: &str) -> Result<String> {
        let secret = new_secret();
        sqlx::query(
            "INSERT INTO webhook_secrets (app_id, secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (app_id) DO UPDATE SET secret = excluded.secret,
                 created_at = excluded.created_at",
        )
        .bind(app)
        .bind(&secret)
        .bind(minihost_core::now_millis())
        .execute(&self.write_pool)
        .await?;
        Ok(secret)
    }

    /// When `app`'s current signing secret was made, ms; `None` if it has none yet.
    pub async fn webhook_secret_created_at(&self, app: &str) -> Result<Option<UnixMillis>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT created_at FROM webhook_secrets WHERE app_id = $1")
                .bind(app)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(t,)| t))
    }

    /// Enqueues a delivery, due at once; `false` if the event already has one (enqueueing is
    /// idempotent per event).
    pub async fn enqueue_webhook(&self, new: &NewDelivery) -> Result<bool> {
        insert_delivery(&self.pool, new, minihost_core::now_millis()).await
    }

    /// Marks payment event `id` dispatched and, in the same transaction, enqueues its webhook
    /// delivery if it has one. `false` (and nothing enqueued) if another dispatcher took the
    /// event first.
    pub async fn dispatch_payment_event(
        &self,
        id: &str,
        webhook: Option<&NewDelivery>,
    ) -> Result<bool> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE payment_events SET dispatched_at = $2 WHERE id = $1 AND dispatched_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(new) = webhook {
            insert_delivery(&mut *tx, new, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` deliveries due at `now`: each claimed one has its attempt counted
    /// and is not due again for `lease_ms` (so no other sender takes it while this one sends;
    /// if this one dies, it is retried after the lease). A delivery is not due while an earlier
    /// event of its order is undelivered or not yet dispatched. Returns them with `attempts`
    /// already counting this attempt.
    pub async fn claim_webhook_deliveries(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
              WHERE d.delivered_at IS NULL AND d.next_attempt_at <= $1
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                     WHERE e.order_id = d.order_id AND e.delivered_at IS NULL
                       AND (e.created_at < d.created_at
                            OR (e.created_at = d.created_at AND e.event_id < d.event_id)))
                AND NOT EXISTS (SELECT 1 FROM payment_events p
                     WHERE p.order_id = d.order_id AND p.dispatched_at IS NULL
                       AND (p.created_at < d.created_at
                            OR (p.created_at = d.created_at AND p.id < d.event_id)))
              ORDER BY d.next_attempt_at, d.id LIMIT $2"
        );
        let due: Vec<WebhookDelivery> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect::<Result<_>>()?;
        let mut claimed = Vec::with_capacity(due.len());
        for mut d in due {
            // The row count decides between senders: only one sees the row as it was read.
            let n = sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2
                  WHERE id = $1 AND delivered_at IS NULL AND attempts = $3
                    AND next_attempt_at = $4",
            )
            .bind(&d.id)
            .bind(now.saturating_add(lease_ms))
            .bind(d.attempts)
            .bind(d.next_attempt_at_ms)
            .execute(&self.write_pool)
            .await?
            .rows_affected();
            if n == 1 {
                d.attempts += 1;
                d.next_attempt_at_ms = now.saturating_add(lease_ms);
                claimed.push(d);
            }
        }
        Ok(claimed)
    }

    /// Records how attempt number `attempt` of delivery `id` ended: delivered, or due again
    /// after `backoff`. A failure is ignored if the delivery has moved on since (delivered, or
    /// claimed again after its lease ran out); a success always counts. Returns whether it was
    /// recorded.
    pub async fn record_webhook_attempt(
        &self,
        id: &str,
        attempt: i64,
        outcome: &Attempt,
        backoff: Backoff,
        now: UnixMillis,
    ) -> Result<bool> {
        let n = match outcome {
            Attempt::Delivered(status) => sqlx::query(
                "UPDATE webhook_deliveries SET delivered_at = $2, last_status = $3,
                     last_error = NULL
                  WHERE id = $1 AND delivered_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .bind(i64::from(*status))
            .execute(&self.write_pool)
            .await?
            .rows_affected(),
            Attempt::Failed(status, error) => {
                let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                sqlx::query(
                    "UPDATE webhook_deliveries SET next_attempt_at = $2, last_status = $3,
                         last_error = $4
                      WHERE id = $1 AND delivered_at IS NULL AND attempts = $5",
                )
                .bind(id)
                .bind(now.saturating_add(backoff.after(attempt)))
                .bind(status.map(i64::from))
                .bind(error)
                .bind(attempt)
                .execute(&self.write_pool)
                .await?
                .rows_affected()
            }
        };
        Ok(n == 1)
    }

    /// `app`'s deliveries, newest first.
    pub async fn webhook_deliveries(&self, app: &str, limit: u32) -> Result<Vec<WebhookDelivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE app_id = $1
              ORDER BY created_at DESC, event_id DESC LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    /// Delivery `id`.
    pub async fn webhook_delivery(&self, id: &str) -> Result<Option<WebhookDelivery>> {
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff::default();
        let waits: Vec<i64> = (1..=6).map(|n| b.after(n)).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
        assert_eq!(b.after(13), 3_600_000);
        assert_eq!(b.after(10_000), 3_600_000);
        assert_eq!(b.after(0), 1_000);
        assert_eq!(b.after(i64::MIN), 1_000);
    }
}
