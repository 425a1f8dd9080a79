//! The token broker's tables on every configured backend: signing keys created once under
//! concurrency, app credentials, login codes redeemed exactly once in a race, refresh-family
//! rotation and revocation, and the revocation check of access tokens against grants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use minihost_core::{Role, UserId};
use minihost_store::testing::TestDb;
use minihost_store::{
    AccessTokenCheck, LoginCodeRow, RefreshFamilyRow, RefreshTokenRow, SigningKeyRow, Store,
    StoreError, User,
};

async fn user(store: &Store, name: &str) -> User {
    common::user_with_role(store, name, Role::Developer).await
}

macro_rules! on_every_backend {
    (|$store:ident, $db:ident| $body:block) => {{
        for $db in TestDb::all().await.unwrap() {
            let $store = $db.open(None).await.unwrap();
            $body
            $store.close().await;
            $db.cleanup().await.unwrap();
        }
    }};
}

fn key(kid: &str, state: &str, at: i64) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.into(),
        state: state.into(),
        created_at: at,
        retiring_since: None,
        private_key_pem: format!("pem of {kid}"),
    }
}

fn family(id: &str, user: &UserId) -> RefreshFamilyRow {
    RefreshFamilyRow {
        id: id.into(),
        app_id: "polls".into(),
        user_id: user.clone(),
        client_id: "mhc_1".into(),
        generation: 0,
        created_at: 100,
        expires_at: 10_000,
        revoked_at: None,
    }
}

fn refresh(hash: &str, family: &str, generation: i64, jti: &str) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: hash.into(),
        family_id: family.into(),
        generation,
        issued_at: 100,
        access_jti: jti.into(),
        access_expires_at: 700,
    }
}

fn code(hash: &str, user: &UserId) -> LoginCodeRow {
    LoginCodeRow {
        code_hash: hash.into(),
        app_id: "polls".into(),
        user_id: user.clone(),
        pkce: "challenge".into(),
        issued_at: 100,
        expires_at: 400,
        consumed_at: None,
        issued_family: None,
    }
}

