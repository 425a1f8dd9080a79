//! Lucky money through a real server, on every backend: the reviewed Lucky Envelope plugin in a
//! group of 50; alice pays for an envelope of 30 shares and all 50 members press Open at once:
//! exactly 30 get a share, nobody gets two, the shares add up to what alice paid, and the app's
//! merchant account is back to zero. A second envelope expires with shares unopened: its timer
//! gives what is left back to alice (a partial refund of her payment), and a later Open is
//! refused. Every member consents on their first press, as people would. The books hold after
//! each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_core::UserId;
use minihost_tests::{Client, TestNode, Ws, on_every_backend};
use serde_json::{Value, json};
use std::collections::HashMap;

const MANIFEST: &str = include_str!("../../plugins/red-envelope/miniapp.toml");
const SCOPES: [&str; 4] = [
    "messages.send",
    "payments.request",
    "payments.payout",
    "storage",
];
const MEMBERS: usize = 50;
const PIN: &str = "135790";

async fn next_app_card(ws: &mut Ws) -> Value {
    loop {
        let f = ws.next_of("message").await;
        let m = &f["message"];
        if m["sender"]["type"] == "app" && m["content"]["type"] == "card" {
            return m.clone();
        }
    }
}

async fn eur(client: &Client, path: &str) -> i64 {
    let r = client.get(path).await;
    assert_eq!(r.0, 200, "{r:?}");
    r.1.as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "EUR")
        .map_or(0, |a| a["balance"].as_i64().unwrap())
}

