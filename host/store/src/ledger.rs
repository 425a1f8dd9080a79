//! The double-entry ledger: accounts in integer minor units of one currency each (a wallet per
//! user, a merchant account per app, the platform's account, and external accounts where money
//! enters), and transactions whose entries sum to zero, each written in one database
//! transaction with the balance changes. A balance never goes negative except an external
//! account's (a `CHECK` in the schema, and a conditional update that decides races), so the sum
//! of all accounts of a currency is always zero. Also the audit log and the trial balance.
//! [`Postings`] writes many transfers in one transaction (the payment writer's batches).

use crate::db::{Backend, Store};
use crate::{Result, StoreError};
use minihost_core::{UnixMillis, UserId};
use sqlx::{AssertSqlSafe, Row};
use std::collections::{BTreeMap, HashMap};

/// The kinds of account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// A user's wallet (owner: the user id).
    Wallet,
    /// An app's merchant account, owned by its developer (owner: the app id).
    Merchant,
    /// The platform's own account (owner: empty).
    Platform,
    /// Where money enters or leaves the platform (owner: e.g. `top-up`); may go negative.
    External,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Wallet => "wallet",
            AccountKind::Merchant => "merchant",
            AccountKind::Platform => "platform",
            AccountKind::External => "external",
        }
    }
}

/// An account and its balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    /// Its id.
    pub id: String,
    /// wallet, merchant, platform or external.
    pub kind: String,
    /// The user, app or source it belongs to.
    pub owner: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Balance in minor units.
    pub balance: i64,
}

/// One line of a statement: a transaction as it touched one account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementLine {
    /// The ledger transaction.
    pub txn: String,
    /// top_up, payment or refund.
    pub kind: String,
    /// The order it settles, if any.
    pub order: Option<String>,
    /// Signed amount in minor units (positive: into the account).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// What it was for.
    pub memo: String,
    /// When, ms since the epoch.
    pub created_at_ms: UnixMillis,
}

/// What the trial balance found; empty lists and zero sums mean the books hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrialBalance {
    /// (currency, sum of all balances): each must be zero.
    pub sums: Vec<(String, i64)>,
    /// Accounts other than external ones with a negative balance.
    pub negative: Vec<Account>,
    /// Accounts whose balance differs from the sum of their entries.
    pub drifted: Vec<Account>,
    /// Transactions whose entries do not sum to zero.
    pub unbalanced: Vec<String>,
    /// Paid (or refunded) orders without exactly one payment transaction, or whose refunded
    /// amount is not what their refunds and refund transactions add up to.
    pub unsettled: Vec<String>,
    /// Payouts whose ledger transaction is missing, not a payout, or moved another amount.
    pub unmatched_payouts: Vec<String>,
}

impl TrialBalance {
    /// Whether the books hold.
    pub fn holds(&self) -> bool {
        self.sums.iter().all(|(_, s)| *s == 0)
            && self.negative.is_empty()
            && self.drifted.is_empty()
            && self.unbalanced.is_empty()
            && self.unsettled.is_empty()
            && self.unmatched_payouts.is_empty()
    }
}

/// A line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Who did it (a username, or `admin-cli`).
    pub actor: String,
    /// What (e.g. `top_up`).
    pub action: String,
    /// To whom or what.
    pub subject: String,
    /// The details.
    pub detail: String,
    /// When, ms.
    pub created_at_ms: UnixMillis,
}

pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The id of the (kind, owner, currency) account, created empty if missing.
pub(crate) async fn account_id(
    tx: &mut Tx,
    kind: AccountKind,
    owner: &str,
    currency: &str,
    now: UnixMillis,
) -> Result<String> {
    sqlx::query(
        "INSERT INTO accounts (id, kind, owner, currency, balance, created_at)
         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (kind, owner, currency) DO NOTHING",
    )
    .bind(format!("acc_{}", minihost_core::ids::random_hex(10)))
    .bind(kind.as_str())
    .bind(owner)
    .bind(currency)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let (id,): (String,) =
        sqlx::query_as("SELECT id FROM accounts WHERE kind = $1 AND owner = $2 AND currency = $3")
            .bind(kind.as_str())
            .bind(owner)
            .bind(currency)
            .fetch_one(&mut **tx)
            .await?;
    Ok(id)
}

