//! Mini-apps inside the messenger, over the real server and WebSocket: sideload, commands,
//! cards and button presses, consent, faults reported to the user, and the invocation log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::{TestNode, on_every_backend};
use serde_json::{Value, json};
use std::time::Duration;

const ECHO_MANIFEST: &str = include_str!("../../examples/echo/miniapp.toml");
const CARD_MANIFEST: &str = include_str!("../../examples/card/miniapp.toml");
const FAULTS_MANIFEST: &str = r#"
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
name = "loop"
help = "/loop"

[[commands]]
name = "login"
help = "/login CHALLENGE"

[[commands]]
name = "ok"
help = "/ok"

[[commands]]
name = "panic"
help = "/panic"
"#;

fn wasm(path: &str) -> Vec<u8> {
    minihost_guest_artifacts::read(path).unwrap()
}

/// A developer `alice` with a group `lab` where the component at `path` is sideloaded.
async fn lab_with(node: &TestNode, manifest: &str, path: &str) -> (minihost_tests::Client, String) {
    let alice = node.developer("alice").await;
    let lab = alice.group("lab", &[]).await;
    let r = alice.sideload(&lab, manifest, &wasm(path)).await;
    assert_eq!(r.0, 201, "{}: {r:?}", node.backend());
    (alice, lab)
}

/// The next message frame from an app (skipping the user's own messages and other frames).
async fn next_app_message(ws: &mut minihost_tests::Ws) -> Value {
    loop {
        let f = ws.next_of("message").await;
        if f["message"]["sender"]["type"] == "app" {
            return f["message"].clone();
        }
    }
}

