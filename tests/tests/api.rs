//! The HTTP API's contract and its answers to bad input: status codes, JSON error bodies,
//! and that nothing bad is stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_api::ApiConfig;
use minihost_tests::{TestNode, on_every_backend, testing::TestDb};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn accounts_sessions_and_roles() {
    on_every_backend!(|node| {
        let anon = node.client();
        let r = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "alice", "display_name": "A", "password": "password-alice"}),
            )
            .await;
        assert_eq!(r.0, 201);
        assert_eq!(r.1["role"], "user");
        let dup = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "alice", "display_name": "B", "password": "password-x1"}),
            )
            .await;
        assert_eq!(dup.0, 409, "{}", node.backend());
        assert_eq!(dup.1["error"]["code"], "conflict");

        let bad = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "Al", "display_name": "A", "password": "password-x1"}),
            )
            .await;
        assert_eq!(bad.0, 422);
        assert_eq!(bad.1["error"]["field"], "username");
        let short = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "zed", "display_name": "Z", "password": "short"}),
            )
            .await;
        assert_eq!(
            (short.0, short.1["error"]["field"].as_str()),
            (422, Some("password"))
        );

        let wrong = anon
            .post(
                "/api/v1/sessions",
                &json!({"username": "alice", "password": "nope-nope"}),
            )
            .await;
        assert_eq!(wrong.0, 401);
        assert_eq!(wrong.1["error"]["code"], "unauthorized");
        let ghost = anon
            .post(
                "/api/v1/sessions",
                &json!({"username": "ghost", "password": "nope-nope"}),
            )
            .await;
        assert_eq!(ghost.0, 401);
        assert_eq!(
            ghost.1["error"]["message"], wrong.1["error"]["message"],
            "no user enumeration"
        );

        let alice = anon.clone().signed_in("alice").await;
        let me = alice.get("/api/v1/me").await;
        assert_eq!((me.0, me.1["username"].as_str()), (200, Some("alice")));
        assert_eq!(anon.get("/api/v1/me").await.0, 401);

        // Only admins change roles.
        let bob = node.user("bob").await;
        let r = alice
            .put("/api/v1/users/bob/role", &json!({"role": "developer"}))
            .await;
        assert_eq!(r.0, 403);
        node.node
            .store
            .set_role("alice", minihost_core::Role::Admin)
            .await
            .unwrap();
        let r = alice
            .put("/api/v1/users/bob/role", &json!({"role": "developer"}))
            .await;
        assert_eq!((r.0, r.1["role"].as_str()), (200, Some("developer")));
        assert_eq!(bob.get("/api/v1/me").await.1["role"], "developer");
        let r = alice
            .put("/api/v1/users/bob/role", &json!({"role": "king"}))
            .await;
        assert_eq!(r.0, 422);
        let r = alice
            .put("/api/v1/users/nobody/role", &json!({"role": "user"}))
            .await;
        assert_eq!(r.0, 404);

        // Sign out revokes the token at once.
        assert_eq!(alice.delete("/api/v1/sessions/current").await.0, 204);
        let r = alice.get("/api/v1/me").await;
        assert_eq!(r.0, 401);
    });
}

