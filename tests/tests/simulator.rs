//! The simulator is the server: the same hostile and ordinary commands run through a real node
//! (over HTTP, with the user's consent answered) and through `minihost app run`'s simulator end
//! the same way: the same outcome, the same error kind, the same reply.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost::simulate::NodeSimulator;
use minihost_devtools::{SimRequest, Simulator};
use minihost_runtime::Event;
use minihost_tests::TestNode;
use minihost_tests::testing::TestDb;
use serde_json::{Value, json};
use std::time::Duration;

/// The faults guest with every command declared, and the longest time budget the platform
/// allows, so that no fault but the loop can become a timeout on a loaded machine.
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
name = "auth.login"
reason = "To sign you in to our website."

[[scopes]]
name = "storage"
reason = "To remember things."

[[commands]]
name = "ok"
help = "/ok"
[[commands]]
name = "loop"
help = "/loop"
[[commands]]
name = "bomb"
help = "/bomb"
[[commands]]
name = "recurse"
help = "/recurse"
[[commands]]
name = "panic"
help = "/panic"
[[commands]]
name = "huge"
help = "/huge MIB"
[[commands]]
name = "flood"
help = "/flood"
[[commands]]
name = "send"
help = "/send"
[[commands]]
name = "profile"
help = "/profile"
[[commands]]
name = "login"
help = "/login CHALLENGE"
[[commands]]
name = "fail"
help = "/fail"
[[commands]]
name = "remember"
help = "/remember X"
[[commands]]
name = "amplify"
help = "/amplify TARGET BLOCKS KIB"

[limits]
timeout_ms = 2000
"#;

/// (command, args): each misbehaves in one way or touches one capability.
const CASES: &[(&str, &str)] = &[
    ("ok", ""),
    ("loop", ""),
    ("bomb", ""),
    ("recurse", ""),
    ("panic", ""),
    ("huge", "4"),
    ("flood", ""),
    ("send", ""),
    ("profile", ""),
    ("login", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
    ("fail", ""),
    ("remember", "x"),
    ("amplify", "reply 112 1024"),
    ("amplify", "send 112 1024"),
    ("amplify", "storage 1 600"),
    ("amplify", "storage 1 2048"),
];

/// What both sides must agree on: ok or error, the error kind, and the reply (the app's last
/// message) with the parts
/// that name this run (message ids, codes, the user's name) cut off after `ok:`.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    outcome: String,
    kind: Option<String>,
    reply: Option<String>,
}

fn normalise(reply: Option<&str>) -> Option<String> {
    reply.map(|r| match r.strip_prefix("ok:") {
        Some(rest) if !rest.is_empty() => "ok:…".to_owned(),
        _ => r.to_owned(),
    })
}

const GRANTS: [&str; 4] = ["messages.send", "profile.read", "auth.login", "storage"];

async fn on_the_server(node: &TestNode) -> Vec<Outcome> {
    let alice = node.developer("alice").await;
    let lab = alice.group("lab", &[]).await;
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::FAULTS).unwrap();
    assert_eq!(alice.sideload(&lab, MANIFEST, &wasm).await.0, 201);
    // Consent first: the first command waits for the answer.
    let mut ws = alice.ws_live().await;
    alice.say(&lab, "/ok").await;
    ws.next_of("consent_request").await;
    let r = alice
        .put("/api/v1/me/grants/faults", &json!({ "scopes": GRANTS }))
        .await;
    assert_eq!(r.0, 200, "{r:?}");
    wait_for_log(&alice, 1).await;

    let mut outcomes = Vec::new();
    for (i, (name, args)) in CASES.iter().enumerate() {
        let before = last_seq(&alice, &lab).await;
        alice.say(&lab, &format!("/{name} {args}")).await;
        let entry = wait_for_log(&alice, i + 2).await;
        // The record is written after the reply is posted: the reply, if any, is there.
        let history = alice
            .get(&format!(
                "/api/v1/conversations/{lab}/messages?after={before}"
            ))
            .await
            .1;
        let reply = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|m| m["sender"]["type"] == "app")
            .map(|m| match m["content"]["type"].as_str() {
                Some("text") => m["content"]["text"].as_str().unwrap().to_owned(),
                _ => m["content"].to_string(),
            });
        outcomes.push(Outcome {
            outcome: entry["outcome"].as_str().unwrap().to_owned(),
            kind: entry["error_kind"].as_str().map(str::to_owned),
            reply: normalise(reply.as_deref()),
        });
    }
    outcomes
}

