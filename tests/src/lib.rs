//! Support for the black-box tests: start a real node on `127.0.0.1:0` over a fresh database,
//! and talk to it as a client would, over HTTP ([`Client`]) and WebSocket ([`Ws`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::{SinkExt, StreamExt};
use minihost::{Node, NodeOptions};
use minihost_api::ApiConfig;
use minihost_store::testing::TestDb;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use minihost_store::testing;

/// The API settings of [`TestNode::start`]: the defaults, except that 127.0.0.1 is exempt from
/// the sign-in, sign-up and PIN throttles (tests sign up dozens of users from it, as the load
/// generator does; `tests/abuse.rs` tests the throttles on nodes of its own).
pub fn test_api() -> ApiConfig {
    let mut api = ApiConfig::default();
    api.throttle.exempt = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    api
}

/// A node started for one test, with the database under it.
pub struct TestNode {
    pub node: Node,
    pub db: TestDb,
}

impl TestNode {
    /// Starts a node on `db` with default settings ([`test_api`]).
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, test_api()).await
    }

    /// Starts a node on `db` with `api` settings.
    pub async fn start_with(db: TestDb, api: ApiConfig) -> Self {
        let options = NodeOptions {
            api,
            ..NodeOptions::new("127.0.0.1:0".parse().unwrap(), db.config.clone())
        };
        Self::start_options(db, options).await
    }

    /// Starts a node on `db` whose compiled components are cached in `cache_dir`.
    pub async fn start_with_cache(db: TestDb, cache_dir: &std::path::Path) -> Self {
        let options = NodeOptions {
            cache_dir: Some(cache_dir.to_path_buf()),
            ..NodeOptions::new("127.0.0.1:0".parse().unwrap(), db.config.clone())
        };
        Self::start_options(db, options).await
    }

    /// Starts a node on `db` with `options` (whose store is replaced by `db`'s).
    pub async fn start_options(db: TestDb, options: NodeOptions) -> Self {
        let node = minihost::start(NodeOptions {
            store: db.config.clone(),
            ..options
        })
        .await
        .unwrap();
        TestNode { node, db }
    }

    /// An anonymous client of this node.
    pub fn client(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.node.url(),
            token: None,
        }
    }

    /// Signs up `username` (password `password-<username>`) and signs in.
    pub async fn user(&self, username: &str) -> Client {
        let c = self.client();
        let r = c
            .post(
                "/api/v1/accounts",
                &json!({"username": username, "display_name": username.to_uppercase(), "password": format!("password-{username}")}),
            )
            .await;
        assert_eq!(r.0, 201, "sign up {username}: {}", r.1);
        c.signed_in(username).await
    }

    /// Signs up `username` as a developer and signs in.
    pub async fn developer(&self, username: &str) -> Client {
        self.user_with_role(username, minihost_core::Role::Developer)
            .await
    }

    /// Signs up `username` as a reviewer and signs in.
    pub async fn reviewer(&self, username: &str) -> Client {
        self.user_with_role(username, minihost_core::Role::Reviewer)
            .await
    }

    /// Signs up `username` with `role` and signs in.
    pub async fn user_with_role(&self, username: &str, role: minihost_core::Role) -> Client {
        let c = self.user(username).await;
        self.node.store.set_role(username, role).await.unwrap();
        c
    }

    /// Stops the node and drops its database.
    pub async fn finish(self) {
        self.node.shutdown().await.unwrap();
        self.db.cleanup().await.unwrap();
    }

    /// The backend's name, for assertion messages.
    pub fn backend(&self) -> &'static str {
        self.db.name
    }
}

/// Runs the body once per configured backend, each on a fresh node.
#[macro_export]
macro_rules! on_every_backend {
    (|$node:ident| $body:block) => {{
        for db in $crate::testing::TestDb::all().await.unwrap() {
            let $node = $crate::TestNode::start(db).await;
            $body
            $node.finish().await;
        }
    }};
}