/// The plugin reviewed and installed in a group of alice and 50 members who all granted it.
async fn setup(node: &TestNode) -> (Client, Client, Vec<Client>, String) {
    let dev = node.developer("lucky").await;
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::RED_ENVELOPE).unwrap();
    let r = dev.submit("red-envelope", MANIFEST, &wasm).await;
    assert_eq!(r.0, 201, "{r:?}");
    let rita = node.reviewer("rita").await;
    rita.approve_and_release("red-envelope", "1.0.0").await;

    let alice = node.user("alice").await;
    let me = alice.get("/api/v1/me").await.1;
    node.node
        .store
        .top_up(
            &UserId::from_string(me["id"].as_str().unwrap().to_owned()),
            10_000,
            "EUR",
            "test",
        )
        .await
        .unwrap();
    let r = alice
        .put(
            "/api/v1/me/payment-pin",
            &json!({"pin": PIN, "password": "password-alice"}),
        )
        .await;
    assert_eq!(r.0, 204, "{r:?}");

    let names: Vec<String> = (0..MEMBERS).map(|i| format!("m{i:02}")).collect();
    let mut members = Vec::new();
    for name in &names {
        members.push(node.user(name).await);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let group = alice.group("lucky friends", &refs).await;
    let r = alice
        .put(
            &format!("/api/v1/conversations/{group}/apps/red-envelope"),
            &json!({}),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    (dev, alice, members, group)
}

/// Answers the consent request of `frame` (a member's first use) with every scope.
async fn consent(client: &Client, frame: &Value) {
    assert_eq!(frame["app"], "red-envelope", "{frame}");
    let r = client
        .put(
            "/api/v1/me/grants/red-envelope",
            &json!({ "scopes": SCOPES }),
        )
        .await;
    assert_eq!(r.0, 200, "{r:?}");
}

/// alice sends `/envelope ARGS` and pays for it; returns (the order id, the envelope's card).
async fn send_envelope(alice: &Client, ws: &mut Ws, group: &str, args: &str) -> (String, Value) {
    alice.say(group, &format!("/envelope {args}")).await;
    let request = loop {
        let f = ws.next_json().await;
        match f["type"].as_str() {
            Some("consent_request") => consent(alice, &f).await,
            Some("payment_request") => break f,
            _ => {}
        }
    };
    let id = request["payment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(request["payment"]["app_name"], "Lucky Envelope");
    let r = alice
        .post(
            &format!("/api/v1/me/payments/{id}/confirm"),
            &json!({ "pin": PIN }),
        )
        .await;
    assert_eq!((r.0, r.1["state"].as_str()), (200, Some("paid")), "{r:?}");
    let card = next_app_card(ws).await;
    assert!(card["content"].to_string().contains("Open"), "{card}");
    (id, card)
}

/// What one press of Open came to for its member.
#[derive(Debug, Clone, PartialEq)]
enum Opened {
    /// A payout of this many minor units.
    Paid(i64),
    /// The app refused, saying this.
    Refused(String),
}

/// `member` presses Open on `card` (answering the consent request of their first use) until
/// the app answers something other than busy.
async fn open(member: Client, group: String, card: String) -> Opened {
    let mut ws = member.ws_live().await;
    let path = format!("/api/v1/conversations/{group}/messages/{card}/actions");
    loop {
        let r = member.post(&path, &json!({"button": "claim"})).await;
        assert_eq!(r.0, 202, "{r:?}");
        loop {
            let f = ws.next_json().await;
            match f["type"].as_str() {
                Some("payout") => {
                    assert_eq!(f["payout"]["app"], "red-envelope");
                    assert_eq!(f["payout"]["currency"], "EUR");
                    return Opened::Paid(f["payout"]["amount"].as_i64().unwrap());
                }
                // The first press asks for consent; the press runs once it is given.
                Some("consent_request") => consent(&member, &f).await,
                Some("app_error") if f["kind"] == "busy" => break,
                Some("app_error") => {
                    return Opened::Refused(f["message"].as_str().unwrap().to_owned());
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn fifty_members_open_an_envelope_of_thirty_shares_and_the_rest_comes_back_on_expiry() {
    on_every_backend!(|node| {
        let (dev, alice, members, group) = setup(&node).await;
        let mut ws = alice.ws_live().await;

        // Envelope one: 10.00 EUR in 30 shares, 50 members pressing Open at once.
        let (first, card) = send_envelope(&alice, &mut ws, &group, "10.00 30 Happy new year").await;
        let card_id = card["id"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = members
            .iter()
            .map(|m| tokio::spawn(open(m.clone(), group.clone(), card_id.clone())))
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let paid: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Opened::Paid(a) => Some(*a),
                Opened::Refused(_) => None,
            })
            .collect();
        assert_eq!(paid.len(), 30, "{outcomes:?}");
        assert!(paid.iter().all(|a| *a >= 1), "{paid:?}");
        assert_eq!(paid.iter().sum::<i64>(), 1000, "{paid:?}");
        for o in &outcomes {
            if let Opened::Refused(why) = o {
                assert!(why.contains("all the shares"), "{why}");
            }
        }
        // Every member's wallet holds exactly what their one payout said.
        let mut wallets = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            let w = eur(m, "/api/v1/me/wallet").await;
            let expected = match &outcomes[i] {
                Opened::Paid(a) => *a,
                Opened::Refused(_) => 0,
            };
            assert_eq!(w, expected, "member {i}");
            wallets.insert(i, w);
        }
        // A winner pressing again gets nothing more.
        let winner = outcomes
            .iter()
            .position(|o| matches!(o, Opened::Paid(_)))
            .unwrap();
        let again = open(members[winner].clone(), group.clone(), card_id.clone()).await;
        assert!(
            matches!(&again, Opened::Refused(why) if why.contains("already opened")),
            "{again:?}"
        );
        assert_eq!(
            eur(&members[winner], "/api/v1/me/wallet").await,
            wallets[&winner]
        );
        assert_eq!(eur(&alice, "/api/v1/me/wallet").await, 10_000 - 1000);
        assert_eq!(eur(&dev, "/api/v1/apps/red-envelope/ledger").await, 0);
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");

        // Envelope two: 5.00 EUR in 10 shares for 2 seconds; three members open one each.
        let (second, card) = send_envelope(&alice, &mut ws, &group, "5.00 10 for 2s Quick").await;
        assert_ne!(first, second);
        let card_id = card["id"].as_str().unwrap().to_owned();
        let mut opened = 0;
        for m in &members[..3] {
            match open(m.clone(), group.clone(), card_id.clone()).await {
                Opened::Paid(a) => opened += a,
                other => panic!("{other:?}"),
            }
        }
        // The timer gives the rest back to alice: a partial refund of her payment.
        let update = loop {
            let f = ws.next_of("payment_update").await;
            if f["payment"]["id"] == second.as_str() {
                break f;
            }
        };
        assert_eq!(update["payment"]["state"], "partially_refunded", "{update}");
        assert_eq!(update["payment"]["refunded"], 500 - opened, "{update}");
        assert_eq!(
            eur(&alice, "/api/v1/me/wallet").await,
            10_000 - 1000 - 500 + (500 - opened)
        );
        assert_eq!(eur(&dev, "/api/v1/apps/red-envelope/ledger").await, 0);
        // Opening after the expiry is refused, and pays nothing.
        let late = open(members[3].clone(), group.clone(), card_id.clone()).await;
        assert!(
            matches!(&late, Opened::Refused(why) if why.contains("expired")),
            "{late:?}"
        );
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
    });
}
