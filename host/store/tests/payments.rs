//! The ledger and payment orders on every configured backend, under the races the issue names:
//! one idempotency key sent 100 times at once is one order; 50 confirmations of one order are
//! one debit; orders that together exceed a balance never make it negative; decline and expiry
//! are final; wrong PINs lock; refunds add up to at most what was paid, also when 20 race, and a
//! repeated key is one refund; many payers confirming at once (their answers batched by the
//! payment writer) each get their own answer; a batch that cannot be written answers every
//! caller with an error and moves nothing. The trial balance is checked after each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_store::testing::TestDb;
use minihost_store::{
    AccountKind, NewOrder, NewRefund, PaymentOrder, PaymentRefusal, RefundRefusal, Refunded, Store,
    StoreError, TrialBalance, User,
};

/// A shop app owned by a developer, and a user `alice` with `cents` EUR in her wallet.
async fn setup(store: &Store, cents: i64) -> User {
    let dev = user(store, "dev").await;
    store.register_app("shop", "Shop", &dev.id).await.unwrap();
    let alice = user(store, "alice").await;
    if cents > 0 {
        store
            .top_up(&alice.id, cents, "EUR", "admin")
            .await
            .unwrap();
    }
    alice
}

fn order(user: &User, key: &str, amount: i64) -> NewOrder {
    NewOrder {
        app_id: "shop".into(),
        user_id: user.id.clone(),
        conversation_id: None,
        origin: "backend",
        amount,
        currency: "EUR".into(),
        description: format!("order {key}"),
        idempotency_key: key.into(),
        expires_at_ms: minihost_core::now_millis() + 900_000,
    }
}

async fn balance(store: &Store, kind: AccountKind, owner: &str) -> i64 {
    store
        .account(kind, owner, "EUR")
        .await
        .unwrap()
        .map_or(0, |a| a.balance)
}

async fn books_hold(store: &Store) -> TrialBalance {
    let tb = store.trial_balance().await.unwrap();
    assert!(tb.holds(), "the trial balance does not hold: {tb:#?}");
    tb
}

macro_rules! on_every_backend {
    (|$store:ident| $body:block) => {{
        for db in TestDb::all().await.unwrap() {
            let $store = std::sync::Arc::new(db.open(None).await.unwrap());
            $body
            $store.close().await;
            db.cleanup().await.unwrap();
        }
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_a_hundred_times_at_once_is_one_order() {
    on_every_backend!(|store| {
        let alice = setup(&store, 0).await;
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let store = store.clone();
                let new = order(&alice, "k1", 500);
                tokio::spawn(async move { store.create_order(new).await.unwrap().id })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap());
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        // The same key with other parameters is refused, and changes nothing.
        let other = order(&alice, "k1", 501);
        assert!(matches!(
            store.create_order(other).await,
            Err(StoreError::IdempotencyKeyReused)
        ));
        assert_eq!(
            store.orders_of(&alice.id, false, 10).await.unwrap().len(),
            1
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_confirmations_of_one_order_debit_once() {
    on_every_backend!(|store| {
        let alice = setup(&store, 10_000).await;
        let o = store
            .create_order(order(&alice, "k1", 2_500))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (store, id, user) = (store.clone(), o.id.clone(), alice.id.clone());
                tokio::spawn(async move { store.confirm_order(&id, &user).await.unwrap() })
            })
            .collect();
        for t in tasks {
            let paid = t.await.unwrap().unwrap().unwrap();
            assert_eq!(paid.state, "paid");
        }
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            7_500
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 2_500);
        let wallet = store
            .account(AccountKind::Wallet, alice.id.as_str(), "EUR")
            .await
            .unwrap()
            .unwrap();
        let lines = store.statement(&wallet.id, 10).await.unwrap();
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.kind.as_str(), l.amount))
                .collect::<Vec<_>>(),
            [("payment", -2_500), ("top_up", 10_000)]
        );
        books_hold(&store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_beyond_the_balance_never_make_it_negative() {
    on_every_backend!(|store| {
        let alice = setup(&store, 1_000).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                store
                    .create_order(order(&alice, &format!("k{i}"), 300))
                    .await
                    .unwrap()
                    .id,
            );
        }
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let (store, user) = (store.clone(), alice.id.clone());
                tokio::spawn(async move { store.confirm_order(&id, &user).await.unwrap().unwrap() })
            })
            .collect();
        let (mut paid, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(o) => {
                    assert_eq!(o.state, "paid");
                    paid += 1;
                }
                Err(PaymentRefusal::InsufficientFunds(c)) => {
                    assert_eq!(c, "EUR");
                    refused += 1;
                }
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
        assert_eq!((paid, refused), (3, 17));
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            100
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 900);
        // A refused order stays pending: it can be paid after a top-up.
        let pending = store.orders_of(&alice.id, true, 50).await.unwrap();
        assert_eq!(pending.len(), 17);
        books_hold(&store).await;
    });
}

