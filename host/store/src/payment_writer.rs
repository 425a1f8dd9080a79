//! The group-commit payment writer. One task owns every user's answer to a payment request
//! (confirm, decline) on this node: it takes all answers queued while the previous commit was
//! in flight (up to [`MAX_BATCH`]), applies them in ONE transaction ([`answer_in`]: each as if
//! after the ones before it), commits once (one fsync), then gives each caller its own outcome.
//! An answer is given only after its commit, so an acknowledged payment survives a crash. A
//! batch that fails is tried again one answer at a time, so one bad answer cannot fail its
//! neighbours, and every caller is answered, with an error if need be; if the task is gone,
//! callers get [`StoreError::Closed`] rather than waiting.

use crate::db::Backend;
use crate::payments::{Answer, Asked, PaymentOutcome, answer_in};
use crate::{Result, StoreError};
use minihost_core::UserId;
use sqlx::AnyPool;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most answers committed together.
pub const MAX_BATCH: usize = 256;
/// Answers that may wait for the writer before callers feel back-pressure.
const QUEUE: usize = 4096;
/// How many times a batch is started again when another node took from one of its wallets
/// between the batch's read and its write.
const ATTEMPTS: usize = 5;

struct Request {
    order: String,
    user: UserId,
    answer: Answer,
    reply: oneshot::Sender<Result<PaymentOutcome>>,
}

