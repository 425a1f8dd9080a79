//! The webhook outbox on every configured backend: secrets are made once and rotate; a delivery
//! is enqueued once per event, in the same claim as the event; many senders claiming at once
//! send each attempt once; failures back off exponentially and retry until a 2xx; an order's
//! later event is not due before its earlier one is delivered; the log lists newest first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_store::testing::TestDb;
use minihost_store::{Attempt, Backoff, NewDelivery, NewOrder, Store, User};

/// A shop app and a user `alice` with 100.00 EUR.
async fn setup(store: &Store) -> User {
    let dev = user(store, "dev").await;
    store.register_app("shop", "Shop", &dev.id).await.unwrap();
    let alice = user(store, "alice").await;
    store
        .top_up(&alice.id, 10_000, "EUR", "admin")
        .await
        .unwrap();
    alice
}

fn delivery(event: &str, order: &str, created_at_ms: i64) -> NewDelivery {
    NewDelivery {
        app_id: "shop".into(),
        event_id: event.into(),
        order_id: order.into(),
        url: "https://shop.example.com/hook".into(),
        body: format!("{{\"id\":\"{event}\"}}"),
        created_at_ms,
    }
}

/// A paid order of alice's, and its (undispatched) `paid` event id.
async fn paid_order(store: &Store, alice: &User, key: &str) -> (String, String) {
    let o = store
        .create_order(NewOrder {
            app_id: "shop".into(),
            user_id: alice.id.clone(),
            conversation_id: None,
            origin: "backend",
            amount: 100,
            currency: "EUR".into(),
            description: format!("order {key}"),
            idempotency_key: key.into(),
            expires_at_ms: minihost_core::now_millis() + 900_000,
        })
        .await
        .unwrap();
    store
        .confirm_order(&o.id, &alice.id)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let event = store
        .undispatched_payment_events(100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.order_id == o.id)
        .unwrap();
    (o.id, event.id)
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

const FAST: Backoff = Backoff {
    base_ms: 1_000,
    cap_ms: 3_600_000,
};

#[tokio::test]
async fn a_secret_is_made_once_and_rotates() {
    on_every_backend!(|store| {
        setup(&store).await;
        assert_eq!(store.webhook_secret_created_at("shop").await.unwrap(), None);
        let first = store.webhook_secret("shop").await.unwrap();
        assert!(
            first.starts_with("whsec_") && first.len() == 6 + 64,
            "{first}"
        );
        assert_eq!(store.webhook_secret("shop").await.unwrap(), first);
        assert!(
            store
                .webhook_secret_created_at("shop")
                .await
                .unwrap()
                .is_some()
        );
        let second = store.rotate_webhook_secret("shop").await.unwrap();
        assert_ne!(second, first);
        assert_eq!(store.webhook_secret("shop").await.unwrap(), second);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_is_enqueued_once_in_the_same_claim() {
    on_every_backend!(|store| {
        let alice = setup(&store).await;
        let (order, event) = paid_order(&store, &alice, "k1").await;
        let d = delivery(&event, &order, 1);
        // Many dispatchers take the event at once: one wins, and only it enqueues.
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (store, event, d) = (store.clone(), event.clone(), d.clone());
                tokio::spawn(async move { store.dispatch_payment_event(&event, Some(&d)).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(won, 1, "{:?}", store.backend());
        assert!(
            store
                .undispatched_payment_events(10)
                .await
                .unwrap()
                .is_empty()
        );
        let log = store.webhook_deliveries("shop", 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].attempts, log[0].delivered_at_ms), (0, None));
        // Enqueueing the same event again changes nothing.
        assert!(!store.enqueue_webhook(&d).await.unwrap());
        assert_eq!(store.webhook_deliveries("shop", 10).await.unwrap().len(), 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_claim_each_attempt_once() {
    on_every_backend!(|store| {
        let alice = setup(&store).await;
        let mut events = Vec::new();
        for i in 0..10 {
            let (order, event) = paid_order(&store, &alice, &format!("k{i}")).await;
            store
                .dispatch_payment_event(&event, Some(&delivery(&event, &order, i)))
                .await
                .unwrap();
            events.push(event);
        }
        let now = minihost_core::now_millis();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_webhook_deliveries(now, 60_000, 100).await })
            })
            .collect();
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap().unwrap().into_iter().map(|d| d.event_id));
        }
        claimed.sort();
        events.sort();
        assert_eq!(claimed, events, "each delivery claimed exactly once");
        // Leased: nothing is due again until the lease runs out.
        assert!(
            store
                .claim_webhook_deliveries(now, 60_000, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .claim_webhook_deliveries(now + 60_000, 60_000, 100)
                .await
                .unwrap()
                .len(),
            10
        );
    });
}

#[tokio::test]
async fn failures_back_off_exponentially_until_a_2xx() {
    on_every_backend!(|store| {
        let alice = setup(&store).await;
        let (order, event) = paid_order(&store, &alice, "k1").await;
        store
            .dispatch_payment_event(&event, Some(&delivery(&event, &order, 1)))
            .await
            .unwrap();
        let mut now = minihost_core::now_millis();
        for (attempt, wait) in [(1, 1_000), (2, 2_000), (3, 4_000), (4, 8_000)] {
            let due = store
                .claim_webhook_deliveries(now, 60_000, 10)
                .await
                .unwrap();
            assert_eq!(due.len(), 1, "attempt {attempt}");
            assert_eq!(due[0].attempts, attempt);
            let failed = Attempt::Failed(Some(503), "503 Service Unavailable".into());
            assert!(
                store
                    .record_webhook_attempt(&due[0].id, attempt, &failed, FAST, now)
                    .await
                    .unwrap()
            );
            // Not due a millisecond before the wait is over; due when it is.
            assert!(
                store
                    .claim_webhook_deliveries(now + wait - 1, 60_000, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let d = &store.webhook_deliveries("shop", 1).await.unwrap()[0];
            assert_eq!(d.next_attempt_at_ms, now + wait);
            assert_eq!(d.last_status, Some(503));
            assert_eq!(d.last_error.as_deref(), Some("503 Service Unavailable"));
            now += wait;
        }
        let due = store
            .claim_webhook_deliveries(now, 60_000, 10)
            .await
            .unwrap();
        // A stale failure report (an attempt already superseded) is ignored.
        let stale = Attempt::Failed(None, "late".into());
        assert!(
            !store
                .record_webhook_attempt(&due[0].id, 4, &stale, FAST, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .record_webhook_attempt(&due[0].id, 5, &Attempt::Delivered(200), FAST, now)
                .await
                .unwrap()
        );
        let d = &store.webhook_deliveries("shop", 1).await.unwrap()[0];
        assert_eq!(
            (d.attempts, d.delivered_at_ms, d.last_status),
            (5, Some(now), Some(200))
        );
        assert_eq!(d.last_error, None);
        // Delivered is final: never due again.
        assert!(
            store
                .claim_webhook_deliveries(now + 10_000_000, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[tokio::test]
async fn an_orders_later_event_waits_for_its_earlier_one() {
    on_every_backend!(|store| {
        let alice = setup(&store).await;
        let (order, paid) = paid_order(&store, &alice, "k1").await;
        let (other_order, other) = paid_order(&store, &alice, "k2").await;
        store
            .dispatch_payment_event(&paid, Some(&delivery(&paid, &order, 10)))
            .await
            .unwrap();
        store
            .dispatch_payment_event(&other, Some(&delivery(&other, &other_order, 11)))
            .await
            .unwrap();
        // A later event of the same order (a refund, say).
        store
            .enqueue_webhook(&delivery("pe_later", &order, 20))
            .await
            .unwrap();
        let now = minihost_core::now_millis();
        let first = store.claim_webhook_deliveries(now, 0, 10).await.unwrap();
        let ids: Vec<&str> = first.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(
            ids.contains(&paid.as_str()) && ids.contains(&other.as_str()),
            "{ids:?}"
        );
        // The earlier one fails: the later one still waits, however long.
        let p = first.iter().find(|d| d.event_id == paid).unwrap();
        let failed = Attempt::Failed(None, "connection refused".into());
        store
            .record_webhook_attempt(&p.id, 1, &failed, FAST, now)
            .await
            .unwrap();
        let o = first.iter().find(|d| d.event_id == other).unwrap();
        store
            .record_webhook_attempt(&o.id, 1, &Attempt::Delivered(204), FAST, now)
            .await
            .unwrap();
        assert!(
            store
                .claim_webhook_deliveries(now + 999, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .claim_webhook_deliveries(now + 1_000, 0, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].event_id, paid);
        store
            .record_webhook_attempt(&again[0].id, 2, &Attempt::Delivered(200), FAST, now)
            .await
            .unwrap();
        let last = store
            .claim_webhook_deliveries(now + 1_000, 0, 10)
            .await
            .unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].event_id, "pe_later");
        // The log: newest first.
        let log: Vec<String> = store
            .webhook_deliveries("shop", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(log, ["pe_later".to_owned(), other, paid]);
    });
}

#[tokio::test]
async fn a_delivery_waits_for_an_earlier_undispatched_event_of_its_order() {
    on_every_backend!(|store| {
        let alice = setup(&store).await;
        let (order, paid) = paid_order(&store, &alice, "k1").await;
        let paid_at = store.undispatched_payment_events(10).await.unwrap()[0].created_at_ms;
        // A later event's delivery got in first (another node dispatched it sooner).
        store
            .enqueue_webhook(&delivery("pe_later", &order, paid_at + 1))
            .await
            .unwrap();
        let now = minihost_core::now_millis() + 1;
        assert!(
            store
                .claim_webhook_deliveries(now, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .dispatch_payment_event(&paid, Some(&delivery(&paid, &order, paid_at)))
            .await
            .unwrap();
        // Due from when it was enqueued, that is, after `now`.
        let later = minihost_core::now_millis() + 1;
        let due = store.claim_webhook_deliveries(later, 0, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event_id, paid);
    });
}
