//! App send budgets, on every backend: replies to users' own commands are counted per user,
//! apart from unsolicited sends, so a busy group where many members use an app keeps getting
//! replies beyond the unsolicited budget; unsolicited sends (here from the app's backend) are
//! still capped, and the refusal is in the user's privacy record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost::{AppLimits, NodeOptions};
use minihost_broker::{AppId, PkceChallenge, UnixTime};
use minihost_core::UserId;
use minihost_tests::testing::TestDb;
use minihost_tests::{Client, TestNode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ECHO_MANIFEST: &str = include_str!("../../examples/echo/miniapp.toml");
/// RFC 7636's example verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn limits() -> AppLimits {
    AppLimits {
        reply_burst: 2,
        replies_per_minute: 0,
        unsolicited_burst: 2,
        unsolicited_per_minute: 0,
        ..AppLimits::default()
    }
}

async fn user_id(c: &Client) -> UserId {
    UserId::from_string(c.get("/api/v1/me").await.1["id"].as_str().unwrap())
}

/// An access token for `user` in `app`'s backend (client credentials `creds`).
async fn backend_token(node: &TestNode, creds: &Value, app: &str, user: &UserId) -> String {
    let code = node
        .node
        .broker
        .issue_login_code(
            &AppId::parse(app).unwrap(),
            user,
            PkceChallenge::from_verifier(VERIFIER),
            UnixTime::from_millis(minihost_core::now_millis()),
        )
        .await
        .unwrap();
    let form = format!(
        "grant_type=authorization_code&code={}&code_verifier={VERIFIER}&client_id={}&client_secret={}",
        code.expose(),
        creds["client_id"].as_str().unwrap(),
        creds["client_secret"].as_str().unwrap(),
    );
    let anon = node.client();
    let r = anon
        .send(
            anon.raw(reqwest::Method::POST, "/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await;
    assert_eq!(r.0, 200, "{r:?}");
    r.1["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_busy_group_keeps_getting_replies_while_unsolicited_sends_stay_capped() {
    for db in TestDb::all().await.unwrap() {
        let options = NodeOptions {
            app_limits: limits(),
            ..NodeOptions::new("127.0.0.1:0".parse().unwrap(), db.config.clone())
        };
        let node = TestNode::start_options(db, options).await;
        let dev = node.developer("dev").await;
        let rita = node.reviewer("rita").await;
        let names = ["amy", "ben", "cat", "dan"];
        let mut users = Vec::new();
        for name in names {
            users.push(node.user(name).await);
        }
        let group = users[0].group("busy", &names[1..]).await;
        let creds = dev
            .post("/api/v1/apps", &json!({"id": "echo", "name": "Echo"}))
            .await;
        assert_eq!(creds.0, 201, "{creds:?}");
        let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO).unwrap();
        assert_eq!(dev.submit("echo", ECHO_MANIFEST, &wasm).await.0, 201);
        rita.approve_and_release("echo", "0.1.0").await;
        let r = users[0]
            .put(
                &format!("/api/v1/conversations/{group}/apps/echo"),
                &json!({}),
            )
            .await;
        assert_eq!(r.0, 201, "{r:?}");

        // Four members command the app twice each: eight replies, four times the
        // unsolicited budget of the conversation.
        let mut ws = users[0].ws_live().await;
        let mut expected = BTreeSet::new();
        for (user, name) in users.iter().zip(names) {
            for j in 0..2 {
                let text = format!("{name}-{j}");
                user.say(&group, &format!("/echo {text}")).await;
                expected.insert(text);
            }
        }
        let mut replies = BTreeSet::new();
        while replies.len() < expected.len() {
            let f = ws.next_of("message").await;
            if f["message"]["sender"]["type"] == "app" {
                replies.insert(f["message"]["content"]["text"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(replies, expected, "{}", node.backend());

        // One member over their own reply budget is refused; the app failing is reported to
        // that member.
        let mut ws1 = users[1].ws_live().await;
        users[1].say(&group, "/echo ben-2").await;
        let err = ws1.next_of("app_error").await;
        assert_eq!(err["kind"], "reply_rejected", "{err}");

        // The backend's unsolicited sends to the group: two, then refused.
        let u0 = user_id(&users[0]).await;
        node.node
            .store
            .set_grant(&u0, "echo", &["messages.send".into()], "0.1.0")
            .await
            .unwrap();
        let token = backend_token(&node, &creds.1, "echo", &u0).await;
        let anon = node.client();
        let send = |text: &str| {
            anon.raw(
                reqwest::Method::POST,
                &format!("/open/v1/conversations/{group}/messages"),
            )
            .bearer_auth(&token)
            .json(&json!({"content": {"type": "text", "text": text}}))
        };
        for text in ["news 1", "news 2"] {
            let r = anon.send(send(text)).await;
            assert_eq!(r.0, 201, "{r:?}");
        }
        let r = anon.send(send("news 3")).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (429, Some("budget_exceeded")),
            "{r:?}"
        );
        let record = users[0].get("/api/v1/me/privacy").await.1;
        let outcomes: Vec<&str> = record
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["capability"] == "messages.send")
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == "ok").count(),
            2,
            "{record}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| **o == "budget_exceeded").count(),
            1
        );
        node.finish().await;
    }
}
