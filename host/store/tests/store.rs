//! Store behaviour on every configured backend: SQLite always, PostgreSQL when
//! `MINIHOST_TEST_POSTGRES` names a server. Each test gets fresh databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::user;

use minihost_core::{Content, ConversationId, DisplayName, Role, Sender, UserId, Username};
use minihost_store::testing::TestDb;
use minihost_store::{HistoryQuery, NewMessage, NewUser, SendBucket, StoreError, User};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

fn text(conv: &ConversationId, from: &User, t: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        conversation: conv.clone(),
        sender: Sender::User {
            id: from.id.clone(),
            username: from.username.to_string(),
        },
        content: Content::text(t),
        idempotency_key: key.map(str::to_owned),
        budget: None,
    }
}

/// Runs `body` once per backend with a fresh store.
macro_rules! on_every_backend {
    (|$store:ident, $db:ident| $body:block) => {{
        for $db in TestDb::all().await.unwrap() {
            let $store = $db.open(None).await.unwrap();
            $body
            $store.close().await;
            $db.cleanup().await.unwrap();
        }
    }};
}

#[tokio::test]
async fn accounts_and_sessions() {
    on_every_backend!(|store, db| {
        let alice = user(&store, "alice").await;
        let again = store
            .create_user(NewUser {
                username: Username::parse("alice").unwrap(),
                display_name: DisplayName::parse("Other").unwrap(),
                password_hash: "x".into(),
                role: Role::User,
            })
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict("username"))),
            "{}",
            db.name
        );
        let found = store.user_by_username("alice").await.unwrap().unwrap();
        assert_eq!(found.user, alice);
        assert_eq!(found.password_hash, "not-a-real-hash");

        let now = minihost_core::now_millis();
        store
            .create_session("tok-live", &alice.id, now + 60_000)
            .await
            .unwrap();
        store
            .create_session("tok-old", &alice.id, now - 1)
            .await
            .unwrap();
        assert_eq!(
            store.session_user("tok-live", now).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.session_user("tok-old", now).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(store.session_user("nope", now).await.unwrap(), None);
        assert!(store.revoke_session("tok-live").await.unwrap());
        assert!(!store.revoke_session("tok-live").await.unwrap());
        assert_eq!(
            store.session_user("tok-live", now).await.unwrap(),
            None,
            "revoked"
        );

        let admin = store.set_role("alice", Role::Admin).await.unwrap();
        assert_eq!(admin.role, Role::Admin);
        assert!(matches!(
            store.set_role("ghost", Role::Admin).await,
            Err(StoreError::NotFound)
        ));
    });
}

#[tokio::test]
async fn websocket_tickets_open_once_for_a_live_session() {
    on_every_backend!(|store, db| {
        let alice = user(&store, "alice").await;
        let now = minihost_core::now_millis();
        let session = store
            .create_session("tok-a", &alice.id, now + 60_000)
            .await
            .unwrap();
        let check = |got: Option<(String, User)>, want: bool, what: &str| {
            assert_eq!(
                got,
                want.then(|| (session.clone(), alice.clone())),
                "{what} on {}",
                db.name
            );
        };
        store
            .issue_ws_ticket("mhwt_1", &session, now + 30_000, now)
            .await
            .unwrap();
        check(
            store.redeem_ws_ticket("mhwt_1", now).await.unwrap(),
            true,
            "fresh",
        );
        check(
            store.redeem_ws_ticket("mhwt_1", now).await.unwrap(),
            false,
            "used",
        );
        check(
            store.redeem_ws_ticket("mhwt_x", now).await.unwrap(),
            false,
            "unknown",
        );
        store
            .issue_ws_ticket("mhwt_2", &session, now + 30_000, now)
            .await
            .unwrap();
        check(
            store
                .redeem_ws_ticket("mhwt_2", now + 30_000)
                .await
                .unwrap(),
            false,
            "expired",
        );
        store
            .issue_ws_ticket("mhwt_3", &session, now + 30_000, now)
            .await
            .unwrap();
        assert!(store.revoke_session("tok-a").await.unwrap());
        check(
            store.redeem_ws_ticket("mhwt_3", now).await.unwrap(),
            false,
            "signed out",
        );
    });
}

