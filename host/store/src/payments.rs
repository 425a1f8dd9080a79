//! Payment orders and their one state machine, payment PINs with their lockout, and the outbox
//! of payment events. Every change of state is a conditional update (`WHERE state = 'pending'`)
//! whose row count decides a race, written in the same transaction as its ledger movement and
//! its outbox event, so money moves exactly once and nothing that moved goes untold. Users'
//! answers (confirm, decline) are applied in batches by the payment writer
//! ([`crate::payment_writer`]): [`answer_in`] applies a batch inside one transaction as if the
//! answers came one after the other.
//!
//! States: `pending` → `paid` | `declined` | `expired`; `paid` → `partially_refunded` |
//! `refunded`. Only the paying user's confirmation moves an order to `paid`.

use crate::db::{Backend, Store};
use crate::ledger::{self, AccountKey, AccountKind, BatchTransfer, Postings};
use crate::{Result, StoreError};
use minihost_core::{UnixMillis, UserId};
use sqlx::{AssertSqlSafe, Row};
use std::collections::{HashMap, HashSet};

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

/// Why a pending-looking order cannot move: what it is now.
fn refusal_for(order: &PaymentOrder, now: UnixMillis) -> PaymentRefusal {
    match order.state.as_str() {
        "declined" => PaymentRefusal::Declined,
        "pending" if order.expires_at_ms <= now => PaymentRefusal::Expired,
        "expired" => PaymentRefusal::Expired,
        _ => PaymentRefusal::AlreadyPaid,
    }
}

/// A user's answer to a payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Pay it.
    Confirm,
    /// Refuse it (final).
    Decline,
}

/// What an answer came to: the order after it, or why nothing happened; `None`: no such order
/// of this user.
pub type PaymentOutcome = Option<std::result::Result<PaymentOrder, PaymentRefusal>>;

/// One answer of a batch.
pub(crate) struct Asked<'a> {
    /// The order.
    pub order: &'a str,
    /// Who answers: only the order's user may.
    pub user: &'a UserId,
    /// What they answer.
    pub answer: Answer,
}

/// Orders (and ids) per statement: two or three parameters each.
const ORDERS_PER_STATEMENT: usize = 100;

/// The final outcome of an answer to an order that can no longer move: the order as it is when
/// the answer was already given (a retry), else why it cannot move.
fn settled(order: &PaymentOrder, answer: Answer, now: UnixMillis) -> PaymentOutcome {
    let same = match answer {
        Answer::Confirm => matches!(
            order.state.as_str(),
            "paid" | "partially_refunded" | "refunded"
        ),
        Answer::Decline => order.state == "declined",
    };
    Some(if same {
        Ok(order.clone())
    } else {
        Err(refusal_for(order, now))
    })
}

/// `$first, $first+step, ...`: `n` placeholders for an `IN (...)` list.
fn placeholders(n: usize, first: usize, step: usize) -> String {
    (0..n)
        .map(|k| format!("${}", first + k * step))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads orders `ids` inside `tx` into `orders`, with their `updated_at`.
async fn read_orders(
    tx: &mut ledger::Tx,
    ids: &[&str],
    orders: &mut HashMap<String, (PaymentOrder, UnixMillis)>,
) -> Result<()> {
    for chunk in ids.chunks(ORDERS_PER_STATEMENT) {
        let sql = format!(
            "SELECT {ORDER_COLUMNS}, updated_at FROM payment_orders WHERE id IN ({})",
            placeholders(chunk.len(), 1, 1)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut **tx).await? {
            let order = order_from_row(&row)?;
            let updated_at: i64 = row.try_get(13)?;
            orders.insert(order.id.clone(), (order, updated_at));
        }
    }
    Ok(())
}

/// Moves each of `claims` (order id, new state) from an unexpired `pending` to its new state in
/// conditional updates; returns the ids that moved (the rest moved otherwise since they were
/// read: another node, or the expiry sweep).
async fn claim(
    tx: &mut ledger::Tx,
    claims: &[(&str, &'static str)],
    now: UnixMillis,
) -> Result<HashSet<String>> {
    let mut won = HashSet::new();
    for chunk in claims.chunks(ORDERS_PER_STATEMENT) {
        let mut sql = String::from("UPDATE payment_orders SET state = CASE id");
        for k in 0..chunk.len() {
            sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 2, 2 * k + 3));
        }
        sql.push_str(&format!(
            " END, updated_at = $1 WHERE id IN ({}) AND state = 'pending' AND expires_at > $1 \
             RETURNING id",
            placeholders(chunk.len(), 2, 2)
        ));
        let mut q = sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql)).bind(now);
        for (id, to) in chunk {
            q = q.bind(*id).bind(*to);
        }
        won.extend(q.fetch_all(&mut **tx).await?.into_iter().map(|(id,)| id));
    }
    Ok(won)
}

