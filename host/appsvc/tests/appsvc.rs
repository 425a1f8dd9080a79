//! What apps may do, on every backend: grant checks at every call (revocation applies at once),
//! conversation rules, send budgets, profile visibility, storage isolation and quotas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_appsvc::{Actor, AppError, AppLimits, AppServices, Bucket, Trigger};
use minihost_core::{Content, DisplayName, Role, Sender, Username};
use minihost_hub::LocalHub;
use minihost_store::testing::TestDb;
use minihost_store::{NewUser, Store, User};
use std::sync::Arc;

async fn user(store: &Store, name: &str) -> User {
    store
        .create_user(NewUser {
            username: Username::parse(name).unwrap(),
            display_name: DisplayName::parse(&name.to_uppercase()).unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
}

async fn actor(
    svc: &AppServices,
    app: &str,
    u: &User,
    conv: Option<&minihost_core::ConversationId>,
) -> Actor {
    Actor {
        app: app.into(),
        app_name: app.to_uppercase(),
        user: u.id.clone(),
        app_user_id: svc.app_user_id(app, &u.id).await.unwrap(),
        conversation: conv.cloned(),
        trigger: Trigger::Unsolicited,
        reviewed_here: None,
    }
}

fn limits() -> AppLimits {
    AppLimits {
        unsolicited_burst: 3,
        unsolicited_per_minute: 0,
        reply_burst: 2,
        replies_per_minute: 0,
        storage_keys: 3,
        storage_bytes: 100,
        ..AppLimits::default()
    }
}

#[tokio::test]
async fn apps_act_only_within_the_current_grant() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let svc = AppServices::new(store.clone(), LocalHub::new(), limits())
            .await
            .unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        let eve = user(&store, "eve").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        store.register_app("shop", "Shop", &dev.id).await.unwrap();
        let g = store
            .create_group(&bob.id, "g", std::slice::from_ref(&carol.id))
            .await
            .unwrap();
        let other = store.create_group(&eve.id, "eve's", &[]).await.unwrap();
        store
            .install(&g.id, "polls", "1.0.0", &bob.id, false)
            .await
            .unwrap();

        // App-scoped ids: stable per app, different across apps.
        let a1 = svc.app_user_id("polls", &bob.id).await.unwrap();
        assert_eq!(a1, svc.app_user_id("polls", &bob.id).await.unwrap());
        assert_ne!(
            a1,
            svc.app_user_id("shop", &bob.id).await.unwrap(),
            "{}",
            db.name
        );
        assert!(!a1.contains(bob.id.as_str()));

        let bob_polls = actor(&svc, "polls", &bob, Some(&g.id)).await;
        let hi = || Content::text("hi");
        assert_eq!(
            svc.send_message(&bob_polls, &g.id, hi()).await.unwrap_err(),
            AppError::PermissionDenied("messages.send".into())
        );
        store
            .set_grant(&bob.id, "polls", &["messages.send".into()], "1.0.0")
            .await
            .unwrap();
        let m = svc.send_message(&bob_polls, &g.id, hi()).await.unwrap();
        assert_eq!(
            m.sender,
            Sender::App {
                id: "polls".into(),
                name: "POLLS".into()
            }
        );
        // Elsewhere: only where installed and the user is a member.
        assert_eq!(
            svc.send_message(&bob_polls, &other.id, hi())
                .await
                .unwrap_err(),
            AppError::NotFound("conversation")
        );
        // Invalid content is a typed error.
        assert!(matches!(
            svc.send_message(&bob_polls, &g.id, Content::text(" "))
                .await,
            Err(AppError::Invalid(_))
        ));
        // Budget: 3 per burst (one used): 2 left, then refused; other apps unaffected.
        assert_eq!(svc.send_budget(&bob_polls, &g.id).await.unwrap(), 2);
        svc.send_message(&bob_polls, &g.id, hi()).await.unwrap();
        svc.send_message(&bob_polls, &g.id, hi()).await.unwrap();
        assert!(matches!(
            svc.send_message(&bob_polls, &g.id, hi()).await,
            Err(AppError::BudgetExceeded(_))
        ));
        store
            .install(&g.id, "shop", "1.0.0", &bob.id, false)
            .await
            .unwrap();
        store
            .set_grant(&bob.id, "shop", &["messages.send".into()], "1.0.0")
            .await
            .unwrap();
        let bob_shop = actor(&svc, "shop", &bob, Some(&g.id)).await;
        svc.send_message(&bob_shop, &g.id, hi()).await.unwrap();

        // Updating: only this app's own messages.
        let card = Content::text("tally: 1");
        let updated = svc
            .update_message(&bob_polls, &g.id, m.id.as_str(), card.clone())
            .await
            .unwrap();
        assert_eq!(updated.content, card);
        assert_eq!(
            svc.update_message(&bob_shop, &g.id, m.id.as_str(), hi())
                .await
                .unwrap_err(),
            AppError::NotFound("message of this app")
        );

        // Revocation applies to the very next call.
        store
            .set_grant(&bob.id, "polls", &[], "1.0.0")
            .await
            .unwrap();
        assert_eq!(
            svc.send_budget(&bob_polls, &g.id).await.unwrap_err(),
            AppError::PermissionDenied("messages.send".into())
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn profiles_need_both_users_consent_and_are_recorded() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let svc = AppServices::new(store.clone(), LocalHub::new(), limits())
            .await
            .unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        let dan = user(&store, "dan").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        let g = store
            .create_group(&bob.id, "g", std::slice::from_ref(&carol.id))
            .await
            .unwrap();
        let bob_a = actor(&svc, "polls", &bob, Some(&g.id)).await;
        let carol_id = svc.app_user_id("polls", &carol.id).await.unwrap();
        let dan_id = svc.app_user_id("polls", &dan.id).await.unwrap();

        assert_eq!(
            svc.profile(&bob_a, &bob_a.app_user_id).await.unwrap_err(),
            AppError::PermissionDenied("profile.read".into())
        );
        store
            .set_grant(&bob.id, "polls", &["profile.read".into()], "1")
            .await
            .unwrap();
        let me = svc.profile(&bob_a, &bob_a.app_user_id).await.unwrap();
        assert_eq!(
            (me.display_name.as_str(), me.user.as_str()),
            ("BOB", bob_a.app_user_id.as_str())
        );
        assert!(
            matches!(
                svc.profile(&bob_a, &carol_id).await,
                Err(AppError::PermissionDenied(_))
            ),
            "carol did not grant"
        );
        store
            .set_grant(&carol.id, "polls", &["profile.read".into()], "1")
            .await
            .unwrap();
        assert_eq!(
            svc.profile(&bob_a, &carol_id).await.unwrap().display_name,
            "CAROL"
        );
        store
            .set_grant(&dan.id, "polls", &["profile.read".into()], "1")
            .await
            .unwrap();
        assert_eq!(
            svc.profile(&bob_a, &dan_id).await.unwrap_err(),
            AppError::NotFound("user"),
            "{}: not a member",
            db.name
        );
        assert_eq!(
            svc.profile(&bob_a, "au_unknown").await.unwrap_err(),
            AppError::NotFound("user")
        );
        // Carol's record: the refused read (she had not granted it), then the read; Bob's: his
        // own refused read, then his read (sorted: lines of one millisecond have no order).
        let lines = |record: Vec<minihost_store::PrivacyEntry>| -> Vec<(String, String, String)> {
            let mut lines: Vec<_> = record
                .into_iter()
                .map(|e| (e.app_id, e.capability, e.outcome))
                .collect();
            lines.sort();
            lines
        };
        let line = |outcome: &str| ("polls".into(), "profile.read".into(), outcome.to_owned());
        assert_eq!(
            lines(store.privacy_log(&carol.id, 10).await.unwrap()),
            vec![line("denied"), line("ok")],
            "{}",
            db.name
        );
        assert_eq!(
            lines(store.privacy_log(&bob.id, 10).await.unwrap()),
            vec![line("denied"), line("ok")],
            "{}",
            db.name
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn storage_is_isolated_and_bounded() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let svc = AppServices::new(store.clone(), Arc::new(LocalHub::default()), limits())
            .await
            .unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        for app in ["polls", "shop"] {
            store.register_app(app, app, &dev.id).await.unwrap();
            for u in [&bob, &carol] {
                store
                    .set_grant(&u.id, app, &["storage".into()], "1")
                    .await
                    .unwrap();
            }
        }
        let bob_p = actor(&svc, "polls", &bob, None).await;
        let carol_p = actor(&svc, "polls", &carol, None).await;
        let bob_s = actor(&svc, "shop", &bob, None).await;
        svc.storage_set(&bob_p, Bucket::Shared, "k", b"polls-data")
            .await
            .unwrap();
        svc.storage_set(&bob_p, Bucket::User, "k", b"bob-private")
            .await
            .unwrap();
        assert_eq!(
            svc.storage_get(&carol_p, Bucket::Shared, "k")
                .await
                .unwrap(),
            Some(b"polls-data".to_vec())
        );
        assert_eq!(
            svc.storage_get(&carol_p, Bucket::User, "k").await.unwrap(),
            None,
            "{}",
            db.name
        );
        assert_eq!(
            svc.storage_get(&bob_s, Bucket::Shared, "k").await.unwrap(),
            None,
            "another app's key"
        );
        svc.storage_set(&bob_p, Bucket::Shared, "k2", b"x")
            .await
            .unwrap();
        svc.storage_set(&bob_p, Bucket::Shared, "k3", b"x")
            .await
            .unwrap();
        assert!(matches!(
            svc.storage_set(&bob_p, Bucket::Shared, "k4", b"x").await,
            Err(AppError::QuotaExceeded(_))
        ));
        assert!(matches!(
            svc.storage_set(&bob_p, Bucket::Shared, "k", &[7u8; 200])
                .await,
            Err(AppError::Invalid(_)) | Err(AppError::QuotaExceeded(_))
        ));
        assert!(matches!(
            svc.storage_set(&bob_p, Bucket::Shared, "", b"x").await,
            Err(AppError::Invalid(_))
        ));
        assert_eq!(
            svc.storage_keys(&bob_p, Bucket::Shared, "k").await.unwrap(),
            vec!["k", "k2", "k3"]
        );
        assert!(
            svc.storage_delete(&bob_p, Bucket::Shared, "k2")
                .await
                .unwrap()
        );
        store.set_grant(&bob.id, "polls", &[], "1").await.unwrap();
        assert_eq!(
            svc.storage_get(&bob_p, Bucket::Shared, "k")
                .await
                .unwrap_err(),
            AppError::PermissionDenied("storage".into())
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}

#[tokio::test]
async fn replies_have_their_own_budget_and_refusals_are_recorded() {
    for db in TestDb::all().await.unwrap() {
        let store = db.open(None).await.unwrap();
        let svc = AppServices::new(store.clone(), LocalHub::new(), limits())
            .await
            .unwrap();
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        let g = store
            .create_group(&bob.id, "g", std::slice::from_ref(&carol.id))
            .await
            .unwrap();
        store
            .install(&g.id, "polls", "1.0.0", &bob.id, false)
            .await
            .unwrap();
        for u in [&bob, &carol] {
            store
                .set_grant(&u.id, "polls", &["messages.send".into()], "1")
                .await
                .unwrap();
        }
        let hi = || Content::text("hi");
        // Unsolicited: 3 in the burst, then refused.
        let bob_timer = actor(&svc, "polls", &bob, Some(&g.id)).await;
        for _ in 0..3 {
            svc.send_message(&bob_timer, &g.id, hi()).await.unwrap();
        }
        assert!(
            matches!(
                svc.send_message(&bob_timer, &g.id, hi()).await,
                Err(AppError::BudgetExceeded(_))
            ),
            "{}",
            db.name
        );
        // Replies to each user's own events: 2 each, whatever the unsolicited budget.
        let mut bob_cmd = actor(&svc, "polls", &bob, Some(&g.id)).await;
        bob_cmd.trigger = Trigger::User;
        let mut carol_cmd = actor(&svc, "polls", &carol, Some(&g.id)).await;
        carol_cmd.trigger = Trigger::User;
        for a in [&bob_cmd, &carol_cmd] {
            assert_eq!(svc.send_budget(a, &g.id).await.unwrap(), 2);
            svc.reply(a, hi()).await.unwrap();
            svc.send_message(a, &g.id, hi()).await.unwrap();
            assert!(matches!(
                svc.reply(a, hi()).await,
                Err(AppError::BudgetExceeded(_))
            ));
        }
        // Bob's record: three sends, one refused for the budget, one reply-time send.
        let mut outcomes: Vec<String> = store
            .privacy_log(&bob.id, 20)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.capability, e.outcome))
            .collect();
        outcomes.sort();
        assert_eq!(
            outcomes,
            [
                "messages.send budget_exceeded",
                "messages.send ok",
                "messages.send ok",
                "messages.send ok",
                "messages.send ok",
            ]
        );

        // Storage: a use of the private bucket is written after it succeeded; a refusal for
        // the quota or the scope is written with its reason; the shared bucket's uses are not
        // the user's.
        store
            .set_grant(&carol.id, "polls", &["storage".into()], "1")
            .await
            .unwrap();
        let carol_a = actor(&svc, "polls", &carol, None).await;
        svc.storage_set(&carol_a, Bucket::Shared, "s", b"x")
            .await
            .unwrap();
        for k in ["a", "b", "c"] {
            svc.storage_set(&carol_a, Bucket::User, k, b"x")
                .await
                .unwrap();
        }
        assert!(matches!(
            svc.storage_set(&carol_a, Bucket::User, "d", b"x").await,
            Err(AppError::QuotaExceeded(_))
        ));
        assert!(matches!(
            svc.storage_set(&carol_a, Bucket::User, "", b"x").await,
            Err(AppError::Invalid(_))
        ));
        store.set_grant(&carol.id, "polls", &[], "1").await.unwrap();
        assert!(matches!(
            svc.storage_get(&carol_a, Bucket::Shared, "s").await,
            Err(AppError::PermissionDenied(_))
        ));
        let mut outcomes: Vec<String> = store
            .privacy_log(&carol.id, 20)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.capability == "storage")
            .map(|e| e.outcome)
            .collect();
        outcomes.sort();
        assert_eq!(
            outcomes,
            ["denied", "ok", "ok", "ok", "quota_exceeded"],
            "{}: an invalid key is no use of anything",
            db.name
        );
        store.close().await;
        db.cleanup().await.unwrap();
    }
}
