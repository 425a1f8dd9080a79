//! Pay in a chat, end to end through a real server: the reviewed shop app in a group, alice taps
//! Buy, gets the payment request live, confirms with her PIN; her wallet goes down and the
//! merchant account up by exactly the price, once; the shop posts a receipt; the books balance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::{Client, TestNode, Ws, on_every_backend};
use serde_json::{Value, json};

const SHOP_MANIFEST: &str = include_str!("../../examples/shop/miniapp.toml");
const SCOPES: [&str; 3] = ["messages.send", "payments.request", "storage"];

/// The next message frame from an app.
async fn next_app_message(ws: &mut Ws) -> Value {
    loop {
        let f = ws.next_of("message").await;
        if f["message"]["sender"]["type"] == "app" {
            return f["message"].clone();
        }
    }
}

/// The shop, submitted by its developer `tea`, approved by a reviewer, installed by `tea` in a
/// group with alice. Returns (tea, alice, the group).
async fn shop_in_a_group(node: &TestNode) -> (Client, Client, String) {
    let tea = node.developer("tea").await;
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::SHOP).unwrap();
    let r = tea.submit("shop", SHOP_MANIFEST, &wasm).await;
    assert_eq!(r.0, 201, "{r:?}");
    let rita = node.reviewer("rita").await;
    rita.approve_and_release("shop", "0.1.0").await;
    let alice = node.user("alice").await;
    let group = tea.group("tea lovers", &["alice"]).await;
    let r = tea
        .put(
            &format!("/api/v1/conversations/{group}/apps/shop"),
            &json!({}),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    (tea, alice, group)
}

async fn balance(client: &Client, path: &str) -> i64 {
    let r = client.get(path).await;
    assert_eq!(r.0, 200, "{r:?}");
    r.1.as_array()
        .unwrap()
        .iter()
        .find(|a| a["currency"] == "EUR")
        .map_or(0, |a| a["balance"].as_i64().unwrap())
}

