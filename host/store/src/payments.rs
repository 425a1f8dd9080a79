//! Payment orders and their one state machine, payment PINs with their lockout, and the outbox
//! of payment events. Every change of state is a conditional update (`WHERE state = 'pending'`)
//! whose row count decides a race, written in the same transaction as its ledger movement and
//! its outbox event, so money moves exactly once and nothing that moved goes untold.
//!
//! States: `pending` → `paid` | `declined` | `expired`; `paid` → `partially_refunded` |
//! `refunded`. Only the paying user's confirmation moves an order to `paid`.

use crate::db::Store;
use crate::ledger::{self, AccountKind, Transfer};
use crate::{Result, StoreError};
use minihost_core::{UnixMillis, UserId};
use sqlx::Row;

/// A payment order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentOrder {
    /// Its id (`po_…`).
    pub id: String,
    /// The app that asked.
    pub app_id: String,
    /// The user asked to pay.
    pub user_id: UserId,
    /// Where the app asked (a sandbox request), if anywhere.
    pub conversation_id: Option<String>,
    /// `sandbox` or `backend`.
    pub origin: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// What it is for.
    pub description: String,
    /// The app's key for it.
    pub idempotency_key: String,
    /// pending, paid, declined, expired, partially_refunded, refunded.
    pub state: String,
    /// Minor units refunded so far.
    pub refunded: i64,
    /// When a pending order expires, ms.
    pub expires_at_ms: UnixMillis,
    /// When it was created, ms.
    pub created_at_ms: UnixMillis,
}

/// What an app asks for.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The app.
    pub app_id: String,
    /// The user to pay.
    pub user_id: UserId,
    /// The conversation of a sandbox request.
    pub conversation_id: Option<String>,
    /// `sandbox` or `backend`.
    pub origin: &'static str,
    /// Minor units, already checked against the cap.
    pub amount: i64,
    /// An ISO 4217 code, already checked.
    pub currency: String,
    /// What it is for.
    pub description: String,
    /// The app's idempotency key.
    pub idempotency_key: String,
    /// When it expires, ms.
    pub expires_at_ms: UnixMillis,
}

/// Why a confirmation or decline did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentRefusal {
    /// The order was declined before.
    #[error("the payment was declined")]
    Declined,
    /// The order expired before it was confirmed.
    #[error("the payment request expired")]
    Expired,
    /// The wallet holds less than the amount.
    #[error("not enough money in your {0} wallet")]
    InsufficientFunds(String),
    /// The order is already paid (a decline after payment).
    #[error("the payment was already made")]
    AlreadyPaid,
}

/// A user's payment PIN record.
#[derive(Debug, Clone)]
pub struct PinRecord {
    /// argon2id PHC string.
    pub hash: String,
    /// Wrong tries since the last right one or lock.
    pub failures: i64,
    /// Payments are locked until then, ms.
    pub locked_until_ms: UnixMillis,
}

/// A payment event waiting to be told to the app (and its webhook).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentEvent {
    /// Its id (`pe_…`).
    pub id: String,
    /// The order.
    pub order_id: String,
    /// The app.
    pub app_id: String,
    /// paid, declined, expired, refunded.
    pub kind: String,
    /// The amount it moved (the order's amount, or the refund's).
    pub amount: i64,
    /// When, ms.
    pub created_at_ms: UnixMillis,
}

pub(crate) const ORDER_COLUMNS: &str = "id, app_id, user_id, conversation_id, origin, amount, currency, \
     description, idempotency_key, state, refunded, expires_at, created_at";

pub(crate) fn order_from_row(r: &sqlx::any::AnyRow) -> Result<PaymentOrder> {
    Ok(PaymentOrder {
        id: r.try_get(0)?,
        app_id: r.try_get(1)?,
        user_id: UserId::from_string(r.try_get::<String, _>(2)?),
        conversation_id: r.try_get(3)?,
        origin: r.try_get(4)?,
        amount: r.try_get(5)?,
        currency: r.try_get(6)?,
        description: r.try_get(7)?,
        idempotency_key: r.try_get(8)?,
        state: r.try_get(9)?,
        refunded: r.try_get(10)?,
        expires_at_ms: r.try_get(11)?,
        created_at_ms: r.try_get(12)?,
    })
}

pub(crate) async fn order_in(tx: &mut ledger::Tx, id: &str) -> Result<Option<PaymentOrder>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM payment_orders WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

