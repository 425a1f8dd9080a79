//! Durability of the real binary: a message acknowledged (201) before the server is killed with
//! SIGKILL is there after a restart, on every configured backend. Also: `admin create-user`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::spawn;

use minihost_store::testing::TestDb;
use serde_json::{Value, json};
use std::process::Command;

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = http.request(method, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs up alice and bob on the server at `u`, opens their direct conversation, and returns
/// alice's session token and the conversation id.
async fn alice_and_bob(http: &reqwest::Client, u: &str) -> (String, String) {
    use reqwest::Method as M;
    for name in ["alice", "bob"] {
        let r = call(
            http,
            M::POST,
            format!("{u}/api/v1/accounts"),
            None,
            Some(json!({"username": name, "display_name": name, "password": "password-123"})),
        )
        .await;
        assert_eq!(r.0, 201);
    }
    let r = call(
        http,
        M::POST,
        format!("{u}/api/v1/sessions"),
        None,
        Some(json!({"username": "alice", "password": "password-123"})),
    )
    .await;
    let token = r.1["token"].as_str().unwrap().to_owned();
    let r = call(
        http,
        M::POST,
        format!("{u}/api/v1/conversations"),
        Some(&token),
        Some(json!({"kind": "direct", "members": ["bob"]})),
    )
    .await;
    (token, r.1["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill() {
    for db in TestDb::all().await.unwrap() {
        let http = reqwest::Client::new();
        let mut server = spawn(&db.config);
        let u = server.url.clone();
        use reqwest::Method as M;
        let (token, conv) = alice_and_bob(&http, &u).await;
        let mut acked = Vec::new();
        for i in 0..20 {
            let r = call(
                &http,
                M::POST,
                format!("{u}/api/v1/conversations/{conv}/messages"),
                Some(&token),
                Some(json!({"content": {"type": "text", "text": format!("durable {i}")}})),
            )
            .await;
            assert_eq!(r.0, 201);
            acked.push(r.1["id"].as_str().unwrap().to_owned());
        }
        server.child.kill().unwrap(); // SIGKILL: no graceful anything
        server.child.wait().unwrap();

        let mut server = spawn(&db.config);
        let u = server.url.clone();
        let r = call(
            &http,
            M::GET,
            format!("{u}/api/v1/conversations/{conv}/messages?after=0&limit=100"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(r.0, 200, "the session survived too: {r:?}");
        let ids: Vec<String> = r.1["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids, acked,
            "{}: every acknowledged message, in order",
            db.name
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        db.cleanup().await.unwrap();
    }
}

#[test]
fn admin_create_user_makes_the_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minihost"))
        .args([
            "admin",
            "create-user",
            "--username",
            "root1",
            "--password",
            "correct-horse",
            "--role",
            "admin",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("with role admin"));
    let out = Command::new(env!("CARGO_BIN_EXE_minihost"))
        .args([
            "admin",
            "create-user",
            "--username",
            "root1",
            "--password",
            "correct-horse",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("username already exists"));
    let out = Command::new(env!("CARGO_BIN_EXE_minihost"))
        .args([
            "admin",
            "create-user",
            "--username",
            "x",
            "--password",
            "correct-horse",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("username"));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_loses_nothing_acknowledged() {
    let db = TestDb::sqlite().unwrap();
    let http = reqwest::Client::new();
    let mut server = spawn(&db.config);
    let u = server.url.clone();
    use reqwest::Method as M;
    let (token, conv) = alice_and_bob(&http, &u).await;

    // Senders keep going while the server is told to stop.
    let mut senders = Vec::new();
    for k in 0..8 {
        let (http, u, token, conv) = (http.clone(), u.clone(), token.clone(), conv.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let sent = http
                    .post(format!("{u}/api/v1/conversations/{conv}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"content": {"type": "text", "text": format!("{k}-{i}")}}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = r.json().await.unwrap();
                        acked.push(v["id"].as_str().unwrap().to_owned());
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(!acked.is_empty());

    let mut server = spawn(&db.config);
    let u = server.url.clone();
    let mut stored = std::collections::HashSet::new();
    let mut after = 0;
    loop {
        let r = call(
            &http,
            M::GET,
            format!("{u}/api/v1/conversations/{conv}/messages?after={after}&limit=500"),
            Some(&token),
            None,
        )
        .await;
        let page = r.1["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for m in &page {
            stored.insert(m["id"].as_str().unwrap().to_owned());
            after = m["seq"].as_i64().unwrap();
        }
    }
    for id in &acked {
        assert!(stored.contains(id), "acknowledged message {id} was lost");
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