#[tokio::test]
async fn alice_buys_tea_in_a_group_and_gets_a_receipt() {
    on_every_backend!(|node| {
        let (tea, alice, group) = shop_in_a_group(&node).await;
        let alice_id = alice.get("/api/v1/me").await.1["id"]
            .as_str()
            .unwrap()
            .to_owned();
        node.node
            .store
            .top_up(
                &minihost_core::UserId::from_string(alice_id),
                10_000,
                "EUR",
                "test",
            )
            .await
            .unwrap();
        let r = alice
            .put(
                "/api/v1/me/payment-pin",
                &json!({"pin": "246810", "password": "password-alice"}),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");

        let mut ws = alice.ws_live().await;
        alice.say(&group, "/shop").await;
        let ask = ws.next_of("consent_request").await;
        assert_eq!(ask["app"], "shop");
        let r = alice
            .put("/api/v1/me/grants/shop", &json!({ "scopes": SCOPES }))
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let card = next_app_message(&mut ws).await;
        assert_eq!(card["content"]["type"], "card", "{card}");
        assert_eq!(card["sender"]["name"], "Tea Shop");

        // Buy, twice in a row (a double tap): one order.
        let path = format!(
            "/api/v1/conversations/{group}/messages/{}/actions",
            card["id"].as_str().unwrap()
        );
        for _ in 0..2 {
            let r = alice.post(&path, &json!({"button": "sencha"})).await;
            assert_eq!(r.0, 202, "{r:?}");
        }
        let request = ws.next_of("payment_request").await;
        let payment = &request["payment"];
        assert_eq!(payment["app_name"], "Tea Shop");
        assert_eq!(payment["merchant"], "TEA", "the developer's display name");
        assert_eq!(payment["amount"], 650);
        assert_eq!(payment["currency"], "EUR");
        assert_eq!(payment["amount_text"], "€6.50");
        assert_eq!(payment["description"], "Sencha, 100 g");
        assert_eq!(payment["state"], "pending");
        let id = payment["id"].as_str().unwrap().to_owned();
        let pending = alice.get("/api/v1/me/payments/pending").await.1;
        let ids: Vec<&str> = pending
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "one order for two taps");

        // A wrong PIN moves nothing; the right one pays.
        let confirm = format!("/api/v1/me/payments/{id}/confirm");
        let r = alice.post(&confirm, &json!({"pin": "000000"})).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (403, Some("wrong_pin")),
            "{r:?}"
        );
        assert_eq!(balance(&alice, "/api/v1/me/wallet").await, 10_000);
        // The merchant cannot confirm for alice.
        let r = tea.post(&confirm, &json!({"pin": "246810"})).await;
        assert_eq!(r.0, 404, "{r:?}");
        let r = alice.post(&confirm, &json!({"pin": "246810"})).await;
        assert_eq!((r.0, r.1["state"].as_str()), (200, Some("paid")), "{r:?}");
        // Confirming again is the same payment, not a second one.
        let r = alice.post(&confirm, &json!({"pin": "246810"})).await;
        assert_eq!((r.0, r.1["state"].as_str()), (200, Some("paid")), "{r:?}");

        // The shop hears of it and posts a receipt.
        let receipt = loop {
            let m = next_app_message(&mut ws).await;
            if m["content"]["type"] == "card" {
                break m;
            }
        };
        let text = receipt["content"].to_string();
        assert!(
            text.contains("Receipt") && text.contains("Sencha, 100 g") && text.contains(&id),
            "{text}"
        );

        assert_eq!(balance(&alice, "/api/v1/me/wallet").await, 10_000 - 650);
        assert_eq!(balance(&tea, "/api/v1/apps/shop/ledger").await, 650);
        // Only the app's developer reads its ledger.
        assert_eq!(alice.get("/api/v1/apps/shop/ledger").await.0, 404);
        let history = alice.get("/api/v1/me/payments").await.1;
        assert_eq!(history[0]["state"], "paid");
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");

        // alice cannot refund herself through the shop: only its developer can.
        alice.say(&group, &format!("/shop refund {id}")).await;
        let refused = ws.next_of("app_error").await;
        assert!(
            refused["message"].as_str().unwrap().contains("developer"),
            "{refused}"
        );
        // The developer refunds €3.00 from the chat (consenting on first use), then the rest.
        let mut tea_ws = tea.ws_live().await;
        tea.say(&group, &format!("/shop refund {id} 300")).await;
        let ask = tea_ws.next_of("consent_request").await;
        assert_eq!(ask["app"], "shop");
        let r = tea
            .put("/api/v1/me/grants/shop", &json!({ "scopes": SCOPES }))
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        let update = ws.next_of("payment_update").await;
        assert_eq!(update["payment"]["state"], "partially_refunded", "{update}");
        assert_eq!(update["payment"]["refunded"], 300);
        // The shop hears of it through its payment event and says so.
        let told = loop {
            let m = next_app_message(&mut ws).await;
            if m["content"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("of €6.50 was refunded"))
            {
                break m;
            }
        };
        assert!(told["content"]["text"].as_str().unwrap().contains("€3.00"));
        // The same command again is the same refund, not a second one.
        tea.say(&group, &format!("/shop refund {id} 300")).await;
        tea.say(&group, &format!("/shop refund {id} 350")).await;
        let update = ws.next_of("payment_update").await;
        assert_eq!(update["payment"]["state"], "refunded", "{update}");
        assert_eq!(update["payment"]["refunded"], 650);
        assert_eq!(balance(&alice, "/api/v1/me/wallet").await, 10_000);
        assert_eq!(balance(&tea, "/api/v1/apps/shop/ledger").await, 0);
        // Beyond what was paid: the shop is told no, and nothing moves.
        tea.say(&group, &format!("/shop refund {id} 1")).await;
        let refused = tea_ws.next_of("app_error").await;
        assert!(
            refused["message"].as_str().unwrap().contains("refund"),
            "{refused}"
        );
        assert_eq!(balance(&alice, "/api/v1/me/wallet").await, 10_000);
        let tb = node.node.store.trial_balance().await.unwrap();
        assert!(tb.holds(), "{tb:#?}");
    });
}
