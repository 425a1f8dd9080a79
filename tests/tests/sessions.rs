//! Sessions, on every backend: signing out closes that session's open WebSocket at once with
//! close code 4001 and its token no longer sends (401, the node's cache included); a user lists
//! their sessions (the current one marked, no tokens) and revokes one by id; a password change
//! revokes every other session; an admin's role change closes the user's WebSockets with 4002
//! (the token still works), and disabling the account closes them with 4001 and refuses sign-in;
//! a revocation this node did not make (another node, `minihost admin`) closes them at the
//! WebSocket's next session check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use minihost_core::Role;
use minihost_tests::{FRAME_TIMEOUT, Ws, on_every_backend};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The close code the server ends `ws` with (frames before it are skipped).
async fn close_code(mut ws: Ws) -> u16 {
    loop {
        let frame = tokio::time::timeout(FRAME_TIMEOUT, ws.stream.next())
            .await
            .expect("the socket stayed open")
            .expect("the socket ended without a close frame")
            .unwrap();
        if let WsMessage::Close(close) = frame {
            return close.map(|c| u16::from(c.code)).unwrap_or(0);
        }
    }
}

#[tokio::test]
async fn signing_out_closes_the_websocket_and_the_token_stops_sending() {
    on_every_backend!(|node| {
        let alice = node.user("alice").await;
        node.user("bob").await;
        let chat = alice.direct_with("bob").await;
        alice.say(&chat, "before").await;
        let ws = alice.ws_live().await;
        let r = alice.delete("/api/v1/sessions/current").await;
        assert_eq!(r.0, 204, "{r:?}");
        assert_eq!(close_code(ws).await, 4001, "{}", node.backend());
        let r = alice
            .post(
                &format!("/api/v1/conversations/{chat}/messages"),
                &json!({"content": {"type": "text", "text": "after"}}),
            )
            .await;
        assert_eq!(r.0, 401, "{r:?}");
        assert_eq!(alice.get("/api/v1/me").await.0, 401);
    });
}

#[tokio::test]
async fn a_user_lists_their_sessions_and_revokes_one() {
    on_every_backend!(|node| {
        let first = node.user("alice").await;
        let second = node.client().signed_in("alice").await;
        let bob = node.user("bob").await;
        let r = first.get("/api/v1/me/sessions").await;
        assert_eq!(r.0, 200, "{r:?}");
        let list = r.1["sessions"].as_array().unwrap().clone();
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
        assert!(list.iter().all(|s| s.get("token").is_none()));
        let text = r.1.to_string();
        assert!(!text.contains(first.token.as_deref().unwrap()));
        assert!(!text.contains(second.token.as_deref().unwrap()));
        let other = list.iter().find(|s| s["current"] == false).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(other.starts_with("ses_"), "{other}");

        // Another user cannot revoke it; its owner can, and its WebSocket closes.
        let ws = second.ws_live().await;
        let path = format!("/api/v1/me/sessions/{other}");
        assert_eq!(bob.delete(&path).await.0, 404);
        assert_eq!(second.get("/api/v1/me").await.0, 200);
        assert_eq!(first.delete(&path).await.0, 204);
        assert_eq!(close_code(ws).await, 4001, "{}", node.backend());
        assert_eq!(second.get("/api/v1/me").await.0, 401);
        assert_eq!(first.delete(&path).await.0, 404, "already revoked");
        let r = first.get("/api/v1/me/sessions").await;
        assert_eq!(r.1["sessions"].as_array().unwrap().len(), 1);
        assert!(first.token.as_deref().unwrap().starts_with("mhs_"));
    });
}

#[tokio::test]
async fn a_password_change_revokes_the_other_sessions() {
    on_every_backend!(|node| {
        let first = node.user("alice").await;
        let second = node.client().signed_in("alice").await;
        let ws = second.ws_live().await;
        let change =
            |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        let r = first
            .post(
                "/api/v1/me/password",
                &change("wrong-password", "a new password"),
            )
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        let r = first
            .post("/api/v1/me/password", &change("password-alice", "short"))
            .await;
        assert_eq!(
            (r.0, r.1["error"]["field"].as_str()),
            (422, Some("new_password"))
        );
        assert_eq!(second.get("/api/v1/me").await.0, 200, "nothing changed yet");
        let r = first
            .post(
                "/api/v1/me/password",
                &change("password-alice", "a new password"),
            )
            .await;
        assert_eq!(r.0, 204, "{r:?}");
        assert_eq!(close_code(ws).await, 4001, "{}", node.backend());
        assert_eq!(second.get("/api/v1/me").await.0, 401);
        assert_eq!(
            first.get("/api/v1/me").await.0,
            200,
            "the changing session stays"
        );
        let anon = node.client();
        let old = json!({"username": "alice", "password": "password-alice"});
        assert_eq!(anon.post("/api/v1/sessions", &old).await.0, 401);
        let new = json!({"username": "alice", "password": "a new password"});
        assert_eq!(anon.post("/api/v1/sessions", &new).await.0, 200);
    });
}

#[tokio::test]
async fn a_role_change_and_disabling_close_the_users_websockets() {
    on_every_backend!(|node| {
        let admin = node.user_with_role("root", Role::Admin).await;
        let bob = node.user("bob").await;
        let ws = bob.ws_live().await;
        let r = admin
            .put("/api/v1/users/bob/role", &json!({"role": "developer"}))
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        assert_eq!(close_code(ws).await, 4002, "{}", node.backend());
        let me = bob.get("/api/v1/me").await;
        assert_eq!((me.0, me.1["role"].as_str()), (200, Some("developer")));

        let ws = bob.ws_live().await;
        let disable = json!({"disabled": true});
        assert_eq!(
            bob.put("/api/v1/users/root/disabled", &disable).await.0,
            403
        );
        assert_eq!(
            admin.put("/api/v1/users/root/disabled", &disable).await.0,
            403
        );
        let r = admin.put("/api/v1/users/bob/disabled", &disable).await;
        assert_eq!(r.0, 200, "{r:?}");
        assert_eq!(close_code(ws).await, 4001);
        assert_eq!(bob.get("/api/v1/me").await.0, 401);
        let creds = json!({"username": "bob", "password": "password-bob"});
        let r = node.client().post("/api/v1/sessions", &creds).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (403, Some("account_disabled"))
        );
        let r = admin
            .put("/api/v1/users/bob/disabled", &json!({"disabled": false}))
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        assert_eq!(node.client().post("/api/v1/sessions", &creds).await.0, 200);
        assert_eq!(
            bob.get("/api/v1/me").await.0,
            401,
            "old sessions stay revoked"
        );
    });
}

#[tokio::test]
async fn a_revocation_made_elsewhere_closes_the_websocket_at_the_next_session_check() {
    for db in minihost_tests::testing::TestDb::all().await.unwrap() {
        let api = minihost_api::ApiConfig {
            ws_session_check: std::time::Duration::from_millis(200),
            ..minihost_api::ApiConfig::default()
        };
        let node = minihost_tests::TestNode::start_with(db, api).await;
        let alice = node.user("alice").await;
        let ws = alice.ws_live().await;
        // As another node or `minihost admin disable` would: in the database only.
        node.node.store.set_disabled("alice", true).await.unwrap();
        assert_eq!(close_code(ws).await, 4001, "{}", node.backend());
        node.finish().await;
    }
}