#[tokio::test]
async fn names_that_could_pass_for_another_are_refused_and_names_are_stored_in_nfc() {
    on_every_backend!(|node| {
        let anon = node.client();
        for (display_name, problem) in [
            ("B\u{43E}b", "must not mix Latin and Cyrillic letters"),
            (
                "\u{202E}boB",
                "must not contain bidirectional control characters",
            ),
            ("B\u{200B}ob", "must not contain invisible characters"),
        ] {
            let r = anon
                .post(
                    "/api/v1/accounts",
                    &json!({"username": "mallory", "display_name": display_name,
                            "password": "password-mallory"}),
                )
                .await;
            assert_eq!(
                (r.0, r.1["error"]["field"].as_str()),
                (422, Some("display_name")),
                "{display_name:?} on {}: {}",
                node.backend(),
                r.1
            );
            let message = r.1["error"]["message"].as_str().unwrap();
            assert!(message.contains(problem), "{display_name:?}: {message}");
        }
        // Nothing was stored: the username is still free.
        let r = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "mallory", "display_name": "Mallory",
                        "password": "password-mallory"}),
            )
            .await;
        assert_eq!(r.0, 201, "{}", r.1);

        // Typed decomposed (e + COMBINING DIAERESIS), stored and shown composed.
        let r = anon
            .post(
                "/api/v1/accounts",
                &json!({"username": "zoe", "display_name": "Zoe\u{308}",
                        "password": "password-zoe"}),
            )
            .await;
        assert_eq!((r.0, r.1["display_name"].as_str()), (201, Some("Zo\u{EB}")));
        let zoe = anon.clone().signed_in("zoe").await;
        let me = zoe.get("/api/v1/me").await;
        assert_eq!(me.1["display_name"], "Zo\u{EB}", "{}", node.backend());

        // Group titles are read by every member: the same rules.
        let r = zoe
            .post(
                "/api/v1/conversations",
                &json!({"kind": "group", "members": ["mallory"], "title": "\u{410}dmins"}),
            )
            .await;
        assert_eq!((r.0, r.1["error"]["field"].as_str()), (422, Some("title")));
        let r = zoe
            .post(
                "/api/v1/conversations",
                &json!({"kind": "group", "members": ["mallory"], "title": "Cafe\u{301} 读书会"}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["title"].as_str()),
            (201, Some("Caf\u{E9} 读书会"))
        );
    });
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let api = ApiConfig {
        session_ttl: Duration::from_millis(1),
        ..ApiConfig::default()
    };
    let node = TestNode::start_with(TestDb::sqlite().unwrap(), api).await;
    let alice = node.user("alice").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = alice.get("/api/v1/me").await;
    assert_eq!(r.0, 401);
    assert!(
        r.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    node.finish().await;
}

#[tokio::test]
async fn bad_message_input_is_refused_and_nothing_is_stored() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        node.user("bob").await;
        let conv = alice.direct_with("bob").await;
        let path = format!("/api/v1/conversations/{conv}/messages");
        let check = |body: serde_json::Value, status: u16, code: &'static str| {
            let alice = alice.clone();
            let path = path.clone();
            async move {
                let r = alice.post(&path, &body).await;
                assert_eq!(r.0, status, "{body}: {r:?}");
                assert_eq!(r.1["error"]["code"], code, "{body}: {r:?}");
            }
        };
        check(
            json!({"content": {"type": "text", "text": ""}}),
            422,
            "invalid",
        )
        .await;
        check(
            json!({"content": {"type": "text", "text": "   "}}),
            422,
            "invalid",
        )
        .await;
        check(
            json!({"content": {"type": "text", "text": "x".repeat(16 * 1024 + 1)}}),
            422,
            "invalid",
        )
        .await;
        check(
            json!({"content": {"type": "card", "blocks": [{"kind": "divider"}]}}),
            422,
            "invalid",
        )
        .await;
        check(json!({"content": {"type": "text"}}), 400, "invalid_body").await;
        check(json!({"text": "hi"}), 400, "invalid_body").await;

        let r = alice
            .send(
                alice
                    .raw(Method::POST, &path)
                    .header("content-type", "application/json")
                    .body("{\"content\":"),
            )
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (400, Some("malformed_json"))
        );
        let r = alice
            .send(alice.raw(Method::POST, &path).body("hello"))
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (415, Some("unsupported_media_type"))
        );
        let huge = json!({"content": {"type": "text", "text": "y".repeat(100 * 1024)}});
        let r = alice.post(&path, &huge).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (413, Some("payload_too_large"))
        );

        let page = alice.get(&path).await;
        assert_eq!(
            page.1["messages"].as_array().unwrap().len(),
            0,
            "{}",
            node.backend()
        );
        // The conversation still works.
        assert_eq!(alice.say(&conv, "fine").await["seq"], 1);
    });
}