/// A movement of `amount` from one account to another.
pub(crate) struct Transfer<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub amount: i64,
    pub kind: &'a str,
    pub order: Option<&'a str>,
    pub refund: Option<&'a str>,
    pub actor: &'a str,
    pub memo: &'a str,
}

/// Moves money inside `tx`: debits `from` only if it holds enough (unless it is external),
/// credits `to`, records the transaction and its two entries. `Ok(false)`: not enough funds;
/// the caller rolls back (the credit may already be written in `tx`).
///
/// The two accounts are updated in the order of their ids, so that on PostgreSQL two transfers
/// between the same accounts in opposite directions (a payment and a refund) take the row locks
/// in the same order and cannot deadlock.
pub(crate) async fn transfer(tx: &mut Tx, t: Transfer<'_>, now: UnixMillis) -> Result<bool> {
    Ok(transfer_txn(tx, t, now).await?.is_some())
}

/// [`transfer`], answering the ledger transaction's id (`None`: not enough funds).
pub(crate) async fn transfer_txn(
    tx: &mut Tx,
    t: Transfer<'_>,
    now: UnixMillis,
) -> Result<Option<String>> {
    let debit_first = t.from <= t.to;
    if !debit_first {
        credit(tx, t.to, t.amount).await?;
    }
    let debited = sqlx::query(
        "UPDATE accounts SET balance = balance - $1
          WHERE id = $2 AND (kind = 'external' OR balance >= $1)",
    )
    .bind(t.amount)
    .bind(t.from)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if debited != 1 {
        return Ok(None);
    }
    if debit_first {
        credit(tx, t.to, t.amount).await?;
    }
    let txn = format!("tx_{}", minihost_core::ids::random_hex(10));
    sqlx::query(
        "INSERT INTO ledger_txns (id, kind, order_id, refund_id, actor, memo, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&txn)
    .bind(t.kind)
    .bind(t.order)
    .bind(t.refund)
    .bind(t.actor)
    .bind(t.memo)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    for (account, amount) in [(t.from, -t.amount), (t.to, t.amount)] {
        sqlx::query("INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ($1, $2, $3)")
            .bind(&txn)
            .bind(account)
            .bind(amount)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some(txn))
}

async fn credit(tx: &mut Tx, account: &str, amount: i64) -> Result<()> {
    sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = $2")
        .bind(amount)
        .bind(account)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An account named by what it is: (kind, owner, currency).
pub(crate) type AccountKey = (AccountKind, String, String);

/// An account as a batch of transfers sees it.
struct Held {
    id: String,
    external: bool,
    /// The balance read, minus what the batch has taken from it so far.
    balance: i64,
}

/// A transfer made in a batch, written by [`Postings::write`].
struct Posted {
    id: String,
    from: String,
    to: String,
    amount: i64,
    kind: &'static str,
    order: Option<String>,
    actor: String,
    memo: String,
}

/// A movement of `amount` between two accounts of a batch ([`Postings::transfer`]).
pub(crate) struct BatchTransfer<'a> {
    pub from: &'a AccountKey,
    pub to: &'a AccountKey,
    pub amount: i64,
    pub kind: &'static str,
    pub order: Option<&'a str>,
    pub actor: &'a str,
    pub memo: &'a str,
}

/// Rows per multi-row INSERT (at most 7 parameters each, far under both databases' limits).
const ROWS_PER_INSERT: usize = 64;
/// Accounts named per lookup (3 parameters each).
const KEYS_PER_LOOKUP: usize = 100;

/// Many transfers written together in one transaction (the payment writer's batches). The
/// accounts are read once ([`Postings::load`]); each transfer is checked in memory against the
/// balance the earlier ones left ([`Postings::transfer`]), in the order they are made, so that
/// a refusal writes nothing and cannot undo its neighbours. [`Postings::write`] then writes each
/// account's net change in the order of account ids (the row locks taken in one order, as
/// [`transfer`] takes them), each conditional on the balance staying non-negative, and the
/// transactions and their entries several rows per statement.
#[derive(Default)]
pub(crate) struct Postings {
    accounts: HashMap<AccountKey, Held>,
    /// Net change per account id, in id order.
    deltas: BTreeMap<String, i64>,
    posted: Vec<Posted>,
}

impl Postings {
    /// Reads the accounts named in `keys` that this batch has not read yet, creating the missing
    /// ones empty.
    pub(crate) async fn load(
        &mut self,
        tx: &mut Tx,
        keys: &[AccountKey],
        now: UnixMillis,
    ) -> Result<()> {
        let mut wanted: Vec<&AccountKey> = Vec::new();
        for key in keys {
            if !self.accounts.contains_key(key) && !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        self.read(tx, &wanted).await?;
        let missing: Vec<&AccountKey> = wanted
            .into_iter()
            .filter(|k| !self.accounts.contains_key(*k))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        for chunk in missing.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO accounts (id, kind, owner, currency, balance, created_at) VALUES ",
            );
            for r in 0..chunk.len() {
                if r > 0 {
                    sql.push(',');
                }
                let b = r * 4;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, 0, $1)",
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            sql.push_str(" ON CONFLICT (kind, owner, currency) DO NOTHING");
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for (kind, owner, currency) in chunk {
                q = q
                    .bind(format!("acc_{}", minihost_core::ids::random_hex(10)))
                    .bind(kind.as_str())
                    .bind(owner.clone())
                    .bind(currency.clone());
            }
            q.execute(&mut **tx).await?;
        }
        self.read(tx, &missing).await?;
        match missing.iter().find(|k| !self.accounts.contains_key(**k)) {
            Some((kind, owner, currency)) => Err(StoreError::Corrupt(format!(
                "the {} account of {owner} in {currency} was neither found nor created",
                kind.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Reads the accounts named in `keys` that exist.
    async fn read(&mut self, tx: &mut Tx, keys: &[&AccountKey]) -> Result<()> {
        for chunk in keys.chunks(KEYS_PER_LOOKUP) {
            let mut sql =
                String::from("SELECT id, kind, owner, currency, balance FROM accounts WHERE ");
            for r in 0..chunk.len() {
                if r > 0 {
                    sql.push_str(" OR ");
                }
                let b = r * 3;
                sql.push_str(&format!(
                    "(kind = ${} AND owner = ${} AND currency = ${})",
                    b + 1,
                    b + 2,
                    b + 3
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (kind, owner, currency) in chunk {
                q = q
                    .bind(kind.as_str())
                    .bind(owner.clone())
                    .bind(currency.clone());
            }
            for row in q.fetch_all(&mut **tx).await? {
                let account = account_from_row(&row)?;
                let Some(key) = chunk.iter().find(|(kind, owner, currency)| {
                    kind.as_str() == account.kind
                        && *owner == account.owner
                        && *currency == account.currency
                }) else {
                    continue;
                };
                self.accounts.insert(
                    (*key).clone(),
                    Held {
                        id: account.id,
                        external: account.kind == AccountKind::External.as_str(),
                        balance: account.balance,
                    },
                );
            }
        }
        Ok(())
    }

    /// Moves `t.amount` from `t.from` to `t.to` (both [`load`](Self::load)ed) if `t.from`
    /// holds it after the transfers made before (or is external); `Ok(false)`, and nothing
    /// recorded, if it does not.
    pub(crate) fn transfer(&mut self, t: BatchTransfer<'_>) -> Result<bool> {
        let not_loaded = || StoreError::Corrupt("a batch transfer names an unread account".into());
        let to_id = self.accounts.get(t.to).ok_or_else(not_loaded)?.id.clone();
        let source = self.accounts.get_mut(t.from).ok_or_else(not_loaded)?;
        if !source.external && source.balance < t.amount {
            return Ok(false);
        }
        source.balance -= t.amount;
        let from_id = source.id.clone();
        if let Some(target) = self.accounts.get_mut(t.to) {
            target.balance += t.amount;
        }
        *self.deltas.entry(from_id.clone()).or_default() -= t.amount;
        *self.deltas.entry(to_id.clone()).or_default() += t.amount;
        self.posted.push(Posted {
            id: format!("tx_{}", minihost_core::ids::random_hex(10)),
            from: from_id,
            to: to_id,
            amount: t.amount,
            kind: t.kind,
            order: t.order.map(str::to_owned),
            actor: t.actor.to_owned(),
            memo: t.memo.to_owned(),
        });
        Ok(true)
    }

    /// Writes the batch's transfers inside `tx`: every account's net change in one statement
    /// (per [`KEYS_PER_LOOKUP`] accounts), conditional on no balance but an external one going
    /// negative, then the transactions and their entries. On PostgreSQL the accounts' rows are
    /// locked first in the order of their ids, as [`transfer`] takes them, so a batch and a
    /// refund between two of its accounts cannot deadlock (SQLite's write lock already
    /// serialises every writer). `Ok(false)`: an account would go negative, because another
    /// transaction (another node) took from it after [`load`](Self::load) read it; the caller
    /// rolls back and starts again.
    pub(crate) async fn write(
        self,
        tx: &mut Tx,
        backend: Backend,
        now: UnixMillis,
    ) -> Result<bool> {
        let changes: Vec<(&String, i64)> = self
            .deltas
            .iter()
            .filter(|(_, delta)| **delta != 0)
            .map(|(id, delta)| (id, *delta))
            .collect();
        for chunk in changes.chunks(KEYS_PER_LOOKUP) {
            if backend == Backend::Postgres {
                let sql = format!(
                    "SELECT id FROM accounts WHERE id IN ({}) ORDER BY id FOR UPDATE",
                    (1..=chunk.len())
                        .map(|k| format!("${k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (id, _) in chunk {
                    q = q.bind(id.as_str());
                }
                q.execute(&mut **tx).await?;
            }
            let mut case = String::from("CASE id");
            for k in 0..chunk.len() {
                case.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2));
            }
            case.push_str(" END");
            let ids = (0..chunk.len())
                .map(|k| format!("${}", 2 * k + 1))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE accounts SET balance = balance + {case}
                  WHERE id IN ({ids}) AND (kind = 'external' OR balance + {case} >= 0)
                  RETURNING id"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, delta) in chunk {
                q = q.bind(id.as_str()).bind(*delta);
            }
            if q.fetch_all(&mut **tx).await?.len() != chunk.len() {
                return Ok(false);
            }
        }
        for chunk in self.posted.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO ledger_txns (id, kind, order_id, refund_id, actor, memo, created_at) \
                 VALUES ",
            );
            for r in 0..chunk.len() {
                if r > 0 {
                    sql.push(',');
                }
                let b = r * 5;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, NULL, ${}, ${}, $1)",
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for p in chunk {
                q = q
                    .bind(p.id.clone())
                    .bind(p.kind)
                    .bind(p.order.clone())
                    .bind(p.actor.clone())
                    .bind(p.memo.clone());
            }
            q.execute(&mut **tx).await?;

            let mut sql =
                String::from("INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ");
            for r in 0..chunk.len() * 2 {
                if r > 0 {
                    sql.push(',');
                }
                let b = r * 3;
                sql.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(p.id.clone())
                    .bind(p.from.clone())
                    .bind(-p.amount)
                    .bind(p.id.clone())
                    .bind(p.to.clone())
                    .bind(p.amount);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(true)
    }
}

/// Adds a line to the audit log inside `tx`.
pub(crate) async fn audit(
    tx: &mut Tx,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
    now: UnixMillis,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, actor, action, subject, detail, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(format!("aud_{}", minihost_core::ids::random_hex(10)))
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Audit lines from `(actor, action, subject, detail, created_at)` rows.
pub(crate) fn audit_entries(rows: Vec<(String, String, String, String, i64)>) -> Vec<AuditEntry> {
    rows.into_iter()
        .map(
            |(actor, action, subject, detail, created_at_ms)| AuditEntry {
                actor,
                action,
                subject,
                detail,
                created_at_ms,
            },
        )
        .collect()
}

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<Account> {
    Ok(Account {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        owner: row.try_get("owner")?,
        currency: row.try_get("currency")?,
        balance: row.try_get("balance")?,
    })
}

impl Store {
    /// Puts test money into `user`'s wallet from the external `top-up` account, audited with
    /// the operator who did it. Returns the wallet after.
    pub async fn top_up(
        &self,
        user: &UserId,
        amount: i64,
        currency: &str,
        operator: &str,
    ) -> Result<Account> {
        let now = minihost_core::now_millis();
        let mut tx = self.begin_write().await?;
        let source = account_id(&mut tx, AccountKind::External, "top-up", currency, now).await?;
        let wallet = account_id(&mut tx, AccountKind::Wallet, user.as_str(), currency, now).await?;
        let memo = format!("top-up of {amount} {currency} minor units");
        transfer(
            &mut tx,
            Transfer {
                from: &source,
                to: &wallet,
                amount,
                kind: "top_up",
                order: None,
                refund: None,
                actor: operator,
                memo: &memo,
            },
            now,
        )
        .await?;
        audit(&mut tx, operator, "top_up", user.as_str(), &memo, now).await?;
        tx.commit().await?;
        self.account(AccountKind::Wallet, user.as_str(), currency)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The newest `limit` audit entries of `action`, newest first.
    pub async fn audit_entries(&self, action: &str, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT actor, action, subject, detail, created_at FROM audit_log
              WHERE action = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(action)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(audit_entries(rows))
    }

    /// The (kind, owner, currency) account, if it exists.
    pub async fn account(
        &self,
        kind: AccountKind,
        owner: &str,
        currency: &str,
    ) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, kind, owner, currency, balance FROM accounts
              WHERE kind = $1 AND owner = $2 AND currency = $3",
        )
        .bind(kind.as_str())
        .bind(owner)
        .bind(currency)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Every account of `kind` owned by `owner` (a user's wallets, an app's merchant accounts).
    pub async fn accounts_of(&self, kind: AccountKind, owner: &str) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT id, kind, owner, currency, balance FROM accounts
              WHERE kind = $1 AND owner = $2 ORDER BY currency",
        )
        .bind(kind.as_str())
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// The newest `limit` entries of an account, newest first.
    pub async fn statement(&self, account: &str, limit: u32) -> Result<Vec<StatementLine>> {
        let rows = sqlx::query(
            "SELECT t.id, t.kind, t.order_id, e.amount, a.currency, t.memo, t.created_at
               FROM ledger_entries e
               JOIN ledger_txns t ON t.id = e.txn_id
               JOIN accounts a ON a.id = e.account_id
              WHERE e.account_id = $1
              ORDER BY t.created_at DESC, t.id LIMIT $2",
        )
        .bind(account)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatementLine {
                    txn: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    order: r.try_get(2)?,
                    amount: r.try_get(3)?,
                    currency: r.try_get(4)?,
                    memo: r.try_get(5)?,
                    created_at_ms: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The trial balance: per currency the accounts sum to zero, no account but an external one
    /// is negative, every balance equals the sum of its entries, every transaction's entries sum
    /// to zero, every paid or refunded order has exactly one payment transaction and refund
    /// transactions (and refunds) adding up to what it says was refunded, and every payout has
    /// its payout transaction of its amount.
    pub async fn trial_balance(&self) -> Result<TrialBalance> {
        let sums = sqlx::query_as::<_, (String, i64)>(
            "SELECT currency, CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts
              GROUP BY currency ORDER BY currency",
        )
        .fetch_all(&self.pool)
        .await?;
        let negative = sqlx::query(
            "SELECT id, kind, owner, currency, balance FROM accounts
              WHERE kind <> 'external' AND balance < 0 ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect::<Result<_>>()?;
        let drifted = sqlx::query(
            "SELECT a.id, a.kind, a.owner, a.currency, a.balance FROM accounts a
              WHERE a.balance <> (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT)
                                    FROM ledger_entries e WHERE e.account_id = a.id)
              ORDER BY a.id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(account_from_row)
        .collect::<Result<_>>()?;
        let unbalanced = sqlx::query_as::<_, (String,)>(
            "SELECT txn_id FROM ledger_entries GROUP BY txn_id
              HAVING CAST(SUM(amount) AS BIGINT) <> 0 ORDER BY txn_id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
        let unsettled = sqlx::query_as::<_, (String,)>(
            "SELECT o.id FROM payment_orders o
              WHERE o.state IN ('paid', 'partially_refunded', 'refunded')
                AND ((SELECT COUNT(*) FROM ledger_txns t
                       WHERE t.order_id = o.id AND t.kind = 'payment') <> 1
                  OR o.refunded <> (SELECT CAST(COALESCE(SUM(r.amount), 0) AS BIGINT)
                                      FROM payment_refunds r WHERE r.order_id = o.id)
                  OR o.refunded <> (SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT)
                                      FROM ledger_txns t
                                      JOIN ledger_entries e ON e.txn_id = t.id AND e.amount > 0
                                     WHERE t.order_id = o.id AND t.kind = 'refund'))
              ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
        let unmatched_payouts = sqlx::query_as::<_, (String,)>(
            "SELECT p.id FROM payouts p
              WHERE NOT EXISTS (SELECT 1 FROM ledger_txns t
                                  JOIN ledger_entries e ON e.txn_id = t.id AND e.amount > 0
                                 WHERE t.id = p.txn_id AND t.kind = 'payout'
                                   AND e.amount = p.amount)
              ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
        Ok(TrialBalance {
            sums,
            negative,
            drifted,
            unbalanced,
            unsettled,
            unmatched_payouts,
        })
    }
}
