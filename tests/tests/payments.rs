//! Payments through a real node, on every backend: the user's payment PIN, an app's backend
//! asking for money (`POST /open/v1/payments`, idempotent, checked), the request in front of the
//! user (pending list and a `payment_request` frame), confirming with the PIN (wrong PINs counted
//! and locking, also across a restart) or declining, the money moving exactly once (wallet down,
//! merchant up), apps unable to confirm, refunds by the backend and the developer, and the trial
//! balance holding at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_broker::service::now;
use minihost_broker::{AppId, PkceChallenge};
use minihost_core::UserId;
use minihost_tests::testing::TestDb;
use minihost_tests::{Client, TestNode, on_every_backend};
use serde_json::{Value, json};

/// The RFC 7636 appendix B verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PIN: &str = "246810";

/// `application/x-www-form-urlencoded` encoding of `fields` (values here need no escaping
/// beyond what this does).
fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&")
}

/// The developer `dev` with the app `shop`, alice (10,000 EUR cents, payments.request granted,
/// her PIN set) and bob (profile.read only), with their backend access tokens for `shop`, and
/// the app's own client-credentials token.
struct World {
    dev: Client,
    alice: Client,
    alice_token: String,
    bob_token: String,
    app_token: String,
}

impl World {
    async fn new(node: &TestNode) -> World {
        let dev = node.developer("dev").await;
        let r = dev
            .post("/api/v1/apps", &json!({"id": "shop", "name": "Shop"}))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let (client_id, secret) = (
            r.1["client_id"].as_str().unwrap().to_owned(),
            r.1["client_secret"].as_str().unwrap().to_owned(),
        );
        let alice = node.user("alice").await;
        let bob = node.user("bob").await;
        let alice_id = id_of(&alice).await;
        let bob_id = id_of(&bob).await;
        for (user, scope) in [(&alice_id, "payments.request"), (&bob_id, "profile.read")] {
            node.node
                .store
                .set_grant(user, "shop", &[scope.to_owned()], "1.0.0")
                .await
                .unwrap();
        }
        node.node
            .store
            .top_up(&alice_id, 10_000, "EUR", "test")
            .await
            .unwrap();
        let token = |fields: Vec<(&'static str, String)>| {
            let anon = node.client();
            let (client_id, secret) = (client_id.clone(), secret.clone());
            async move {
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = anon
                    .send(
                        anon.raw(reqwest::Method::POST, "/oauth/token")
                            .basic_auth(&client_id, Some(&secret))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(form_body(&fields)),
                    )
                    .await;
                assert_eq!(r.0, 200, "{r:?}");
                r.1["access_token"].as_str().unwrap().to_owned()
            }
        };
        let mut user_tokens = Vec::new();
        for user in [&alice_id, &bob_id] {
            let code = node
                .node
                .broker
                .issue_login_code(
                    &AppId::parse("shop").unwrap(),
                    user,
                    PkceChallenge::from_verifier(VERIFIER),
                    now(),
                )
                .await
                .unwrap()
                .expose()
                .to_owned();
            user_tokens.push(
                token(vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", code),
                    ("code_verifier", VERIFIER.into()),
                ])
                .await,
            );
        }
        let app_token = token(vec![("grant_type", "client_credentials".into())]).await;
        let r = alice
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": PIN, "password": "password-alice"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let bob_token = user_tokens.pop().unwrap();
        let alice_token = user_tokens.pop().unwrap();
        World {
            dev,
            alice,
            alice_token,
            bob_token,
            app_token,
        }
    }
}

async fn id_of(c: &Client) -> UserId {
    UserId::from_string(c.get("/api/v1/me").await.1["id"].as_str().unwrap())
}

/// `c` with `token` as its bearer token (an app's access token instead of a session).
fn with_token(c: &Client, token: &str) -> Client {
    Client {
        token: Some(token.to_owned()),
        ..c.clone()
    }
}

fn code(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["error"]["code"].as_str().unwrap_or(""))
}

fn ask(key: &str, amount: Value) -> Value {
    json!({"amount": amount, "currency": "EUR", "description": "Green tea, 2 boxes", "idempotency_key": key})
}

/// The EUR balance of the first account of a wallet or ledger answer.
fn eur(r: &(u16, Value)) -> i64 {
    assert_eq!(r.0, 200, "{r:?}");
    let accounts = r.1.as_array().unwrap();
    let eur = accounts.iter().find(|a| a["currency"] == "EUR").unwrap();
    eur["balance"].as_i64().unwrap()
}

