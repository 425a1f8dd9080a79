//! The records kept about use, on every backend: retention prunes each app's invocation log and
//! each user's privacy record by age and by count, and deletes nothing else; delivery cursors
//! move only forward, only for members, survive a restart, and bound unread counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_core::{Content, ConversationId, Sender};
use minihost_store::testing::{TestDb, tamper};
use minihost_store::{InvocationRecord, Keep, NewMessage, Store, User};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const KEEP: Keep = Keep {
    max_age_ms: 30 * DAY_MS,
    max_count: 3,
};

fn invocation(id: &str, app: &str, at: i64) -> InvocationRecord {
    InvocationRecord {
        id: id.into(),
        app_id: app.into(),
        version: "1.0.0".into(),
        conversation: "c_x".into(),
        app_user_id: "au_x".into(),
        event_kind: "command".into(),
        outcome: "ok".into(),
        error_kind: None,
        error_message: None,
        duration_us: 1,
        queued_us: 0,
        fuel: 1,
        calls: serde_json::json!([]),
        logs: serde_json::json!([]),
        created_at_ms: at,
    }
}

async fn invocation_ids(store: &Store, app: &str) -> Vec<String> {
    let mut ids: Vec<String> = store
        .invocations(app, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

async fn privacy_lines(store: &Store, user: &User) -> Vec<String> {
    let mut lines: Vec<String> = store
        .privacy_log(&user.id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.capability)
        .collect();
    lines.sort();
    lines
}

async fn say(store: &Store, conv: &ConversationId, from: &User, text: &str) {
    store
        .append(NewMessage {
            conversation: conv.clone(),
            sender: Sender::User {
                id: from.id.clone(),
                username: from.username.to_string(),
            },
            content: Content::text(text),
            idempotency_key: None,
            budget: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn invocation_logs_are_pruned_by_age_and_by_count_per_app() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        for app in ["a", "b"] {
            store.register_app(app, app, &dev.id).await.unwrap();
        }
        let now = minihost_core::now_millis();
        // App a: five recent entries (a0 newest) and two older than 30 days; app b: three
        // recent, one old.
        for i in 0..5 {
            let r = invocation(&format!("a{i}"), "a", now - 1000 * i);
            store.record_invocation(&r).await.unwrap();
        }
        for (id, app) in [("a-old1", "a"), ("a-old2", "a"), ("b-old", "b")] {
            let r = invocation(id, app, now - 31 * DAY_MS);
            store.record_invocation(&r).await.unwrap();
        }
        for i in 0..3 {
            let r = invocation(&format!("b{i}"), "b", now - 1000 * i);
            store.record_invocation(&r).await.unwrap();
        }
        store
            .record_privacy(&bob.id, "a", "storage", "ok")
            .await
            .unwrap();

        let deleted = store.prune_invocations(now, KEEP).await.unwrap();
        assert_eq!(deleted, 5, "{}: 3 too old, 2 beyond a's count", db.name);
        assert_eq!(invocation_ids(&store, "a").await, ["a0", "a1", "a2"]);
        assert_eq!(invocation_ids(&store, "b").await, ["b0", "b1", "b2"]);
        assert_eq!(
            privacy_lines(&store, &bob).await,
            ["storage"],
            "the privacy record is another record"
        );
        assert_eq!(store.prune_invocations(now, KEEP).await.unwrap(), 0);
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn privacy_records_are_pruned_by_age_and_by_count_per_user() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        store.register_app("a", "a", &dev.id).await.unwrap();
        // Bob: five lines, c0 newest, one second apart; carol: a line older than 30 days and
        // a recent one.
        for i in 0..5 {
            store
                .record_privacy(&bob.id, "a", &format!("c{i}"), "ok")
                .await
                .unwrap();
            let moved = tamper(
                &store,
                &format!(
                    "UPDATE privacy_log SET at = at - {} WHERE capability = 'c{i}'",
                    1000 * i
                ),
            )
            .await
            .unwrap();
            assert_eq!(moved, 1);
        }
        for line in ["old", "new"] {
            store
                .record_privacy(&carol.id, "a", line, "denied")
                .await
                .unwrap();
        }
        tamper(
            &store,
            &format!(
                "UPDATE privacy_log SET at = at - {} WHERE capability = 'old'",
                31 * DAY_MS
            ),
        )
        .await
        .unwrap();
        let r = invocation("inv", "a", minihost_core::now_millis() - 1000);
        store.record_invocation(&r).await.unwrap();

        let now = minihost_core::now_millis();
        let deleted = store.prune_privacy(now, KEEP).await.unwrap();
        assert_eq!(deleted, 3, "{}: bob's 2 oldest, carol's old one", db.name);
        assert_eq!(privacy_lines(&store, &bob).await, ["c0", "c1", "c2"]);
        assert_eq!(privacy_lines(&store, &carol).await, ["new"]);
        assert_eq!(
            invocation_ids(&store, "a").await,
            ["inv"],
            "the invocation log is another record"
        );
        assert_eq!(store.prune_privacy(now, KEEP).await.unwrap(), 0);
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

/// A user keeps the cursors of their most recently acknowledging devices only, and leaving a
/// conversation drops its cursors: a client that names a new device on every connection cannot
/// grow the table without end.
#[tokio::test]
async fn delivery_cursors_are_bounded_per_user_and_dropped_with_the_membership() {
    use minihost_store::MAX_DEVICES;
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let g = store
            .create_group(&bob.id, "g", std::slice::from_ref(&alice.id))
            .await
            .unwrap();
        say(&store, &g.id, &bob, "hi").await;
        let rows = |store: Store, who: User| async move {
            tamper(
                &store,
                &format!(
                    "UPDATE delivery_cursors SET acked_seq = acked_seq WHERE user_id = '{}'",
                    who.id.as_str()
                ),
            )
            .await
            .unwrap()
        };
        // One device after another, each acknowledging (written before the next one's).
        for d in 0..MAX_DEVICES + 3 {
            store.ack_delivered(&alice.id, &format!("device-{d}"), &g.id, 1);
            store.flush_acks().await.unwrap();
            // A later millisecond for the next device, so "least recently" is well defined.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(
            rows(store.clone(), alice.clone()).await,
            MAX_DEVICES as u64,
            "{}",
            db.name
        );
        for d in 0..3 {
            assert_eq!(
                store
                    .delivery_cursors(&alice.id, &format!("device-{d}"))
                    .await
                    .unwrap(),
                vec![],
                "{}: the oldest devices' cursors are gone",
                db.name
            );
        }
        assert_eq!(
            store
                .delivery_cursors(&alice.id, &format!("device-{}", MAX_DEVICES + 2))
                .await
                .unwrap(),
            vec![(g.id.clone(), 1)]
        );
        assert!(store.remove_member(&g.id, &alice.id).await.unwrap());
        assert_eq!(rows(store.clone(), alice.clone()).await, 0, "{}", db.name);
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn delivery_cursors_only_move_forward_for_members_and_bound_unread_counts() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let eve = user(&store, "eve").await;
        let g = store
            .create_group(&bob.id, "g", std::slice::from_ref(&alice.id))
            .await
            .unwrap();
        for i in 0..5 {
            say(&store, &g.id, &bob, &format!("m{i}")).await;
        }
        let unread = |store: Store, who: User| async move {
            store.conversations_of(&who.id).await.unwrap()[0].unread
        };
        assert_eq!(unread(store.clone(), alice.clone()).await, 5);

        store.ack_delivered(&alice.id, "laptop", &g.id, 3);
        store.ack_delivered(&alice.id, "laptop", &g.id, 2);
        store.ack_delivered(&alice.id, "phone", &g.id, 1);
        store.ack_delivered(&eve.id, "laptop", &g.id, 4);
        assert_eq!(
            store.delivery_cursors(&alice.id, "laptop").await.unwrap(),
            vec![(g.id.clone(), 3)],
            "{}",
            db.name
        );
        store.ack_delivered(&alice.id, "laptop", &g.id, 1);
        assert_eq!(
            store.delivery_cursors(&alice.id, "laptop").await.unwrap(),
            vec![(g.id.clone(), 3)],
            "never back, also across flushes"
        );
        assert_eq!(
            store.delivery_cursors(&alice.id, "phone").await.unwrap(),
            vec![(g.id.clone(), 1)]
        );
        assert_eq!(
            store.delivery_cursors(&eve.id, "laptop").await.unwrap(),
            vec![],
            "not a member: nothing stored"
        );
        let stored = tamper(
            &store,
            &format!(
                "UPDATE delivery_cursors SET acked_seq = acked_seq WHERE user_id = '{}'",
                eve.id.as_str()
            ),
        )
        .await
        .unwrap();
        assert_eq!(stored, 0, "no row of eve's at all");
        // Unread: after the furthest device, 3.
        assert_eq!(unread(store.clone(), alice.clone()).await, 2);

        // Written when the store closes, read back after a restart.
        store.ack_delivered(&alice.id, "laptop", &g.id, 5);
        store.close().await;
        let store = db.open(None).await.unwrap();
        assert_eq!(
            store.delivery_cursors(&alice.id, "laptop").await.unwrap(),
            vec![(g.id.clone(), 5)]
        );
        assert_eq!(unread(store.clone(), alice.clone()).await, 0);
        assert_eq!(unread(store.clone(), bob.clone()).await, 0, "his own");
        store.close().await;
        db.cleanup().await.unwrap();
    }
}
