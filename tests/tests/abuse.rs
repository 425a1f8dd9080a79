//! Abuse controls of a public server, on every backend: a storm of wrong-password sign-ins is
//! throttled per account and per client address (`429 rate_limited` with `Retry-After`) while
//! another user signs in and sends from another address; a thousand silent connections neither
//! starve another client nor stay open past the header read timeout (idle keep-alive ones
//! neither), and a request whose body never arrives is answered `408`; wrong payment PINs are
//! throttled before the store's lockout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost::NodeOptions;
use minihost_api::ApiConfig;
use minihost_store::NewOrder;
use minihost_tests::testing::TestDb;
use minihost_tests::{Client, FRAME_TIMEOUT, TestNode};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Long enough that no bucket refills during a test: the counts below are exact.
const NO_REFILL: Duration = Duration::from_secs(3600);

async fn start(db: TestDb, config: impl FnOnce(&mut ApiConfig)) -> TestNode {
    let mut api = ApiConfig::default();
    config(&mut api);
    let options = NodeOptions {
        api,
        ..NodeOptions::new("127.0.0.1:0".parse().unwrap(), db.config.clone())
    };
    TestNode::start_options(db, options).await
}

/// An anonymous client of `node` whose connections come from `source` (any 127/8 address is
/// this machine).
fn client_from(node: &TestNode, source: Ipv4Addr) -> Client {
    Client {
        http: reqwest::Client::builder()
            .local_address(IpAddr::V4(source))
            .build()
            .unwrap(),
        ..node.client()
    }
}