#[tokio::test]
async fn strangers_learn_nothing_about_a_conversation() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        node.user("bob").await;
        let eve = node.user("eve").await;
        let conv = alice.direct_with("bob").await;
        alice.say(&conv, "secret").await;
        for (status, body) in [
            eve.get(&format!("/api/v1/conversations/{conv}")).await,
            eve.get(&format!("/api/v1/conversations/{conv}/messages"))
                .await,
            eve.post(
                &format!("/api/v1/conversations/{conv}/messages"),
                &json!({"content": {"type": "text", "text": "hi"}}),
            )
            .await,
            eve.get("/api/v1/conversations/c_doesnotexist/messages")
                .await,
        ] {
            assert_eq!(status, 404, "{body}");
            assert_eq!(body["error"]["message"], "conversation not found");
        }
        let page = alice
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        assert_eq!(
            page.1["messages"].as_array().unwrap().len(),
            1,
            "eve stored nothing"
        );
        assert_eq!(eve.get("/api/v1/conversations").await.1, json!([]));
    });
}

#[tokio::test]
async fn conversations_list_history_and_read_markers() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        node.user("carol").await;
        let direct = alice.direct_with("bob").await;
        assert_eq!(
            bob.direct_with("alice").await,
            direct,
            "one direct conversation per pair"
        );
        let r = alice
            .post(
                "/api/v1/conversations",
                &json!({"kind": "direct", "members": ["alice"]}),
            )
            .await;
        assert_eq!(r.0, 422, "not with yourself");
        let r = alice
            .post(
                "/api/v1/conversations",
                &json!({"kind": "direct", "members": ["nobody"]}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["error"]["field"].as_str()),
            (422, Some("members"))
        );
        let r = alice
            .post(
                "/api/v1/conversations",
                &json!({"kind": "group", "members": ["bob"]}),
            )
            .await;
        assert_eq!((r.0, r.1["error"]["field"].as_str()), (422, Some("title")));
        let r = alice
            .post("/api/v1/conversations", &json!({"kind": "channel"}))
            .await;
        assert_eq!((r.0, r.1["error"]["field"].as_str()), (422, Some("kind")));
        let group = alice.group("Lunch", &["bob", "carol"]).await;

        for i in 1..=12 {
            alice.say(&direct, &format!("d{i}")).await;
        }
        bob.say(&group, "g1").await;
        let list = bob.get("/api/v1/conversations").await.1;
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["id"], group.as_str(), "most recent first");
        assert_eq!(list[0]["unread"], 0, "own messages are not unread");
        assert_eq!(list[1]["unread"], 12);
        assert_eq!(list[1]["last_message"]["content"]["text"], "d12");

        let page = bob
            .get(&format!("/api/v1/conversations/{direct}/messages?limit=5"))
            .await
            .1;
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, vec![8, 9, 10, 11, 12]);
        let page = bob
            .get(&format!(
                "/api/v1/conversations/{direct}/messages?before=8&limit=3"
            ))
            .await
            .1;
        assert_eq!(page["messages"][0]["seq"], 5);
        let page = bob
            .get(&format!("/api/v1/conversations/{direct}/messages?after=10"))
            .await
            .1;
        assert_eq!(page["messages"].as_array().unwrap().len(), 2);
        for bad in ["limit=0", "limit=501", "after=-1", "limit=abc", "sort=asc"] {
            let r = bob
                .get(&format!("/api/v1/conversations/{direct}/messages?{bad}"))
                .await;
            assert!(r.0 == 400 || r.0 == 422, "{bad}: {r:?}");
        }

        let r = bob
            .post(
                &format!("/api/v1/conversations/{direct}/read"),
                &json!({"seq": 10}),
            )
            .await;
        assert_eq!(r.1["read_seq"], 10);
        let list = bob.get("/api/v1/conversations").await.1;
        assert_eq!(list[1]["unread"], 2);
        let shown = bob.get(&format!("/api/v1/conversations/{group}")).await.1;
        assert_eq!(shown["members"].as_array().unwrap().len(), 3);
        assert_eq!(shown["title"], "Lunch");
    });
}