/// Puts claimed orders back to `pending` with the `updated_at` they had (a confirmation the
/// wallet could not pay changes nothing).
async fn unclaim(tx: &mut ledger::Tx, orders: &[(&str, UnixMillis)]) -> Result<()> {
    for chunk in orders.chunks(ORDERS_PER_STATEMENT) {
        let mut sql =
            String::from("UPDATE payment_orders SET state = 'pending', updated_at = CASE id");
        for k in 0..chunk.len() {
            sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2));
        }
        sql.push_str(&format!(
            " END WHERE id IN ({})",
            placeholders(chunk.len(), 1, 2)
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (id, updated_at) in chunk {
            q = q.bind(*id).bind(*updated_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Records events `(order, kind)` of the batch (each with the order's amount), several per
/// statement.
async fn record_events(
    tx: &mut ledger::Tx,
    events: &[(PaymentOrder, &'static str)],
    now: UnixMillis,
) -> Result<()> {
    for chunk in events.chunks(ORDERS_PER_STATEMENT) {
        let mut sql = String::from(
            "INSERT INTO payment_events (id, order_id, app_id, kind, amount, created_at) VALUES ",
        );
        for r in 0..chunk.len() {
            if r > 0 {
                sql.push(',');
            }
            let b = r * 5;
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, $1)",
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now);
        for (order, kind) in chunk {
            q = q
                .bind(format!("pe_{}", minihost_core::ids::random_hex(10)))
                .bind(order.id.clone())
                .bind(order.app_id.clone())
                .bind(*kind)
                .bind(order.amount);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The wallet and merchant accounts a confirmation of `order` moves money between.
fn payment_accounts(order: &PaymentOrder) -> (AccountKey, AccountKey) {
    (
        (
            AccountKind::Wallet,
            order.user_id.as_str().to_owned(),
            order.currency.clone(),
        ),
        (
            AccountKind::Merchant,
            order.app_id.clone(),
            order.currency.clone(),
        ),
    )
}

/// Applies `asked` inside `tx` (one write transaction: the payment writer's batch) as if the
/// answers came one after the other, in order, and returns each one's outcome. Every answer
/// that moves an order is a conditional update from an unexpired `pending` (whose row count
/// decides a race with another node or the expiry sweep); a confirmation pays only if the
/// wallet holds the amount after the payments before it in the batch, checked in memory
/// before anything is written ([`Postings`]), so a refusal writes nothing and cannot undo its
/// neighbours; the ledger transactions and the outbox events are written in the same
/// transaction. Answers to the same order are taken in rounds: the first unanswered one of each
/// order per round, so a later answer sees what an earlier one did.
///
/// `Ok(None)`: a wallet was taken from by another transaction (another node) after it was read,
/// so the batch would have made it negative; the caller rolls back and starts again.
pub(crate) async fn answer_in(
    tx: &mut ledger::Tx,
    backend: Backend,
    asked: &[Asked<'_>],
    now: UnixMillis,
) -> Result<Option<Vec<PaymentOutcome>>> {
    let mut orders: HashMap<String, (PaymentOrder, UnixMillis)> = HashMap::new();
    let mut ids: Vec<&str> = asked.iter().map(|a| a.order).collect();
    ids.sort_unstable();
    ids.dedup();
    read_orders(tx, &ids, &mut orders).await?;

    let mut outcomes: Vec<Option<PaymentOutcome>> = vec![None; asked.len()];
    let mut postings = Postings::default();
    let mut events: Vec<(PaymentOrder, &'static str)> = Vec::new();
    loop {
        let mut seen = HashSet::new();
        let round: Vec<usize> = (0..asked.len())
            .filter(|&i| outcomes[i].is_none() && seen.insert(asked[i].order))
            .collect();
        if round.is_empty() {
            break;
        }
        // What the order's state alone decides.
        let mut claims: Vec<usize> = Vec::new();
        for i in round {
            let a = &asked[i];
            match orders.get(a.order) {
                Some((o, _)) if o.user_id == *a.user => {
                    if o.state == "pending" && o.expires_at_ms > now {
                        claims.push(i);
                    } else {
                        outcomes[i] = Some(settled(o, a.answer, now));
                    }
                }
                _ => outcomes[i] = Some(None),
            }
        }
        if claims.is_empty() {
            continue;
        }
        let targets: Vec<(&str, &'static str)> = claims
            .iter()
            .map(|&i| {
                let to = match asked[i].answer {
                    Answer::Confirm => "paid",
                    Answer::Decline => "declined",
                };
                (asked[i].order, to)
            })
            .collect();
        let won = claim(tx, &targets, now).await?;
        let lost: Vec<&str> = claims
            .iter()
            .map(|&i| asked[i].order)
            .filter(|id| !won.contains(*id))
            .collect();
        if !lost.is_empty() {
            // Moved by someone else since the read: read again; the next round answers them.
            read_orders(tx, &lost, &mut orders).await?;
            if lost.iter().any(|id| {
                orders
                    .get(*id)
                    .is_some_and(|(o, _)| o.state == "pending" && o.expires_at_ms > now)
            }) {
                return Ok(None);
            }
        }
        let mut confirms: Vec<usize> = Vec::new();
        for i in claims {
            let a = &asked[i];
            if !won.contains(a.order) {
                continue;
            }
            match a.answer {
                Answer::Confirm => confirms.push(i),
                Answer::Decline => {
                    if let Some((o, _)) = orders.get_mut(a.order) {
                        o.state = "declined".into();
                        outcomes[i] = Some(Some(Ok(o.clone())));
                        events.push((o.clone(), "declined"));
                    }
                }
            }
        }
        if confirms.is_empty() {
            continue;
        }
        let keys: Vec<AccountKey> = confirms
            .iter()
            .filter_map(|&i| orders.get(asked[i].order))
            .flat_map(|(o, _)| {
                let (wallet, merchant) = payment_accounts(o);
                [wallet, merchant]
            })
            .collect();
        postings.load(tx, &keys, now).await?;
        let mut short: Vec<(&str, UnixMillis)> = Vec::new();
        for i in confirms {
            let a = &asked[i];
            let Some((o, updated_at)) = orders.get_mut(a.order) else {
                continue;
            };
            let (wallet, merchant) = payment_accounts(o);
            let paid = postings.transfer(BatchTransfer {
                from: &wallet,
                to: &merchant,
                amount: o.amount,
                kind: "payment",
                order: Some(&o.id),
                actor: a.user.as_str(),
                memo: &o.description,
            })?;
            if paid {
                o.state = "paid".into();
                outcomes[i] = Some(Some(Ok(o.clone())));
                events.push((o.clone(), "paid"));
            } else {
                short.push((a.order, *updated_at));
                outcomes[i] = Some(Some(Err(PaymentRefusal::InsufficientFunds(
                    o.currency.clone(),
                ))));
            }
        }
        unclaim(tx, &short).await?;
    }
    if !postings.write(tx, backend, now).await? {
        return Ok(None);
    }
    record_events(tx, &events, now).await?;
    Ok(Some(
        outcomes.into_iter().map(|o| o.unwrap_or(None)).collect(),
    ))
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
        .execute(&self.write_pool)
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

    /// The paying user confirms order `id`: the order becomes `paid` (only from an unexpired
    /// `pending`), the wallet is debited (only if it holds the amount), the app's merchant
    /// account credited, the ledger transaction and the `paid` event recorded, all in one
    /// transaction (the payment writer's batch, shared with other answers), and the answer
    /// comes after its commit. Confirming an order already paid returns it unchanged (a retry,
    /// not a second payment). `Ok(None)`: no such order of this user.
    pub async fn confirm_order(&self, id: &str, user: &UserId) -> Result<PaymentOutcome> {
        self.payment_writer
            .answer(id.to_owned(), user.clone(), Answer::Confirm)
            .await
    }

    /// The paying user declines order `id` (final), through the payment writer like
    /// [`Store::confirm_order`]. Declining twice is the same decline. `Ok(None)`: no such
    /// order of this user.
    pub async fn decline_order(&self, id: &str, user: &UserId) -> Result<PaymentOutcome> {
        self.payment_writer
            .answer(id.to_owned(), user.clone(), Answer::Decline)
            .await
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
        .execute(&self.write_pool)
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
        .execute(&self.write_pool)
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

    /// `user`'s PIN record read together with their order `order` and whether its app is
    /// suspended (one query for the confirmation's checks): `None` when `order` is not an order
    /// of `user`; the PIN is `None` when they have set none.
    pub async fn order_pin(
        &self,
        order: &str,
        user: &UserId,
    ) -> Result<Option<(Option<PinRecord>, bool)>> {
        // (PIN hash, wrong tries, locked until, the app's suspension reason)
        type Row = (Option<String>, Option<i64>, Option<i64>, Option<String>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT p.pin_hash, CAST(p.failures AS BIGINT), p.locked_until, a.suspended_reason
                   FROM payment_orders o JOIN apps a ON a.id = o.app_id
                   LEFT JOIN payment_pins p ON p.user_id = o.user_id
                  WHERE o.id = $1 AND o.user_id = $2",
        )
        .bind(order)
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(hash, failures, locked_until_ms, suspended)| {
            let pin = hash.map(|hash| PinRecord {
                hash,
                failures: failures.unwrap_or(0),
                locked_until_ms: locked_until_ms.unwrap_or(0),
            });
            (pin, suspended.is_some())
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
            .execute(&self.write_pool)
            .await?;
        Ok(())
    }
}