#[tokio::test]
async fn a_backend_asks_the_user_pays_with_her_pin_and_a_refund_gives_it_back() {
    on_every_backend!(|node| {
        let w = World::new(&node).await;
        let backend = with_token(&node.client(), &w.alice_token);

        // The PIN: only with the account password, and only six digits.
        let r = w
            .alice
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": PIN, "password": "not-her-password"}),
            )
            .await;
        assert_eq!(code(&r), (403, "forbidden"), "{r:?}");
        for bad in ["12345", "1234567", "abcdef", ""] {
            let r = w
                .alice
                .put(
                    "/api/v1/me/payment-pin",
                    &json!({"pin": bad, "password": "password-alice"}),
                )
                .await;
            assert_eq!(code(&r), (422, "invalid"), "{bad:?}: {r:?}");
            assert_eq!(r.1["error"]["field"], "pin");
        }

        // The backend asks; the same key and body is the same order. Alice reads German, so
        // the request put in front of her writes the amount her way.
        let r = w
            .alice
            .put("/api/v1/me/locale", &json!({"locale": "de-DE"}))
            .await;
        assert!(r.0 < 300, "{r:?}");
        let mut ws = w.alice.ws_live().await;
        let r = backend
            .post("/open/v1/payments", &ask("order-1", json!(2_500)))
            .await;
        assert_eq!(r.0, 201, "{}: {r:?}", node.backend());
        assert_eq!(
            (r.1["state"].as_str(), r.1["amount"].as_i64()),
            (Some("pending"), Some(2_500))
        );
        let order = r.1["id"].as_str().unwrap().to_owned();
        let again = backend
            .post("/open/v1/payments", &ask("order-1", json!(2_500)))
            .await;
        assert_eq!(
            (again.0, again.1["id"].as_str()),
            (201, Some(order.as_str()))
        );
        let r = backend
            .post("/open/v1/payments", &ask("order-1", json!(2_600)))
            .await;
        assert_eq!(code(&r), (409, "idempotency_key_reused"), "{r:?}");
        for (body, needle) in [
            (ask("bad-1", json!(0)), "at least one minor unit"),
            (ask("bad-2", json!(100_000_000_001u64)), "cap"),
            (
                json!({"amount": 100, "currency": "XXX", "description": "Tea", "idempotency_key": "bad-3"}),
                "unknown currency",
            ),
        ] {
            let r = backend.post("/open/v1/payments", &body).await;
            assert_eq!(code(&r), (422, "invalid"), "{body}: {r:?}");
            assert!(
                r.1["error"]["message"].as_str().unwrap().contains(needle),
                "{r:?}"
            );
        }
        let r = with_token(&backend, &w.bob_token)
            .post("/open/v1/payments", &ask("bob-1", json!(100)))
            .await;
        assert_eq!(code(&r), (403, "insufficient_scope"), "{r:?}");

        // Alice sees it, live and in her list.
        let frame = ws.next_of("payment_request").await;
        assert_eq!(frame["payment"]["id"], order.as_str(), "{frame}");
        assert_eq!(frame["payment"]["amount_text"], "25,00 €");
        assert_eq!(frame["payment"]["app"], "shop");
        let pending = w.alice.get("/api/v1/me/payments/pending").await;
        assert_eq!(pending.0, 200);
        let ids: Vec<&str> = pending
            .1
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [order.as_str()]);

        // The app cannot confirm, with any of its tokens.
        for token in [&w.alice_token, &w.app_token] {
            let r = with_token(&backend, token)
                .post(
                    &format!("/api/v1/me/payments/{order}/confirm"),
                    &json!({"pin": PIN}),
                )
                .await;
            assert_eq!(code(&r), (401, "unauthorized"), "{r:?}");
        }

        // A wrong PIN, then the right one: paid once, the money moved once.
        let confirm = format!("/api/v1/me/payments/{order}/confirm");
        let r = w.alice.post(&confirm, &json!({"pin": "000000"})).await;
        assert_eq!(code(&r), (403, "wrong_pin"), "{r:?}");
        assert_eq!(eur(&w.alice.get("/api/v1/me/wallet").await), 10_000);
        let r = w.alice.post(&confirm, &json!({"pin": PIN})).await;
        assert_eq!((r.0, r.1["state"].as_str()), (200, Some("paid")), "{r:?}");
        let r = w.alice.post(&confirm, &json!({"pin": PIN})).await;
        assert_eq!(
            (r.0, r.1["state"].as_str()),
            (200, Some("paid")),
            "a retry: {r:?}"
        );
        assert_eq!(eur(&w.alice.get("/api/v1/me/wallet").await), 7_500);
        assert_eq!(eur(&w.dev.get("/api/v1/apps/shop/ledger").await), 2_500);
        assert!(
            w.alice
                .get("/api/v1/me/payments/pending")
                .await
                .1
                .as_array()
                .unwrap()
                .is_empty()
        );

        // Declining is final.
        let r = backend
            .post("/open/v1/payments", &ask("order-2", json!(100)))
            .await;
        let declined = r.1["id"].as_str().unwrap().to_owned();
        let r = w
            .alice
            .post(
                &format!("/api/v1/me/payments/{declined}/decline"),
                &json!({}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["state"].as_str()),
            (200, Some("declined")),
            "{r:?}"
        );
        let r = w
            .alice
            .post(
                &format!("/api/v1/me/payments/{declined}/confirm"),
                &json!({"pin": PIN}),
            )
            .await;
        assert_eq!(code(&r), (409, "payment_declined"), "{r:?}");

        // The developer finds the orders of the app, newest first; nobody else does.
        let r = w.dev.get("/api/v1/apps/shop/payments").await;
        assert_eq!(r.0, 200, "{r:?}");
        let listed: Vec<(&str, &str)> =
            r.1.as_array()
                .unwrap()
                .iter()
                .map(|o| (o["id"].as_str().unwrap(), o["state"].as_str().unwrap()))
                .collect();
        assert_eq!(
            listed,
            [(declined.as_str(), "declined"), (order.as_str(), "paid")]
        );
        let r = w.alice.get("/api/v1/apps/shop/payments").await;
        assert_eq!(code(&r), (404, "not_found"), "{r:?}");

        // Refunds by the backend with its own token: checked, idempotent, never beyond the
        // amount, only of a paid order.
        let app = with_token(&backend, &w.app_token);
        let refunds = format!("/open/v1/payments/{order}/refunds");
        let r = app
            .post(&refunds, &json!({"amount": 1_000, "idempotency_key": "refund-1", "reason": "one box arrived damaged"}))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        assert_eq!(
            (r.1["state"].as_str(), r.1["refunded"].as_i64()),
            (Some("partially_refunded"), Some(1_000))
        );
        let r = app
            .post(&refunds, &json!({"amount": 1_000, "idempotency_key": "refund-1", "reason": "one box arrived damaged"}))
            .await;
        assert_eq!(
            (r.0, r.1["refunded"].as_i64()),
            (201, Some(1_000)),
            "a retry: {r:?}"
        );
        let r = app
            .post(&refunds, &json!({"amount": 900, "idempotency_key": "refund-1", "reason": "one box arrived damaged"}))
            .await;
        assert_eq!(code(&r), (409, "idempotency_key_reused"), "{r:?}");
        for amount in [json!(0), json!(-5), json!(100_000_000_001u64)] {
            let r = app
                .post(
                    &refunds,
                    &json!({"amount": amount, "idempotency_key": "refund-x"}),
                )
                .await;
            assert_eq!(code(&r), (422, "invalid"), "{amount}: {r:?}");
        }
        let r = app
            .post(
                &refunds,
                &json!({"amount": 1_501, "idempotency_key": "refund-2"}),
            )
            .await;
        assert_eq!(code(&r), (409, "refund_exceeds_payment"), "{r:?}");
        let r = app
            .post(
                &format!("/open/v1/payments/{declined}/refunds"),
                &json!({"amount": 100, "idempotency_key": "refund-3"}),
            )
            .await;
        assert_eq!(code(&r), (409, "payment_not_paid"), "{r:?}");
        // The rest, with a user's token of the app this time.
        let r = backend
            .post(
                &refunds,
                &json!({"amount": 1_500, "idempotency_key": "refund-2"}),
            )
            .await;
        assert_eq!(
            (r.0, r.1["state"].as_str(), r.1["refunded"].as_i64()),
            (201, Some("refunded"), Some(2_500)),
            "{r:?}"
        );
        assert_eq!(eur(&w.alice.get("/api/v1/me/wallet").await), 10_000);
        assert_eq!(eur(&w.dev.get("/api/v1/apps/shop/ledger").await), 0);
        loop {
            let f = ws.next_of("payment_update").await;
            if f["payment"]["state"] == "refunded" {
                assert_eq!(f["payment"]["refunded"], 2_500);
                break;
            }
        }

        // The developer refunds too, with their session; nobody else can.
        let r = backend
            .post("/open/v1/payments", &ask("order-3", json!(800)))
            .await;
        let third = r.1["id"].as_str().unwrap().to_owned();
        let r = w
            .alice
            .post(
                &format!("/api/v1/me/payments/{third}/confirm"),
                &json!({"pin": PIN}),
            )
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let by_dev = format!("/api/v1/apps/shop/payments/{third}/refunds");
        let r = w
            .alice
            .post(&by_dev, &json!({"amount": 300, "idempotency_key": "d-1"}))
            .await;
        assert_eq!(code(&r), (404, "not_found"), "{r:?}");
        let r = w
            .dev
            .post(&by_dev, &json!({"amount": 0, "idempotency_key": "d-1"}))
            .await;
        assert_eq!(code(&r), (422, "invalid"), "{r:?}");
        let r = w
            .dev
            .post(&by_dev, &json!({"amount": 300, "idempotency_key": "d-1"}))
            .await;
        assert_eq!(
            (r.0, r.1["state"].as_str(), r.1["refunded"].as_i64()),
            (201, Some("partially_refunded"), Some(300)),
            "{r:?}"
        );
        let r = w
            .dev
            .post(&by_dev, &json!({"amount": 501, "idempotency_key": "d-2"}))
            .await;
        assert_eq!(code(&r), (409, "refund_exceeds_payment"), "{r:?}");
        assert_eq!(eur(&w.alice.get("/api/v1/me/wallet").await), 9_500);
        assert_eq!(eur(&w.dev.get("/api/v1/apps/shop/ledger").await), 500);

        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{}: {tb:#?}", node.backend());
    });
}