#[tokio::test]
async fn idempotent_retries_and_concurrent_senders() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let conv = alice.group("g", &["bob"]).await;
        let path = format!("/api/v1/conversations/{conv}/messages");
        let send = |key: &'static str| {
            alice.send(
                alice
                    .raw(Method::POST, &path)
                    .header("Idempotency-Key", key)
                    .json(&json!({"content": {"type": "text", "text": "pay 5"}})),
            )
        };
        let first = send("order-1").await;
        let again = send("order-1").await;
        assert_eq!((first.0, again.0), (201, 200), "{}", node.backend());
        assert_eq!(first.1["id"], again.1["id"]);
        // The same key with a different body is refused by name, and the new text is not lost
        // silently: nothing is stored for it.
        let reused = alice
            .send(
                alice
                    .raw(Method::POST, &path)
                    .header("Idempotency-Key", "order-1")
                    .json(&json!({"content": {"type": "text", "text": "pay 500"}})),
            )
            .await;
        assert_eq!(reused.0, 422, "{}: {reused:?}", node.backend());
        assert_eq!(reused.1["error"]["code"], "idempotency_key_reused");
        let history = alice.get(&format!("{path}?after=0&limit=50")).await.1;
        assert_eq!(
            history["messages"].as_array().unwrap().len(),
            1,
            "{history}"
        );
        let long_key = "k".repeat(200);
        let r = alice
            .send(
                alice
                    .raw(Method::POST, &path)
                    .header("Idempotency-Key", long_key)
                    .json(&json!({"content": {"type": "text", "text": "x"}})),
            )
            .await;
        assert_eq!(r.0, 422);

        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let c = if i % 2 == 0 {
                    alice.clone()
                } else {
                    bob.clone()
                };
                let conv = conv.clone();
                tokio::spawn(
                    async move { c.say(&conv, &format!("{i}")).await["seq"].as_i64().unwrap() },
                )
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (2..=41).collect::<Vec<_>>(), "no gaps, no duplicates");
    });
}

#[tokio::test]
async fn openapi_and_health() {
    let node = TestNode::start(TestDb::sqlite().unwrap()).await;
    let c = node.client();
    let (status, doc) = c.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/accounts",
        "/api/v1/sessions",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/me",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(c.get("/healthz").await, (200, json!({"status": "ok"})));
    let r = c.get("/api/v1/nothing-here").await;
    assert_eq!(
        (r.0, r.1["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    node.finish().await;
}

#[tokio::test]
async fn the_send_path_cache_never_outlives_a_sign_out_or_a_removal_on_this_node() {
    let node = TestNode::start(TestDb::sqlite().unwrap()).await;
    let alice = node.user("alice").await;
    let bob = node.user("bob").await;
    let g = alice.group("g", &["bob"]).await;
    bob.say(&g, "warm the cache").await;
    let r = alice
        .delete(&format!("/api/v1/conversations/{g}/members/bob"))
        .await;
    assert_eq!(r.0, 204);
    let r = bob
        .post(
            &format!("/api/v1/conversations/{g}/messages"),
            &json!({"content": {"type": "text", "text": "still here?"}}),
        )
        .await;
    assert_eq!(r.0, 404, "removed at once: {r:?}");
    alice.say(&g, "warm").await;
    assert_eq!(alice.delete("/api/v1/sessions/current").await.0, 204);
    let r = alice
        .post(
            &format!("/api/v1/conversations/{g}/messages"),
            &json!({"content": {"type": "text", "text": "after sign-out"}}),
        )
        .await;
    assert_eq!(r.0, 401, "signed out at once: {r:?}");
    node.finish().await;
}
