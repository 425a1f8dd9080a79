//! The foundation's must-show scenario and live delivery guarantees over the real server and
//! WebSocket: in-order delivery, resume after a disconnect with no loss and no duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::{TestNode, on_every_backend};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn alice_and_bob_chat_live_and_bob_resumes_from_his_cursor() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let conv = alice.direct_with("bob").await;

        let mut bob_ws = bob.ws_live().await;
        for text in ["one", "two", "three"] {
            alice.say(&conv, text).await;
        }
        let mut last = 0;
        for (i, text) in ["one", "two", "three"].iter().enumerate() {
            let f = bob_ws.next_of("message").await;
            assert_eq!(f["conversation"], conv.as_str());
            assert_eq!(f["seq"], i as i64 + 1, "{}", node.backend());
            assert_eq!(f["message"]["content"]["text"], *text);
            assert_eq!(f["message"]["sender"]["username"], "alice");
            last = f["seq"].as_i64().unwrap();
            bob_ws
                .send(json!({"type": "ack", "conversation": conv, "seq": last}))
                .await;
        }
        bob_ws.close().await;

        alice.say(&conv, "four").await;
        alice.say(&conv, "five").await;

        let mut bob_ws = bob.ws().await;
        bob_ws
            .send(json!({"type": "resume", "cursors": {conv.clone(): last}}))
            .await;
        let four = bob_ws.next_of("message").await;
        let five = bob_ws.next_of("message").await;
        assert_eq!(
            (four["seq"].as_i64(), five["seq"].as_i64()),
            (Some(4), Some(5))
        );
        assert_eq!(four["message"]["content"]["text"], "four");
        assert_eq!(five["message"]["content"]["text"], "five");
        let done = bob_ws.next_json().await;
        assert_eq!(
            done["type"], "resumed",
            "exactly those two, then the end marker: {done}"
        );
        // Nothing else arrives: no duplicates.
        assert_eq!(bob_ws.quiet_for(Duration::from_millis(300)).await, None);
    });
}

#[tokio::test]
async fn resume_while_messages_keep_coming_loses_nothing_and_repeats_nothing() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let carol = node.user("carol").await;
        let conv = alice.group("busy", &["bob", "carol"]).await;

        for i in 0..30 {
            alice.say(&conv, &format!("early {i}")).await;
        }
        // Bob read up to 10 before he dropped; he reconnects while carol keeps talking.
        let writer = {
            let carol = carol.clone();
            let conv = conv.clone();
            tokio::spawn(async move {
                for i in 0..40 {
                    carol.say(&conv, &format!("late {i}")).await;
                }
            })
        };
        let mut ws = bob.ws().await;
        ws.send(json!({"type": "resume", "cursors": {conv.clone(): 10}}))
            .await;
        writer.await.unwrap();

        let mut seen = Vec::new();
        while seen.len() < 60 {
            let f = ws.next_json().await;
            if f["type"] == "message" {
                seen.push(f["seq"].as_i64().unwrap());
            }
        }
        assert_eq!(seen, (11..=70).collect::<Vec<_>>(), "{}", node.backend());
        let extra = ws.quiet_for(Duration::from_millis(300)).await;
        assert!(
            extra.is_none() || extra.as_ref().unwrap()["type"] == "resumed",
            "{extra:?}"
        );
    });
}

#[tokio::test]
async fn every_member_receives_group_messages_in_order_and_non_members_nothing() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let mallory = node.user("mallory").await;
        let conv = alice.group("team", &["bob"]).await;
        let mut bob_ws = bob.ws_live().await;
        let mut alice_ws = alice.ws_live().await;
        let mut mallory_ws = mallory.ws_live().await;

        let senders: Vec<_> = [alice.clone(), bob.clone()]
            .into_iter()
            .enumerate()
            .map(|(k, c)| {
                let conv = conv.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        c.say(&conv, &format!("{k}-{i}")).await;
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.unwrap();
        }
        for ws in [&mut bob_ws, &mut alice_ws] {
            let mut seqs = Vec::new();
            let mut texts = BTreeSet::new();
            for _ in 0..50 {
                let f = ws.next_of("message").await;
                seqs.push(f["seq"].as_i64().unwrap());
                texts.insert(f["message"]["content"]["text"].as_str().unwrap().to_owned());
            }
            assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "{}", node.backend());
            assert_eq!(texts.len(), 50);
        }
        assert_eq!(mallory_ws.quiet_for(Duration::from_millis(200)).await, None);
    });
}