#[tokio::test]
async fn five_wrong_pins_lock_payments_also_after_a_restart() {
    for db in TestDb::all().await.unwrap() {
        let node = TestNode::start(db).await;
        let w = World::new(&node).await;
        let r = with_token(&node.client(), &w.alice_token)
            .post("/open/v1/payments", &ask("order-1", json!(2_500)))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let confirm = format!(
            "/api/v1/me/payments/{}/confirm",
            r.1["id"].as_str().unwrap()
        );
        for n in 1..=5 {
            let r = w.alice.post(&confirm, &json!({"pin": "000000"})).await;
            assert_eq!(code(&r), (403, "wrong_pin"), "try {n}: {r:?}");
        }
        let r = w.alice.post(&confirm, &json!({"pin": PIN})).await;
        assert_eq!(code(&r), (423, "payments_locked"), "{r:?}");

        // The lock is in the store: a restarted node on the same database still holds it.
        let session = w.alice.token.clone();
        let TestNode { node: running, db } = node;
        running.shutdown().await.unwrap();
        let node = TestNode::start(db).await;
        let alice = Client {
            token: session,
            ..node.client()
        };
        let r = alice.post(&confirm, &json!({"pin": PIN})).await;
        assert_eq!(
            code(&r),
            (423, "payments_locked"),
            "{}: {r:?}",
            node.backend()
        );
        assert!(
            r.1["error"]["message"].as_str().unwrap().contains("locked"),
            "{r:?}"
        );
        let wallet = alice.get("/api/v1/me/wallet").await;
        assert_eq!(eur(&wallet), 10_000);
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
        node.finish().await;
    }
}

