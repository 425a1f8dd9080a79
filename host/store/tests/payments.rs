//! The ledger and payment orders on every configured backend, under the races the issue names:
//! one idempotency key sent 100 times at once is one order; 50 confirmations of one order are
//! one debit; orders that together exceed a balance never make it negative; decline and expiry
//! are final; wrong PINs lock. The trial balance is checked after each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_core::{DisplayName, Role, Username};
use minihost_store::testing::TestDb;
use minihost_store::{
    AccountKind, NewOrder, NewUser, PaymentRefusal, Store, StoreError, TrialBalance, User,
};

async fn user(store: &Store, name: &str) -> User {
    store
        .create_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            password_hash: "not-a-real-hash".into(),
            role: Role::User,
        })
        .await
        .unwrap()
}

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
