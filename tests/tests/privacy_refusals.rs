//! The privacy record lists refused attempts with their outcome, on every backend: an app's
//! use of a scope the user did not grant (refused by the sandbox) is written as `denied`, and
//! once granted, the use is written as `ok` after it happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::on_every_backend;
use serde_json::{Value, json};

const MANIFEST: &str = r#"
id = "faults"
name = "Faults"
version = "0.1.0"
description = "Misbehaves on purpose."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "profile.read"
reason = "To greet you."

[[scopes]]
name = "storage"
reason = "To remember things."

[[scopes]]
name = "auth.login"
reason = "To sign you in."

[[commands]]
name = "profile"
help = "/profile"
"#;

fn lines(record: &Value, capability: &str) -> Vec<String> {
    record
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["capability"] == capability && e["app_id"] == "faults")
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn refused_and_allowed_uses_are_recorded() {
    on_every_backend!(|node| {
        let alice = node.developer("alice").await;
        let lab = alice.group("lab", &[]).await;
        let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::FAULTS).unwrap();
        let r = alice.sideload(&lab, MANIFEST, &wasm).await;
        assert_eq!(r.0, 201, "{r:?}");
        let mut ws = alice.ws_live().await;
        alice.say(&lab, "/profile").await;
        ws.next_of("consent_request").await;
        alice
            .put(
                "/api/v1/me/grants/faults",
                &json!({"scopes": ["messages.send"]}),
            )
            .await;
        let reply = loop {
            let f = ws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                break f;
            }
        };
        assert_eq!(
            reply["message"]["content"]["text"],
            "permission-denied:profile.read"
        );
        // The record is written before the reply is posted.
        let record = alice.get("/api/v1/me/privacy").await.1;
        assert_eq!(
            lines(&record, "profile.read"),
            ["denied"],
            "{}: {record}",
            node.backend()
        );

        alice
            .put(
                "/api/v1/me/grants/faults",
                &json!({"scopes": ["messages.send", "profile.read"]}),
            )
            .await;
        alice.say(&lab, "/profile").await;
        let reply = loop {
            let f = ws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                break f;
            }
        };
        assert_eq!(reply["message"]["content"]["text"], "ok:ALICE");
        let record = alice.get("/api/v1/me/privacy").await.1;
        assert_eq!(lines(&record, "profile.read"), ["ok", "denied"], "{record}");
    });
}