#[tokio::test]
async fn a_new_member_is_subscribed_live() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let mut bob_ws = bob.ws_live().await;
        let conv = alice.group("later", &[]).await;
        let r = alice
            .post(
                &format!("/api/v1/conversations/{conv}/members"),
                &json!({"usernames": ["bob"]}),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let joined = bob_ws.next_of("joined").await;
        assert_eq!(joined["conversation"], conv.as_str());
        alice.say(&conv, "welcome").await;
        let f = bob_ws.next_of("message").await;
        assert_eq!(f["message"]["content"]["text"], "welcome");

        // Removed: no more live messages.
        let r = alice
            .delete(&format!("/api/v1/conversations/{conv}/members/bob"))
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        bob_ws.next_of("left").await;
        alice.say(&conv, "gone").await;
        assert_eq!(bob_ws.quiet_for(Duration::from_millis(300)).await, None);
        let r = bob
            .get(&format!("/api/v1/conversations/{conv}/messages"))
            .await;
        assert_eq!(r.0, 404);
    });
}

#[tokio::test]
async fn websocket_rejects_bad_tokens_and_bad_commands() {
    let node = TestNode::start(minihost_tests::testing::TestDb::sqlite().unwrap()).await;
    let url = format!(
        "{}/api/v1/ws?token=nope",
        node.node.url().replacen("http", "ws", 1)
    );
    let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 401),
        other => panic!("{other:?}"),
    }
    let alice = node.user("alice").await;
    let conv = alice.group("g", &[]).await;
    let mut ws = alice.ws_live().await;
    ws.send(json!({"type": "dance"})).await;
    let e = ws.next_json().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("malformed_command"))
    );
    ws.send(json!({"type": "ack", "conversation": conv, "seq": 5}))
        .await;
    let e = ws.next_json().await;
    assert_eq!(e["code"], "invalid", "acking what was never sent: {e}");
    ws.send(json!({"type": "resume", "cursors": {"c_not_mine": 0}}))
        .await;
    let r = ws.next_json().await;
    assert_eq!(r["type"], "resumed");
    assert_eq!(r["unknown"], json!(["c_not_mine"]));
    node.finish().await;
}

#[tokio::test]
async fn a_resume_naming_thousands_of_foreign_conversations_is_answered_once() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let conv = alice.direct_with("bob").await;
        let quiet = alice.group("quiet", &["bob"]).await;
        for text in ["one", "two"] {
            alice.say(&conv, text).await;
        }
        // 6,000 conversations bob is not in, beside his own two.
        let mut cursors = serde_json::Map::new();
        for i in 0..6000 {
            cursors.insert(format!("c{i}"), json!(0));
        }
        cursors.insert(conv.clone(), json!(1));
        cursors.insert(quiet.clone(), json!(0));
        let mut ws = bob.ws().await;
        ws.send(json!({"type": "resume", "cursors": cursors})).await;
        let f = ws.next_of("message").await;
        assert_eq!(
            (f["conversation"].as_str(), f["seq"].as_i64()),
            (Some(conv.as_str()), Some(2))
        );
        let done = ws.next_json().await;
        assert_eq!(done["type"], "resumed", "{}: {done}", node.backend());
        assert_eq!(done["unknown_count"], 6000);
        assert_eq!(done["unknown"].as_array().unwrap().len(), 20);
        // Live delivery goes on in both of bob's conversations.
        alice.say(&quiet, "three").await;
        let f = ws.next_of("message").await;
        assert_eq!(
            (f["conversation"].as_str(), f["seq"].as_i64()),
            (Some(quiet.as_str()), Some(1))
        );
    });
}

#[tokio::test]
async fn a_flood_of_frames_is_rate_limited_and_the_connection_recovers() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let conv = alice.group("g", &[]).await;
        let mut ws = alice.ws_live().await;
        for _ in 0..300 {
            ws.send(json!({"type": "resume", "cursors": {}})).await;
        }
        // Read until the flood is answered: some resumes, then one rate_limited error.
        let mut resumed = 0;
        let mut limited = 0;
        while let Some(f) = ws.quiet_for(Duration::from_millis(500)).await {
            match f["type"].as_str() {
                Some("resumed") => resumed += 1,
                Some("error") if f["code"] == "rate_limited" => limited += 1,
                _ => panic!("unexpected frame {f}"),
            }
        }
        assert_eq!(limited, 1, "{}: told once", node.backend());
        assert!(resumed < 300, "{resumed} of 300 frames were served");
        // After a pause the budget is back and the session works as before.
        tokio::time::sleep(Duration::from_secs(1)).await;
        ws.send(json!({"type": "resume", "cursors": {}})).await;
        assert_eq!(ws.next_json().await["type"], "resumed");
        alice.say(&conv, "still here").await;
        let f = ws.next_of("message").await;
        assert_eq!(f["message"]["content"]["text"], "still here");
    });
}