#[tokio::test]
async fn the_first_signing_key_is_created_once_however_many_nodes_start() {
    on_every_backend!(|store, db| {
        assert!(store.signing_keys().await.unwrap().is_empty());
        let mut tasks = Vec::new();
        for n in 0..6 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .update_signing_keys::<StoreError>(|keys| {
                        Ok(keys
                            .is_empty()
                            .then(|| vec![key(&format!("k-{n}"), "active", 1)]))
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(
            stored.len(),
            1,
            "{}: exactly one node created a key",
            db.name
        );
        assert!(
            seen.iter().all(|keys| keys == &stored),
            "every node sees it"
        );

        // A rotation updates the old key's state and adds the new one; keys are never deleted.
        let first = stored[0].kid.clone();
        store
            .update_signing_keys::<StoreError>(|mut keys| {
                keys[0].state = "retiring".into();
                keys[0].retiring_since = Some(50);
                keys.push(key("k-new", "active", 50));
                Ok(Some(keys))
            })
            .await
            .unwrap();
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(
            stored
                .iter()
                .map(|k| (k.kid.as_str(), k.state.as_str(), k.retiring_since))
                .collect::<Vec<_>>(),
            vec![
                (first.as_str(), "retiring", Some(50)),
                ("k-new", "active", None)
            ]
        );
        assert_eq!(stored[0].private_key_pem, format!("pem of {first}"));
        assert!(
            !format!("{:?}", stored[0]).contains("pem of"),
            "Debug hides the key"
        );

        // An error from the closure writes nothing.
        let err = store
            .update_signing_keys(|_| Err(StoreError::Corrupt("refused".into())))
            .await;
        assert!(matches!(err, Err(StoreError::Corrupt(_))));
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    });
}

#[tokio::test]
async fn app_credentials_are_unique_and_rotatable() {
    on_every_backend!(|store, db| {
        let dev = user(&store, "dev").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        store.register_app("shop", "Shop", &dev.id).await.unwrap();
        store
            .create_client("polls", "mhc_1", "sha256:old")
            .await
            .unwrap();
        assert!(matches!(
            store.create_client("polls", "mhc_2", "sha256:x").await,
            Err(StoreError::Conflict("app credentials"))
        ));
        assert!(
            matches!(
                store.create_client("shop", "mhc_1", "sha256:x").await,
                Err(StoreError::Conflict("client id"))
            ),
            "{}",
            db.name
        );
        let c = store.client("mhc_1").await.unwrap().unwrap();
        assert_eq!(
            (c.app_id.as_str(), c.secret_hash.as_str()),
            ("polls", "sha256:old")
        );
        let rotated = store
            .set_client_secret("polls", "sha256:new")
            .await
            .unwrap();
        assert_eq!(rotated.client_id, "mhc_1");
        assert_eq!(
            store
                .client_of_app("polls")
                .await
                .unwrap()
                .unwrap()
                .secret_hash,
            "sha256:new"
        );
        assert!(matches!(
            store.set_client_secret("shop", "sha256:x").await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.client("mhc_unknown").await.unwrap(), None);
    });
}

#[tokio::test]
async fn concurrent_redemptions_of_one_login_code_have_exactly_one_winner() {
    on_every_backend!(|store, db| {
        let bob = user(&store, "bob").await;
        store.insert_login_code(&code("h1", &bob.id)).await.unwrap();
        assert!(matches!(
            store.insert_login_code(&code("h1", &bob.id)).await,
            Err(StoreError::Conflict("login code"))
        ));
        assert_eq!(
            store.login_code("h1").await.unwrap(),
            Some(code("h1", &bob.id))
        );

        let mut tasks = Vec::new();
        for n in 0..8 {
            let store = store.clone();
            let bob = bob.id.clone();
            tasks.push(tokio::spawn(async move {
                let fam = format!("rf_{n}");
                let won = store
                    .redeem_login_code(
                        "h1",
                        150 + n,
                        &family(&fam, &bob),
                        &refresh(&format!("rt{n}"), &fam, 0, &format!("jti{n}")),
                    )
                    .await
                    .unwrap();
                (won, fam)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (won, fam) = t.await.unwrap();
            if won {
                winners.push(fam);
            }
        }
        assert_eq!(winners.len(), 1, "{}: exactly one exchange wins", db.name);
        let stored = store.login_code("h1").await.unwrap().unwrap();
        assert!(stored.consumed_at.is_some());
        assert_eq!(stored.issued_family.as_ref(), Some(&winners[0]));
        // Only the winner's family and token were written.
        for n in 0..8 {
            let fam = store.refresh_family(&format!("rf_{n}")).await.unwrap();
            assert_eq!(fam.is_some(), winners[0] == format!("rf_{n}"));
        }
    });
}

#[tokio::test]
async fn refresh_families_rotate_once_per_generation_and_revoke_their_access_tokens() {
    on_every_backend!(|store, db| {
        let bob = user(&store, "bob").await;
        store.insert_login_code(&code("h1", &bob.id)).await.unwrap();
        assert!(
            store
                .redeem_login_code(
                    "h1",
                    150,
                    &family("rf_a", &bob.id),
                    &refresh("t0", "rf_a", 0, "j0")
                )
                .await
                .unwrap()
        );
        let (t0, fam) = store.refresh_token("t0").await.unwrap().unwrap();
        assert_eq!((t0.generation, fam.generation), (0, 0));
        assert_eq!(fam.user_id, bob.id);

        // Two concurrent rotations of generation 0: one wins.
        let a = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh_family("rf_a", 0, &refresh("t1a", "rf_a", 1, "j1a"))
                    .await
                    .unwrap()
            })
        };
        let b = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh_family("rf_a", 0, &refresh("t1b", "rf_a", 1, "j1b"))
                    .await
                    .unwrap()
            })
        };
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a ^ b, "{}: exactly one rotation wins ({a}, {b})", db.name);
        let winner = if a { "t1a" } else { "t1b" };
        let (t1, fam) = store.refresh_token(winner).await.unwrap().unwrap();
        assert_eq!((t1.generation, fam.generation), (1, 1));
        assert_eq!(
            store
                .refresh_token(if a { "t1b" } else { "t1a" })
                .await
                .unwrap(),
            None
        );

        // Revoking the family revokes the unexpired access tokens issued in it.
        let jti = t1.access_jti.clone();
        let check = |jti: &'static str| AccessTokenCheck {
            jti,
            app_id: "polls",
            app_user_id: None,
            scopes: &[],
            issued_at: 100,
        };
        assert!(!store.access_token_revoked(&check("j0")).await.unwrap());
        assert!(store.revoke_refresh_family("rf_a", 200).await.unwrap());
        assert!(
            !store.revoke_refresh_family("rf_a", 201).await.unwrap(),
            "once"
        );
        assert_eq!(
            store
                .refresh_family("rf_a")
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(200)
        );
        assert!(store.access_token_revoked(&check("j0")).await.unwrap());
        let winner_jti: &'static str = if jti == "j1a" { "j1a" } else { "j1b" };
        assert!(
            store
                .access_token_revoked(&check(winner_jti))
                .await
                .unwrap()
        );
        assert!(
            !store
                .rotate_refresh_family("rf_a", 1, &refresh("t2", "rf_a", 2, "j2"))
                .await
                .unwrap(),
            "a revoked family does not rotate"
        );
    });
}

