//! The consent must-show, end to end with the first-party polls plugin: reviewed and installed
//! like any third-party app; bob runs `/poll`, answers the consent request, the card appears;
//! alice and carol vote over the API (each asked for consent first); the tally card updates in
//! place; bob revokes `messages.send` and the app's next send is denied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_tests::{Client, Ws, on_every_backend};
use serde_json::{Value, json};

const POLLS_MANIFEST: &str = include_str!("../../plugins/polls/miniapp.toml");

async fn next_app_card(ws: &mut Ws) -> Value {
    loop {
        let f = ws.next_of("message").await;
        if f["message"]["sender"]["type"] == "app" {
            return f["message"].clone();
        }
    }
}

fn tally(card: &Value) -> String {
    card["content"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .find(|t| t.contains(':'))
        .unwrap_or_default()
        .to_owned()
}

/// The polls plugin submitted for review by developer `team` (who is returned).
async fn submit_polls(node: &minihost_tests::TestNode) -> Client {
    let team = node.developer("team").await;
    let r = team
        .submit(
            "polls",
            POLLS_MANIFEST,
            &minihost_guest_artifacts::read(minihost_guest_artifacts::POLLS).unwrap(),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    team
}

/// `who` answers the polls app's consent request with both scopes.
async fn grant_polls(who: &Client) {
    let r = who
        .put(
            "/api/v1/me/grants/polls",
            &json!({"scopes": ["messages.send", "storage"]}),
        )
        .await;
    assert_eq!(r.0, 200, "{r:?}");
}

/// Votes as `voter`, answering the consent request that the first vote raises.
async fn vote(voter: &Client, ws: &mut Ws, path: &str, button: &str, first: bool) {
    let r = voter.post(path, &json!({"button": button})).await;
    assert_eq!(r.0, 202, "{r:?}");
    if first {
        let ask = ws.next_of("consent_request").await;
        assert_eq!(ask["app"], "polls");
        grant_polls(voter).await;
    }
}

async fn next_update(ws: &mut Ws, expect: &str) -> Value {
    loop {
        let f = ws.next_of("message_updated").await;
        if tally(&f["message"]) == expect {
            return f;
        }
    }
}

#[tokio::test]
async fn polls_with_consent_live_tally_and_revocation() {
    on_every_backend!(|node| {
        // The platform team publishes polls through the same review as everyone.
        let team = submit_polls(&node).await;
        let rita = node.reviewer("rita").await;
        assert_eq!(rita.get("/api/v1/review/queue").await.1[0]["app"], "polls");
        rita.approve_and_release("polls", "1.0.0").await;

        let bob = node.user("bob").await;
        let alice = node.user("alice").await;
        let carol = node.user("carol").await;
        let g = bob.group("friends", &["alice", "carol"]).await;
        let r = bob
            .put(&format!("/api/v1/conversations/{g}/apps/polls"), &json!({}))
            .await;
        assert_eq!(
            (r.0, r.1["version"].as_str()),
            (201, Some("1.0.0")),
            "{r:?}"
        );
        let mut bob_ws = bob.ws_live().await;
        let mut alice_ws = alice.ws_live().await;
        let mut carol_ws = carol.ws_live().await;

        bob.say(&g, "/poll Lunch? | pizza | sushi").await;
        let ask = bob_ws.next_of("consent_request").await;
        let scopes: Vec<(&str, &str)> = ask["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(scopes[0].0, "messages.send");
        assert!(scopes[1].1.contains("who voted"), "{scopes:?}");
        grant_polls(&bob).await;
        let card = next_app_card(&mut bob_ws).await;
        assert_eq!(
            card["sender"]["name"], "Polls",
            "reviewed: no 'unreviewed' mark"
        );
        assert_eq!(tally(&card), "pizza: 0 · sushi: 0");
        let card_id = card["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/conversations/{g}/messages/{card_id}/actions");

        vote(&alice, &mut alice_ws, &path, "opt-0", true).await;
        next_update(&mut bob_ws, "pizza: 1 · sushi: 0").await;
        vote(&carol, &mut carol_ws, &path, "opt-1", true).await;
        next_update(&mut bob_ws, "pizza: 1 · sushi: 1").await;
        // One vote per user, changeable.
        vote(&alice, &mut alice_ws, &path, "opt-1", false).await;
        let f = next_update(&mut bob_ws, "pizza: 0 · sushi: 2").await;
        assert_eq!(
            f["message"]["id"],
            card_id.as_str(),
            "the same card, updated in place"
        );
        let history = bob
            .get(&format!("/api/v1/conversations/{g}/messages"))
            .await
            .1;
        let stored = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == card_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(tally(&stored), "pizza: 0 · sushi: 2", "{}", node.backend());

        // Only the creator closes it.
        alice.post(&path, &json!({"button": "close"})).await;
        let err = alice_ws.next_of("app_error").await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("only the poll's creator"),
            "{err}"
        );

        // Bob revokes messages.send: the app's next send is denied at once.
        let r = bob
            .delete("/api/v1/me/grants/polls/scopes/messages.send")
            .await;
        assert_eq!((r.0, r.1["scopes"].clone()), (200, json!(["storage"])));
        let grants = bob.get("/api/v1/me/grants").await.1;
        assert_eq!(grants[0]["scopes"], json!(["storage"]));
        bob.say(&g, "/poll Dinner? | tacos | ramen").await;
        let err = bob_ws.next_of("app_error").await;
        // A sentence a person understands, not the error's debug text.
        assert_eq!(
            err["message"],
            "Polls needs your permission to send messages (messages.send). You can allow it in \
             the app's permissions.",
            "{err}"
        );
        let log = team.get("/api/v1/apps/polls/invocations?limit=1").await.1;
        let calls = log[0]["calls"].as_array().unwrap();
        assert!(
            calls.iter().any(|c| c["interface"] == "messaging"
                && c["function"] == "send"
                && c["outcome"] == "denied"),
            "{calls:?}"
        );
        assert_eq!(
            bob_ws
                .quiet_for(std::time::Duration::from_millis(300))
                .await,
            None,
            "no new card"
        );

        // Bob revokes the whole app; his next use of it asks for consent again, as a first
        // use does, instead of failing.
        assert_eq!(bob.delete("/api/v1/me/grants/polls").await.0, 204);
        assert_eq!(bob.get("/api/v1/me/grants").await.1[0]["scopes"], json!([]));
        bob.say(&g, "/poll Breakfast? | eggs | toast").await;
        let ask = bob_ws.next_of("consent_request").await;
        assert_eq!(ask["app"], "polls", "{ask}");
        grant_polls(&bob).await;
        let card = next_app_card(&mut bob_ws).await;
        assert_eq!(tally(&card), "eggs: 0 · toast: 0", "{}", node.backend());
    });
}

/// A button press sent again with the same `Idempotency-Key` (its answer was lost) reaches the
/// app once; the same key for another press is refused by name; a new key is a new press.
#[tokio::test]
async fn a_press_sent_again_with_its_key_reaches_the_app_once() {
    on_every_backend!(|node| {
        let team = submit_polls(&node).await;
        node.reviewer("rita")
            .await
            .approve_and_release("polls", "1.0.0")
            .await;
        let bob = node.user("bob").await;
        let alice = node.user("alice").await;
        let g = bob.group("friends", &["alice"]).await;
        let r = bob
            .put(&format!("/api/v1/conversations/{g}/apps/polls"), &json!({}))
            .await;
        assert_eq!(r.0, 201, "{r:?}");
        let mut bob_ws = bob.ws_live().await;
        let mut alice_ws = alice.ws_live().await;
        bob.say(&g, "/poll Lunch? | pizza | sushi").await;
        bob_ws.next_of("consent_request").await;
        grant_polls(&bob).await;
        let card = next_app_card(&mut bob_ws).await;
        let path = format!(
            "/api/v1/conversations/{g}/messages/{}/actions",
            card["id"].as_str().unwrap()
        );
        // Alice's first vote asks her consent (no key: as before).
        vote(&alice, &mut alice_ws, &path, "opt-1", true).await;
        next_update(&mut bob_ws, "pizza: 0 · sushi: 1").await;
        let press = |key: &'static str, button: &'static str| {
            alice.send(
                alice
                    .raw(reqwest::Method::POST, &path)
                    .header("Idempotency-Key", key)
                    .json(&json!({"button": button})),
            )
        };
        let actions = || async {
            let log = team.get("/api/v1/apps/polls/invocations?limit=50").await.1;
            log.as_array()
                .unwrap()
                .iter()
                .filter(|r| r["event_kind"] == "action")
                .count()
        };

        // The presses that reached the app so far, once their records have landed.
        let settled = async |at_least: usize| {
            let mut seen = 0;
            for _ in 0..200 {
                seen = actions().await;
                if seen >= at_least {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            seen
        };
        let before = settled(1).await;

        // Alice presses "close" (only the poll's creator may): the app answers her with an
        // error. Sent again with the same key, it is answered 202 and not delivered again.
        assert_eq!(press("c1", "close").await.0, 202);
        let err = alice_ws.next_of("app_error").await;
        assert!(
            err["message"].as_str().unwrap().contains("creator"),
            "{err}"
        );
        assert_eq!(press("c1", "close").await.0, 202, "{}", node.backend());
        // The same key for another press is refused by name, and not delivered.
        let reused = press("c1", "opt-0").await;
        assert_eq!(reused.0, 422, "{reused:?}");
        assert_eq!(reused.1["error"]["code"], "idempotency_key_reused");
        // A new key is a new press: her vote counts.
        assert_eq!(press("v1", "opt-0").await.0, 202);
        next_update(&mut bob_ws, "pizza: 1 · sushi: 0").await;
        // Two more presses reached the app (the close and the vote).
        assert_eq!(settled(before + 2).await, before + 2, "{}", node.backend());
        assert!(
            alice_ws
                .quiet_for(std::time::Duration::from_millis(300))
                .await
                .is_none_or(|f| f["type"] != "app_error"),
            "a repeated press reached the app"
        );
        assert_eq!(actions().await, before + 2, "{}", node.backend());
    });
}
