//! WebSocket `ack` keeps a delivery cursor per device, on every backend: a device that names
//! itself in `resume` and names no positions resumes from its own cursor (not another
//! device's), positions it names win, the conversation list's unread counts stop at the
//! furthest cursor, and an ack for a conversation the user is not in is a typed error frame
//! and stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_core::UserId;
use minihost_tests::{Client, Ws, on_every_backend};
use serde_json::{Value, json};
use std::time::Duration;

/// Opens a session as `device`, resumes with `cursors`; the seqs of the backlog received.
async fn resume(user: &Client, device: &str, cursors: Value) -> (Ws, Vec<i64>) {
    let mut ws = user.ws().await;
    ws.send(json!({"type": "resume", "cursors": cursors, "device": device}))
        .await;
    let mut seqs = Vec::new();
    loop {
        let f = ws.next_json().await;
        match f["type"].as_str() {
            Some("message") => seqs.push(f["seq"].as_i64().unwrap()),
            Some("resumed") => return (ws, seqs),
            _ => panic!("unexpected frame {f}"),
        }
    }
}

/// Acks `seq` of `conv`, then waits until the session has handled it (frames are handled in
/// order: the answer to a later bad ack proves it).
async fn ack(ws: &mut Ws, conv: &str, seq: i64) {
    ws.send(json!({"type": "ack", "conversation": conv, "seq": seq}))
        .await;
    ws.send(json!({"type": "ack", "conversation": conv, "seq": -1}))
        .await;
    let e = ws.next_of("error").await;
    assert_eq!(e["code"], "invalid", "{e}");
}

async fn unread(user: &Client) -> i64 {
    let list = user.get("/api/v1/conversations").await.1;
    list[0]["unread"].as_i64().unwrap()
}

#[tokio::test]
async fn each_device_resumes_from_its_own_cursor() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let conv = alice.direct_with("bob").await;
        for i in 1..=3 {
            alice.say(&conv, &format!("m{i}")).await;
        }
        assert_eq!(unread(&bob).await, 3);

        // The laptop has no cursor yet: it names its position, receives 1..3, acks 3.
        let (mut laptop, got) = resume(&bob, "laptop", json!({conv.clone(): 0})).await;
        assert_eq!(got, [1, 2, 3], "{}", node.backend());
        ack(&mut laptop, &conv, 3).await;
        laptop.close().await;
        assert_eq!(unread(&bob).await, 0, "acked on the laptop");

        // The phone receives 2..3 and acks only 2.
        let (mut phone, got) = resume(&bob, "phone", json!({conv.clone(): 1})).await;
        assert_eq!(got, [2, 3]);
        ack(&mut phone, &conv, 2).await;
        phone.close().await;

        alice.say(&conv, "m4").await;
        alice.say(&conv, "m5").await;
        assert_eq!(unread(&bob).await, 2, "after the furthest device");

        // Naming no positions, each device resumes from its own cursor.
        let (laptop, got) = resume(&bob, "laptop", json!({})).await;
        assert_eq!(got, [4, 5], "{}: the laptop's cursor is 3", node.backend());
        laptop.close().await;
        let (phone, got) = resume(&bob, "phone", json!({})).await;
        assert_eq!(got, [3, 4, 5], "the phone's cursor is 2");
        phone.close().await;
        // A position the client names wins over the stored cursor.
        let (laptop, got) = resume(&bob, "laptop", json!({conv.clone(): 4})).await;
        assert_eq!(got, [5]);
        laptop.close().await;
        // A session without a device name keeps the old behaviour: nothing it did not ask for.
        let mut plain = bob.ws_live().await;
        assert_eq!(plain.quiet_for(Duration::from_millis(200)).await, None);
        plain.close().await;
    });
}

#[tokio::test]
async fn bad_acks_and_device_names_are_typed_errors_and_store_nothing() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        node.user("bob").await;
        let eve = node.user("eve").await;
        let conv = alice.direct_with("bob").await;
        alice.say(&conv, "for bob").await;

        let (mut ws, _) = resume(&eve, "evil", json!({})).await;
        ws.send(json!({"type": "ack", "conversation": conv, "seq": 1}))
            .await;
        let e = ws.next_of("error").await;
        assert_eq!(e["code"], "unknown_conversation", "{}: {e}", node.backend());
        ws.send(json!({"type": "ack", "conversation": conv, "seq": 0}))
            .await;
        let e = ws.next_of("error").await;
        assert_eq!(e["code"], "unknown_conversation", "{e}");
        ws.send(json!({"type": "resume", "cursors": {}, "device": "other"}))
            .await;
        let e = ws.next_of("error").await;
        assert_eq!(e["code"], "invalid", "one device per session: {e}");
        ws.close().await;
        let eve_id = UserId::from_string(eve.get("/api/v1/me").await.1["id"].as_str().unwrap());
        node.node.store.flush_acks().await.unwrap();
        assert_eq!(
            node.node
                .store
                .delivery_cursors(&eve_id, "evil")
                .await
                .unwrap(),
            vec![]
        );

        for bad in ["", " lead", "tab\there", "é", &"x".repeat(33)] {
            let mut ws = alice.ws().await;
            ws.send(json!({"type": "resume", "cursors": {}, "device": bad}))
                .await;
            let e = ws.next_json().await;
            assert_eq!(
                (e["type"].as_str(), e["code"].as_str()),
                (Some("error"), Some("invalid")),
                "{bad:?}: {e}"
            );
            ws.close().await;
        }
    });
}
