//! The registry through a real server, on every backend: publish with findings, claim and
//! review, release to everyone, a second version with a new scope highlighted and released to
//! half the users (who are asked for the new scope only), a rollback that puts everyone back,
//! a report, the kill switch and its lifting, and the audit log; then every refusal the issue
//! names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_core::Role;
use minihost_tests::{Client, TestNode, Ws, on_every_backend};
use serde_json::{Value, json};
use std::time::Duration;

const ECHO: &str = include_str!("../../examples/echo/miniapp.toml");
const USERS: usize = 16;

fn echo_wasm() -> Vec<u8> {
    minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO).unwrap()
}

/// Echo 1.0.0 asking for `messages.send`; 1.1.0 also for `profile.read`.
fn manifest(version: &str) -> String {
    let mut m = ECHO
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "[[commands]]",
            "[[scopes]]\nname = \"messages.send\"\nreason = \"To answer.\"\n\n[[commands]]",
        );
    if version != "1.0.0" {
        m = m.replace(
            "[[commands]]",
            "[[scopes]]\nname = \"profile.read\"\nreason = \"To greet you by name.\"\n\n[[commands]]",
        );
    }
    m
}

async fn publish(
    dev: &Client,
    app: &str,
    manifest: &str,
    wasm: &[u8],
    notes: &str,
) -> (u16, Value) {
    use base64::Engine;
    let component = base64::engine::general_purpose::STANDARD.encode(wasm);
    dev.post(
        &format!("/api/v1/apps/{app}/versions"),
        &json!({"manifest": manifest, "component": component, "notes": notes}),
    )
    .await
}

/// What a user's `/echo` came to: the app's reply, or a consent request first.
enum Answer {
    Reply(String),
    Consent(Value),
}

/// The next consent request, or the app's reply `expected` (the group's other replies, which
/// every member sees, are skipped).
async fn next_answer(ws: &mut Ws, expected: &str) -> Answer {
    loop {
        let f = ws.next_json().await;
        match f["type"].as_str() {
            Some("consent_request") => return Answer::Consent(f),
            Some("message")
                if f["message"]["sender"]["type"] == "app"
                    && f["message"]["content"]["text"] == expected =>
            {
                return Answer::Reply(expected.to_owned());
            }
            _ => {}
        }
    }
}

/// After the user's own message `sent` comes back, nothing from an app (no reply, no consent
/// request, no error) arrives within `wait`.
async fn no_app_answer(ws: &mut Ws, sent: &str, wait: Duration) {
    while ws.next_of("message").await["message"]["content"]["text"] != sent {}
    let end = tokio::time::Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let Some(f) = ws.quiet_for(left).await else {
            return;
        };
        let from_app = f["message"]["sender"]["type"] == "app"
            || f["type"] == "consent_request"
            || f["type"] == "app_error";
        assert!(!from_app, "a suspended app answered: {f}");
    }
}