#[tokio::test]
async fn the_echo_app_answers_a_command_live() {
    on_every_backend!(|node| {
        let alice = node.developer("alice").await;
        node.user("bob").await;
        let lab = alice.group("lab", &["bob"]).await;
        let r = alice
            .sideload(&lab, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
            .await;
        assert_eq!(r.0, 201, "{}: {r:?}", node.backend());
        assert_eq!(
            (r.1["app"].as_str(), r.1["version"].as_str()),
            (Some("echo"), Some("0.1.0"))
        );
        let listed = alice
            .get(&format!("/api/v1/conversations/{lab}/apps"))
            .await
            .1;
        assert_eq!(listed[0]["app"], "echo");
        assert_eq!(listed[0]["sideloaded"], true);

        let mut ws = alice.ws_live().await;
        alice.say(&lab, "/echo hi").await;
        let reply = next_app_message(&mut ws).await;
        assert_eq!(reply["content"], json!({"type": "text", "text": "hi"}));
        assert_eq!(reply["sender"]["id"], "echo");
        assert_eq!(reply["sender"]["name"], "Echo (unreviewed)");

        // The developer reads the invocation log; others cannot. The record is written just
        // after the reply is posted, so it may take a moment to appear.
        let mut log = alice.get("/api/v1/apps/echo/invocations").await;
        for _ in 0..100 {
            if log.1.as_array().is_some_and(|a| !a.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            log = alice.get("/api/v1/apps/echo/invocations").await;
        }
        assert_eq!(log.0, 200);
        assert_eq!(log.1[0]["event_kind"], "command");
        assert_eq!(log.1[0]["outcome"], "ok");
        assert!(log.1[0]["app_user_id"].as_str().unwrap().starts_with("au_"));
        let bob = node.client().signed_in("bob").await;
        assert_eq!(bob.get("/api/v1/apps/echo/invocations").await.0, 404);

        // The node's metrics count the invocation (the record above is written after them).
        let metrics = node
            .client()
            .raw(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for sample in [
            r#"minihost_invocations_total{app="echo",outcome="ok"} 1"#,
            r#"minihost_invocation_duration_seconds_count{app="echo"} 1"#,
        ] {
            assert!(metrics.contains(sample), "{sample} in {metrics}");
        }
    });
}

#[tokio::test]
async fn sideloaded_apps_are_for_their_developer_only() {
    let node = TestNode::start(minihost_tests::testing::TestDb::sqlite().unwrap()).await;
    let alice = node.developer("alice").await;
    let bob = node.user("bob").await;
    let lab = alice.group("lab", &["bob"]).await;
    // Bob is not a developer.
    let r = bob
        .sideload(&lab, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
        .await;
    assert_eq!(r.0, 403);
    let r = alice
        .sideload(&lab, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
        .await;
    assert_eq!(r.0, 201);
    // Bob does not see it and it does not answer him.
    assert_eq!(
        bob.get(&format!("/api/v1/conversations/{lab}/apps"))
            .await
            .1,
        json!([])
    );
    let mut bob_ws = bob.ws_live().await;
    bob.say(&lab, "/echo me").await;
    let mine = bob_ws.next_of("message").await;
    assert_eq!(mine["message"]["content"]["text"], "/echo me");
    assert_eq!(bob_ws.quiet_for(Duration::from_millis(500)).await, None);
    node.finish().await;
}

#[tokio::test]
async fn bad_sideloads_are_refused_with_findings() {
    let node = TestNode::start(minihost_tests::testing::TestDb::sqlite().unwrap()).await;
    let alice = node.developer("alice").await;
    let lab = alice.group("lab", &[]).await;
    let check = |status: u16, needle: &'static str, r: (u16, Value)| {
        assert_eq!(r.0, status, "{r:?}");
        let msg = r.1["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    };
    check(
        422,
        "name",
        alice
            .sideload(
                &lab,
                "id = \"x1x\"\n",
                &wasm(minihost_guest_artifacts::ECHO),
            )
            .await,
    );
    check(
        422,
        "component",
        alice
            .sideload(&lab, ECHO_MANIFEST, b"not wasm at all")
            .await,
    );
    // A component importing an interface its manifest does not declare a scope for.
    let undeclared = FAULTS_MANIFEST.replace(
        "[[scopes]]\nname = \"profile.read\"\nreason = \"To greet you.\"\n",
        "",
    );
    check(
        422,
        "profile",
        alice
            .sideload(&lab, &undeclared, &wasm(minihost_guest_artifacts::FAULTS))
            .await,
    );
    check(
        422,
        "component",
        alice
            .sideload(
                &lab,
                ECHO_MANIFEST,
                &wasm(minihost_guest_artifacts::UNKNOWN_IMPORT),
            )
            .await,
    );
    // Only into groups one owns.
    node.user("bob").await;
    let direct = alice.direct_with("bob").await;
    check(
        403,
        "groups you own",
        alice
            .sideload(
                &direct,
                ECHO_MANIFEST,
                &wasm(minihost_guest_artifacts::ECHO),
            )
            .await,
    );
    // An app id owned by someone else.
    let lab2 = alice.group("lab2", &[]).await;
    assert_eq!(
        alice
            .sideload(&lab2, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
            .await
            .0,
        201
    );
    let carol = node.developer("carol").await;
    let hers = carol.group("hers", &[]).await;
    check(
        409,
        "another developer",
        carol
            .sideload(&hers, ECHO_MANIFEST, &wasm(minihost_guest_artifacts::ECHO))
            .await,
    );
    assert_eq!(
        alice
            .get(&format!("/api/v1/conversations/{lab}/apps"))
            .await
            .1,
        json!([]),
        "nothing installed"
    );
    node.finish().await;
}

#[tokio::test]
async fn cards_and_button_presses() {
    on_every_backend!(|node| {
        let alice = node.developer("alice").await;
        let lab = alice.group("lab", &[]).await;
        assert_eq!(
            alice
                .sideload(&lab, CARD_MANIFEST, &wasm(minihost_guest_artifacts::CARD))
                .await
                .0,
            201
        );
        let mut ws = alice.ws_live().await;
        alice.say(&lab, "/card").await;
        let card = next_app_message(&mut ws).await;
        assert_eq!(card["content"]["type"], "card", "{card}");
        let id = card["id"].as_str().unwrap();
        let path = format!("/api/v1/conversations/{lab}/messages/{id}/actions");
        let r = alice.post(&path, &json!({"button": "nope"})).await;
        assert_eq!(r.0, 422, "no such button");
        let r = alice
            .post(
                &path,
                &json!({"button": "yes", "inputs": {"comment": "great", "bogus": "x"}}),
            )
            .await;
        assert_eq!(r.0, 202, "{r:?}");
        let answer = next_app_message(&mut ws).await;
        let text = answer["content"]["text"].as_str().unwrap();
        assert!(
            text.contains("You pressed yes") && text.contains("great"),
            "{}: {text}",
            node.backend()
        );
        // Buttons exist only on app cards.
        let mine = alice.say(&lab, "plain").await;
        let r = alice
            .post(
                &format!(
                    "/api/v1/conversations/{lab}/messages/{}/actions",
                    mine["id"].as_str().unwrap()
                ),
                &json!({"button": "yes"}),
            )
            .await;
        assert_eq!(r.0, 422);
    });
}

#[tokio::test]
async fn a_failing_app_is_reported_and_the_next_event_runs() {
    on_every_backend!(|node| {
        let (alice, lab) = lab_with(&node, FAULTS_MANIFEST, minihost_guest_artifacts::FAULTS).await;
        let mut ws = alice.ws_live().await;
        alice.say(&lab, "/loop").await;
        // First, consent: the app declares scopes.
        let ask = ws.next_of("consent_request").await;
        assert_eq!(ask["app"], "faults");
        let names: Vec<&str> = ask["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["messages.send", "profile.read", "auth.login", "storage"]
        );
        assert_eq!(ask["scopes"][0]["reason"], "To reply.");
        let pending = alice.get("/api/v1/me/consent-requests").await.1;
        assert_eq!(pending[0]["app"], "faults");
        let r = alice
            .put(
                "/api/v1/me/grants/faults",
                &json!({"scopes": ["messages.send"]}),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        // The parked /loop now runs, times out, and the user is told.
        let err = ws.next_of("app_error").await;
        assert_eq!(err["kind"], "timeout", "{err}");
        assert_eq!(
            err["message"],
            "Faults (unreviewed) took too long to answer. Its developer has been told."
        );
        alice.say(&lab, "/ok").await;
        let fine = next_app_message(&mut ws).await;
        assert_eq!(fine["content"]["text"], "fine", "{}", node.backend());
        alice.say(&lab, "/panic").await;
        let err = ws.next_of("app_error").await;
        assert_eq!(err["kind"], "trap", "{err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .ends_with("stopped unexpectedly. Its developer has been told."),
            "{err}"
        );
        let log = alice
            .get("/api/v1/apps/faults/invocations?limit=10")
            .await
            .1;
        let kinds: Vec<Value> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["error_kind"].clone())
            .collect();
        assert!(
            kinds.contains(&json!("timeout")) && kinds.contains(&json!("trap")),
            "{kinds:?}"
        );
        assert_eq!(alice.get("/api/v1/me/consent-requests").await.1, json!([]));
    });
}

#[tokio::test]
async fn a_new_version_asks_again_for_just_its_new_scopes() {
    let node = TestNode::start(minihost_tests::testing::TestDb::sqlite().unwrap()).await;
    let dev = node.developer("dev").await;
    let rita = node.reviewer("rita").await;
    let bob = node.user("bob").await;
    let g = bob.group("g", &[]).await;
    let echo = wasm(minihost_guest_artifacts::ECHO);
    let v1 = ECHO_MANIFEST.replace(
        "[[commands]]",
        "[[scopes]]\nname = \"messages.send\"\nreason = \"To answer.\"\n\n[[commands]]",
    );
    let v2 = v1
        .replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        .replace(
            "[[commands]]",
            "[[scopes]]\nname = \"profile.read\"\nreason = \"To greet you by name.\"\n\n[[commands]]",
        );
    let release = |manifest: String, version: &'static str| {
        let (dev, rita, echo) = (dev.clone(), rita.clone(), echo.clone());
        async move {
            assert_eq!(dev.submit("echo", &manifest, &echo).await.0, 201);
            rita.approve_and_release("echo", version).await;
        }
    };
    release(v1, "0.1.0").await;
    assert_eq!(
        bob.put(&format!("/api/v1/conversations/{g}/apps/echo"), &json!({}))
            .await
            .0,
        201
    );
    let mut ws = bob.ws_live().await;
    bob.say(&g, "/echo one").await;
    let ask = ws.next_of("consent_request").await;
    assert_eq!(
        ask["scopes"],
        json!([{"name": "messages.send", "reason": "To answer.", "new": true, "granted": false}])
    );
    bob.put(
        "/api/v1/me/grants/echo",
        &json!({"scopes": ["messages.send"]}),
    )
    .await;
    assert_eq!(next_app_message(&mut ws).await["content"]["text"], "one");
    bob.say(&g, "/echo two").await;
    assert_eq!(
        next_app_message(&mut ws).await["content"]["text"],
        "two",
        "not asked again"
    );

    release(v2, "0.2.0").await;
    let r = bob
        .put(&format!("/api/v1/conversations/{g}/apps/echo"), &json!({}))
        .await;
    assert_eq!(r.1["version"], "0.2.0");
    bob.say(&g, "/echo three").await;
    let ask = ws.next_of("consent_request").await;
    assert_eq!(ask["version"], "0.2.0");
    assert_eq!(
        ask["scopes"],
        json!([
            {"name": "messages.send", "reason": "To answer.", "new": false, "granted": true},
            {"name": "profile.read", "reason": "To greet you by name.", "new": true, "granted": false}
        ])
    );
    // Declining the new scope keeps the old grant.
    let r = bob
        .put(
            "/api/v1/me/grants/echo",
            &json!({"scopes": ["messages.send"]}),
        )
        .await;
    assert_eq!(
        (r.1["scopes"].clone(), r.1["version"].clone()),
        (json!(["messages.send"]), json!("0.2.0"))
    );
    assert_eq!(next_app_message(&mut ws).await["content"]["text"], "three");
    // Unknown scopes are refused.
    let r = bob
        .put(
            "/api/v1/me/grants/echo",
            &json!({"scopes": ["payments.request"]}),
        )
        .await;
    assert_eq!(r.0, 422);
    node.finish().await;
}

/// RFC 7636's example pair.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test]
async fn an_app_gets_a_login_code_inside_the_sandbox_and_its_backend_a_token() {
    on_every_backend!(|node| {
        let (alice, lab) = lab_with(&node, FAULTS_MANIFEST, minihost_guest_artifacts::FAULTS).await;
        let creds = alice
            .post("/api/v1/apps", &json!({"id": "faults", "name": "Faults"}))
            .await;
        assert_eq!(creds.0, 201, "{creds:?}");
        let (client_id, secret) = (
            creds.1["client_id"].as_str().unwrap().to_owned(),
            creds.1["client_secret"].as_str().unwrap().to_owned(),
        );
        let mut ws = alice.ws_live().await;
        alice.say(&lab, &format!("/login {CHALLENGE}")).await;
        ws.next_of("consent_request").await;
        alice
            .put(
                "/api/v1/me/grants/faults",
                &json!({"scopes": ["messages.send"]}),
            )
            .await;
        let denied = next_app_message(&mut ws).await;
        assert_eq!(
            denied["content"]["text"],
            "permission-denied:auth.login",
            "{}",
            node.backend()
        );

        alice
            .put(
                "/api/v1/me/grants/faults",
                &json!({"scopes": ["messages.send", "auth.login"]}),
            )
            .await;
        alice.say(&lab, "/login not-a-challenge").await;
        let bad = next_app_message(&mut ws).await;
        assert!(
            bad["content"]["text"]
                .as_str()
                .unwrap()
                .starts_with("invalid:"),
            "{bad}"
        );
        alice.say(&lab, &format!("/login {CHALLENGE}")).await;
        let reply = next_app_message(&mut ws).await;
        let text = reply["content"]["text"].as_str().unwrap();
        let code = text.strip_prefix("ok:").unwrap_or_else(|| panic!("{text}"));

        // The backend exchanges it with its secret and the PKCE verifier.
        let form = format!(
            "grant_type=authorization_code&code={code}&code_verifier={VERIFIER}&client_id={client_id}&client_secret={secret}"
        );
        let anon = node.client();
        let r = anon
            .send(
                anon.raw(reqwest::Method::POST, "/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone()),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let token = r.1["access_token"].as_str().unwrap();
        let me = anon
            .send(
                anon.raw(reqwest::Method::GET, "/open/v1/me")
                    .bearer_auth(token),
            )
            .await;
        assert_eq!(me.0, 200, "{me:?}");
        assert!(me.1.to_string().contains("au_"), "{me:?}");
        // The code works once.
        let again = anon
            .send(
                anon.raw(reqwest::Method::POST, "/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form),
            )
            .await;
        assert_eq!(
            (again.0, again.1["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        let record = alice.get("/api/v1/me/privacy").await.1;
        assert!(
            record
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["capability"] == "auth.login" && e["outcome"] == "ok"),
            "{record}"
        );
    });
}