#[tokio::test]
async fn throttle_buckets_take_refill_and_give_back() {
    on_every_backend!(|store, db| {
        let shape = minihost_store::BucketShape {
            burst: 2.0,
            refill_ms: 60_000.0,
        };
        let now = 1_000_000;
        let take = |key: &'static str, at: i64| {
            let store = store.clone();
            async move {
                store
                    .throttle_take("sign_in", key, shape, at)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(take("alice", now).await, None, "{}", db.name);
        assert_eq!(take("alice", now).await, None);
        let wait = take("alice", now).await.unwrap();
        assert!((59_000..=60_000).contains(&wait), "{wait} on {}", db.name);
        assert_eq!(take("bob", now).await, None, "keys are apart");
        // Half a refill later: half a token, so still refused, for half the time.
        let wait = take("alice", now + 30_000).await.unwrap();
        assert!((29_000..=30_000).contains(&wait), "{wait} on {}", db.name);
        // Another scope is another bucket.
        assert_eq!(
            store
                .throttle_take("sign_up", "alice", shape, now)
                .await
                .unwrap(),
            None
        );
        // A token given back is there at once; never more than the burst.
        store
            .throttle_give_back("sign_in", "alice", shape, now + 30_000)
            .await
            .unwrap();
        assert_eq!(take("alice", now + 30_000).await, None);
        assert!(take("alice", now + 30_000).await.is_some());
        for _ in 0..5 {
            store
                .throttle_give_back("sign_in", "bob", shape, now)
                .await
                .unwrap();
        }
        assert_eq!(take("bob", now).await, None);
        assert_eq!(take("bob", now).await, None);
        assert!(take("bob", now).await.is_some(), "capped at the burst");
        // A full refill later, the bucket is full again.
        assert_eq!(take("alice", now + 200_000).await, None);
        assert_eq!(
            store
                .throttle_prune("sign_in", now + 100_000)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .throttle_prune("sign_up", now + 100_000)
                .await
                .unwrap(),
            1
        );
    });
}

#[tokio::test]
async fn consent_requests_are_listed_replaced_taken_and_dropped() {
    on_every_backend!(|store, db| {
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        store
            .put_consent_request(&alice.id, "echo", "v1", 1)
            .await
            .unwrap();
        store
            .put_consent_request(&alice.id, "polls", "p1", 2)
            .await
            .unwrap();
        store
            .put_consent_request(&alice.id, "echo", "v2", 3)
            .await
            .unwrap();
        store
            .put_consent_request(&bob.id, "echo", "b1", 4)
            .await
            .unwrap();
        assert_eq!(
            store.consent_requests_of(&alice.id).await.unwrap(),
            vec!["p1", "v2"],
            "{}",
            db.name
        );
        assert_eq!(
            store.take_consent_request(&alice.id, "echo").await.unwrap(),
            Some("v2".to_owned())
        );
        assert_eq!(
            store.take_consent_request(&alice.id, "echo").await.unwrap(),
            None
        );
        assert_eq!(store.drop_consent_requests("echo").await.unwrap(), 1);
        assert!(store.consent_requests_of(&bob.id).await.unwrap().is_empty());
        assert_eq!(
            store.consent_requests_of(&alice.id).await.unwrap(),
            vec!["p1"]
        );
    });
}

#[tokio::test]
async fn direct_conversations_are_one_per_pair() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let c = user(&store, "carol").await;
        let (first, created) = store.open_direct(&a.id, &b.id).await.unwrap();
        assert!(created);
        let (second, created_again) = store.open_direct(&b.id, &a.id).await.unwrap();
        assert!(!created_again, "{}", db.name);
        assert_eq!(first.id, second.id);
        let members: BTreeSet<String> = store
            .members(&first.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.username)
            .collect();
        assert_eq!(members, BTreeSet::from(["alice".into(), "bob".into()]));
        assert!(
            store
                .conversation_for_member(&first.id, &c.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .conversation_for_member(&first.id, &a.id)
                .await
                .unwrap()
                .is_some()
        );
    });
}

#[tokio::test]
async fn groups_add_and_remove_members() {
    on_every_backend!(|store, _db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let c = user(&store, "carol").await;
        let g = store
            .create_group(&a.id, "Lunch", std::slice::from_ref(&b.id))
            .await
            .unwrap();
        assert_eq!(store.members(&g.id).await.unwrap().len(), 2);
        let added = store
            .add_members(&g.id, &[b.id.clone(), c.id.clone()])
            .await
            .unwrap();
        assert_eq!(added, vec![c.id.clone()]);
        assert!(store.remove_member(&g.id, &b.id).await.unwrap());
        assert!(!store.remove_member(&g.id, &b.id).await.unwrap());
        assert!(!store.is_member(&g.id, &b.id).await.unwrap());
        assert_eq!(
            store.conversation_ids_of(&c.id).await.unwrap(),
            vec![g.id.clone()]
        );
    });
}