/// A payer with `cents` EUR in their wallet.
async fn payer(store: &Store, name: &str, cents: i64) -> User {
    let u = user(store, name).await;
    store.top_up(&u.id, cents, "EUR", "admin").await.unwrap();
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_payers_confirming_at_once_each_get_their_own_answer() {
    on_every_backend!(|store| {
        // Eight payers, each with eight orders of 300 and money for five of them; every order
        // confirmed twice, all 128 confirmations at once. The payment writer answers them in
        // batches, so paid and refused confirmations of different payers share transactions.
        const PAYERS: usize = 8;
        let dev = user(&store, "dev").await;
        store.register_app("shop", "Shop", &dev.id).await.unwrap();
        let mut orders = Vec::new();
        let mut payers = Vec::new();
        for p in 0..PAYERS {
            let u = payer(&store, &format!("payer{p}"), 1_500).await;
            for k in 0..8 {
                let o = store
                    .create_order(order(&u, &format!("p{p}-{k}"), 300))
                    .await
                    .unwrap();
                orders.push((p, o.id));
            }
            payers.push(u);
        }
        let mut tasks = Vec::new();
        for _ in 0..2 {
            for (p, id) in &orders {
                let (store, id, user, p) = (store.clone(), id.clone(), payers[*p].id.clone(), *p);
                tasks.push(tokio::spawn(async move {
                    let answer = store.confirm_order(&id, &user).await.unwrap().unwrap();
                    (p, id, answer)
                }));
            }
        }
        let mut answers: std::collections::BTreeMap<String, Vec<bool>> = Default::default();
        for t in tasks {
            let (_, id, answer) = t.await.unwrap();
            let paid = match answer {
                Ok(o) => {
                    assert_eq!((o.id.as_str(), o.state.as_str()), (id.as_str(), "paid"));
                    true
                }
                Err(PaymentRefusal::InsufficientFunds(c)) => {
                    assert_eq!(c, "EUR");
                    false
                }
                Err(other) => panic!("unexpected refusal {other:?}"),
            };
            answers.entry(id).or_default().push(paid);
        }
        // Both confirmations of an order got the same answer (a wallet only shrinks), and the
        // order is in the state its answers said.
        for (p, u) in payers.iter().enumerate() {
            let mut paid = 0;
            for (_, id) in orders.iter().filter(|(q, _)| *q == p) {
                let both = &answers[id];
                assert_eq!(both.len(), 2);
                assert_eq!(both[0], both[1], "{id}: {both:?}");
                let state = store.order(id).await.unwrap().unwrap().state;
                assert_eq!(state, if both[0] { "paid" } else { "pending" }, "{id}");
                paid += usize::from(both[0]);
            }
            assert_eq!(paid, 5, "payer{p}");
            assert_eq!(balance(&store, AccountKind::Wallet, u.id.as_str()).await, 0);
        }
        assert_eq!(
            balance(&store, AccountKind::Merchant, "shop").await,
            1_500 * PAYERS as i64
        );
        let events = store.undispatched_payment_events(500).await.unwrap();
        assert_eq!(events.len(), 5 * PAYERS);
        books_hold(&store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_cannot_be_written_answers_everyone_with_an_error() {
    on_every_backend!(|store| {
        let alice = setup(&store, 10_000).await;
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                store
                    .create_order(order(&alice, &format!("k{i}"), 100))
                    .await
                    .unwrap()
                    .id,
            );
        }
        // The outbox is gone: no payment can be recorded with its event.
        minihost_store::testing::tamper(
            &store,
            "ALTER TABLE payment_events RENAME TO payment_events_gone",
        )
        .await
        .unwrap();
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (store, id, user) = (store.clone(), id.clone(), alice.id.clone());
                tokio::spawn(async move { store.confirm_order(&id, &user).await })
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Err(StoreError::Database(_))));
        }
        // Nothing moved, and once the outbox is back the same orders can be paid.
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            10_000
        );
        minihost_store::testing::tamper(
            &store,
            "ALTER TABLE payment_events_gone RENAME TO payment_events",
        )
        .await
        .unwrap();
        assert_eq!(
            store.orders_of(&alice.id, true, 50).await.unwrap().len(),
            20
        );
        for id in &ids {
            let paid = store.confirm_order(id, &alice.id).await.unwrap().unwrap();
            assert_eq!(paid.unwrap().state, "paid");
        }
        books_hold(&store).await;
    });
}

