//! Exactly-once money across a crash, with the real binary on every configured backend: a storm
//! of confirmations is cut by SIGKILL; after the restart every order is paid with exactly its
//! ledger entries or still pending, every confirmation acknowledged before the kill is paid,
//! the trial balance holds, wallets hold what they should, and the rest can be paid; and the
//! app's webhook receiver gets a `payment.paid` delivery for every order, those cut off by the
//! kill included, and no other event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::spawn_with;

use minihost_core::{DisplayName, Role, Username};
use minihost_store::testing::TestDb;
use minihost_store::{AccountKind, AppVersion, NewOrder, NewUser, Store, VersionStatus};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const PAYERS: usize = 20;
const ORDERS_EACH: usize = 24;
const PRICE: i64 = 125;
const FUNDS: i64 = 10_000;
const PIN: &str = "135790";

/// What the app's webhook receiver got: event id -> (type, order).
type Received = Arc<Mutex<BTreeMap<String, (String, String)>>>;

/// A webhook receiver on 127.0.0.1 that answers 200 to every POST and records its event;
/// returns its URL. It lives as long as the test.
async fn receiver(received: Received) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let received = received.clone();
            async move {
                let v: Value = serde_json::from_str(&body).unwrap();
                received.lock().unwrap().insert(
                    v["id"].as_str().unwrap().to_owned(),
                    (
                        v["type"].as_str().unwrap().to_owned(),
                        v["data"]["order"].as_str().unwrap().to_owned(),
                    ),
                );
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Payers with money, a PIN and pending orders of the `shop` app, whose approved version names
/// `webhook`; returns (username, order ids).
async fn setup(store: &Store, webhook: &str) -> Vec<(String, Vec<String>)> {
    let user = |name: &str, role: Role| NewUser {
        username: Username::parse(name).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        password_hash: minihost_core::secret::hash_password(&format!("password-{name}")).unwrap(),
        role,
    };
    let dev = store
        .create_user(user("merchant", Role::Developer))
        .await
        .unwrap();
    store.register_app("shop", "Shop", &dev.id).await.unwrap();
    store
        .put_version(&AppVersion {
            app_id: "shop".into(),
            version: "1.0.0".into(),
            manifest: format!(
                "id = \"shop\"\nname = \"Shop\"\nversion = \"1.0.0\"\n\
                 description = \"Sells things.\"\nwebhook = \"{webhook}\"\n"
            ),
            wasm: minihost_guest_artifacts::read(minihost_guest_artifacts::SHOP).unwrap(),
            wasm_sha256: "not checked here".into(),
            status: VersionStatus::Approved,
            findings: "[]".into(),
            notes: String::new(),
        })
        .await
        .unwrap();
    let pin = minihost_core::secret::hash_pin(PIN).unwrap();
    let mut payers = Vec::new();
    for p in 0..PAYERS {
        let name = format!("payer{p}");
        let u = store.create_user(user(&name, Role::User)).await.unwrap();
        store.top_up(&u.id, FUNDS, "EUR", "test").await.unwrap();
        store.set_payment_pin(&u.id, &pin).await.unwrap();
        let mut orders = Vec::new();
        for o in 0..ORDERS_EACH {
            let order = store
                .create_order(NewOrder {
                    app_id: "shop".into(),
                    user_id: u.id.clone(),
                    conversation_id: None,
                    origin: "backend",
                    amount: PRICE,
                    currency: "EUR".into(),
                    description: format!("item {o}"),
                    idempotency_key: format!("{name}-{o}"),
                    expires_at_ms: minihost_core::now_millis() + 3_600_000,
                })
                .await
                .unwrap();
            orders.push(order.id);
        }
        payers.push((name, orders));
    }
    payers
}

async fn sign_in(http: &reqwest::Client, url: &str, name: &str) -> String {
    let r = http
        .post(format!("{url}/api/v1/sessions"))
        .json(&json!({"username": name, "password": format!("password-{name}")}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Confirms `order`; the status, or `None` when the server was gone.
async fn confirm(http: &reqwest::Client, url: &str, token: &str, order: &str) -> Option<u16> {
    let r = http
        .post(format!("{url}/api/v1/me/payments/{order}/confirm"))
        .bearer_auth(token)
        .json(&json!({"pin": PIN}))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_storm_cut_by_sigkill_pays_each_order_once() {
    for db in TestDb::all().await.unwrap() {
        let received: Received = Arc::default();
        let webhook = receiver(received.clone()).await;
        let store = db.open(None).await.unwrap();
        let payers = setup(&store, &webhook).await;
        store.close().await;

        let http = reqwest::Client::new();
        let serve_args = ["--dev-webhooks"];
        let mut server = spawn_with(&db.config, &serve_args);
        let mut tokens = Vec::new();
        for (name, _) in &payers {
            tokens.push(sign_in(&http, &server.url, name).await);
        }
        // The storm: every order confirmed at once, several payers in parallel.
        let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let mut tasks = Vec::new();
        for ((_, orders), token) in payers.iter().zip(&tokens) {
            for order in orders {
                let (http, url, token, order) = (
                    http.clone(),
                    server.url.clone(),
                    token.clone(),
                    order.clone(),
                );
                let acked = acked.clone();
                tasks.push(tokio::spawn(async move {
                    if confirm(&http, &url, &token, &order).await == Some(200) {
                        acked.lock().unwrap().insert(order);
                    }
                }));
            }
        }
        // Kill it mid-storm: as soon as one confirmation is acknowledged (a node that remembers
        // verified PINs pays the rest quickly).
        while acked.lock().unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();

        let store = db.open(None).await.unwrap();
        let tb = store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{}: after the crash: {tb:#?}", db.name);
        let mut paid = 0;
        for (name, orders) in &payers {
            let mut mine = 0;
            for id in orders {
                let order = store.order(id).await.unwrap().unwrap();
                match order.state.as_str() {
                    "paid" => mine += 1,
                    "pending" => assert!(
                        !acked.contains(id),
                        "{}: {id} was acknowledged as paid but is pending",
                        db.name
                    ),
                    other => panic!("{}: {id} is {other}", db.name),
                }
            }
            let user = store.user_by_username(name).await.unwrap().unwrap().user;
            let wallet = store
                .account(AccountKind::Wallet, user.id.as_str(), "EUR")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(wallet.balance, FUNDS - PRICE * mine, "{}: {name}", db.name);
            paid += mine;
        }
        assert!(paid >= acked.len() as i64, "{}", db.name);
        assert!(
            (paid as usize) < PAYERS * ORDERS_EACH,
            "{}: the kill came after everything was paid; the test proves nothing",
            db.name
        );
        store.close().await;

        // After the restart the rest can be paid, each once.
        let mut server = spawn_with(&db.config, &serve_args);
        for ((_, orders), token) in payers.iter().zip(&tokens) {
            for order in orders {
                assert_eq!(
                    confirm(&http, &server.url, token, order).await,
                    Some(200),
                    "{}: the session survived and the order is payable or paid",
                    db.name
                );
            }
        }
        // Every order's `payment.paid` webhook arrives, those the kill cut off included (a
        // delivery the dead node had claimed goes out again when its lease ends), and nothing
        // else: one event per order (an event sent twice across the crash has one id).
        let all: BTreeSet<String> = payers.iter().flat_map(|(_, o)| o.clone()).collect();
        let delivered = || -> BTreeSet<String> {
            received
                .lock()
                .unwrap()
                .values()
                .map(|(_, order)| order.clone())
                .collect()
        };
        for _ in 0..900 {
            if delivered() == all {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            delivered(),
            all,
            "{}: a paid order's webhook is missing",
            db.name
        );
        let events = received.lock().unwrap().clone();
        assert_eq!(
            events.len(),
            all.len(),
            "{}: one event per order: {events:?}",
            db.name
        );
        assert!(
            events.values().all(|(kind, _)| kind == "payment.paid"),
            "{}: {events:?}",
            db.name
        );
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let store = db.open(None).await.unwrap();
        let tb = store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{}: {tb:#?}", db.name);
        let merchant = store
            .account(AccountKind::Merchant, "shop", "EUR")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            merchant.balance,
            PRICE * (PAYERS * ORDERS_EACH) as i64,
            "{}: every order paid exactly once",
            db.name
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}