pub(crate) async fn record_event(
    tx: &mut ledger::Tx,
    order: &PaymentOrder,
    kind: &str,
    amount: i64,
    now: UnixMillis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO payment_events (id, order_id, app_id, kind, amount, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(format!("pe_{}", minihost_core::ids::random_hex(10)))
    .bind(&order.id)
    .bind(&order.app_id)
    .bind(kind)
    .bind(amount)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the first step of a user's answer came to.
enum Claim {
    /// The order moved; finish the transaction.
    Won(ledger::Tx, PaymentOrder),
    /// Nothing moved: the final outcome (`None`: not this user's order).
    Settled(Option<std::result::Result<PaymentOrder, PaymentRefusal>>),
}

/// Why a pending-looking order cannot move: what it is now.
fn refusal_for(order: &PaymentOrder, now: UnixMillis) -> PaymentRefusal {
    match order.state.as_str() {
        "declined" => PaymentRefusal::Declined,
        "pending" if order.expires_at_ms <= now => PaymentRefusal::Expired,
        "expired" => PaymentRefusal::Expired,
        _ => PaymentRefusal::AlreadyPaid,
    }
}

impl Store {
    /// Creates an order, or returns the one the app made before with the same idempotency key
    /// and the same parameters. The same key with different parameters is
    /// [`StoreError::IdempotencyKeyReused`].
    pub async fn create_order(&self, new: NewOrder) -> Result<PaymentOrder> {
        let now = minihost_core::now_millis();
        sqlx::query(
            "INSERT INTO payment_orders (id, app_id, user_id, conversation_id, origin, amount,
                 currency, description, idempotency_key, state, refunded, expires_at, created_at,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $11, $11)
             ON CONFLICT (app_id, idempotency_key) DO NOTHING",
        )
        .bind(format!("po_{}", minihost_core::ids::random_hex(10)))
        .bind(&new.app_id)
        .bind(new.user_id.as_str())
        .bind(new.conversation_id.as_deref())
        .bind(new.origin)
        .bind(new.amount)
        .bind(&new.currency)
        .bind(&new.description)
        .bind(&new.idempotency_key)
        .bind(new.expires_at_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE app_id = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&new.app_id)
            .bind(&new.idempotency_key)
            .fetch_one(&self.pool)
            .await?;
        let order = order_from_row(&row)?;
        let same = order.user_id == new.user_id
            && order.amount == new.amount
            && order.currency == new.currency
            && order.description == new.description
            && order.conversation_id == new.conversation_id;
        if !same {
            return Err(StoreError::IdempotencyKeyReused);
        }
        Ok(order)
    }

    /// The order `id`.
    pub async fn order(&self, id: &str) -> Result<Option<PaymentOrder>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM payment_orders WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// `user`'s orders, newest first; only pending, unexpired ones with `pending_only`.
    pub async fn orders_of(
        &self,
        user: &UserId,
        pending_only: bool,
        limit: u32,
    ) -> Result<Vec<PaymentOrder>> {
        let now = minihost_core::now_millis();
        let filter = if pending_only {
            "AND state = 'pending' AND expires_at > $3"
        } else {
            "AND $3 = $3"
        };
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE user_id = $1 {filter}
              ORDER BY created_at DESC, id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(i64::from(limit))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// `app`'s orders, newest first (what its developer sees, and may refund).
    pub async fn orders_of_app(&self, app: &str, limit: u32) -> Result<Vec<PaymentOrder>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE app_id = $1
              ORDER BY created_at DESC, id LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// The first step of a user's answer to order `id`: in a write transaction, the order moves
    /// from an unexpired `pending` to `to`. If another answer, expiry or nobody won, the
    /// transaction is rolled back and the outcome is final: the order as it is when its state
    /// is one of `same` (a retry of the same answer), else why it cannot move; `None` when it
    /// is not this user's.
    async fn claim_pending(
        &self,
        id: &str,
        user: &UserId,
        to: &str,
        same: &[&str],
        now: UnixMillis,
    ) -> Result<Claim> {
        let mut tx = self.begin_write().await?;
        let Some(order) = order_in(&mut tx, id).await? else {
            return Ok(Claim::Settled(None));
        };
        if order.user_id != *user {
            return Ok(Claim::Settled(None));
        }
        let won = sqlx::query(
            "UPDATE payment_orders SET state = $3, updated_at = $2
              WHERE id = $1 AND state = 'pending' AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .bind(to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 1 {
            return Ok(Claim::Won(tx, order));
        }
        tx.rollback().await?;
        // Someone else's transaction may have moved it since the read above: read again.
        Ok(Claim::Settled(self.order(id).await?.map(|order| {
            if same.contains(&order.state.as_str()) {
                Ok(order)
            } else {
                Err(refusal_for(&order, now))
            }
        })))
    }

    /// The paying user confirms order `id`: in one transaction the order becomes `paid` (only
    /// from an unexpired `pending`), the wallet is debited (only if it holds the amount), the
    /// app's merchant account credited, the ledger transaction and the `paid` event recorded.
    /// Confirming an order already paid returns it unchanged (a retry, not a second payment).
    /// `Ok(None)`: no such order of this user.
    pub async fn confirm_order(
        &self,
        id: &str,
        user: &UserId,
    ) -> Result<Option<std::result::Result<PaymentOrder, PaymentRefusal>>> {
        let now = minihost_core::now_millis();
        let paid = ["paid", "partially_refunded", "refunded"];
        let (mut tx, order) = match self.claim_pending(id, user, "paid", &paid, now).await? {
            Claim::Won(tx, order) => (tx, order),
            Claim::Settled(outcome) => return Ok(outcome),
        };
        let wallet = ledger::account_id(
            &mut tx,
            AccountKind::Wallet,
            user.as_str(),
            &order.currency,
            now,
        )
        .await?;
        let merchant = ledger::account_id(
            &mut tx,
            AccountKind::Merchant,
            &order.app_id,
            &order.currency,
            now,
        )
        .await?;
        let moved = ledger::transfer(
            &mut tx,
            Transfer {
                from: &wallet,
                to: &merchant,
                amount: order.amount,
                kind: "payment",
                order: Some(&order.id),
                refund: None,
                actor: user.as_str(),
                memo: &order.description,
            },
            now,
        )
        .await?;
        if !moved {
            tx.rollback().await?;
            return Ok(Some(Err(PaymentRefusal::InsufficientFunds(
                order.currency.clone(),
            ))));
        }
        record_event(&mut tx, &order, "paid", order.amount, now).await?;
        tx.commit().await?;
        Ok(self.order(id).await?.map(Ok))
    }

    /// The paying user declines order `id` (final). Declining twice is the same decline.
    /// `Ok(None)`: no such order of this user.
    pub async fn decline_order(
        &self,
        id: &str,
        user: &UserId,
    ) -> Result<Option<std::result::Result<PaymentOrder, PaymentRefusal>>> {
        let now = minihost_core::now_millis();
        let (mut tx, order) = match self
            .claim_pending(id, user, "declined", &["declined"], now)
            .await?
        {
            Claim::Won(tx, order) => (tx, order),
            Claim::Settled(outcome) => return Ok(outcome),
        };
        record_event(&mut tx, &order, "declined", order.amount, now).await?;
        tx.commit().await?;
        Ok(self.order(id).await?.map(Ok))
    }

    /// Marks every pending order past its expiry `expired`, with its event; returns them.
    pub async fn expire_orders(&self, now: UnixMillis) -> Result<Vec<PaymentOrder>> {
        // Read first: the sweep runs every second, and taking the write lock for nothing would
        // contend with the message writer.
        let due: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM payment_orders WHERE state = 'pending' AND expires_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM payment_orders
              WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at LIMIT 500"
        );
        let due: Vec<PaymentOrder> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(order_from_row)
            .collect::<Result<_>>()?;
        let mut expired = Vec::with_capacity(due.len());
        for order in due {
            let n = sqlx::query(
                "UPDATE payment_orders SET state = 'expired', updated_at = $2
                  WHERE id = $1 AND state = 'pending'",
            )
            .bind(&order.id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                record_event(&mut tx, &order, "expired", order.amount, now).await?;
                expired.push(order);
            }
        }
        tx.commit().await?;
        Ok(expired)
    }

    /// Payment events not yet dispatched, oldest first.
    pub async fn undispatched_payment_events(&self, limit: u32) -> Result<Vec<PaymentEvent>> {
        let rows = sqlx::query(
            "SELECT id, order_id, app_id, kind, amount, created_at FROM payment_events
              WHERE dispatched_at IS NULL ORDER BY created_at, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PaymentEvent {
                    id: r.try_get(0)?,
                    order_id: r.try_get(1)?,
                    app_id: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    amount: r.try_get(4)?,
                    created_at_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Marks a payment event dispatched; `false` if another dispatcher took it first.
    pub async fn mark_payment_event_dispatched(&self, id: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE payment_events SET dispatched_at = $2 WHERE id = $1 AND dispatched_at IS NULL",
        )
        .bind(id)
        .bind(minihost_core::now_millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Sets (or replaces) `user`'s payment PIN hash; clears wrong tries and any lock.
    pub async fn set_payment_pin(&self, user: &UserId, hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO payment_pins (user_id, pin_hash, failures, locked_until, updated_at)
             VALUES ($1, $2, 0, 0, $3)
             ON CONFLICT (user_id) DO UPDATE SET pin_hash = excluded.pin_hash, failures = 0,
                 locked_until = 0, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(hash)
        .bind(minihost_core::now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `user`'s PIN record, if they set one.
    pub async fn payment_pin(&self, user: &UserId) -> Result<Option<PinRecord>> {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT pin_hash, CAST(failures AS BIGINT), locked_until FROM payment_pins
              WHERE user_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(hash, failures, locked_until_ms)| PinRecord {
            hash,
            failures,
            locked_until_ms,
        }))
    }

    /// Counts a wrong PIN; the `max_failures`-th in a row locks payments for `lock_ms`.
    /// Returns the record after.
    pub async fn record_pin_failure(
        &self,
        user: &UserId,
        max_failures: i64,
        lock_ms: i64,
    ) -> Result<Option<PinRecord>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE payment_pins SET failures = failures + 1, updated_at = $2 WHERE user_id = $1",
        )
        .bind(user.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE payment_pins SET failures = 0, locked_until = $2 + $3
              WHERE user_id = $1 AND failures >= $4",
        )
        .bind(user.as_str())
        .bind(now)
        .bind(lock_ms)
        .bind(max_failures)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.payment_pin(user).await
    }

    /// A right PIN: wrong tries start again from zero.
    pub async fn record_pin_success(&self, user: &UserId) -> Result<()> {
        sqlx::query("UPDATE payment_pins SET failures = 0 WHERE user_id = $1 AND failures <> 0")
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
