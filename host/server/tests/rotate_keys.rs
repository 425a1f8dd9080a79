//! `minihost admin rotate-keys` through the real binary, against the database of running nodes,
//! on every configured backend: a new key signs on nodes started afterwards, tokens of the old
//! key stay valid, nodes verify each other's tokens across the rotation, and JWKS shows both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost::{NodeOptions, start};
use minihost_store::StoreConfig;
use minihost_store::testing::TestDb;
use serde_json::{Value, json};
use std::process::Command;

fn rotate_keys(config: &StoreConfig) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minihost"));
    cmd.args(["admin", "rotate-keys"])
        .env_remove("DATABASE_URL");
    match config {
        StoreConfig::Sqlite { data_dir } => {
            cmd.arg("--data-dir").arg(data_dir);
        }
        StoreConfig::Url(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn node(config: &StoreConfig) -> minihost::Node {
    start(NodeOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        config.clone(),
    ))
    .await
    .unwrap()
}

async fn call(
    http: &reqwest::Client,
    rb: reqwest::RequestBuilder,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http.execute(rb.build().unwrap()).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

async fn jwks_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let (_, body, _) = call(http, http.get(format!("{base}/.well-known/jwks.json"))).await;
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// An app-level token from the node at `base`.
async fn app_token(http: &reqwest::Client, base: &str, client: &(String, String)) -> String {
    let (status, body, _) = call(
        http,
        http.post(format!("{base}/oauth/token"))
            .basic_auth(&client.0, Some(&client.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn me(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    call(
        http,
        http.get(format!("{base}/open/v1/me")).bearer_auth(token),
    )
    .await
    .0
}

#[tokio::test]
async fn rotate_keys_adds_a_key_without_logging_anyone_out() {
    for db in TestDb::all().await.unwrap() {
        let http = reqwest::Client::new();
        let first = node(&db.config).await;
        let a = first.url();

        // A developer registers an app and gets an app-level token from the first node.
        let (s, _, _) = call(
            &http,
            http.post(format!("{a}/api/v1/accounts")).json(
                &json!({"username": "dev", "display_name": "Dev", "password": "password-dev"}),
            ),
        )
        .await;
        assert_eq!(s, 201);
        first
            .store
            .set_role("dev", minihost_core::Role::Developer)
            .await
            .unwrap();
        let (_, session, _) = call(
            &http,
            http.post(format!("{a}/api/v1/sessions"))
                .json(&json!({"username": "dev", "password": "password-dev"})),
        )
        .await;
        let (s, creds, _) = call(
            &http,
            http.post(format!("{a}/api/v1/apps"))
                .bearer_auth(session["token"].as_str().unwrap())
                .json(&json!({"id": "shop", "name": "Shop"})),
        )
        .await;
        assert_eq!(s, 201, "{creds}");
        let client = (
            creds["client_id"].as_str().unwrap().to_owned(),
            creds["client_secret"].as_str().unwrap().to_owned(),
        );
        let old_token = app_token(&http, &a, &client).await;
        let old_kids = jwks_kids(&http, &a).await;
        assert_eq!(old_kids.len(), 1, "{}", db.name);

        let out = rotate_keys(&db.config);
        assert!(out.starts_with("new active signing key k-"), "{out}");
        let new_kid = out
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("new active signing key ")
            .to_owned();
        assert_ne!(new_kid, old_kids[0]);

        // A node started now signs with the new key and publishes both.
        let second = node(&db.config).await;
        let b = second.url();
        let kids = jwks_kids(&http, &b).await;
        assert!(
            kids.contains(&old_kids[0]) && kids.contains(&new_kid),
            "{kids:?}"
        );
        let new_token = app_token(&http, &b, &client).await;

        // Each node accepts the other's tokens: the old key still verifies, and the first
        // node learns the new key when it meets its kid.
        assert_eq!(me(&http, &b, &old_token).await, 200, "{}", db.name);
        assert_eq!(me(&http, &a, &new_token).await, 200, "{}", db.name);
        assert!(jwks_kids(&http, &a).await.contains(&new_kid));

        second.shutdown().await.unwrap();
        first.shutdown().await.unwrap();
        db.cleanup().await.unwrap();
    }
}