/// An HTTP client, signed in or not.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    /// The same client signed in as `username` (password `password-<username>`).
    pub async fn signed_in(mut self, username: &str) -> Client {
        let r = self
            .post(
                "/api/v1/sessions",
                &json!({"username": username, "password": format!("password-{username}")}),
            )
            .await;
        assert_eq!(r.0, 200, "sign in {username}: {}", r.1);
        self.token = Some(r.1["token"].as_str().unwrap().to_owned());
        self
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    /// Sends a request and returns the status and the JSON body (`Null` when empty).
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.req(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.req(reqwest::Method::PUT, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// A raw request builder (for odd bodies and headers).
    pub fn raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.req(method, path)
    }

    /// Sideloads a component with its manifest into a group; returns status and body.
    pub async fn sideload(&self, conversation: &str, manifest: &str, wasm: &[u8]) -> (u16, Value) {
        use base64::Engine;
        let component = base64::engine::general_purpose::STANDARD.encode(wasm);
        self.post(
            &format!("/api/v1/conversations/{conversation}/apps"),
            &json!({"manifest": manifest, "component": component}),
        )
        .await
    }

    /// Submits a version of `app` for review; returns status and body.
    pub async fn submit(&self, app: &str, manifest: &str, wasm: &[u8]) -> (u16, Value) {
        use base64::Engine;
        let component = base64::engine::general_purpose::STANDARD.encode(wasm);
        self.post(
            &format!("/api/v1/apps/{app}/versions"),
            &json!({"manifest": manifest, "component": component}),
        )
        .await
    }

    /// As a reviewer: claims `app@version`, approves it and releases it to everyone.
    pub async fn approve_and_release(&self, app: &str, version: &str) {
        let r = self
            .post(&format!("/api/v1/review/{app}/{version}/claim"), &json!({}))
            .await;
        assert_eq!(r.0, 204, "claim {app}@{version}: {r:?}");
        let r = self
            .post(
                &format!("/api/v1/review/{app}/{version}"),
                &json!({"decision": "approve"}),
            )
            .await;
        assert_eq!(r.0, 200, "approve {app}@{version}: {r:?}");
        let r = self
            .put(
                &format!("/api/v1/apps/{app}/release"),
                &json!({"version": version, "percent": 100}),
            )
            .await;
        assert_eq!(r.0, 200, "release {app}@{version}: {r:?}");
    }

    /// Opens a direct conversation with `other`; returns its id.
    pub async fn direct_with(&self, other: &str) -> String {
        let r = self
            .post(
                "/api/v1/conversations",
                &json!({"kind": "direct", "members": [other]}),
            )
            .await;
        assert!(r.0 == 201 || r.0 == 200, "{r:?}");
        r.1["id"].as_str().unwrap().to_owned()
    }

    /// Creates a group; returns its id.
    pub async fn group(&self, title: &str, members: &[&str]) -> String {
        let r = self
            .post(
                "/api/v1/conversations",
                &json!({"kind": "group", "title": title, "members": members}),
            )
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        r.1["id"].as_str().unwrap().to_owned()
    }

    /// Sends a text message; returns the message JSON.
    pub async fn say(&self, conversation: &str, text: &str) -> Value {
        let r = self
            .post(
                &format!("/api/v1/conversations/{conversation}/messages"),
                &json!({"content": {"type": "text", "text": text}}),
            )
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        r.1
    }

    /// Opens a WebSocket, starts live delivery (an empty `resume`) and waits until it is on.
    pub async fn ws_live(&self) -> Ws {
        let mut ws = self.ws().await;
        ws.send(json!({"type": "resume", "cursors": {}})).await;
        let r = ws.next_json().await;
        assert_eq!(r["type"], "resumed", "{r}");
        ws
    }

    /// Opens a WebSocket and waits for its `ready` frame (live delivery waits for a first frame).
    pub async fn ws(&self) -> Ws {
        let url = format!(
            "{}/api/v1/ws?token={}",
            self.base.replacen("http", "ws", 1),
            self.token.as_deref().unwrap_or("")
        );
        let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut ws = Ws { stream };
        let ready = ws.next_json().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }
}

/// A WebSocket connection to `/api/v1/ws`.
pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How long a test waits for a frame before declaring it missing. A liveness guard against
/// hangs, not a performance bound.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

impl Ws {
    /// The next JSON frame.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("no frame arrived")
                .expect("the socket closed")
                .unwrap();
            match msg {
                WsMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
                WsMessage::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Whether a frame arrives within `wait` (used to show that nothing more comes).
    pub async fn quiet_for(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => None,
            Ok(Some(Ok(WsMessage::Text(t)))) => Some(serde_json::from_str(&t).unwrap()),
            Ok(other) => Some(Value::String(format!("{other:?}"))),
        }
    }

    /// Sends a JSON command.
    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