#[tokio::test]
async fn answers_after_close_are_refused_not_left_waiting() {
    on_every_backend!(|store| {
        let alice = setup(&store, 1_000).await;
        let o = store.create_order(order(&alice, "k", 100)).await.unwrap();
        store.close().await;
        assert!(matches!(
            store.confirm_order(&o.id, &alice.id).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(
            store.decline_order(&o.id, &alice.id).await,
            Err(StoreError::Closed)
        ));
    });
}

#[tokio::test]
async fn decline_and_expiry_are_final() {
    on_every_backend!(|store| {
        let alice = setup(&store, 1_000).await;
        let declined = store.create_order(order(&alice, "d", 100)).await.unwrap();
        let d = store
            .decline_order(&declined.id, &alice.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.unwrap().state, "declined");
        assert_eq!(
            store
                .confirm_order(&declined.id, &alice.id)
                .await
                .unwrap()
                .unwrap(),
            Err(PaymentRefusal::Declined)
        );

        let mut short = order(&alice, "e", 100);
        short.expires_at_ms = minihost_core::now_millis() - 1;
        let expired = store.create_order(short).await.unwrap();
        assert_eq!(
            store
                .confirm_order(&expired.id, &alice.id)
                .await
                .unwrap()
                .unwrap(),
            Err(PaymentRefusal::Expired)
        );
        let swept = store
            .expire_orders(minihost_core::now_millis())
            .await
            .unwrap();
        assert_eq!(
            swept.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            [expired.id.as_str()]
        );
        assert_eq!(
            store.order(&expired.id).await.unwrap().unwrap().state,
            "expired"
        );
        assert_eq!(
            store
                .decline_order(&expired.id, &alice.id)
                .await
                .unwrap()
                .unwrap(),
            Err(PaymentRefusal::Expired)
        );

        // A paid order cannot be declined, and nobody else can touch it.
        let paid = store.create_order(order(&alice, "p", 100)).await.unwrap();
        let bob = user(&store, "bob").await;
        assert_eq!(store.confirm_order(&paid.id, &bob.id).await.unwrap(), None);
        store
            .confirm_order(&paid.id, &alice.id)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .decline_order(&paid.id, &alice.id)
                .await
                .unwrap()
                .unwrap(),
            Err(PaymentRefusal::AlreadyPaid)
        );
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            900
        );

        // One event per change, in order, for the app.
        let events = store.undispatched_payment_events(50).await.unwrap();
        let kinds: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.order_id.as_str(), e.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (declined.id.as_str(), "declined"),
                (expired.id.as_str(), "expired"),
                (paid.id.as_str(), "paid")
            ]
        );
        assert!(
            store
                .mark_payment_event_dispatched(&events[0].id)
                .await
                .unwrap()
        );
        assert!(
            !store
                .mark_payment_event_dispatched(&events[0].id)
                .await
                .unwrap()
        );
        assert_eq!(
            store.undispatched_payment_events(50).await.unwrap().len(),
            2
        );
        books_hold(&store).await;
    });
}

#[tokio::test]
async fn wrong_pins_lock_payments() {
    on_every_backend!(|store| {
        let alice = setup(&store, 0).await;
        assert!(store.payment_pin(&alice.id).await.unwrap().is_none());
        store.set_payment_pin(&alice.id, "hash-1").await.unwrap();
        for n in 1..5 {
            let r = store
                .record_pin_failure(&alice.id, 5, 900_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((r.failures, r.locked_until_ms), (n, 0));
        }
        // A right PIN starts the count again.
        store.record_pin_success(&alice.id).await.unwrap();
        for _ in 0..4 {
            store
                .record_pin_failure(&alice.id, 5, 900_000)
                .await
                .unwrap();
        }
        let before = minihost_core::now_millis();
        let locked = store
            .record_pin_failure(&alice.id, 5, 900_000)
            .await
            .unwrap()
            .unwrap();
        assert!(locked.locked_until_ms >= before + 900_000, "{locked:?}");
        assert_eq!(locked.failures, 0);
        // Setting a new PIN (after proving who you are) clears the lock.
        store.set_payment_pin(&alice.id, "hash-2").await.unwrap();
        let fresh = store.payment_pin(&alice.id).await.unwrap().unwrap();
        assert_eq!((fresh.hash.as_str(), fresh.locked_until_ms), ("hash-2", 0));
    });
}

#[tokio::test]
async fn top_ups_are_audited_and_balance_the_books() {
    on_every_backend!(|store| {
        let alice = setup(&store, 1_234).await;
        store.top_up(&alice.id, 66, "EUR", "root").await.unwrap();
        store.top_up(&alice.id, 500, "JPY", "root").await.unwrap();
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            1_300
        );
        let wallets = store
            .accounts_of(AccountKind::Wallet, alice.id.as_str())
            .await
            .unwrap();
        assert_eq!(
            wallets
                .iter()
                .map(|a| (a.currency.as_str(), a.balance))
                .collect::<Vec<_>>(),
            [("EUR", 1_300), ("JPY", 500)]
        );
        let tb = books_hold(&store).await;
        assert_eq!(tb.sums, [("EUR".to_owned(), 0), ("JPY".to_owned(), 0)]);
        assert_eq!(store.audit_entries("top_up", 10).await.unwrap().len(), 3);
    });
}

