//! Payouts: money an app pays a user from its merchant account, each named by the app's
//! idempotency key. One transaction per payout: the ledger movement merchant → wallet (only if
//! the merchant account holds it, so it never goes negative), then the payout row, whose
//! unique key decides between two requests with the same key (the loser rolls back and answers
//! the winner's payout, or a conflict if it asked for something else).

use crate::db::Store;
use crate::ledger::{self, AccountKind, Transfer};
use crate::{Result, StoreError};
use minihost_core::{UnixMillis, UserId};
use sqlx::Row;

/// A payout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Payout {
    /// Its id (`po_…`).
    pub id: String,
    /// The app that paid.
    pub app_id: String,
    /// The user paid.
    pub user_id: UserId,
    /// Where the app's event happened, if in a conversation.
    pub conversation_id: Option<String>,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// What it is for, as the app said.
    pub description: String,
    /// The key the app named it by.
    pub idempotency_key: String,
    /// Its ledger transaction.
    pub txn_id: String,
    /// When, ms.
    pub created_at_ms: UnixMillis,
}

/// What a payout asks for.
#[derive(Debug, Clone)]
pub struct NewPayout<'a> {
    /// The app paying (from its merchant account in `currency`).
    pub app_id: &'a str,
    /// The user paid.
    pub user_id: &'a UserId,
    /// Where the app's event happened.
    pub conversation_id: Option<&'a str>,
    /// Minor units, already checked against the cap.
    pub amount: i64,
    /// ISO 4217 code, already checked.
    pub currency: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// The app's key for this payout.
    pub idempotency_key: &'a str,
}

/// Why a payout did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutRefusal {
    /// The merchant account holds less than the payout.
    #[error("the app's {0} merchant account holds less than the payout")]
    MerchantShort(String),
}

/// A payout and whether this call made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidOut {
    /// The payout (an earlier one for a repeated key).
    pub payout: Payout,
    /// Whether this call made it (`false`: an earlier call with the same key did).
    pub new: bool,
}

const PAYOUT_COLUMNS: &str = "id, app_id, user_id, conversation_id, amount, currency, description,
     idempotency_key, txn_id, created_at";

fn payout_from_row(r: &sqlx::any::AnyRow) -> Result<Payout> {
    Ok(Payout {
        id: r.try_get(0)?,
        app_id: r.try_get(1)?,
        user_id: UserId::from_string(r.try_get::<String, _>(2)?),
        conversation_id: r.try_get(3)?,
        amount: r.try_get(4)?,
        currency: r.try_get(5)?,
        description: r.try_get(6)?,
        idempotency_key: r.try_get(7)?,
        txn_id: r.try_get(8)?,
        created_at_ms: r.try_get(9)?,
    })
}

impl Store {
    /// Pays `new.amount` from the app's merchant account to the user, in one transaction (see
    /// the module doc). The same key with the same user, amount, currency and description is
    /// the same payout (returned again, nothing moves); with other parameters it is
    /// [`StoreError::IdempotencyKeyReused`].
    pub async fn pay_out(
        &self,
        new: NewPayout<'_>,
    ) -> Result<std::result::Result<PaidOut, PayoutRefusal>> {
        if let Some(earlier) = self.earlier_payout(&new).await? {
            return Ok(Ok(earlier));
        }
        let now = minihost_core::now_millis();
        let id = format!("po_{}", minihost_core::ids::random_hex(10));
        let mut tx = self.begin_write().await?;
        let merchant = ledger::account_id(
            &mut tx,
            AccountKind::Merchant,
            new.app_id,
            new.currency,
            now,
        )
        .await?;
        let wallet = ledger::account_id(
            &mut tx,
            AccountKind::Wallet,
            new.user_id.as_str(),
            new.currency,
            now,
        )
        .await?;
        let txn = ledger::transfer_txn(
            &mut tx,
            Transfer {
                from: &merchant,
                to: &wallet,
                amount: new.amount,
                kind: "payout",
                order: None,
                refund: None,
                actor: &format!("app:{}", new.app_id),
                memo: new.description,
            },
            now,
        )
        .await?;
        let Some(txn) = txn else {
            tx.rollback().await?;
            // A concurrent payout with this key may have taken the money: answer it, if so.
            if let Some(earlier) = self.earlier_payout(&new).await? {
                return Ok(Ok(earlier));
            }
            return Ok(Err(PayoutRefusal::MerchantShort(new.currency.to_owned())));
        };
        let fresh = sqlx::query(
            "INSERT INTO payouts (id, app_id, user_id, conversation_id, amount, currency,
                 description, idempotency_key, txn_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (app_id, idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(new.app_id)
        .bind(new.user_id.as_str())
        .bind(new.conversation_id)
        .bind(new.amount)
        .bind(new.currency)
        .bind(new.description)
        .bind(new.idempotency_key)
        .bind(&txn)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if fresh != 1 {
            // Another request with this key committed first: undo this one's movement.
            tx.rollback().await?;
            return self
                .earlier_payout(&new)
                .await?
                .map(Ok)
                .ok_or(StoreError::NotFound);
        }
        tx.commit().await?;
        let payout = self.payout(&id).await?.ok_or(StoreError::NotFound)?;
        Ok(Ok(PaidOut { payout, new: true }))
    }

    /// The payout the app made before under `new`'s key, if any and if it asked for the same
    /// thing; [`StoreError::IdempotencyKeyReused`] if it asked for something else.
    async fn earlier_payout(&self, new: &NewPayout<'_>) -> Result<Option<PaidOut>> {
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE app_id = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.app_id)
            .bind(new.idempotency_key)
            .fetch_optional(&self.pool)
            .await?;
        let Some(payout) = row.as_ref().map(payout_from_row).transpose()? else {
            return Ok(None);
        };
        if &payout.user_id != new.user_id
            || payout.amount != new.amount
            || payout.currency != new.currency
            || payout.description != new.description
        {
            return Err(StoreError::IdempotencyKeyReused);
        }
        Ok(Some(PaidOut { payout, new: false }))
    }

    /// The payout `id`.
    pub async fn payout(&self, id: &str) -> Result<Option<Payout>> {
        let sql = format!("SELECT {PAYOUT_COLUMNS} FROM payouts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payout_from_row).transpose()
    }

    /// The payouts `user` received, newest first, at most `limit`.
    pub async fn payouts_to(&self, user: &UserId, limit: u32) -> Result<Vec<Payout>> {
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE user_id = $1
              ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(payout_from_row).collect()
    }
}
