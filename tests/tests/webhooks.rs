//! Signed payment webhooks through a real node: a local receiver gets one delivery per event
//! that the SDK's verifier accepts (and a forged or altered one it refuses); while the receiver
//! answers 503 the deliveries are retried with backoff and arrive once each after it comes back;
//! the URL policy refuses plain http and private addresses outside development mode; the
//! developer's delivery log and secret endpoints answer only the app's developer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use minihost::NodeOptions;
use minihost::platform::WebhookOptions;
use minihost_sdk::webhook;
use minihost_store::NewOrder;
use minihost_tests::{Client, TestNode, on_every_backend, testing::TestDb};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ECHO_MANIFEST: &str = include_str!("../../examples/echo/miniapp.toml");

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Hit {
    signature: String,
    content_type: String,
    body: String,
    answered: u16,
}

/// A local webhook endpoint that records every request; answers 503 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    down: Arc<AtomicBool>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let status = if r.down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    r.hits.lock().unwrap().push(Hit {
        signature: header(webhook::HEADER),
        content_type: header("content-type"),
        body,
        answered: status.as_u16(),
    });
    status
}

impl Receiver {
    /// Serves on a free loopback port; returns the webhook URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/hook")
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The requests it answered 200.
    fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.answered == 200)
            .collect()
    }
}

/// Polls `done` every 20 ms, failing after a generous cap (never a bound on speed).
async fn until<F: AsyncFnMut() -> bool>(what: &str, mut done: F) {
    for _ in 0..3_000 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

/// The echo app's manifest naming `url` as its webhook.
fn manifest_with_webhook(url: &str) -> String {
    ECHO_MANIFEST.replacen("homepage =", &format!("webhook = \"{url}\"\nhomepage ="), 1)
}

fn wasm() -> Vec<u8> {
    minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO).unwrap()
}

/// A node in webhook development mode with fast retries.
async fn dev_node(db: TestDb) -> TestNode {
    let options = NodeOptions {
        webhooks: WebhookOptions {
            dev: true,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_millis(400),
            ..WebhookOptions::default()
        },
        ..NodeOptions::new("127.0.0.1:0".parse().unwrap(), db.config.clone())
    };
    TestNode::start_options(db, options).await
}

/// The developer `dev` with the echo app (webhook `url`) sideloaded, its signing secret, and a
/// user `alice` with a payment PIN and 100.00 EUR.
async fn shop(node: &TestNode, url: &str) -> (Client, String, Client) {
    let dev = node.developer("dev").await;
    let lab = dev.group("lab", &[]).await;
    let r = dev
        .sideload(&lab, &manifest_with_webhook(url), &wasm())
        .await;
    assert_eq!(r.0, 201, "{}: {r:?}", node.backend());
    let r = dev
        .post("/api/v1/apps/echo/webhook-secret", &json!({}))
        .await;
    assert_eq!(r.0, 200, "{r:?}");
    let secret = r.1["secret"].as_str().unwrap().to_owned();
    let alice = node.user("alice").await;
    let r = alice
        .put(
            "/api/v1/me/payment-pin",
            &json!({"pin": "246810", "password": "password-alice"}),
        )
        .await;
    assert_eq!(r.0, 204, "{r:?}");
    let id = alice_id(node).await;
    node.node
        .store
        .top_up(&id, 10_000, "EUR", "test")
        .await
        .unwrap();
    (dev, secret, alice)
}

async fn alice_id(node: &TestNode) -> minihost_core::UserId {
    node.node
        .store
        .user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .user
        .id
}

/// Creates an order of the echo app's backend for alice.
async fn order(node: &TestNode, key: &str, amount: i64) -> String {
    node.node
        .store
        .create_order(NewOrder {
            app_id: "echo".into(),
            user_id: alice_id(node).await,
            conversation_id: None,
            origin: "backend",
            amount,
            currency: "EUR".into(),
            description: format!("Order {key}"),
            idempotency_key: key.into(),
            expires_at_ms: minihost_core::now_millis() + 900_000,
        })
        .await
        .unwrap()
        .id
}

/// The developer's delivery log.
async fn log(dev: &Client) -> Vec<Value> {
    let r = dev.get("/api/v1/apps/echo/webhooks").await;
    assert_eq!(r.0, 200, "{r:?}");
    r.1["deliveries"].as_array().unwrap().clone()
}