#[tokio::test]
async fn history_pages_in_both_directions() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        for i in 1..=10 {
            let m = store
                .append(text(&conv.id, &a, &format!("m{i}"), None))
                .await
                .unwrap();
            assert_eq!(m.message.seq, i, "{}", db.name);
            assert!(!m.duplicate);
        }
        let seqs = |v: Vec<minihost_core::Message>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
        let q = |before, after, limit| HistoryQuery {
            before,
            after,
            limit,
        };
        assert_eq!(
            seqs(store.history(&conv.id, q(None, None, 3)).await.unwrap()),
            vec![8, 9, 10]
        );
        assert_eq!(
            seqs(store.history(&conv.id, q(Some(8), None, 3)).await.unwrap()),
            vec![5, 6, 7]
        );
        assert_eq!(
            seqs(store.history(&conv.id, q(None, Some(8), 5)).await.unwrap()),
            vec![9, 10]
        );
        assert_eq!(
            seqs(
                store
                    .history(&conv.id, q(Some(6), Some(2), 50))
                    .await
                    .unwrap()
            ),
            vec![3, 4, 5]
        );
        let page = store.history(&conv.id, q(None, Some(0), 1)).await.unwrap();
        assert_eq!(page[0].content, Content::text("m1"));
        assert_eq!(
            page[0].sender,
            Sender::User {
                id: a.id.clone(),
                username: "alice".into()
            }
        );
    });
}

#[tokio::test]
async fn concurrent_senders_get_gapless_unique_seqs() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let c = user(&store, "carol").await;
        let g1 = store
            .create_group(&a.id, "one", &[b.id.clone(), c.id.clone()])
            .await
            .unwrap();
        let g2 = store
            .create_group(&b.id, "two", std::slice::from_ref(&a.id))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..300 {
            let store = store.clone();
            let (conv, from) = match i % 3 {
                0 => (g1.id.clone(), a.clone()),
                1 => (g1.id.clone(), b.clone()),
                _ => (g2.id.clone(), a.clone()),
            };
            tasks.push(tokio::spawn(async move {
                store
                    .append(text(&conv, &from, &format!("n{i}"), None))
                    .await
                    .unwrap()
                    .message
            }));
        }
        let mut by_conv: std::collections::HashMap<ConversationId, Vec<i64>> = Default::default();
        for t in tasks {
            let m = t.await.unwrap();
            by_conv
                .entry(m.conversation.clone())
                .or_default()
                .push(m.seq);
        }
        for (conv, mut seqs) in by_conv {
            seqs.sort();
            let n = seqs.len() as i64;
            assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "{} {conv}", db.name);
            let stored = store
                .history(
                    &conv,
                    HistoryQuery {
                        before: None,
                        after: Some(0),
                        limit: 500,
                    },
                )
                .await
                .unwrap();
            assert_eq!(stored.len() as i64, n);
        }
    });
}

/// The first hundred messages of a conversation.
async fn first_hundred(
    store: &minihost_store::Store,
    conv: &minihost_core::ConversationId,
) -> Vec<minihost_core::Message> {
    store
        .history(
            conv,
            HistoryQuery {
                before: None,
                after: Some(0),
                limit: 100,
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn idempotency_key_returns_the_first_message() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        let first = store
            .append(text(&conv.id, &a, "pay", Some("k1")))
            .await
            .unwrap();
        let retry = store
            .append(text(&conv.id, &a, "pay", Some("k1")))
            .await
            .unwrap();
        assert!(retry.duplicate, "{}", db.name);
        assert_eq!(retry.message.id, first.message.id);
        assert_eq!(retry.message.content, Content::text("pay"));
        // The same key with another body is refused, and nothing new is stored.
        let reused = store
            .append(text(&conv.id, &a, "pay (retry)", Some("k1")))
            .await;
        assert!(
            matches!(reused, Err(StoreError::IdempotencyKeyReused)),
            "{}: {reused:?}",
            db.name
        );
        // The same key from another sender is another message.
        let other = store
            .append(text(&conv.id, &b, "pay", Some("k1")))
            .await
            .unwrap();
        assert!(!other.duplicate);
        // Concurrent retries with one key store exactly one message.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            let m = text(&conv.id, &a, "burst", Some("k2"));
            tasks.push(tokio::spawn(async move { store.append(m).await.unwrap() }));
        }
        let mut ids = BTreeSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().message.id);
        }
        assert_eq!(ids.len(), 1, "{}", db.name);
        let all = first_hundred(&store, &conv.id).await;
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    });
}

/// Retries of several stored messages and new keyed messages in the same batches: each retry
/// gets its own first message back (the writer looks the keys up together), each new one is
/// stored once.
#[tokio::test]
async fn many_keys_in_one_batch_each_find_their_own_message() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        let mut first = std::collections::HashMap::new();
        for i in 0..6 {
            let who = if i % 2 == 0 { &a } else { &b };
            let key = format!("k{i}");
            let m = store
                .append(text(&conv.id, who, &format!("m{i}"), Some(&key)))
                .await
                .unwrap();
            first.insert(key, m.message.id);
        }
        let mut tasks = Vec::new();
        for i in 0..12 {
            let who = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (store, conv) = (store.clone(), conv.id.clone());
            tasks.push(tokio::spawn(async move {
                let key = format!("k{i}");
                let sent = store
                    .append(text(&conv, &who, &format!("m{i}"), Some(&key)))
                    .await
                    .unwrap();
                (key, sent)
            }));
        }
        for t in tasks {
            let (key, sent) = t.await.unwrap();
            match first.get(&key) {
                Some(id) => {
                    assert!(sent.duplicate, "{}: {key}", db.name);
                    assert_eq!(&sent.message.id, id, "{}: {key}", db.name);
                }
                None => assert!(!sent.duplicate, "{}: {key}", db.name),
            }
        }
        let all = first_hundred(&store, &conv.id).await;
        assert_eq!(all.len(), 12, "{}", db.name);
    });
}