async fn last_seq(client: &minihost_tests::Client, conversation: &str) -> i64 {
    let page = client
        .get(&format!("/api/v1/conversations/{conversation}/messages"))
        .await
        .1;
    page["messages"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|m| m["seq"].as_i64())
        .unwrap_or(0)
}

/// Waits until the invocation log holds `n` entries; returns the newest.
async fn wait_for_log(client: &minihost_tests::Client, n: usize) -> Value {
    for _ in 0..400 {
        let log = client
            .get("/api/v1/apps/faults/invocations?limit=100")
            .await
            .1;
        if let Some(entries) = log.as_array()
            && entries.len() >= n
        {
            return entries[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the invocation log never reached {n} entries");
}

async fn in_the_simulator() -> Vec<Outcome> {
    let simulator = NodeSimulator {
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-cache")),
    };
    let component = minihost_guest_artifacts::read(minihost_guest_artifacts::FAULTS).unwrap();
    let mut outcomes = Vec::new();
    for (name, args) in CASES {
        let result = simulator
            .simulate(SimRequest {
                manifest: MANIFEST.to_owned(),
                component: component.clone(),
                grants: GRANTS.iter().map(|s| s.to_string()).collect(),
                event: Event::command(*name, *args),
                then_press: None,
            })
            .await
            .unwrap()
            .unwrap_or_else(|refusal| panic!("/{name}: refused: {refusal}"));
        let report = &result.reports[0];
        let (outcome, kind) = match (&report.outcome, &result.rejected[0]) {
            (Err(e), _) => ("error", Some(e.kind.as_str().to_owned())),
            (Ok(_), Some(_)) => ("error", Some("reply_rejected".to_owned())),
            (Ok(_), None) => ("ok", None),
        };
        let reply = result.messages.last().map(|m| match &m.content {
            minihost_core::Content::Text { text } => text.clone(),
            other => serde_json::to_value(other).unwrap().to_string(),
        });
        outcomes.push(Outcome {
            outcome: outcome.to_owned(),
            kind,
            reply: normalise(reply.as_deref()),
        });
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_ends_every_case_as_the_server_does() {
    let node = TestNode::start(TestDb::sqlite().unwrap()).await;
    let server = on_the_server(&node).await;
    node.finish().await;
    let simulated = in_the_simulator().await;
    for (((name, args), server), simulated) in CASES.iter().zip(&server).zip(&simulated) {
        assert_eq!(server, simulated, "/{name} {args}: server vs simulator");
    }
    // The cases are not all alike: faults of several kinds, and capability answers.
    let kinds: std::collections::BTreeSet<_> =
        server.iter().filter_map(|o| o.kind.clone()).collect();
    for kind in [
        "timeout",
        "memory_limit",
        "stack_overflow",
        "trap",
        "data_limit",
        "too_many_calls",
    ] {
        assert!(kinds.contains(kind), "no case ended as {kind}: {server:#?}");
    }
    assert!(
        server.iter().any(|o| o.reply.as_deref() == Some("ok:…")),
        "no capability call succeeded: {server:#?}"
    );
}

/// The shop's Buy button in the simulator: the real payments capability makes one pending
/// request (shown to the developer), and without the grant the press fails as on a server.
#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_shows_the_payment_requests_an_app_makes() {
    let simulator = NodeSimulator {
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sim-cache")),
    };
    let component = minihost_guest_artifacts::read(minihost_guest_artifacts::SHOP).unwrap();
    let run = |grants: &[&str]| SimRequest {
        manifest: include_str!("../../examples/shop/miniapp.toml").to_owned(),
        component: component.clone(),
        grants: grants.iter().map(|s| s.to_string()).collect(),
        event: Event::command("shop", ""),
        then_press: Some(("matcha".into(), Vec::new())),
    };
    let all = ["messages.send", "payments.request", "storage"];
    let result = simulator.simulate(run(&all)).await.unwrap().unwrap();
    assert_eq!(result.payments.len(), 1, "{:?}", result.payments);
    let p = &result.payments[0];
    assert_eq!(
        (
            p.amount,
            p.currency.as_str(),
            p.amount_text.as_str(),
            p.state.as_str()
        ),
        (1_450, "EUR", "€14.50", "pending")
    );
    assert_eq!(p.description, "Matcha, 30 g");

    let without = simulator
        .simulate(run(&["messages.send", "storage"]))
        .await
        .unwrap()
        .unwrap();
    assert!(without.payments.is_empty());
    let press = &without.reports[1];
    assert_eq!(
        press.calls[0].outcome.as_str(),
        "denied",
        "{:?}",
        press.calls
    );
}