/// A paid order of `amount` EUR from alice (who had `cents`).
async fn paid(store: &Store, cents: i64, amount: i64) -> (User, PaymentOrder) {
    let alice = setup(store, cents).await;
    let o = store
        .create_order(order(&alice, "k1", amount))
        .await
        .unwrap();
    let o = store
        .confirm_order(&o.id, &alice.id)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(o.state, "paid");
    (alice, o)
}

async fn refund(
    store: &Store,
    order: &str,
    amount: i64,
    key: &str,
) -> Result<Refunded, RefundRefusal> {
    store
        .refund_order(NewRefund {
            order_id: order,
            app_id: "shop",
            amount,
            idempotency_key: key,
            reason: "",
            actor: "dev",
        })
        .await
        .unwrap()
        .expect("the order exists")
}

#[tokio::test]
async fn a_full_refund_gives_everything_back_once() {
    on_every_backend!(|store| {
        let (alice, o) = paid(&store, 10_000, 2_500).await;
        let r = refund(&store, &o.id, 2_500, "r1").await.unwrap();
        assert_eq!(
            (r.order.state.as_str(), r.order.refunded),
            ("refunded", 2_500)
        );
        assert_eq!((r.refund.amount, r.refund.actor.as_str()), (2_500, "dev"));
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            10_000
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 0);
        books_hold(&store).await;
        assert_eq!(
            refund(&store, &o.id, 1, "r2").await,
            Err(RefundRefusal::OverRefund { refundable: 0 })
        );
        let wallet = store
            .account(AccountKind::Wallet, alice.id.as_str(), "EUR")
            .await
            .unwrap()
            .unwrap();
        let lines = store.statement(&wallet.id, 10).await.unwrap();
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.kind.as_str(), l.amount))
                .collect::<Vec<_>>(),
            [("refund", 2_500), ("payment", -2_500), ("top_up", 10_000)]
        );
        let events = store.undispatched_payment_events(10).await.unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| (e.kind.as_str(), e.amount))
                .collect::<Vec<_>>(),
            [("paid", 2_500), ("refunded", 2_500)]
        );
        assert_eq!(store.refunds_of(&o.id).await.unwrap(), [r.refund]);
        books_hold(&store).await;
    });
}

#[tokio::test]
async fn partial_refunds_add_up_and_never_pass_the_amount() {
    on_every_backend!(|store| {
        let (alice, o) = paid(&store, 10_000, 2_500).await;
        let steps = [
            (1_000, "partially_refunded", 1_000),
            (500, "partially_refunded", 1_500),
        ];
        for (i, (amount, state, total)) in steps.into_iter().enumerate() {
            let r = refund(&store, &o.id, amount, &format!("r{i}"))
                .await
                .unwrap();
            assert_eq!((r.order.state.as_str(), r.order.refunded), (state, total));
            books_hold(&store).await;
        }
        assert_eq!(
            refund(&store, &o.id, 1_001, "too-much").await,
            Err(RefundRefusal::OverRefund { refundable: 1_000 })
        );
        books_hold(&store).await;
        // The refused key was not used up: it names the next refund.
        let r = refund(&store, &o.id, 1_000, "too-much").await.unwrap();
        assert_eq!(
            (r.order.state.as_str(), r.order.refunded),
            ("refunded", 2_500)
        );
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            10_000
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 0);
        assert_eq!(store.refunds_of(&o.id).await.unwrap().len(), 3);
        books_hold(&store).await;
    });
}