/// A retry that reaches another node while the first attempt is being written: two stores on
/// one database (two writers), the same keyed sends through both at once. Each key is stored
/// once, both answers name that message, and the sequence has no gap (a writer that meets a
/// key stored by the other writes its batch again, looking the keys up).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_keys_through_two_writers_store_each_message_once() {
    on_every_backend!(|store, db| {
        let other = db.open(None).await.unwrap();
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..40 {
            for node in [store.clone(), other.clone()] {
                let (conv, a) = (conv.id.clone(), a.clone());
                tasks.push(tokio::spawn(async move {
                    let key = format!("k{i}");
                    let sent = node
                        .append(text(&conv, &a, &format!("m{i}"), Some(&key)))
                        .await
                        .unwrap();
                    (key, sent)
                }));
            }
        }
        let mut by_key: std::collections::HashMap<String, Vec<_>> = Default::default();
        for t in tasks {
            let (key, sent) = t.await.unwrap();
            by_key.entry(key).or_default().push(sent);
        }
        for (key, answers) in &by_key {
            assert_eq!(answers.len(), 2, "{}: {key}", db.name);
            assert_eq!(
                answers[0].message.id, answers[1].message.id,
                "{}: {key}",
                db.name
            );
            let fresh = answers.iter().filter(|s| !s.duplicate).count();
            assert_eq!(fresh, 1, "{}: {key} stored by one writer", db.name);
        }
        let all = first_hundred(&store, &conv.id).await;
        assert_eq!(all.len(), 40, "{}", db.name);
        let seqs: Vec<i64> = all.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<i64>>(), "{}", db.name);
        other.close().await;
    });
}

#[tokio::test]
async fn concurrent_retries_with_one_key_and_different_bodies_store_one_message() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        // Concurrent requests land in one or several batches; whichever body wins, every other
        // body is refused and every same-body request gets the one stored message.
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            let body = if i % 2 == 0 { "even" } else { "odd" };
            let m = text(&conv.id, &a, body, Some("k"));
            tasks.push(tokio::spawn(async move { (body, store.append(m).await) }));
        }
        let mut stored = BTreeSet::new();
        let mut winners = BTreeSet::new();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                (body, Ok(a)) => {
                    stored.insert(a.message.id);
                    winners.insert(body);
                }
                (_, Err(StoreError::IdempotencyKeyReused)) => refused += 1,
                (_, Err(e)) => panic!("{}: {e}", db.name),
            }
        }
        assert_eq!(stored.len(), 1, "{}", db.name);
        assert_eq!(winners.len(), 1, "{}", db.name);
        assert_eq!(refused, 10, "{}", db.name);
        let all = first_hundred(&store, &conv.id).await;
        assert_eq!(all.len(), 1, "{}", db.name);
    });
}

#[tokio::test]
async fn read_markers_and_unread_counts() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        for i in 0..4 {
            store
                .append(text(&conv.id, &a, &format!("hi {i}"), None))
                .await
                .unwrap();
        }
        store.append(text(&conv.id, &b, "yo", None)).await.unwrap();
        let bob_view = store.conversations_of(&b.id).await.unwrap();
        assert_eq!(bob_view.len(), 1);
        assert_eq!(
            bob_view[0].unread, 4,
            "{}: own messages are not unread",
            db.name
        );
        assert_eq!(
            bob_view[0].last_message.as_ref().unwrap().content,
            Content::text("yo")
        );
        assert_eq!(store.mark_read(&conv.id, &b.id, 3).await.unwrap(), 3);
        assert_eq!(
            store.mark_read(&conv.id, &b.id, 2).await.unwrap(),
            3,
            "never backward"
        );
        assert_eq!(
            store.mark_read(&conv.id, &b.id, 99).await.unwrap(),
            3,
            "never past the end"
        );
        assert_eq!(store.conversations_of(&b.id).await.unwrap()[0].unread, 1);
        assert_eq!(store.conversations_of(&a.id).await.unwrap()[0].unread, 1);
    });
}