/// The node remembers a verified PIN (so repeat payments skip argon2), but the memory never
/// accepts what argon2 would not: a wrong PIN is still wrong and counted, a changed PIN makes
/// the old one wrong at once, and the lock holds over a remembered PIN.
#[tokio::test]
async fn a_remembered_pin_is_forgotten_when_it_changes_and_never_beats_the_lock() {
    on_every_backend!(|node| {
        let w = World::new(&node).await;
        let backend = with_token(&node.client(), &w.alice_token);
        let mut orders = Vec::new();
        for key in ["o-1", "o-2", "o-3", "o-4"] {
            let r = backend
                .post("/open/v1/payments", &ask(key, json!(100)))
                .await;
            assert_eq!(r.0, 201, "{r:?}");
            orders.push(format!(
                "/api/v1/me/payments/{}/confirm",
                r.1["id"].as_str().unwrap()
            ));
        }
        let paid = |r: &(u16, Value)| (r.0, r.1["state"].as_str().map(str::to_owned));
        let r = w.alice.post(&orders[0], &json!({"pin": PIN})).await;
        assert_eq!(paid(&r), (200, Some("paid".into())), "{r:?}");
        let r = w.alice.post(&orders[1], &json!({"pin": "000000"})).await;
        assert_eq!(
            code(&r),
            (403, "wrong_pin"),
            "a wrong PIN after a right one: {r:?}"
        );

        // A new PIN: the remembered old one is wrong now.
        let r = w
            .alice
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": "135790", "password": "password-alice"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        let r = w.alice.post(&orders[1], &json!({"pin": PIN})).await;
        assert_eq!(code(&r), (403, "wrong_pin"), "the old PIN: {r:?}");
        let r = w.alice.post(&orders[1], &json!({"pin": "135790"})).await;
        assert_eq!(paid(&r), (200, Some("paid".into())), "{r:?}");

        // Five wrong tries (the success cleared the count), then the remembered PIN is locked
        // out.
        for n in 1..=5 {
            let r = w.alice.post(&orders[2], &json!({"pin": "000000"})).await;
            assert_eq!(code(&r), (403, "wrong_pin"), "try {n}: {r:?}");
        }
        let r = w.alice.post(&orders[2], &json!({"pin": "135790"})).await;
        assert_eq!(code(&r), (423, "payments_locked"), "{r:?}");
        assert_eq!(eur(&w.alice.get("/api/v1/me/wallet").await), 10_000 - 200);
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
    });
}