/// The app's invocation log, newest first, once it holds at least `n` records (a record is
/// written with the writer's batch after the reply it made).
async fn invocations_at_least(dev: &Client, n: usize) -> Vec<Value> {
    loop {
        let r = dev.get("/api/v1/apps/echo/invocations?limit=500").await;
        assert_eq!(r.0, 200, "{r:?}");
        let log = r.1.as_array().unwrap().clone();
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn reviewers(node: &TestNode) -> (Client, Client) {
    let rita = node.reviewer("rita").await;
    let root = node.user("root").await;
    node.node.store.set_role("root", Role::Admin).await.unwrap();
    (rita, root)
}

#[tokio::test]
async fn publish_review_release_roll_out_roll_back_report_and_suspend() {
    on_every_backend!(|node| {
        let dev = node.developer("devi").await;
        let (rita, root) = reviewers(&node).await;

        // v1: published with its findings and content hash; queued.
        let r = publish(
            &dev,
            "echo",
            &manifest("1.0.0"),
            &echo_wasm(),
            "First version.",
        )
        .await;
        assert_eq!(r.0, 201, "{r:?}");
        assert_eq!(r.1["status"], "submitted");
        assert_eq!(r.1["sha256"].as_str().unwrap().len(), 64);
        let checks: Vec<&str> = r.1["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["check"].as_str().unwrap())
            .collect();
        for check in ["world", "imports", "size", "compile", "smoke"] {
            assert!(checks.contains(&check), "{check} missing: {r:?}");
        }
        let queue = rita.get("/api/v1/review/queue").await.1;
        assert_eq!(
            (queue[0]["app"].as_str(), queue[0]["version"].as_str()),
            (Some("echo"), Some("1.0.0"))
        );
        assert_eq!(queue[0]["notes"], "First version.");
        let shown = rita.get("/api/v1/review/echo/1.0.0").await;
        assert_eq!(shown.0, 200, "{shown:?}");
        assert!(shown.1["version"]["findings"].to_string().contains("smoke"));
        rita.approve_and_release("echo", "1.0.0").await;

        // Users install and use it.
        let names: Vec<String> = (0..USERS).map(|i| format!("user{i:02}")).collect();
        let mut users = Vec::new();
        for n in &names {
            users.push(node.user(n).await);
        }
        // Two groups of eight: each group's replies stay within the app's send budget there.
        let owner = node.user("owner").await;
        let mut groups = Vec::new();
        for half in names.chunks(USERS / 2) {
            let refs: Vec<&str> = half.iter().map(String::as_str).collect();
            let g = owner.group("echoes", &refs).await;
            let r = owner
                .put(&format!("/api/v1/conversations/{g}/apps/echo"), &json!({}))
                .await;
            assert_eq!(
                (r.0, r.1["status"].as_str()),
                (201, Some("released")),
                "{r:?}"
            );
            groups.push(g);
        }
        let group_of = |i: usize| groups[i / (USERS / 2)].clone();
        let g = group_of(1);
        let mut sockets = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let mut ws = u.ws_live().await;
            let one = format!("one {i}");
            u.say(&group_of(i), &format!("/echo {one}")).await;
            match next_answer(&mut ws, &one).await {
                Answer::Consent(ask) => {
                    assert_eq!(ask["version"], "1.0.0");
                    let r = u
                        .put(
                            "/api/v1/me/grants/echo",
                            &json!({"scopes": ["messages.send"]}),
                        )
                        .await;
                    assert_eq!(r.0, 200, "{r:?}");
                }
                Answer::Reply(t) => panic!("no consent asked: {t}"),
            }
            assert!(matches!(next_answer(&mut ws, &one).await, Answer::Reply(_)));
            sockets.push(ws);
        }

        // v2 adds a scope: highlighted for the reviewer; released to half the users.
        let r = publish(
            &dev,
            "echo",
            &manifest("1.1.0"),
            &echo_wasm(),
            "Greets by name.",
        )
        .await;
        assert_eq!(r.0, 201, "{r:?}");
        let changed: Vec<String> = r.1["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["result"] == "changed")
            .map(|f| f["message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].contains("new scope profile.read"), "{changed:?}");
        let shown = rita.get("/api/v1/review/echo/1.1.0").await.1;
        assert!(
            shown["version"]["findings"]
                .to_string()
                .contains("new scope profile.read")
        );
        assert_eq!(
            rita.post("/api/v1/review/echo/1.1.0/claim", &json!({}))
                .await
                .0,
            204
        );
        let r = rita
            .post("/api/v1/review/echo/1.1.0", &json!({"decision": "approve"}))
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let r = rita
            .put(
                "/api/v1/apps/echo/release",
                &json!({"version": "1.1.0", "percent": 50}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["candidate"].as_str(), r.1["percent"].as_i64()),
            (200, Some("1.1.0"), Some(50)),
            "{r:?}"
        );

        let mut on_v2 = Vec::new();
        for (i, (u, ws)) in users.iter().zip(sockets.iter_mut()).enumerate() {
            let two = format!("two {i}");
            u.say(&group_of(i), &format!("/echo {two}")).await;
            match next_answer(ws, &two).await {
                Answer::Reply(_) => {}
                Answer::Consent(ask) => {
                    // Asked for the new scope only: the old one stays granted.
                    assert_eq!(ask["version"], "1.1.0");
                    let new: Vec<&str> = ask["scopes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|s| s["new"] == true)
                        .map(|s| s["name"].as_str().unwrap())
                        .collect();
                    assert_eq!(new, ["profile.read"], "{ask}");
                    let r = u
                        .put(
                            "/api/v1/me/grants/echo",
                            &json!({"scopes": ["messages.send", "profile.read"]}),
                        )
                        .await;
                    assert_eq!(r.0, 200, "{r:?}");
                    assert!(matches!(next_answer(ws, &two).await, Answer::Reply(_)));
                    on_v2.push(i);
                }
            }
        }
        assert!(
            !on_v2.is_empty() && on_v2.len() < USERS,
            "50% of {USERS}: {on_v2:?}"
        );
        let log = invocations_at_least(&dev, 2 * USERS).await;
        let versions: std::collections::BTreeSet<&str> =
            log.iter().map(|i| i["version"].as_str().unwrap()).collect();
        assert_eq!(versions, ["1.0.0", "1.1.0"].into_iter().collect());
        // The developer's per-version figures.
        let stats = dev.get("/api/v1/apps/echo/stats").await;
        assert_eq!(stats.0, 200, "{stats:?}");
        let per: Vec<(&str, i64)> = stats
            .1
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["version"].as_str().unwrap(),
                    v["invocations"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(per.len(), 2, "{stats:?}");
        assert_eq!(per.iter().map(|(_, n)| n).sum::<i64>(), log.len() as i64);
        assert!(stats.1.as_array().unwrap().iter().all(|v| v["errors"] == 0
            && v["p50_us"].as_i64().unwrap() > 0
            && v["p99_us"].as_i64() >= v["p50_us"].as_i64()));
        assert_eq!(users[0].get("/api/v1/apps/echo/stats").await.0, 404);

        // Rolled back: everyone on 1.0.0 again.
        let r = rita.post("/api/v1/apps/echo/rollback", &json!({})).await;
        assert_eq!(
            (r.0, r.1["stable"].as_str(), &r.1["candidate"]),
            (200, Some("1.0.0"), &Value::Null),
            "{r:?}"
        );
        let i = on_v2[0];
        users[i].say(&group_of(i), "/echo three").await;
        assert!(matches!(
            next_answer(&mut sockets[i], "three").await,
            Answer::Reply(_)
        ));
        let log = invocations_at_least(&dev, 2 * USERS + 1).await;
        assert_eq!(log[0]["version"], "1.0.0", "{:?}", log[0]);

        // A report reaches the reviewers with what the app did lately.
        let r = users[0]
            .post(
                "/api/v1/apps/echo/reports",
                &json!({"reason": "It repeats everything I say", "conversation": g}),
            )
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let reports = rita.get("/api/v1/review/reports").await.1;
        assert_eq!(
            reports[0]["report"]["reason"],
            "It repeats everything I say"
        );
        assert!(!reports[0]["recent"].as_array().unwrap().is_empty());

        // Suspended: nothing of it runs, anywhere; the developer sees why.
        let r = rita
            .put(
                "/api/v1/apps/echo/suspension",
                &json!({"reason": "Under investigation"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let before = invocations_at_least(&dev, 2 * USERS + 1).await.len();
        users[1].say(&g, "/echo four").await;
        no_app_answer(&mut sockets[1], "/echo four", Duration::from_millis(1500)).await;
        let after = dev
            .get("/api/v1/apps/echo/invocations?limit=500")
            .await
            .1
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after, "a suspended app ran");
        let mine = dev.get("/api/v1/apps/echo/versions").await.1;
        assert_eq!(mine["suspended"], "Under investigation");
        let listed = owner
            .get(&format!("/api/v1/conversations/{g}/apps"))
            .await
            .1;
        assert_eq!(listed[0]["suspended"], true, "{listed}");
        assert!(
            rita.get("/api/v1/review/reports")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty(),
            "reports resolved"
        );
        let other = owner.group("other", &[]).await;
        let r = owner
            .put(
                &format!("/api/v1/conversations/{other}/apps/echo"),
                &json!({}),
            )
            .await;
        assert_eq!(r.0, 409, "{r:?}");
        let r = users[2]
            .put(
                "/api/v1/me/grants/echo",
                &json!({"scopes": ["messages.send"]}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (409, Some("app_suspended")),
            "{r:?}"
        );

        // Lifted: it runs again.
        assert_eq!(rita.delete("/api/v1/apps/echo/suspension").await.0, 204);
        users[1].say(&g, "/echo five").await;
        assert!(matches!(
            next_answer(&mut sockets[1], "five").await,
            Answer::Reply(_)
        ));

        // The audit log tells who did what, in order.
        let audit = root.get("/api/v1/admin/audit?subject=echo").await;
        assert_eq!(audit.0, 200, "{audit:?}");
        let actions: Vec<&str> = audit
            .1
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "version.in_review",
                "version.approved",
                "release",
                "version.in_review",
                "version.approved",
                "release",
                "rollback",
                "suspend",
                "unsuspend"
            ],
            "{audit:?}"
        );
        assert!(audit.1.to_string().contains("reviewer:rita"));
        assert_eq!(
            rita.get("/api/v1/admin/audit?subject=echo").await.0,
            403,
            "admins only"
        );
    });
}

#[tokio::test]
async fn the_registry_refuses_what_it_must() {
    on_every_backend!(|node| {
        let dev = node.developer("devi").await;
        let (rita, root) = reviewers(&node).await;
        let user = node.user("uma").await;
        let wasm = echo_wasm();

        // Not a component, or a manifest for another app: nothing is stored.
        let r = publish(&dev, "echo", &manifest("1.0.0"), b"\0asm\x01\0\0\0", "").await;
        assert_eq!(r.0, 422, "{r:?}");
        let r = publish(&dev, "other", &manifest("1.0.0"), &wasm, "").await;
        assert_eq!(r.0, 422, "{r:?}");
        assert!(
            r.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not \"other\"")
        );
        assert_eq!(dev.get("/api/v1/apps/other/versions").await.0, 404);
        assert_eq!(dev.get("/api/v1/apps/echo/versions").await.0, 404);
        assert!(
            rita.get("/api/v1/review/queue")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty()
        );
        let r = publish(&dev, "echo", &manifest("1.0.0"), &wasm, &"n".repeat(5000)).await;
        assert_eq!(r.0, 422, "notes too long: {r:?}");

        // A version number is published once.
        assert_eq!(
            publish(&dev, "echo", &manifest("1.0.0"), &wasm, "").await.0,
            201
        );
        assert_eq!(
            publish(&dev, "echo", &manifest("1.0.0"), &wasm, "").await.0,
            409
        );

        // Only reviewers review; nobody reviews their own app, admins included.
        for (method, path) in [
            ("GET", "/api/v1/review/queue"),
            ("GET", "/api/v1/review/echo/1.0.0"),
            ("POST", "/api/v1/review/echo/1.0.0/claim"),
            ("GET", "/api/v1/review/reports"),
        ] {
            let r = match method {
                "GET" => user.get(path).await,
                _ => user.post(path, &json!({})).await,
            };
            assert_eq!(r.0, 403, "{method} {path}: {r:?}");
        }
        let r = user
            .put("/api/v1/apps/echo/suspension", &json!({"reason": "x"}))
            .await;
        assert_eq!(r.0, 403, "{r:?}");
        let r = root.post("/api/v1/apps/mine/versions", &json!({})).await;
        assert_eq!(r.0, 400, "{r:?}");
        let mine = manifest("1.0.0").replace("id = \"echo\"", "id = \"mine\"");
        assert_eq!(publish(&root, "mine", &mine, &wasm, "").await.0, 201);
        let r = root
            .post("/api/v1/review/mine/1.0.0/claim", &json!({}))
            .await;
        assert_eq!(r.0, 403, "an admin reviewing their own app: {r:?}");

        // The workflow's order: claim first; a rejection needs a reason; one claimer.
        let r = rita
            .post("/api/v1/review/echo/1.0.0", &json!({"decision": "approve"}))
            .await;
        assert_eq!(r.0, 409, "approve without a claim: {r:?}");
        assert_eq!(
            rita.post("/api/v1/review/echo/1.0.0/claim", &json!({}))
                .await
                .0,
            204
        );
        assert_eq!(
            root.post("/api/v1/review/echo/1.0.0/claim", &json!({}))
                .await
                .0,
            409
        );
        let r = root
            .post("/api/v1/review/echo/1.0.0", &json!({"decision": "approve"}))
            .await;
        assert_eq!(r.0, 409, "decided by someone who did not claim it: {r:?}");
        let r = rita
            .post("/api/v1/review/echo/1.0.0", &json!({"decision": "reject"}))
            .await;
        assert_eq!(r.0, 422, "{r:?}");
        let r = rita
            .post(
                "/api/v1/review/echo/1.0.0",
                &json!({"decision": "reject", "reason": "The help text is wrong"}),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let mine = dev.get("/api/v1/apps/echo/versions").await.1;
        assert_eq!(mine["versions"][0]["status"], "rejected");
        assert_eq!(mine["versions"][0]["reason"], "The help text is wrong");
        assert_eq!(mine["versions"][0]["reviewer"], "rita");

        // Release: only approved versions, 0 to 100 percent; a rollback needs something earlier.
        let r = dev
            .put("/api/v1/apps/echo/release", &json!({"version": "1.0.0"}))
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (409, Some("not_approved")),
            "{r:?}"
        );
        let r = dev
            .put(
                "/api/v1/apps/echo/release",
                &json!({"version": "1.0.0", "percent": 101}),
            )
            .await;
        assert_eq!(r.0, 422, "{r:?}");
        let r = dev.post("/api/v1/apps/echo/rollback", &json!({})).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (409, Some("nothing_to_roll_back")),
            "{r:?}"
        );

        // Unreleased: not installable, so nobody runs it.
        let g = user.group("g", &[]).await;
        let r = user
            .put(&format!("/api/v1/conversations/{g}/apps/echo"), &json!({}))
            .await;
        assert_eq!(r.0, 404, "{r:?}");

        // A developer withdraws a submission; it cannot then be claimed.
        assert_eq!(
            publish(&dev, "echo", &manifest("1.0.1"), &wasm, "").await.0,
            201
        );
        assert_eq!(
            dev.post("/api/v1/apps/echo/versions/1.0.1/withdraw", &json!({}))
                .await
                .0,
            204
        );
        assert_eq!(
            dev.post("/api/v1/apps/echo/versions/1.0.1/withdraw", &json!({}))
                .await
                .0,
            409
        );
        assert_eq!(
            rita.post("/api/v1/review/echo/1.0.1/claim", &json!({}))
                .await
                .0,
            409
        );
        assert_eq!(
            user.post("/api/v1/apps/echo/versions/1.0.1/withdraw", &json!({}))
                .await
                .0,
            404
        );
    });
}

#[tokio::test]
async fn a_user_uses_an_app_in_their_own_panel_without_a_group() {
    on_every_backend!(|node| {
        let tea = node.developer("tea").await;
        let (rita, _) = reviewers(&node).await;
        let shop = include_str!("../../examples/shop/miniapp.toml");
        let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::SHOP).unwrap();
        assert_eq!(publish(&tea, "shop", shop, &wasm, "").await.0, 201);
        // Not released yet: not in the directory, not addable.
        let bob = node.user("bob").await;
        let r = bob.put("/api/v1/me/apps/shop", &json!({})).await;
        assert_eq!(r.0, 404, "{r:?}");
        rita.approve_and_release("shop", "0.1.0").await;

        // The directory lists it with its scopes and reasons; a search finds it.
        let found = bob.get("/api/v1/directory?q=tea%20shop").await.1;
        assert_eq!(found[0]["id"], "shop", "{found}");
        assert_eq!(found[0]["developer"], "TEA");
        assert!(found[0]["scopes"].to_string().contains("payments.request"));
        assert!(
            bob.get("/api/v1/directory?q=nothing-like-it")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty()
        );

        // bob opens it in his panel: a private conversation, consent, the app's card.
        let mut ws = bob.ws_live().await;
        let r = bob.post("/api/v1/me/apps/shop/open", &json!({})).await;
        assert_eq!(r.0, 202, "{r:?}");
        let conversation = r.1["conversation"].as_str().unwrap().to_owned();
        let ask = ws.next_of("consent_request").await;
        assert_eq!(ask["conversation"], conversation.as_str());
        let r = bob
            .put(
                "/api/v1/me/grants/shop",
                &json!({"scopes": ["messages.send", "payments.request", "storage"]}),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let bob_card = loop {
            let f = ws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                break f;
            }
        };
        assert_eq!(bob_card["conversation"], conversation.as_str());
        let listed = bob.get("/api/v1/me/apps").await.1;
        assert_eq!(
            (
                listed[0]["app"].as_str(),
                listed[0]["conversation"].as_str()
            ),
            (Some("shop"), Some(conversation.as_str()))
        );
        // Adding again is the same panel; the conversation has bob alone.
        let again = bob.put("/api/v1/me/apps/shop", &json!({})).await;
        assert_eq!(again.1["conversation"], conversation.as_str());
        let members = bob
            .get(&format!("/api/v1/conversations/{conversation}"))
            .await
            .1;
        assert_eq!(
            members["members"].as_array().map(Vec::len),
            Some(1),
            "{members}"
        );

        // From a card in a group, alice's press on the panel button brings her to her own panel.
        let alice = node.user("alice").await;
        let g = tea.group("tea lovers", &["alice"]).await;
        assert_eq!(
            tea.put(&format!("/api/v1/conversations/{g}/apps/shop"), &json!({}))
                .await
                .0,
            201
        );
        let mut aws = alice.ws_live().await;
        alice.say(&g, "/shop").await;
        aws.next_of("consent_request").await;
        alice
            .put(
                "/api/v1/me/grants/shop",
                &json!({"scopes": ["messages.send", "payments.request", "storage"]}),
            )
            .await;
        let card = loop {
            let f = aws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                break f;
            }
        };
        let path = format!(
            "/api/v1/conversations/{g}/messages/{}/actions",
            card["message"]["id"].as_str().unwrap()
        );
        assert_eq!(
            alice.post(&path, &json!({"button": "open-panel"})).await.0,
            202
        );
        let opened = aws.next_of("panel_opened").await;
        assert_eq!(opened["app"], "shop");
        let hers = opened["conversation"].as_str().unwrap();
        assert_ne!(hers, conversation, "her own panel, not bob's");
        assert_ne!(hers, g.as_str(), "not the group");
        assert_eq!(
            alice.get("/api/v1/me/apps").await.1[0]["conversation"],
            hers
        );

        // Who adds and removes apps in a group is the owner's setting (the owner alone by default).
        let apps = format!("/api/v1/conversations/{g}/apps/shop");
        let policy = format!("/api/v1/conversations/{g}/app-policy");
        assert_eq!(alice.get(&policy).await.1["policy"], "owner");
        assert_eq!(alice.delete(&apps).await.0, 403);
        assert_eq!(
            alice.put(&policy, &json!({"policy": "members"})).await.0,
            403
        );
        assert_eq!(tea.put(&policy, &json!({"policy": "anyone"})).await.0, 422);
        assert_eq!(tea.put(&policy, &json!({"policy": "members"})).await.0, 200);
        assert_eq!(alice.delete(&apps).await.0, 204);
        assert_eq!(alice.put(&apps, &json!({})).await.0, 201);

        // bob asks to buy in his panel; the app is suspended before he confirms: refused.
        let r = bob
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": "135790", "password": "password-bob"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let path = format!(
            "/api/v1/conversations/{conversation}/messages/{}/actions",
            bob_card["message"]["id"].as_str().unwrap()
        );
        assert_eq!(bob.post(&path, &json!({"button": "sencha"})).await.0, 202);
        let asked = ws.next_of("payment_request").await;
        let order = asked["payment"]["id"].as_str().unwrap().to_owned();
        let r = rita
            .put(
                "/api/v1/apps/shop/suspension",
                &json!({"reason": "Checking"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let r = bob
            .post(
                &format!("/api/v1/me/payments/{order}/confirm"),
                &json!({"pin": "135790"}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (409, Some("app_suspended")),
            "{r:?}"
        );
        assert_eq!(rita.delete("/api/v1/apps/shop/suspension").await.0, 204);

        // Removed from the panel: gone from the list; suspended apps cannot be added.
        assert_eq!(bob.delete("/api/v1/me/apps/shop").await.0, 204);
        assert!(
            bob.get("/api/v1/me/apps")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty()
        );
        let r = rita
            .put(
                "/api/v1/apps/shop/suspension",
                &json!({"reason": "Checking"}),
            )
            .await;
        assert_eq!(r.0, 204);
        let r = bob.put("/api/v1/me/apps/shop", &json!({})).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (409, Some("app_suspended")),
            "{r:?}"
        );
        assert!(
            bob.get("/api/v1/directory")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty(),
            "suspended apps are not listed"
        );
    });
}

#[tokio::test]
async fn testers_run_a_version_in_trial_before_release() {
    on_every_backend!(|node| {
        let dev = node.developer("devi").await;
        let r = publish(&dev, "echo", &manifest("1.0.0"), &echo_wasm(), "").await;
        assert_eq!(r.0, 201, "{r:?}");
        let tina = node.user("tina").await;
        let ursula = node.user("ursula").await;
        let g = tina.group("trial", &["ursula"]).await;
        let trial = format!("/api/v1/conversations/{g}/apps/echo/trial");
        let v1 = json!({"version": "1.0.0"});
        assert_eq!(tina.put(&trial, &v1).await.0, 403, "not a tester yet");
        assert_eq!(
            tina.put("/api/v1/apps/echo/testers/tina", &json!({}))
                .await
                .0,
            404,
            "not her app"
        );
        assert_eq!(
            dev.put("/api/v1/apps/echo/testers/nobody_here", &json!({}))
                .await
                .0,
            404
        );
        assert_eq!(
            dev.put("/api/v1/apps/echo/testers/tina", &json!({}))
                .await
                .0,
            204
        );
        assert_eq!(
            dev.get("/api/v1/apps/echo/testers").await.1,
            json!(["tina"])
        );
        assert_eq!(ursula.put(&trial, &v1).await.0, 403, "not a tester");
        let r = tina.put(&trial, &json!({"version": "9.9.9"})).await;
        assert_eq!(r.0, 404, "{r:?}");
        let r = tina.put(&trial, &v1).await;
        assert_eq!((r.0, r.1["status"].as_str()), (201, Some("trial")), "{r:?}");

        // It runs for tina, unreviewed; not for the other member.
        let mut ws = tina.ws_live().await;
        tina.say(&g, "/echo testing").await;
        ws.next_of("consent_request").await;
        tina.put(
            "/api/v1/me/grants/echo",
            &json!({"scopes": ["messages.send"]}),
        )
        .await;
        let reply = loop {
            let f = ws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                break f;
            }
        };
        assert_eq!(reply["message"]["content"]["text"], "testing");
        assert_eq!(reply["message"]["sender"]["name"], "Echo (unreviewed)");
        let mut uws = ursula.ws_live().await;
        ursula.say(&g, "/echo me too").await;
        no_app_answer(&mut uws, "/echo me too", Duration::from_millis(1000)).await;

        // No longer a tester: her trial stops running.
        assert_eq!(dev.delete("/api/v1/apps/echo/testers/tina").await.0, 204);
        assert_eq!(dev.delete("/api/v1/apps/echo/testers/tina").await.0, 404);
        tina.say(&g, "/echo again").await;
        no_app_answer(&mut ws, "/echo again", Duration::from_millis(1000)).await;
    });
}

#[tokio::test]
async fn an_apps_backend_publishes_with_its_client_credentials() {
    on_every_backend!(|node| {
        let dev = node.developer("devi").await;
        let r = dev
            .post("/api/v1/apps", &json!({"id": "echo", "name": "Echo"}))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let (client_id, secret) = (
            r.1["client_id"].as_str().unwrap().to_owned(),
            r.1["client_secret"].as_str().unwrap().to_owned(),
        );
        let token = dev
            .http
            .post(format!("{}/oauth/token", dev.base))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let ci = Client {
            http: dev.http.clone(),
            base: dev.base.clone(),
            token: Some(token),
        };
        let r = publish(&ci, "echo", &manifest("1.0.0"), &echo_wasm(), "From CI.").await;
        assert_eq!(
            (r.0, r.1["status"].as_str()),
            (201, Some("submitted")),
            "{r:?}"
        );
        // Its token publishes only its own app.
        let other = manifest("1.0.0").replace("id = \"echo\"", "id = \"other\"");
        let r = publish(&ci, "other", &other, &echo_wasm(), "").await;
        assert_eq!(r.0, 403, "{r:?}");
        let mine = dev.get("/api/v1/apps/echo/versions").await.1;
        assert_eq!(mine["versions"][0]["notes"], "From CI.");
        let bad = Client {
            token: Some("not-a-token".into()),
            ..ci
        };
        assert_eq!(
            publish(&bad, "echo", &manifest("1.0.1"), &echo_wasm(), "")
                .await
                .0,
            401
        );
    });
}
