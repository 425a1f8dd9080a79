//! Payouts, compare-and-set storage and app timers on every configured backend: 40 members
//! racing for 25 shares through compare-and-set take exactly 25, each paid once even when the
//! payout is asked for twice, never beyond what the merchant account holds; a repeated key is one
//! payout and a reused one a conflict; timers move when set again, are claimed by one claimer,
//! survive a lost lease, and stop at the app's cap. The trial balance holds after each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_store::testing::TestDb;
use minihost_store::{
    AccountKind, KvQuota, NewOrder, NewPayout, NewTimer, PayoutRefusal, Store, StoreError, User,
};
use std::sync::Arc;

macro_rules! on_every_backend {
    (|$store:ident| $body:block) => {{
        for db in TestDb::all().await.unwrap() {
            let $store = Arc::new(db.open(None).await.unwrap());
            $body
            $store.close().await;
            db.cleanup().await.unwrap();
        }
    }};
}

const QUOTA: KvQuota = KvQuota {
    max_keys: 100,
    max_bytes: 1 << 20,
};

/// The `lucky` app with `cents` EUR in its merchant account (alice paid an order of it).
async fn funded_app(store: &Store, cents: i64) -> User {
    let dev = user(store, "dev").await;
    store.register_app("lucky", "Lucky", &dev.id).await.unwrap();
    let alice = user(store, "alice").await;
    store
        .top_up(&alice.id, cents, "EUR", "admin")
        .await
        .unwrap();
    let order = store
        .create_order(NewOrder {
            app_id: "lucky".into(),
            user_id: alice.id.clone(),
            conversation_id: None,
            origin: "sandbox",
            amount: cents,
            currency: "EUR".into(),
            description: "envelope".into(),
            idempotency_key: "env-1".into(),
            expires_at_ms: minihost_core::now_millis() + 60_000,
        })
        .await
        .unwrap();
    let paid = store.confirm_order(&order.id, &alice.id).await.unwrap();
    assert!(matches!(paid, Some(Ok(_))), "{paid:?}");
    alice
}

async fn merchant(store: &Store) -> i64 {
    store
        .account(AccountKind::Merchant, "lucky", "EUR")
        .await
        .unwrap()
        .map_or(0, |a| a.balance)
}

async fn wallet(store: &Store, user: &User) -> i64 {
    store
        .account(AccountKind::Wallet, user.id.as_str(), "EUR")
        .await
        .unwrap()
        .map_or(0, |a| a.balance)
}

fn payout<'a>(user: &'a User, amount: i64, key: &'a str) -> NewPayout<'a> {
    NewPayout {
        app_id: "lucky",
        user_id: &user.id,
        conversation_id: None,
        amount,
        currency: "EUR",
        description: "share",
        idempotency_key: key,
    }
}