#[tokio::test]
async fn revocation_check_follows_jtis_and_the_current_grant() {
    on_every_backend!(|store, db| {
        let dev = user(&store, "dev").await;
        let bob = user(&store, "bob").await;
        store.register_app("polls", "Polls", &dev.id).await.unwrap();
        store
            .remember_app_user("polls", "au_bob", &bob.id)
            .await
            .unwrap();
        let granted = vec!["messages.send".to_owned(), "profile.read".to_owned()];
        store
            .set_grant(&bob.id, "polls", &granted, "1.0.0")
            .await
            .unwrap();
        let iat = minihost_core::now_millis() / 1000;

        let check =
            |au: &'static str, scopes: &'static [&'static str], iat: i64| AccessTokenCheck {
                jti: "j-user",
                app_id: "polls",
                app_user_id: Some(au),
                scopes,
                issued_at: iat,
            };
        let both_static: &'static [&'static str] = &["messages.send", "profile.read"];
        let profile_static: &'static [&'static str] = &["profile.read"];

        assert!(
            !store
                .access_token_revoked(&check("au_bob", both_static, iat))
                .await
                .unwrap()
        );
        assert!(
            store
                .access_token_revoked(&check("au_nobody", both_static, iat))
                .await
                .unwrap(),
            "an unknown app-scoped id is refused"
        );
        assert!(
            store
                .access_token_revoked(&AccessTokenCheck {
                    app_id: "shop",
                    ..check("au_bob", both_static, iat)
                })
                .await
                .unwrap(),
            "{}: another app's token names nobody here",
            db.name
        );

        // bob takes messages.send back: a token with it is refused, a profile-only token
        // issued before that stays valid (nothing it carries was revoked).
        store
            .set_grant(&bob.id, "polls", &["profile.read".to_owned()], "1.0.0")
            .await
            .unwrap();
        assert!(
            store
                .access_token_revoked(&check("au_bob", both_static, iat))
                .await
                .unwrap()
        );
        assert!(
            !store
                .access_token_revoked(&check("au_bob", profile_static, iat))
                .await
                .unwrap()
        );

        // Granted again: a token issued before the revocation stays refused, one issued after
        // it (a later second; `later` is an hour on, far beyond this test) is accepted.
        let later = iat + 3600;
        store
            .set_grant(&bob.id, "polls", &granted, "1.0.0")
            .await
            .unwrap();
        assert!(
            store
                .access_token_revoked(&check("au_bob", both_static, iat - 1))
                .await
                .unwrap()
        );
        assert!(
            !store
                .access_token_revoked(&check("au_bob", both_static, later))
                .await
                .unwrap()
        );

        // The whole grant deleted: everything refused, and the refresh families end.
        store.insert_login_code(&code("h1", &bob.id)).await.unwrap();
        store
            .redeem_login_code(
                "h1",
                iat,
                &family("rf_b", &bob.id),
                &refresh("t0", "rf_b", 0, "j0"),
            )
            .await
            .unwrap();
        assert!(store.delete_grant(&bob.id, "polls").await.unwrap());
        assert!(
            store
                .access_token_revoked(&check("au_bob", profile_static, later))
                .await
                .unwrap()
        );
        assert!(
            store
                .refresh_family("rf_b")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        store
            .set_grant(&bob.id, "polls", &granted, "1.0.0")
            .await
            .unwrap();
        assert!(
            store
                .access_token_revoked(&check("au_bob", profile_static, iat - 1))
                .await
                .unwrap(),
            "re-granting does not revive a token issued before the delete"
        );

        // A revoked jti is refused whatever the grant says, and only that jti.
        store
            .revoke_access_token("j-user", "polls", iat + 600)
            .await
            .unwrap();
        store
            .revoke_access_token("j-user", "polls", iat + 600)
            .await
            .unwrap();
        assert!(
            store
                .access_token_revoked(&check("au_bob", both_static, later))
                .await
                .unwrap()
        );
        assert!(
            !store
                .access_token_revoked(&AccessTokenCheck {
                    jti: "j-other",
                    ..check("au_bob", both_static, later)
                })
                .await
                .unwrap()
        );
    });
}

#[tokio::test]
async fn expired_token_state_is_purged() {
    on_every_backend!(|store, db| {
        let bob = user(&store, "bob").await;
        store.insert_login_code(&code("h1", &bob.id)).await.unwrap();
        store.insert_login_code(&code("h2", &bob.id)).await.unwrap();
        store
            .redeem_login_code(
                "h1",
                150,
                &family("rf_p", &bob.id),
                &refresh("t0", "rf_p", 0, "j0"),
            )
            .await
            .unwrap();
        store.revoke_access_token("j9", "polls", 700).await.unwrap();
        let purged = store.purge_expired_tokens(399).await.unwrap();
        assert_eq!(
            purged,
            Default::default(),
            "{}: nothing expired yet",
            db.name
        );
        let purged = store.purge_expired_tokens(10_000).await.unwrap();
        assert_eq!(
            (
                purged.login_codes,
                purged.refresh_families,
                purged.revoked_tokens
            ),
            (2, 1, 1)
        );
        assert_eq!(store.refresh_token("t0").await.unwrap(), None);
        assert_eq!(store.login_code("h2").await.unwrap(), None);
    });
}