#[tokio::test]
async fn only_paid_orders_of_the_app_can_be_refunded() {
    on_every_backend!(|store| {
        let (alice, o) = paid(&store, 10_000, 2_500).await;
        let pending = store.create_order(order(&alice, "p", 100)).await.unwrap();
        assert_eq!(
            refund(&store, &pending.id, 100, "r1").await,
            Err(RefundRefusal::NotPaid("pending".into()))
        );
        let declined = store.create_order(order(&alice, "d", 100)).await.unwrap();
        store
            .decline_order(&declined.id, &alice.id)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            refund(&store, &declined.id, 100, "r1").await,
            Err(RefundRefusal::NotPaid("declined".into()))
        );
        // Another app cannot refund the shop's order; nor can anyone refund an unknown one.
        let dev = store.user_by_username("dev").await.unwrap().unwrap().user;
        store.register_app("other", "Other", &dev.id).await.unwrap();
        for (order_id, app) in [
            (o.id.as_str(), "other"),
            ("po_00000000000000000000", "shop"),
        ] {
            let r = store
                .refund_order(NewRefund {
                    order_id,
                    app_id: app,
                    amount: 100,
                    idempotency_key: "r1",
                    reason: "",
                    actor: "dev",
                })
                .await
                .unwrap();
            assert_eq!(r, None, "{order_id} {app}");
        }
        assert!(store.refunds_of(&o.id).await.unwrap().is_empty());
        books_hold(&store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refunds_beyond_the_amount_refund_only_what_fits() {
    on_every_backend!(|store| {
        let (alice, o) = paid(&store, 10_000, 2_500).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, id) = (store.clone(), o.id.clone());
                tokio::spawn(async move { refund(&store, &id, 300, &format!("r{i}")).await })
            })
            .collect();
        let (mut done, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.refund.amount, 300);
                    done += 1;
                }
                Err(RefundRefusal::OverRefund { refundable }) => {
                    assert!(refundable < 300, "{refundable}");
                    refused += 1;
                }
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
        assert_eq!((done, refused), (8, 12), "{:?}", store.backend());
        let after = store.order(&o.id).await.unwrap().unwrap();
        assert_eq!(
            (after.state.as_str(), after.refunded),
            ("partially_refunded", 2_400)
        );
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            7_500 + 2_400
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 100);
        assert_eq!(store.refunds_of(&o.id).await.unwrap().len(), 8);
        books_hold(&store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_key_is_one_refund() {
    on_every_backend!(|store| {
        let (alice, o) = paid(&store, 10_000, 2_500).await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (store, id) = (store.clone(), o.id.clone());
                tokio::spawn(async move { refund(&store, &id, 700, "same").await.unwrap() })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!((r.order.refunded, r.refund.amount), (700, 700));
            ids.insert(r.refund.id);
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        // The same key for another amount, reason or order is refused and changes nothing.
        for (amount, reason) in [(701, ""), (700, "damaged")] {
            let r = store
                .refund_order(NewRefund {
                    order_id: &o.id,
                    app_id: "shop",
                    amount,
                    idempotency_key: "same",
                    reason,
                    actor: "dev",
                })
                .await;
            assert!(matches!(r, Err(StoreError::IdempotencyKeyReused)), "{r:?}");
        }
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            7_500 + 700
        );
        assert_eq!(store.refunds_of(&o.id).await.unwrap().len(), 1);
        books_hold(&store).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_and_refunds_between_the_same_accounts_race_without_deadlock() {
    on_every_backend!(|store| {
        // Ten paid orders to refund, ten pending ones to pay, all between alice and the shop:
        // the refunds lock merchant then wallet, the payments wallet then merchant, unless the
        // ledger takes the locks in one order.
        let alice = setup(&store, 100_000).await;
        let mut paid = Vec::new();
        let mut pending = Vec::new();
        for i in 0..20 {
            let o = store
                .create_order(order(&alice, &format!("k{i}"), 1_000))
                .await
                .unwrap();
            if i < 10 {
                store
                    .confirm_order(&o.id, &alice.id)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                paid.push(o.id);
            } else {
                pending.push(o.id);
            }
        }
        let mut tasks = Vec::new();
        for (id, pay) in paid
            .into_iter()
            .map(|id| (id, false))
            .chain(pending.into_iter().map(|id| (id, true)))
        {
            let (store, user) = (store.clone(), alice.id.clone());
            tasks.push(tokio::spawn(async move {
                if pay {
                    store.confirm_order(&id, &user).await.map(|_| ())
                } else {
                    refund(&store, &id, 1_000, &format!("r-{id}"))
                        .await
                        .unwrap();
                    Ok(())
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // 20 paid, 10 refunded: 10,000 with the shop.
        assert_eq!(
            balance(&store, AccountKind::Wallet, alice.id.as_str()).await,
            90_000
        );
        assert_eq!(balance(&store, AccountKind::Merchant, "shop").await, 10_000);
        books_hold(&store).await;
    });
}
