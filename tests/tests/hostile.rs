//! Hostile load over the real server: one developer's storm of looping apps beside ordinary chat
//! and another developer's well-behaved app. Guests run on their own threads behind the
//! admission queue, so chat keeps working, the good app answers, every looping invocation ends
//! by its deadline plus the runtime's slack, and what the queue cannot hold is refused as `busy`
//! and logged, never lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost::NodeOptions;
use minihost_runtime::ExecutorConfig;
use minihost_tests::TestNode;
use minihost_tests::testing::TestDb;
use serde_json::Value;
use std::time::Duration;

const ECHO_MANIFEST: &str = include_str!("../../examples/echo/miniapp.toml");

/// A looping app: asks for the manifest maximum of 2 s, which the operator caps.
fn loop_manifest(i: usize) -> String {
    format!(
        r#"
id = "loop-{i}"
name = "Loop {i}"
version = "0.1.0"
description = "Spins until stopped."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "profile.read"
reason = "To greet you."

[[scopes]]
name = "auth.login"
reason = "To sign you in."

[[scopes]]
name = "storage"
reason = "To remember things."

[[commands]]
name = "loop"
help = "/loop"

[limits]
timeout_ms = 2000
"#
    )
}

const APPS: usize = 8;
const COMMANDS: usize = 16;
/// The operator's cap on app time budgets in this test.
const CAP: Duration = Duration::from_millis(300);

fn options() -> NodeOptions {
    // The store is the test database's (see `TestNode::start_options`).
    let placeholder = minihost_store::StoreConfig::Url(String::new());
    let mut options = NodeOptions::new("127.0.0.1:0".parse().unwrap(), placeholder);
    options.executor = Some(ExecutorConfig {
        threads: 1,
        nice: 10,
        // As `minihost serve` runs them; nothing else in this test binary competes for the CPU.
        idle_class: true,
        max_running: 2,
        max_running_per_app: 1,
        max_running_per_owner: 1,
        max_queued: 64,
        max_queued_per_app: 4,
        max_queued_per_owner: 12,
        max_queue_wait: Duration::from_secs(2),
        // As `minihost serve` runs them: the loops start on the fast lane and leave it.
        fast_lane: Some(minihost_runtime::FastLane::default()),
    });
    options.max_app_timeout = CAP;
    options
}

async fn storm(node: TestNode) {
    let backend = node.backend();
    let mallory = node.developer("mallory").await;
    let dave = node.developer("dave").await;
    let alice = node.user("alice").await;
    node.user("bob").await;
    let chat = alice.direct_with("bob").await;

    let arena = mallory.group("arena", &[]).await;
    let looping = minihost_guest_artifacts::read(minihost_guest_artifacts::FAULTS).unwrap();
    let mallory_id = minihost_core::UserId::from_string(
        mallory.get("/api/v1/me").await.1["id"].as_str().unwrap(),
    );
    for i in 0..APPS {
        let r = mallory.sideload(&arena, &loop_manifest(i), &looping).await;
        assert_eq!(r.0, 201, "{backend}: {r:?}");
        // Consent given beforehand, so every /loop runs at once.
        node.node
            .store
            .set_grant(
                &mallory_id,
                &format!("loop-{i}"),
                &["messages.send".into()],
                "0.1.0",
            )
            .await
            .unwrap();
    }
    let shop = dave.group("shop", &[]).await;
    let echo = minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO).unwrap();
    let r = dave.sideload(&shop, ECHO_MANIFEST, &echo).await;
    assert_eq!(r.0, 201, "{r:?}");
    let mut dave_ws = dave.ws_live().await;

    // The storm: every /loop runs all eight apps.
    for _ in 0..COMMANDS {
        let r = mallory.say(&arena, "/loop").await;
        assert!(r["seq"].is_i64(), "{r}");
    }
    // Ordinary chat goes on during it.
    for i in 0..20 {
        let sent = alice.say(&chat, &format!("lunch? {i}")).await;
        assert_eq!(sent["seq"], i + 1, "{backend}");
    }
    // The well-behaved app of another developer still answers. Its own 200 ms deadline can
    // pass when something outside the server (another build on this machine) takes the CPU:
    // then the user is told (`app_error`) and asks again, as a person would, a few times.
    let mut reply = None;
    let mut refusals = Vec::new();
    for _ in 0..5 {
        dave.say(&shop, "/echo still here").await;
        let f = loop {
            let f = dave_ws.next_json().await;
            let from_app = f["type"] == "message" && f["message"]["sender"]["type"] == "app";
            if from_app || f["type"] == "app_error" {
                break f;
            }
        };
        if f["type"] == "message" {
            reply = Some(f["message"].clone());
            break;
        }
        refusals.push(f);
    }
    let reply = reply.unwrap_or_else(|| panic!("{backend}: the echo never answered: {refusals:?}"));
    assert_eq!(reply["content"]["text"], "still here", "{backend}");

    // Every storm event is accounted for in the developer's log: run to its deadline, or refused
    // as busy; none lost silently.
    let mut records: Vec<Value> = Vec::new();
    for _ in 0..200 {
        records.clear();
        for i in 0..APPS {
            let log = mallory
                .get(&format!("/api/v1/apps/loop-{i}/invocations?limit=500"))
                .await;
            assert_eq!(log.0, 200, "{log:?}");
            records.extend(log.1.as_array().unwrap().iter().cloned());
        }
        if records.len() >= APPS * COMMANDS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        records.len(),
        APPS * COMMANDS,
        "{backend}: every event logged once"
    );
    let kinds = |k: &str| records.iter().filter(|r| r["error_kind"] == k).count();
    let (timeouts, busy) = (kinds("timeout"), kinds("busy"));
    assert_eq!(timeouts + busy, APPS * COMMANDS, "{backend}: {records:?}");
    assert!(busy > 0, "{backend}: the queue bound refused the overflow");
    assert!(timeouts > 0, "{backend}: admitted loops ran");
    let slack = minihost_runtime::RuntimeConfig::default().deadline_slack();
    for r in records.iter().filter(|r| r["error_kind"] == "timeout") {
        let ran = Duration::from_micros(r["duration_us"].as_u64().unwrap());
        assert!(ran >= CAP, "{backend}: stopped early: {r}");
        assert!(ran <= CAP + slack, "{backend}: overran its deadline: {r}");
    }
    for r in records.iter().filter(|r| r["error_kind"] == "busy") {
        assert_eq!(
            r["duration_us"], 0,
            "{backend}: a refused event never ran: {r}"
        );
    }
    // The user was told, in a sentence.
    let mut mallory_ws = mallory.ws_live().await;
    mallory.say(&arena, "/loop").await;
    let told = mallory_ws.next_of("app_error").await;
    assert!(
        told["message"].as_str().unwrap().starts_with("Loop "),
        "{told}"
    );
    node.finish().await;
}

#[tokio::test]
async fn a_storm_of_looping_apps_does_not_starve_chat_or_other_apps() {
    // One backend after the other: two storms at once would measure each other.
    for db in TestDb::all().await.unwrap() {
        storm(TestNode::start_options(db, options()).await).await;
    }
}