enum Command {
    Answer(Request),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the payment writer task.
#[derive(Clone)]
pub(crate) struct PaymentWriter {
    tx: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl PaymentWriter {
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(pool, backend, rx));
        PaymentWriter {
            tx,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Applies `answer` of `user` to order `order` in the next batch; returns after its commit.
    pub(crate) async fn answer(
        &self,
        order: String,
        user: UserId,
        answer: Answer,
    ) -> Result<PaymentOutcome> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Answer(Request {
                order,
                user,
                answer,
                reply,
            }))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits everything queued so far, then stops the task.
    pub(crate) async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn run(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Command>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Answer(r) => batch.push(r),
                Command::Shutdown(done) => {
                    stop = Some(done);
                    break;
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            process(&pool, backend, std::mem::take(&mut batch)).await;
        }
    }
    rx.close();
    // Whatever was queued behind the shutdown still gets committed.
    while let Ok(cmd) = rx.try_recv() {
        if let Command::Answer(r) = cmd {
            batch.push(r);
        }
    }
    if !batch.is_empty() {
        process(&pool, backend, batch).await;
    }
    if let Some(done) = stop {
        let _ = done.send(());
    }
}

/// Commits a batch and answers its callers; if the batch fails as a whole, each answer on its own.
async fn process(pool: &AnyPool, backend: Backend, batch: Vec<Request>) {
    let result = {
        let asked: Vec<Asked<'_>> = batch.iter().map(asked).collect();
        commit(pool, backend, &asked).await
    };
    match result {
        Ok(outcomes) => {
            for (r, outcome) in batch.into_iter().zip(outcomes) {
                let _ = r.reply.send(Ok(outcome));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(r) = batch.into_iter().next() {
                let _ = r.reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "payment batch failed; retrying one by one");
            for r in batch {
                let result = commit(pool, backend, &[asked(&r)]).await;
                let _ = r
                    .reply
                    .send(result.and_then(|mut o| o.pop().ok_or(StoreError::NotFound)));
            }
        }
    }
}

fn asked(r: &Request) -> Asked<'_> {
    Asked {
        order: &r.order,
        user: &r.user,
        answer: r.answer,
    }
}

/// Applies `asked` in one transaction and commits it; starts again (a few times) when another
/// node took from a wallet of the batch in the meantime. One outcome per answer, in order.
async fn commit(
    pool: &AnyPool,
    backend: Backend,
    asked: &[Asked<'_>],
) -> Result<Vec<PaymentOutcome>> {
    for _ in 0..ATTEMPTS {
        let start = std::time::Instant::now();
        let mut tx = crate::db::begin_write(pool, backend).await?;
        let begun = start.elapsed();
        match answer_in(&mut tx, backend, asked, minihost_core::now_millis()).await? {
            Some(outcomes) => {
                let applied = start.elapsed();
                tx.commit().await?;
                tracing::debug!(
                    size = asked.len(),
                    begin_us = begun.as_micros(),
                    apply_us = (applied - begun).as_micros(),
                    commit_us = (start.elapsed() - applied).as_micros(),
                    "payment batch committed"
                );
                return Ok(outcomes);
            }
            None => tx.rollback().await?,
        }
    }
    Err(StoreError::Busy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::testing::TestDb;
    use crate::{AccountKind, NewOrder, NewUser, PaymentRefusal, Store, User};
    use minihost_core::{DisplayName, Role, Username};

    async fn user(store: &Store, name: &str, cents: i64) -> User {
        let u = store
            .create_user(NewUser {
                username: Username::parse(name).unwrap(),
                display_name: DisplayName::parse(name).unwrap(),
                password_hash: "not-a-real-hash".into(),
                role: Role::User,
            })
            .await
            .unwrap();
        if cents > 0 {
            store.top_up(&u.id, cents, "EUR", "test").await.unwrap();
        }
        u
    }

    async fn order(store: &Store, user: &User, key: &str, amount: i64, expires_in: i64) -> String {
        store
            .create_order(NewOrder {
                app_id: "shop".into(),
                user_id: user.id.clone(),
                conversation_id: None,
                origin: "backend",
                amount,
                currency: "EUR".into(),
                description: format!("order {key}"),
                idempotency_key: key.into(),
                expires_at_ms: minihost_core::now_millis() + expires_in,
            })
            .await
            .unwrap()
            .id
    }

    async fn wallet_of(store: &Store, user: &User) -> i64 {
        store
            .account(AccountKind::Wallet, user.id.as_str(), "EUR")
            .await
            .unwrap()
            .map_or(0, |a| a.balance)
    }

    /// What a test expects of one answer.
    #[derive(Debug, PartialEq)]
    enum Want {
        Paid,
        Declined,
        Refused(PaymentRefusal),
        NotFound,
    }

    fn got(outcome: &PaymentOutcome) -> Want {
        match outcome {
            None => Want::NotFound,
            Some(Ok(o)) if o.state == "paid" => Want::Paid,
            Some(Ok(o)) if o.state == "declined" => Want::Declined,
            Some(Ok(o)) => panic!("unexpected state {}", o.state),
            Some(Err(r)) => Want::Refused(r.clone()),
        }
    }

    /// One batch, one transaction: payments the wallets can pay, payments they cannot (which
    /// must not undo the others), declines, retries, answers to the same order one after the
    /// other, orders of someone else, unknown and expired orders: each gets its own answer, as if
    /// they had come one at a time in that order.
    #[tokio::test]
    async fn one_batch_answers_each_on_its_own() {
        for db in TestDb::all().await.unwrap() {
            let store = db.open(None).await.unwrap();
            let dev = user(&store, "dev", 0).await;
            store.register_app("shop", "Shop", &dev.id).await.unwrap();
            let alice = user(&store, "alice", 1_000).await;
            let bob = user(&store, "bob", 500).await;
            let carol = user(&store, "carol", 0).await;
            let hour = 3_600_000;
            let a1 = order(&store, &alice, "a1", 300, hour).await;
            let a2 = order(&store, &alice, "a2", 300, hour).await;
            let a3 = order(&store, &alice, "a3", 300, hour).await;
            let a4 = order(&store, &alice, "a4", 300, hour).await;
            let a5 = order(&store, &alice, "a5", 50, hour).await;
            let ad = order(&store, &alice, "ad", 10, hour).await;
            let gone = order(&store, &alice, "gone", 10, -1).await;
            let b1 = order(&store, &bob, "b1", 600, hour).await;
            let b2 = order(&store, &bob, "b2", 500, hour).await;
            let c1 = order(&store, &carol, "c1", 1, hour).await;
            let declined = order(&store, &carol, "c2", 1, hour).await;
            store
                .decline_order(&declined, &carol.id)
                .await
                .unwrap()
                .unwrap()
                .unwrap();

            use Answer::{Confirm, Decline};
            let batch: Vec<(&str, &User, Answer, Want)> = vec![
                (&a1, &alice, Confirm, Want::Paid),
                (
                    &b1,
                    &bob,
                    Confirm,
                    Want::Refused(PaymentRefusal::InsufficientFunds("EUR".into())),
                ),
                (&a2, &alice, Confirm, Want::Paid),
                (&a1, &alice, Confirm, Want::Paid), // a retry: the same payment
                (&a3, &alice, Confirm, Want::Paid),
                (
                    &a4,
                    &alice,
                    Confirm,
                    Want::Refused(PaymentRefusal::InsufficientFunds("EUR".into())),
                ),
                (&b2, &bob, Confirm, Want::Paid),
                (&a5, &alice, Confirm, Want::Paid), // 100 left after a1-a3: enough for 50
                (&a1, &bob, Confirm, Want::NotFound), // not bob's
                ("po_unknown", &alice, Confirm, Want::NotFound),
                (
                    &gone,
                    &alice,
                    Confirm,
                    Want::Refused(PaymentRefusal::Expired),
                ),
                (
                    &c1,
                    &carol,
                    Confirm,
                    Want::Refused(PaymentRefusal::InsufficientFunds("EUR".into())),
                ),
                (&c1, &carol, Decline, Want::Declined), // after the refusal it can be declined
                (
                    &c1,
                    &carol,
                    Confirm,
                    Want::Refused(PaymentRefusal::Declined),
                ),
                (
                    &declined,
                    &carol,
                    Confirm,
                    Want::Refused(PaymentRefusal::Declined),
                ),
                (&ad, &alice, Decline, Want::Declined),
                (&ad, &alice, Decline, Want::Declined),
                (
                    &a2,
                    &alice,
                    Decline,
                    Want::Refused(PaymentRefusal::AlreadyPaid),
                ),
            ];
            let asked: Vec<Asked<'_>> = batch
                .iter()
                .map(|(order, user, answer, _)| Asked {
                    order,
                    user: &user.id,
                    answer: *answer,
                })
                .collect();
            let outcomes = commit(&store.pool, store.backend, &asked).await.unwrap();
            assert_eq!(outcomes.len(), batch.len());
            for ((order, user, answer, want), outcome) in batch.iter().zip(&outcomes) {
                assert_eq!(
                    &got(outcome),
                    want,
                    "{}: {answer:?} of {order} by {}",
                    db.name,
                    user.id
                );
            }

            assert_eq!(wallet_of(&store, &alice).await, 50, "{}", db.name);
            assert_eq!(wallet_of(&store, &bob).await, 0, "{}", db.name);
            assert_eq!(wallet_of(&store, &carol).await, 0, "{}", db.name);
            let shop = store
                .account(AccountKind::Merchant, "shop", "EUR")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(shop.balance, 950 + 500, "{}", db.name);
            for (id, state) in [
                (&a4, "pending"),
                (&b1, "pending"),
                (&c1, "declined"),
                (&a5, "paid"),
            ] {
                assert_eq!(
                    store.order(id).await.unwrap().unwrap().state,
                    state,
                    "{}",
                    db.name
                );
            }
            // One event per change: 5 paid, 2 declined here (and the decline before).
            let events = store.undispatched_payment_events(100).await.unwrap();
            let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
            assert_eq!((count("paid"), count("declined")), (5, 3), "{}", db.name);
            let tb = store.trial_balance().await.unwrap();
            assert!(tb.holds(), "{}: {tb:#?}", db.name);
            store.close().await;
            db.cleanup().await.unwrap();
        }
    }

    /// A batch's balances are read before it writes them; if another transaction (another
    /// node) takes from a wallet in between, the write refuses rather than make it negative.
    #[tokio::test]
    async fn a_wallet_taken_from_after_the_read_is_not_made_negative() {
        use crate::ledger::{AccountKey, BatchTransfer, Postings};
        for db in TestDb::all().await.unwrap() {
            let store = db.open(None).await.unwrap();
            let dev = user(&store, "dev", 0).await;
            store.register_app("shop", "Shop", &dev.id).await.unwrap();
            let alice = user(&store, "alice", 1_000).await;
            let wallet: AccountKey = (AccountKind::Wallet, alice.id.as_str().into(), "EUR".into());
            let shop: AccountKey = (AccountKind::Merchant, "shop".into(), "EUR".into());
            let now = minihost_core::now_millis();
            let plan = || BatchTransfer {
                from: &wallet,
                to: &shop,
                amount: 800,
                kind: "payment",
                order: None,
                actor: "test",
                memo: "",
            };

            let mut postings = Postings::default();
            let mut tx = crate::db::begin_write(&store.write_pool, store.backend)
                .await
                .unwrap();
            postings
                .load(&mut tx, &[wallet.clone(), shop.clone()], now)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert!(postings.transfer(plan()).unwrap());
            // 800 of 1,000 planned; another writer takes 300 before the batch writes.
            crate::testing::tamper(
                &store,
                &format!(
                    "UPDATE accounts SET balance = balance - 300 WHERE kind = 'wallet' AND owner = '{}'",
                    alice.id.as_str()
                ),
            )
            .await
            .unwrap();
            let mut tx = crate::db::begin_write(&store.write_pool, store.backend)
                .await
                .unwrap();
            assert!(
                !postings.write(&mut tx, store.backend, now).await.unwrap(),
                "{}",
                db.name
            );
            tx.rollback().await.unwrap();
            assert_eq!(wallet_of(&store, &alice).await, 700, "{}", db.name);

            // Read again, the same transfer no longer fits; a smaller one does.
            let mut postings = Postings::default();
            let mut tx = crate::db::begin_write(&store.write_pool, store.backend)
                .await
                .unwrap();
            postings
                .load(&mut tx, &[wallet.clone(), shop.clone()], now)
                .await
                .unwrap();
            assert!(!postings.transfer(plan()).unwrap());
            assert!(
                postings
                    .transfer(BatchTransfer {
                        amount: 700,
                        ..plan()
                    })
                    .unwrap()
            );
            assert!(postings.write(&mut tx, store.backend, now).await.unwrap());
            tx.commit().await.unwrap();
            assert_eq!(wallet_of(&store, &alice).await, 0, "{}", db.name);
            store.close().await;
            db.cleanup().await.unwrap();
        }
    }
}