fn verified(secret: &str, hit: &Hit) -> Value {
    assert_eq!(hit.content_type, "application/json");
    webhook::verify_now(secret, &hit.signature, hit.body.as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {hit:?}"));
    serde_json::from_str(&hit.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_payment_is_one_signed_delivery_the_sdk_accepts() {
    for db in TestDb::all().await.unwrap() {
        let node = dev_node(db).await;
        let receiver = Receiver::default();
        let url = receiver.start().await;
        let (dev, secret, alice) = shop(&node, &url).await;
        let id = order(&node, "o-1", 1_250).await;
        let r = alice
            .post(
                &format!("/api/v1/me/payments/{id}/confirm"),
                &json!({"pin": "246810"}),
            )
            .await;
        assert_eq!(r.0, 200, "{}: {r:?}", node.backend());

        until("the delivery", async || {
            log(&dev)
                .await
                .first()
                .is_some_and(|d| d["state"] == "delivered")
        })
        .await;
        let hits = receiver.hits();
        assert_eq!(hits.len(), 1, "{}: {hits:?}", node.backend());
        let event = verified(&secret, &hits[0]);
        assert_eq!(event["type"], "payment.paid");
        assert!(event["id"].as_str().unwrap().starts_with("pe_"), "{event}");
        assert!(
            event["created"].as_i64().unwrap() > 1_600_000_000,
            "{event}"
        );
        let data = &event["data"];
        assert_eq!(data["order"], id.as_str());
        assert_eq!(data["app"], "echo");
        assert_eq!(data["amount"], 1_250);
        assert_eq!(data["currency"], "EUR");
        assert_eq!(data["state"], "paid");
        assert_eq!(data["refunded"], 0);
        assert_eq!(data["description"], "Order o-1");
        assert_eq!(data["idempotency_key"], "o-1");
        // The app-scoped id, never the internal one.
        let user = data["user"].as_str().unwrap();
        assert!(user.starts_with("au_"), "{user}");
        assert_ne!(user, alice_id(&node).await.as_str());
        let d = &log(&dev).await[0];
        assert_eq!(
            (d["attempts"].as_i64(), d["last_status"].as_i64()),
            (Some(1), Some(200))
        );
        assert_eq!(d["event"], event["id"]);
        assert_eq!(d["next_attempt_at"], Value::Null);

        // Forged and altered deliveries are refused by the verifier.
        let altered = hits[0].body.replace("1250", "1");
        assert_ne!(altered, hits[0].body);
        assert_eq!(
            webhook::verify_now(&secret, &hits[0].signature, altered.as_bytes()),
            Err(webhook::VerifyError::Mismatch)
        );
        let now = minihost_core::now_millis().div_euclid(1000).unsigned_abs();
        let forged = webhook::sign("whsec_guess", now, hits[0].body.as_bytes());
        assert_eq!(
            webhook::verify_now(&secret, &forged, hits[0].body.as_bytes()),
            Err(webhook::VerifyError::Mismatch)
        );
        // A delivery replayed later than the tolerance is refused too.
        let replayed = webhook::verify(
            &secret,
            &hits[0].signature,
            hits[0].body.as_bytes(),
            now + 3_600,
            webhook::DEFAULT_TOLERANCE,
        );
        assert_eq!(replayed, Err(webhook::VerifyError::Stale));
        // Still exactly one request.
        assert_eq!(receiver.hits().len(), 1);
        node.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_retried_while_the_receiver_is_down_and_arrive_once() {
    for db in TestDb::all().await.unwrap() {
        let node = dev_node(db).await;
        let receiver = Receiver::default();
        receiver.down.store(true, Ordering::SeqCst);
        let url = receiver.start().await;
        let (dev, secret, alice) = shop(&node, &url).await;
        let mut orders = Vec::new();
        for (i, answer) in ["confirm", "decline", "confirm"].iter().enumerate() {
            let id = order(&node, &format!("o-{i}"), 100 + i64::try_from(i).unwrap()).await;
            let body = if *answer == "confirm" {
                json!({"pin": "246810"})
            } else {
                Value::Null
            };
            let r = alice
                .post(&format!("/api/v1/me/payments/{id}/{answer}"), &body)
                .await;
            assert_eq!(r.0, 200, "{}: {r:?}", node.backend());
            orders.push(id);
        }
        // Down for a while: every delivery is tried several times, answered 503. `attempts`
        // counts an attempt from its claim, so a fourth claimed attempt means three finished.
        until("three failed attempts each", async || {
            let log = log(&dev).await;
            log.len() == 3
                && log.iter().all(|d| {
                    d["state"] == "pending"
                        && d["attempts"].as_i64() >= Some(4)
                        && d["last_status"] == 503
                        && d["next_attempt_at"].is_string()
                })
        })
        .await;
        assert!(receiver.accepted().is_empty());
        receiver.down.store(false, Ordering::SeqCst);
        until("every delivery", async || {
            log(&dev).await.iter().all(|d| d["state"] == "delivered")
        })
        .await;
        // Exactly the events, each accepted once, each verified.
        let accepted = receiver.accepted();
        let mut got: Vec<(String, String, String)> = accepted
            .iter()
            .map(|h| {
                let e = verified(&secret, h);
                (
                    e["data"]["order"].as_str().unwrap().to_owned(),
                    e["type"].as_str().unwrap().to_owned(),
                    e["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        got.sort();
        let mut expected: Vec<(String, &str)> = vec![
            (orders[0].clone(), "payment.paid"),
            (orders[1].clone(), "payment.declined"),
            (orders[2].clone(), "payment.paid"),
        ];
        expected.sort();
        let kinds: Vec<(String, &str)> = got
            .iter()
            .map(|(o, t, _)| (o.clone(), t.as_str()))
            .collect();
        assert_eq!(kinds, expected, "{}", node.backend());
        let mut ids: Vec<&str> = got.iter().map(|(_, _, id)| id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3, "one delivery per event");
        // The retries before were the same signed body (a new timestamp each time).
        let failed = receiver.hits().len() - accepted.len();
        assert!(failed >= 9, "{failed} failed attempts");
        node.finish().await;
    }
}

#[tokio::test]
async fn production_servers_refuse_http_and_private_webhooks() {
    on_every_backend!(|node| {
        let dev = node.developer("dev").await;
        let lab = dev.group("lab", &[]).await;
        for (url, status) in [
            ("http://127.0.0.1:9/hook", 422),
            ("http://localhost:9/hook", 422),
            ("https://10.0.0.7/hook", 422),
            ("https://169.254.169.254/latest", 422),
            ("https://[::1]/hook", 422),
            ("http://hooks.example.com/hook", 422),
            ("https://hooks.example.com/minihost", 201),
        ] {
            let r = dev
                .sideload(&lab, &manifest_with_webhook(url), &wasm())
                .await;
            assert_eq!(r.0, status, "{url}: {r:?}");
            if status == 422 {
                assert!(
                    r.1["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("webhook"),
                    "{r:?}"
                );
            }
        }
    });
}

#[tokio::test]
async fn only_the_developer_sees_the_log_and_the_secret() {
    on_every_backend!(|node| {
        let dev = node.developer("dev").await;
        let lab = dev.group("lab", &[]).await;
        let manifest = manifest_with_webhook("https://hooks.example.com/minihost");
        assert_eq!(dev.sideload(&lab, &manifest, &wasm()).await.0, 201);
        let r = dev.get("/api/v1/apps/echo/webhooks").await;
        assert_eq!(r.0, 200, "{r:?}");
        assert_eq!(r.1, json!({"secret_created_at": null, "deliveries": []}));
        let first = dev
            .post("/api/v1/apps/echo/webhook-secret", &json!({}))
            .await;
        assert_eq!(first.0, 200, "{first:?}");
        let second = dev
            .post("/api/v1/apps/echo/webhook-secret", &json!({}))
            .await;
        assert_ne!(first.1["secret"], second.1["secret"]);
        assert!(second.1["secret"].as_str().unwrap().starts_with("whsec_"));
        let r = dev.get("/api/v1/apps/echo/webhooks").await;
        assert!(r.1["secret_created_at"].is_string(), "{r:?}");
        assert_eq!(dev.get("/api/v1/apps/echo/webhooks?limit=0").await.0, 422);
        assert_eq!(dev.get("/api/v1/apps/echo/webhooks?limit=x").await.0, 400);
        assert_eq!(dev.get("/api/v1/apps/nope/webhooks").await.0, 404);

        let mallory = node.developer("mallory").await;
        assert_eq!(mallory.get("/api/v1/apps/echo/webhooks").await.0, 404);
        let r = mallory
            .post("/api/v1/apps/echo/webhook-secret", &json!({}))
            .await;
        assert_eq!(r.0, 404, "{r:?}");
        assert_eq!(node.client().get("/api/v1/apps/echo/webhooks").await.0, 401);
    });
}