#[tokio::test]
async fn commit_hook_sees_messages_in_order_and_data_survives_reopen() {
    for db in TestDb::all().await.unwrap() {
        let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
        let sink = seen.clone();
        let hook: minihost_store::writer::CommitHook = Arc::new(move |msgs| {
            sink.lock().unwrap().extend(msgs.iter().map(|m| m.seq));
        });
        let store = db.open(Some(hook)).await.unwrap();
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            let m = text(&conv.id, &a, &format!("{i}"), None);
            tasks.push(tokio::spawn(async move { store.append(m).await.unwrap() }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *seen.lock().unwrap(),
            (1..=50).collect::<Vec<_>>(),
            "{}",
            db.name
        );
        store.close().await;
        assert!(matches!(
            store.append(text(&conv.id, &a, "late", None)).await,
            Err(StoreError::Closed)
        ));

        let reopened = db.open(None).await.unwrap();
        let all = reopened
            .history(
                &conv.id,
                HistoryQuery {
                    before: None,
                    after: Some(0),
                    limit: 100,
                },
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 50);
        let next = reopened
            .append(text(&conv.id, &b, "after restart", None))
            .await
            .unwrap();
        assert_eq!(next.message.seq, 51);
        reopened.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn appending_to_a_missing_conversation_fails_cleanly() {
    on_every_backend!(|store, _db| {
        let a = user(&store, "alice").await;
        let ghost = ConversationId::from_string("c_nope");
        let r = store.append(text(&ghost, &a, "hi", None)).await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
        let _ = UserId::generate();
    });
}

/// The dispatch cache (`hot.rs`) never serves what a write through the store changed: every
/// install, uninstall, rename, release, suspension and grant change shows at the next read.
#[tokio::test]
async fn hot_reads_follow_every_write_at_once() {
    use minihost_store::{AppVersion, VersionStatus};
    on_every_backend!(|store, db| {
        let dev = user(&store, "dev").await;
        let member = user(&store, "member").await;
        store.register_app("echo", "Echo", &dev.id).await.unwrap();
        let version = |v: &str| AppVersion {
            app_id: "echo".into(),
            version: v.into(),
            manifest: "id = \"echo\"".into(),
            wasm: vec![0, 97, 115, 109],
            wasm_sha256: format!("sha-{v}"),
            status: VersionStatus::Approved,
            findings: "[]".into(),
            notes: String::new(),
        };
        store.put_version(&version("1.0.0")).await.unwrap();
        store.put_version(&version("1.1.0")).await.unwrap();
        let g = store.create_group(&dev.id, "lab", &[]).await.unwrap();
        let names = |i: &[minihost_store::Install]| {
            i.iter()
                .map(|i| format!("{}:{}", i.app_name, i.suspended))
                .collect::<Vec<_>>()
        };

        assert!(store.installs_hot(&g.id).await.unwrap().is_empty());
        store
            .install(&g.id, "echo", "1.0.0", &dev.id, false)
            .await
            .unwrap();
        assert_eq!(
            names(&store.installs_hot(&g.id).await.unwrap()),
            ["Echo:false"],
            "{}",
            db.name
        );
        store
            .register_app("echo", "Echo Two", &dev.id)
            .await
            .unwrap();
        assert_eq!(
            names(&store.installs_hot(&g.id).await.unwrap()),
            ["Echo Two:false"]
        );
        for released in ["1.0.0", "1.1.0"] {
            store
                .set_release("echo", released, 100, "dev")
                .await
                .unwrap()
                .unwrap();
            let hot = store.installs_hot(&g.id).await.unwrap();
            assert_eq!(
                hot[0].release.stable.as_deref(),
                Some(released),
                "{}",
                db.name
            );
        }
        assert!(store.suspend_app("echo", "abuse", "admin").await.unwrap());
        assert_eq!(
            names(&store.installs_hot(&g.id).await.unwrap()),
            ["Echo Two:true"]
        );
        assert!(store.lift_suspension("echo", "ok", "admin").await.unwrap());
        assert_eq!(
            names(&store.installs_hot(&g.id).await.unwrap()),
            ["Echo Two:false"]
        );
        assert!(store.uninstall(&g.id, "echo").await.unwrap());
        assert!(
            store.installs_hot(&g.id).await.unwrap().is_empty(),
            "{}",
            db.name
        );

        assert_eq!(store.grant_hot(&member.id, "echo").await.unwrap(), None);
        let scopes = ["messages.send".to_owned()];
        store
            .set_grant(&member.id, "echo", &scopes, "1.0.0")
            .await
            .unwrap();
        let hot = store.grant_hot(&member.id, "echo").await.unwrap().unwrap();
        assert_eq!(hot.scopes, scopes);
        store
            .set_grant(&member.id, "echo", &[], "1.0.0")
            .await
            .unwrap();
        let hot = store.grant_hot(&member.id, "echo").await.unwrap().unwrap();
        assert!(
            hot.scopes.is_empty(),
            "{}: a revocation shows at once",
            db.name
        );
        assert!(store.delete_grant(&member.id, "echo").await.unwrap());
        assert_eq!(store.grant_hot(&member.id, "echo").await.unwrap(), None);
    });
}

#[tokio::test]
async fn apps_versions_installs_and_invocation_log() {
    use minihost_store::{AppVersion, InvocationRecord, VersionStatus};
    on_every_backend!(|store, db| {
        let dev = user(&store, "dev").await;
        let other = user(&store, "other").await;
        let app = store.register_app("echo", "Echo", &dev.id).await.unwrap();
        assert_eq!(app.developer, dev.id);
        assert!(matches!(
            store.register_app("echo", "Mine", &other.id).await,
            Err(StoreError::Conflict("app id"))
        ));
        let wasm: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let mut v = AppVersion {
            app_id: "echo".into(),
            version: "0.1.0".into(),
            manifest: "id = \"echo\"".into(),
            wasm: wasm.clone(),
            wasm_sha256: "abc".into(),
            status: VersionStatus::Trial,
            findings: "[]".into(),
            notes: String::new(),
        };
        store.put_version(&v).await.unwrap();
        v.wasm_sha256 = "def".into();
        store.put_version(&v).await.unwrap();
        let back = store.version("echo", "0.1.0").await.unwrap().unwrap();
        assert_eq!(back.wasm, wasm, "{}: bytes round-trip", db.name);
        assert_eq!(back.wasm_sha256, "def");
        v.version = "0.2.0".into();
        v.status = VersionStatus::Submitted;
        store.put_version(&v).await.unwrap();
        assert!(matches!(
            store.put_version(&v).await,
            Err(StoreError::Conflict(_))
        ));

        let g = store.create_group(&dev.id, "lab", &[]).await.unwrap();
        store
            .install(&g.id, "echo", "0.1.0", &dev.id, true)
            .await
            .unwrap();
        store
            .install(&g.id, "echo", "0.2.0", &dev.id, false)
            .await
            .unwrap();
        let installs = store.installs(&g.id).await.unwrap();
        assert_eq!(installs.len(), 1);
        assert_eq!(
            (installs[0].version.as_str(), installs[0].sideloaded),
            ("0.2.0", false)
        );
        assert_eq!(installs[0].app_name, "Echo");

        let rec = InvocationRecord {
            id: "inv_1".into(),
            app_id: "echo".into(),
            version: "0.2.0".into(),
            conversation: g.id.to_string(),
            app_user_id: "au_1".into(),
            event_kind: "command".into(),
            outcome: "error".into(),
            error_kind: Some("timeout".into()),
            error_message: Some("deadline".into()),
            duration_us: 200_000,
            queued_us: 0,
            fuel: 5,
            calls: serde_json::json!([{"interface": "log"}]),
            logs: serde_json::json!([]),
            created_at_ms: 1,
        };
        store.record_invocation(&rec).await.unwrap();
        assert_eq!(store.invocations("echo", 10).await.unwrap(), vec![rec]);
        assert!(store.uninstall(&g.id, "echo").await.unwrap());
        assert!(store.installs(&g.id).await.unwrap().is_empty());
    });
}

#[tokio::test]
async fn grants_privacy_storage_quotas_and_budgets() {
    use minihost_store::{KvQuota, KvRefusal};
    on_every_backend!(|store, db| {
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        store.register_app("shop", "Shop", &dev.id).await.unwrap();
        let s1 = store
            .platform_secret("app-ids", || "first".into())
            .await
            .unwrap();
        let s2 = store
            .platform_secret("app-ids", || "second".into())
            .await
            .unwrap();
        assert_eq!(
            (s1.as_str(), s2.as_str()),
            ("first", "first"),
            "{}",
            db.name
        );

        store
            .remember_app_user("polls", "au_1", &bob.id)
            .await
            .unwrap();
        store
            .remember_app_user("polls", "au_1", &bob.id)
            .await
            .unwrap();
        assert_eq!(
            store.user_for_app_user("polls", "au_1").await.unwrap(),
            Some(bob.id.clone())
        );
        assert_eq!(store.user_for_app_user("shop", "au_1").await.unwrap(), None);

        assert_eq!(store.grant(&bob.id, "polls").await.unwrap(), None);
        let g = store
            .set_grant(
                &bob.id,
                "polls",
                &["storage".into(), "messages.send".into()],
                "1.0.0",
            )
            .await
            .unwrap();
        assert_eq!(g.scopes, vec!["messages.send", "storage"]);
        let g = store
            .set_grant(&bob.id, "polls", &["storage".into()], "1.1.0")
            .await
            .unwrap();
        assert_eq!(
            (g.scopes.clone(), g.version.as_str()),
            (vec!["storage".to_owned()], "1.1.0")
        );
        store
            .set_grant(&bob.id, "shop", &[], "0.1.0")
            .await
            .unwrap();
        assert_eq!(store.grants_of(&bob.id).await.unwrap().len(), 2);
        assert!(store.delete_grant(&bob.id, "shop").await.unwrap());
        assert!(!store.delete_grant(&bob.id, "shop").await.unwrap());

        store
            .record_privacy(&bob.id, "polls", "profile.get", "ok")
            .await
            .unwrap();
        store
            .record_privacy(&bob.id, "polls", "messaging.send", "denied")
            .await
            .unwrap();
        let log = store.privacy_log(&bob.id, 10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert!(
            log.iter()
                .any(|e| e.capability == "profile.get" && e.outcome == "ok")
        );

        let q = KvQuota {
            max_keys: 2,
            max_bytes: 20,
        };
        assert_eq!(
            store.kv_set("polls", "", "a", b"12345", q).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            store.kv_set("polls", "", "a", b"123456", q).await.unwrap(),
            Ok(()),
            "overwrite"
        );
        assert_eq!(
            store.kv_set("polls", "", "b", b"1", q).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            store.kv_set("polls", "", "c", b"1", q).await.unwrap(),
            Err(KvRefusal::Keys)
        );
        assert_eq!(
            store.kv_set("polls", "", "b", &[0u8; 30], q).await.unwrap(),
            Err(KvRefusal::Bytes)
        );
        assert_eq!(
            store.kv_get("polls", "", "b").await.unwrap(),
            Some(b"1".to_vec()),
            "refused write changed nothing"
        );
        assert_eq!(
            store.kv_get("shop", "", "a").await.unwrap(),
            None,
            "apps never see each other's keys"
        );
        assert_eq!(
            store.kv_get("polls", "au_1", "a").await.unwrap(),
            None,
            "per-user space is separate"
        );
        assert_eq!(
            store.kv_list("polls", "", "", 10).await.unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            store.kv_list("polls", "", "b", 10).await.unwrap(),
            vec!["b"]
        );
        assert!(store.kv_delete("polls", "", "a").await.unwrap());
        assert_eq!(store.kv_get("polls", "", "a").await.unwrap(), None);

        let c1 = SendBucket::Unsolicited {
            conversation: "c_1",
        };
        for left in (0..3).rev() {
            assert_eq!(
                store.take_send_token("polls", c1, 3, 0).await.unwrap(),
                Some(left)
            );
        }
        assert_eq!(
            store.take_send_token("polls", c1, 3, 0).await.unwrap(),
            None,
            "{}",
            db.name
        );
        assert_eq!(store.send_tokens_left("polls", c1, 3, 0).await.unwrap(), 0);
        assert_eq!(
            store.take_send_token("shop", c1, 3, 0).await.unwrap(),
            Some(2),
            "other apps unaffected"
        );
        // Replies to users' events: a bucket per user, apart from the unsolicited one.
        let (u1, u2) = (UserId::from_string("u_1"), UserId::from_string("u_2"));
        let reply = |user| SendBucket::Reply {
            conversation: "c_1",
            user,
        };
        for left in (0..2).rev() {
            assert_eq!(
                store
                    .take_send_token("polls", reply(&u1), 2, 0)
                    .await
                    .unwrap(),
                Some(left),
                "{}: the unsolicited bucket is empty, the reply bucket is not",
                db.name
            );
        }
        assert_eq!(
            store
                .take_send_token("polls", reply(&u1), 2, 0)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .take_send_token("polls", reply(&u2), 2, 0)
                .await
                .unwrap(),
            Some(1),
            "another user's bucket"
        );
        assert_eq!(
            store
                .send_tokens_left("polls", reply(&u1), 2, 0)
                .await
                .unwrap(),
            0
        );
    });
}

/// An app's messages take their send-budget token in the transaction that stores them:
/// concurrent appends (batched together by the writer) store exactly the bucket's capacity per
/// bucket, the rest end in `BudgetExceeded` with nothing stored, and the numbering stays gapless.
#[tokio::test]
async fn app_messages_take_their_budget_with_the_append() {
    on_every_backend!(|store, db| {
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let g = store
            .create_group(&a.id, "lab", std::slice::from_ref(&b.id))
            .await
            .unwrap();
        let from_app = |user: Option<&UserId>, i: usize| NewMessage {
            conversation: g.id.clone(),
            sender: Sender::App {
                id: "polls".into(),
                name: "Polls".into(),
            },
            content: Content::text(format!("reply {i}")),
            idempotency_key: None,
            budget: Some(minihost_store::Budget {
                app: "polls".into(),
                user: user.cloned(),
                capacity: 3,
                per_minute: 0,
            }),
        };
        let mut tasks = Vec::new();
        for i in 0..16 {
            let who = match i % 4 {
                0 | 1 => Some(&a.id),
                2 => Some(&b.id),
                _ => None,
            };
            let (s, m) = (store.clone(), from_app(who, i));
            tasks.push(tokio::spawn(async move { (i, s.append(m).await) }));
            // And a plain message of a user in the same batches, which no budget touches.
            let (s, m) = (store.clone(), text(&g.id, &a, "hi", None));
            tasks.push(tokio::spawn(async move { (100 + i, s.append(m).await) }));
        }
        let (mut stored, mut refused, mut plain) = (0, 0, 0);
        for t in tasks {
            match t.await.unwrap() {
                (i, Ok(_)) if i >= 100 => plain += 1,
                (_, Ok(_)) => stored += 1,
                (_, Err(StoreError::BudgetExceeded)) => refused += 1,
                (i, Err(e)) => panic!("{}: append {i}: {e}", db.name),
            }
        }
        // alice's reply bucket (8 tries), bob's (4) and the unsolicited one (4): 3 each.
        assert_eq!((stored, refused, plain), (9, 7, 16), "{}", db.name);
        let left = |user: Option<&UserId>| {
            let budget = from_app(user, 0).budget.unwrap();
            let store = store.clone();
            let conv = g.id.clone();
            async move {
                store
                    .send_tokens_left("polls", budget.bucket(conv.as_str()), 3, 0)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(left(Some(&a.id)).await, 0);
        assert_eq!(left(None).await, 0);
        let history = store
            .history(
                &g.id,
                HistoryQuery {
                    limit: 100,
                    ..HistoryQuery::default()
                },
            )
            .await
            .unwrap();
        let seqs: Vec<i64> = history.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=25).collect::<Vec<_>>(), "{}: gapless", db.name);
    });
}

/// On an SQLite file no commit checkpoints (every connection has `wal_autocheckpoint = 0`): the
/// writer's checkpointer moves the WAL into the database file in the background, so the file
/// grows while nothing but appends run, and the WAL does not grow without bound.
#[tokio::test]
async fn sqlite_checkpoints_run_beside_the_writer() {
    let db = TestDb::sqlite().unwrap();
    let store = db.open(None).await.unwrap();
    let a = user(&store, "alice").await;
    let b = user(&store, "bob").await;
    let (conv, _) = store.open_direct(&a.id, &b.id).await.unwrap();
    let minihost_store::StoreConfig::Sqlite { data_dir } = &db.config else {
        panic!("not a file");
    };
    let file = data_dir.join("minihost.db");
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let body = "x".repeat(2_000);
    let sends = (0..2_000).map(|i| store.append(text(&conv.id, &a, &format!("{i}{body}"), None)));
    for r in futures_util::future::join_all(sends).await {
        r.unwrap();
    }
    // ~4 MB of messages reach the database file (a liveness guard, not a speed bound).
    let mut grown = false;
    for _ in 0..1_000 {
        if size() > before + 3_000_000 {
            grown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(grown, "the database file stayed at {} bytes", size());
    let wal = std::fs::metadata(data_dir.join("minihost.db-wal")).map_or(0, |m| m.len());
    assert!(wal <= 64 * 1024 * 1024 + 1_000_000, "WAL of {wal} bytes");
    store.close().await;
}

/// A button press's idempotency key: new once, then a repeat for the same body, refused for
/// another; released (the press failed), it is new again; a day later it is forgotten.
#[tokio::test]
async fn action_keys_are_claimed_once_per_press() {
    use minihost_store::{ACTION_KEY_TTL_MS, ActionClaim};
    on_every_backend!(|store, db| {
        let now = 1_000_000;
        let claim = |key: &'static str, hash: &'static str, at: i64| {
            let store = store.clone();
            async move { store.claim_action_key("u_1", "m_1", key, hash, at).await }
        };
        assert_eq!(
            claim("k", "h1", now).await.unwrap(),
            ActionClaim::New,
            "{}",
            db.name
        );
        assert_eq!(
            claim("k", "h1", now + 1).await.unwrap(),
            ActionClaim::Repeat
        );
        assert!(matches!(
            claim("k", "h2", now + 2).await,
            Err(StoreError::IdempotencyKeyReused)
        ));
        // Another key, or the same key on another message or from another user, is new.
        assert_eq!(claim("k2", "h1", now).await.unwrap(), ActionClaim::New);
        assert_eq!(
            store
                .claim_action_key("u_1", "m_2", "k", "h1", now)
                .await
                .unwrap(),
            ActionClaim::New
        );
        assert_eq!(
            store
                .claim_action_key("u_2", "m_1", "k", "h1", now)
                .await
                .unwrap(),
            ActionClaim::New
        );
        store.release_action_key("u_1", "m_1", "k").await.unwrap();
        assert_eq!(claim("k", "h2", now + 3).await.unwrap(), ActionClaim::New);
        // A day after its claim a key is forgotten: the same key is a new press.
        let later = now + 3 + ACTION_KEY_TTL_MS;
        assert_eq!(
            claim("k", "h1", later).await.unwrap(),
            ActionClaim::New,
            "{}",
            db.name
        );
        assert_eq!(
            claim("k", "h1", later + 1).await.unwrap(),
            ActionClaim::Repeat
        );
    });
}