/// One member's claim: compare-and-set the claimed count up by one (retrying on a lost race),
/// then pay the share, twice (a retried event) under one key.
async fn claim(store: Arc<Store>, member: User, shares: i64) -> Option<i64> {
    let won = loop {
        let current = store.kv_get("lucky", "", "claimed").await.unwrap();
        let n: i64 = current
            .as_deref()
            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
        if n == shares {
            break None;
        }
        let next = (n + 1).to_string();
        if store
            .kv_compare_and_set(
                "lucky",
                "",
                "claimed",
                current.as_deref(),
                next.as_bytes(),
                QUOTA,
            )
            .await
            .unwrap()
            .unwrap()
        {
            break Some(n);
        }
    };
    let share = won?;
    let amount = 10 + share; // shares of 10, 11, 12, ...
    let key = format!("claim:{}", member.id.as_str());
    let first = store
        .pay_out(payout(&member, amount, &key))
        .await
        .unwrap()
        .unwrap();
    let second = store
        .pay_out(payout(&member, amount, &key))
        .await
        .unwrap()
        .unwrap();
    assert!(first.new && !second.new);
    assert_eq!(first.payout, second.payout);
    Some(amount)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_members_race_for_twenty_five_shares() {
    on_every_backend!(|store| {
        let shares = 25;
        let total: i64 = (0..shares).map(|i| 10 + i).sum();
        funded_app(&store, total).await;
        let mut members = Vec::new();
        for i in 0..40 {
            members.push(user(&store, &format!("m{i:02}")).await);
        }
        let tasks: Vec<_> = members
            .iter()
            .map(|m| tokio::spawn(claim(store.clone(), m.clone(), shares)))
            .collect();
        let mut paid = Vec::new();
        for t in tasks {
            paid.push(t.await.unwrap());
        }
        let won: Vec<i64> = paid.iter().flatten().copied().collect();
        assert_eq!(won.len(), 25, "{paid:?}");
        assert_eq!(won.iter().sum::<i64>(), total);
        for (m, p) in members.iter().zip(&paid) {
            assert_eq!(wallet(&store, m).await, p.unwrap_or(0));
            let received = store.payouts_to(&m.id, 10).await.unwrap();
            assert_eq!(received.len(), usize::from(p.is_some()));
        }
        assert_eq!(merchant(&store).await, 0);
        let tb = store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payouts_never_exceed_the_merchant_account_and_keys_name_one_payout() {
    on_every_backend!(|store| {
        funded_app(&store, 100).await;
        let bob = user(&store, "bob").await;
        // Over what the merchant holds: refused, nothing moves.
        let short = store.pay_out(payout(&bob, 101, "p0")).await.unwrap();
        assert_eq!(short, Err(PayoutRefusal::MerchantShort("EUR".into())));
        assert_eq!(merchant(&store).await, 100);
        // Twenty concurrent payouts of 10 under different keys from 100: ten succeed.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                let bob = bob.clone();
                tokio::spawn(async move {
                    let key = format!("p{}", i + 1);
                    store.pay_out(payout(&bob, 10, &key)).await.unwrap()
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(p) => {
                    assert!(p.new);
                    ok += 1;
                }
                Err(PayoutRefusal::MerchantShort(c)) => assert_eq!(c, "EUR"),
            }
        }
        assert_eq!(ok, 10);
        assert_eq!(merchant(&store).await, 0);
        assert_eq!(wallet(&store, &bob).await, 100);
        // A paid key asked again answers the same payout, even with the account empty; asked
        // with another amount it is a conflict.
        let first = store.payouts_to(&bob.id, 100).await.unwrap();
        let key = first[0].idempotency_key.clone();
        let again = store
            .pay_out(payout(&bob, 10, &key))
            .await
            .unwrap()
            .unwrap();
        assert!(!again.new);
        assert!(matches!(
            store.pay_out(payout(&bob, 9, &key)).await,
            Err(StoreError::IdempotencyKeyReused)
        ));
        let tb = store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_set_writes_only_over_what_it_read() {
    on_every_backend!(|store| {
        let dev = user(&store, "dev").await;
        store.register_app("lucky", "Lucky", &dev.id).await.unwrap();
        let cas = |expected: Option<&'static [u8]>, value: &'static [u8]| {
            let store = store.clone();
            async move {
                store
                    .kv_compare_and_set("lucky", "", "k", expected, value, QUOTA)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert!(cas(None, b"1").await, "absent, as expected");
        assert!(!cas(None, b"2").await, "no longer absent");
        assert!(!cas(Some(b"0"), b"2").await, "holds 1, not 0");
        assert!(cas(Some(b"1"), b"2").await);
        assert_eq!(
            store.kv_get("lucky", "", "k").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        // The quota holds for compare-and-set too.
        let tiny = KvQuota {
            max_keys: 1,
            max_bytes: 1 << 20,
        };
        let refused = store
            .kv_compare_and_set("lucky", "", "other", None, b"x", tiny)
            .await
            .unwrap();
        assert!(refused.is_err(), "{refused:?}");
        assert_eq!(store.kv_get("lucky", "", "other").await.unwrap(), None);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timers_move_fire_once_per_claim_and_come_back_after_a_lost_lease() {
    on_every_backend!(|store| {
        let dev = user(&store, "dev").await;
        store.register_app("lucky", "Lucky", &dev.id).await.unwrap();
        let now = minihost_core::now_millis();
        let timer = |key: &'static str, due: i64| NewTimer {
            app_id: "lucky",
            conversation_id: "c_1",
            key,
            user_id: &dev.id,
            due_at_ms: due,
        };
        assert!(store.set_timer(timer("a", now + 60_000), 2).await.unwrap());
        // Set again: moved, not doubled.
        assert!(store.set_timer(timer("a", now - 1), 2).await.unwrap());
        assert!(store.set_timer(timer("b", now + 60_000), 2).await.unwrap());
        // The app's cap: a third pending timer is refused; moving one is not.
        assert!(!store.set_timer(timer("c", now), 2).await.unwrap());
        assert!(store.set_timer(timer("b", now + 600_000), 2).await.unwrap());
        assert_eq!(store.timers_of("lucky").await.unwrap(), 2);

        // Ten claimers at once: one gets the due timer.
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim_due_timers(now, 60_000, 10).await.unwrap() })
            })
            .collect();
        let mut claimed = Vec::new();
        for t in tasks {
            claimed.extend(t.await.unwrap());
        }
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        let a = claimed.pop().unwrap();
        assert_eq!((a.key.as_str(), a.attempts), ("a", 1));
        // Leased: not claimed again until the lease ends; then claimed again (its node died).
        assert!(
            store
                .claim_due_timers(now + 1, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .claim_due_timers(now + 60_001, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        // The first claimer's finish comes too late to delete it; the second's does.
        assert!(!store.finish_timer(&a).await.unwrap());
        assert!(store.finish_timer(&again[0]).await.unwrap());
        assert_eq!(store.timer("lucky", "c_1", "a").await.unwrap(), None);
        // A timer set again while its event runs survives that event's finish.
        assert!(store.set_timer(timer("b", now - 5), 2).await.unwrap());
        let b = store
            .claim_due_timers(now, 60_000, 10)
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert!(store.set_timer(timer("b", now + 90_000), 2).await.unwrap());
        assert!(!store.finish_timer(&b).await.unwrap());
        assert_eq!(
            store
                .timer("lucky", "c_1", "b")
                .await
                .unwrap()
                .map(|t| t.due_at_ms),
            Some(now + 90_000)
        );
        assert!(store.cancel_timer("lucky", "c_1", "b").await.unwrap());
        assert!(!store.cancel_timer("lucky", "c_1", "b").await.unwrap());
    });
}