/// Status, `Retry-After` and error code of a sign-in attempt.
async fn sign_in(c: &Client, username: &str, password: &str) -> (u16, Option<u64>, Value) {
    let r = c
        .raw(reqwest::Method::POST, "/api/v1/sessions")
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body: Value = r.json().await.unwrap();
    (status, retry, body["error"]["code"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_storm_is_throttled_while_others_sign_in_and_send() {
    for db in TestDb::all().await.unwrap() {
        let node = start(db, |api| {
            api.throttle.sign_in_account_refill = NO_REFILL;
            api.throttle.sign_in_address_refill = NO_REFILL;
        })
        .await;
        let (account_burst, address_burst) = (10, 30);
        node.user("victim").await;
        let bob = node.user("bob").await;
        let carol = node.user("carol").await;
        let chat = bob.direct_with("carol").await;
        let attacker = client_from(&node, Ipv4Addr::new(127, 0, 0, 2));

        let storm = async {
            let tries = (0..500).map(|i| {
                let attacker = attacker.clone();
                async move { sign_in(&attacker, "victim", &format!("guess-{i}")).await }
            });
            futures_util::future::join_all(tries).await
        };
        let meanwhile = async {
            let again = node.client().signed_in("bob").await;
            for i in 0..5 {
                again.say(&chat, &format!("still here {i}")).await;
            }
            again
        };
        let (answers, bob_again) = tokio::join!(storm, meanwhile);

        let wrong = answers.iter().filter(|a| a.0 == 401).count();
        let throttled: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
        assert_eq!(
            wrong,
            account_burst,
            "{}: only the burst is checked",
            node.backend()
        );
        assert_eq!(throttled.len(), 500 - account_burst, "{answers:?}");
        for (_, retry, code) in &throttled {
            assert_eq!(code, "rate_limited");
            assert!(retry.is_some_and(|s| s >= 1), "Retry-After: {retry:?}");
        }
        // The victim's right password waits too (from that address and from any other).
        assert_eq!(
            sign_in(&node.client(), "victim", "password-victim").await.0,
            429
        );
        // Bob's session from the storm works, and carol received his messages.
        assert_eq!(bob_again.get("/api/v1/me").await.0, 200);
        let history = carol
            .get(&format!("/api/v1/conversations/{chat}/messages"))
            .await;
        assert_eq!(history.0, 200, "{history:?}");
        assert_eq!(history.1["messages"].as_array().unwrap().len(), 5);

        // Per address: wrong guesses on many accounts from one address run out its budget
        // (10 were spent on the victim), after which even a right password from there waits,
        // while the same account signs in from another address.
        let spray = client_from(&node, Ipv4Addr::new(127, 0, 0, 2));
        for i in 0..(address_burst - account_burst) {
            let r = sign_in(&spray, &format!("ghost{i}"), "nope-nope-nope").await;
            assert_eq!(r.0, 401, "guess {i}: {r:?}");
        }
        let r = sign_in(&spray, "carol", "password-carol").await;
        assert_eq!((r.0, r.2.as_str()), (429, Some("rate_limited")), "{r:?}");
        assert_eq!(
            sign_in(&node.client(), "carol", "password-carol").await.0,
            200
        );
        node.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_connections_do_not_starve_others_and_are_closed() {
    for db in TestDb::all().await.unwrap() {
        let node = start(db, |api| {
            api.connections.header_read_timeout = Duration::from_secs(1);
        })
        .await;
        let alice = node.user("alice").await;
        let mut silent = Vec::new();
        for _ in 0..1_000 {
            silent.push(
                tokio::net::TcpStream::connect(node.node.addr)
                    .await
                    .unwrap(),
            );
        }
        // Another client is answered while the thousand say nothing.
        let me = alice.get("/api/v1/me").await;
        assert_eq!(me.0, 200, "{}: {me:?}", node.backend());
        assert_eq!(node.client().get("/healthz").await.0, 200);

        // A keep-alive connection that goes idle after one answer is closed as well.
        let mut idle = tokio::net::TcpStream::connect(node.node.addr)
            .await
            .unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        silent.push(idle);

        // The server closes every one of them (FRAME_TIMEOUT only guards against a hang).
        let closed = silent.into_iter().map(|mut s| async move {
            let mut sink = Vec::new();
            tokio::time::timeout(FRAME_TIMEOUT, s.read_to_end(&mut sink))
                .await
                .is_ok()
        });
        let closed = futures_util::future::join_all(closed).await;
        assert!(
            closed.iter().all(|c| *c),
            "{} not closed",
            closed.iter().filter(|c| !**c).count()
        );
        assert_eq!(alice.get("/api/v1/me").await.0, 200);
        node.finish().await;
    }
}

#[tokio::test]
async fn wrong_payment_pins_are_throttled_before_the_lockout() {
    for db in TestDb::all().await.unwrap() {
        let node = start(db, |api| {
            api.throttle.secret_check_user_burst = 3;
            api.throttle.secret_check_user_refill = NO_REFILL;
        })
        .await;
        let dev = node.developer("dev").await;
        let r = dev
            .post("/api/v1/apps", &json!({"id": "shop", "name": "Shop"}))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let alice = node.user("alice").await;
        let r = alice
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": "246810", "password": "password-alice"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let alice_id = node
            .node
            .store
            .user_by_username("alice")
            .await
            .unwrap()
            .unwrap()
            .user
            .id;
        let order = node
            .node
            .store
            .create_order(NewOrder {
                app_id: "shop".into(),
                user_id: alice_id,
                conversation_id: None,
                origin: "backend",
                amount: 100,
                currency: "EUR".into(),
                description: "a thing".into(),
                idempotency_key: "k1".into(),
                expires_at_ms: minihost_core::now_millis() + 3_600_000,
            })
            .await
            .unwrap();
        let confirm = format!("/api/v1/me/payments/{}/confirm", order.id);
        for n in 1..=3 {
            let r = alice.post(&confirm, &json!({"pin": "000000"})).await;
            assert_eq!(r.1["error"]["code"], "wrong_pin", "try {n}: {r:?}");
        }
        // The fourth try is refused before any hash, and before the store's lockout (five).
        let r = alice
            .send(
                alice
                    .raw(reqwest::Method::POST, &confirm)
                    .json(&json!({"pin": "246810"})),
            )
            .await;
        assert_eq!(r.0, 429, "{}: {r:?}", node.backend());
        assert_eq!(r.1["error"]["code"], "rate_limited");
        let raw = alice
            .raw(reqwest::Method::POST, &confirm)
            .json(&json!({"pin": "246810"}))
            .send()
            .await
            .unwrap();
        assert!(raw.headers().contains_key("retry-after"));
        let pin = node.node.store.payment_pin(&order.user_id).await.unwrap();
        assert_eq!(
            pin.map(|p| p.failures),
            Some(3),
            "throttled tries are not counted"
        );
        node.finish().await;
    }
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408() {
    for db in TestDb::all().await.unwrap() {
        let node = start(db, |api| {
            api.connections.request_timeout = Duration::from_secs(1);
        })
        .await;
        let mut slow = tokio::net::TcpStream::connect(node.node.addr)
            .await
            .unwrap();
        slow.write_all(
            b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\"",
        )
        .await
        .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(FRAME_TIMEOUT, slow.read_to_end(&mut answer))
            .await
            .expect("the server kept the connection")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{}: {answer}",
            node.backend()
        );
        assert!(answer.contains("\"request_timeout\""), "{answer}");
        node.finish().await;
    }
}
