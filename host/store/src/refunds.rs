//! Refunds of paid orders, full or partial, never beyond what was paid, each named by the app's
//! idempotency key. One transaction per refund: the refund row (whose unique key decides between
//! two requests with the same key), a conditional update of the order's `refunded` (whose row
//! count decides between concurrent refunds that together exceed the amount), the ledger
//! movement merchant → wallet (only if the merchant account holds it), and the `refunded` event.

use crate::db::Store;
use crate::ledger::{self, AccountKind, Transfer};
use crate::payments::{PaymentOrder, order_in, record_event};
use crate::{Result, StoreError};
use minihost_core::UnixMillis;
use sqlx::Row;

/// A refund.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refund {
    /// Its id (`rf_…`).
    pub id: String,
    /// The order refunded.
    pub order_id: String,
    /// The order's app.
    pub app_id: String,
    /// Minor units given back.
    pub amount: i64,
    /// Why, as the app or developer said (may be empty).
    pub reason: String,
    /// The key the app named it by.
    pub idempotency_key: String,
    /// Who asked for it.
    pub actor: String,
    /// When, ms.
    pub created_at_ms: UnixMillis,
}

/// What a refund asks for.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    /// The order.
    pub order_id: &'a str,
    /// The app asking: only its own orders can be refunded.
    pub app_id: &'a str,
    /// Minor units, already checked against the cap.
    pub amount: i64,
    /// The app's key for this refund.
    pub idempotency_key: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Who asks (recorded on the refund and its ledger transaction).
    pub actor: &'a str,
}

/// Why a refund did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// The order is not paid (it is pending, declined or expired), so nothing can go back.
    #[error("the payment is {0}, not paid: there is nothing to refund")]
    NotPaid(String),
    /// More than what was paid and not yet refunded.
    #[error("the refund is more than what can still be refunded ({refundable} minor units)")]
    OverRefund {
        /// What can still be refunded, minor units.
        refundable: i64,
    },
    /// The merchant account no longer holds the amount.
    #[error("the merchant's {0} account holds less than the refund")]
    MerchantShort(String),
}

/// A refund and the order after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    /// The refund (an earlier one for a repeated key).
    pub refund: Refund,
    /// The order as it is now.
    pub order: PaymentOrder,
    /// Whether this call made the refund (`false`: an earlier call with the same key did).
    pub new: bool,
}

const REFUND_COLUMNS: &str =
    "id, order_id, app_id, amount, reason, idempotency_key, actor, created_at";

fn refund_from_row(r: &sqlx::any::AnyRow) -> Result<Refund> {
    Ok(Refund {
        id: r.try_get(0)?,
        order_id: r.try_get(1)?,
        app_id: r.try_get(2)?,
        amount: r.try_get(3)?,
        reason: r.try_get(4)?,
        idempotency_key: r.try_get(5)?,
        actor: r.try_get(6)?,
        created_at_ms: r.try_get(7)?,
    })
}

impl Store {
    /// Refunds `new.amount` of order `new.order_id` to its user, in one transaction (see the
    /// module doc). The same idempotency key with the same order, amount and reason is the same
    /// refund (returned again, nothing moves); with other parameters it is
    /// [`StoreError::IdempotencyKeyReused`]. `Ok(None)`: no such order of this app.
    pub async fn refund_order(
        &self,
        new: NewRefund<'_>,
    ) -> Result<Option<std::result::Result<Refunded, RefundRefusal>>> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let Some(order) = order_in(&mut tx, new.order_id).await? else {
            return Ok(None);
        };
        if order.app_id != new.app_id {
            return Ok(None);
        }
        let id = format!("rf_{}", minihost_core::ids::random_hex(10));
        // The key first: of two requests with one key, the second waits here for the first
        // to commit (PostgreSQL) or for the write lock (SQLite), then finds the key taken.
        let fresh = sqlx::query(
            "INSERT INTO payment_refunds (id, order_id, app_id, amount, reason, idempotency_key,
                 actor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (app_id, idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(&order.id)
        .bind(new.app_id)
        .bind(new.amount)
        .bind(new.reason)
        .bind(new.idempotency_key)
        .bind(new.actor)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh != 1 {
            tx.rollback().await?;
            return self.earlier_refund(&new).await;
        }
        let won = sqlx::query(
            "UPDATE payment_orders
                SET refunded = refunded + $1, updated_at = $2,
                    state = CASE WHEN refunded + $1 = amount THEN 'refunded'
                                 ELSE 'partially_refunded' END
              WHERE id = $3 AND state IN ('paid', 'partially_refunded')
                AND refunded + $1 <= amount",
        )
        .bind(new.amount)
        .bind(now)
        .bind(&order.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won != 1 {
            tx.rollback().await?;
            // Read again: a concurrent refund may have moved it since the read above.
            let Some(order) = self.order(&order.id).await? else {
                return Ok(None);
            };
            return Ok(Some(Err(match order.state.as_str() {
                "paid" | "partially_refunded" | "refunded" => RefundRefusal::OverRefund {
                    refundable: order.amount - order.refunded,
                },
                other => RefundRefusal::NotPaid(other.to_owned()),
            })));
        }
        let merchant = ledger::account_id(
            &mut tx,
            AccountKind::Merchant,
            &order.app_id,
            &order.currency,
            now,
        )
        .await?;
        let wallet = ledger::account_id(
            &mut tx,
            AccountKind::Wallet,
            order.user_id.as_str(),
            &order.currency,
            now,
        )
        .await?;
        let memo = if new.reason.is_empty() {
            format!("refund: {}", order.description)
        } else {
            format!("refund: {} ({})", order.description, new.reason)
        };
        let moved = ledger::transfer(
            &mut tx,
            Transfer {
                from: &merchant,
                to: &wallet,
                amount: new.amount,
                kind: "refund",
                order: Some(&order.id),
                refund: Some(&id),
                actor: new.actor,
                memo: &memo,
            },
            now,
        )
        .await?;
        if !moved {
            tx.rollback().await?;
            return Ok(Some(Err(RefundRefusal::MerchantShort(order.currency))));
        }
        record_event(&mut tx, &order, "refunded", new.amount, now).await?;
        tx.commit().await?;
        let refund = self.refund(&id).await?.ok_or(StoreError::NotFound)?;
        let order = self.order(&order.id).await?.ok_or(StoreError::NotFound)?;
        Ok(Some(Ok(Refunded {
            refund,
            order,
            new: true,
        })))
    }

    /// The refund the app made before under `new`'s key, if it asked for the same thing.
    async fn earlier_refund(
        &self,
        new: &NewRefund<'_>,
    ) -> Result<Option<std::result::Result<Refunded, RefundRefusal>>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM payment_refunds
              WHERE app_id = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.app_id)
            .bind(new.idempotency_key)
            .fetch_one(&self.pool)
            .await?;
        let refund = refund_from_row(&row)?;
        if refund.order_id != new.order_id
            || refund.amount != new.amount
            || refund.reason != new.reason
        {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let order = self
            .order(&refund.order_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Some(Ok(Refunded {
            refund,
            order,
            new: false,
        })))
    }

    /// The refund `id`.
    pub async fn refund(&self, id: &str) -> Result<Option<Refund>> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    /// The refunds of order `order`, oldest first.
    pub async fn refunds_of(&self, order: &str) -> Result<Vec<Refund>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE order_id = $1
              ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(refund_from_row).collect()
    }
}
