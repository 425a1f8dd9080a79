//! The broker service over a real store, on every configured backend: the keyring created once
//! and shared by nodes, rotation seen by another node, the code exchange and its races, refresh
//! rotation and replay, revocation of tokens and of grants, and key retirement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_broker::service::{Broker, BrokerConfig, Client, OAuthError};
use minihost_broker::*;
use minihost_core::{DisplayName, Role, UserId, Username};
use minihost_store::testing::TestDb;
use minihost_store::{NewUser, Store};
use std::sync::Arc;
use std::time::Duration;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge() -> PkceChallenge {
    PkceChallenge::from_verifier(VERIFIER)
}

fn config() -> BrokerConfig {
    BrokerConfig {
        issuer: Issuer::new("https://minihost.test"),
        ..BrokerConfig::default()
    }
}

struct World {
    broker: Arc<Broker>,
    store: Store,
    bob: UserId,
    polls: AppId,
    client: Client,
    now: UnixTime,
}

async fn world(store: Store, cfg: BrokerConfig) -> World {
    let dev = store
        .create_user(NewUser {
            username: Username::parse("dev").unwrap(),
            display_name: DisplayName::parse("Dev").unwrap(),
            password_hash: "x".into(),
            role: Role::Developer,
        })
        .await
        .unwrap();
    let bob = store
        .create_user(NewUser {
            username: Username::parse("bob").unwrap(),
            display_name: DisplayName::parse("Bob").unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap();
    store.register_app("polls", "Polls", &dev.id).await.unwrap();
    store
        .set_grant(
            &bob.id,
            "polls",
            &["messages.send".into(), "profile.read".into()],
            "1.0.0",
        )
        .await
        .unwrap();
    let broker = Arc::new(Broker::open(store.clone(), cfg).await.unwrap());
    let polls = AppId::parse("polls").unwrap();
    let creds = broker.register_client(&polls).await.unwrap();
    let client = broker
        .authenticate_client(creds.client_id.as_str(), creds.secret.expose())
        .await
        .unwrap();
    World {
        broker,
        store,
        bob: bob.id,
        polls,
        client,
        now: minihost_broker::service::now(),
    }
}

macro_rules! on_every_backend {
    (|$w:ident, $db:ident| $body:block) => {
        on_every_backend!(config(), |$w, $db| $body)
    };
    ($cfg:expr, |$w:ident, $db:ident| $body:block) => {{
        for $db in TestDb::all().await.unwrap() {
            let store = $db.open(None).await.unwrap();
            let $w = world(store.clone(), $cfg).await;
            $body
            store.close().await;
            $db.cleanup().await.unwrap();
        }
    }};
}

impl World {
    async fn login(&self, now: UnixTime) -> TokenResponse {
        let code = self
            .broker
            .issue_login_code(&self.polls, &self.bob, challenge(), now)
            .await
            .unwrap();
        self.broker
            .exchange_code(&self.client, code.expose(), Some(VERIFIER), now)
            .await
            .unwrap()
    }

    async fn check(&self, token: &str, scope: Option<Scope>) -> Result<AccessClaims, TokenError> {
        self.broker.verify(token, scope, self.now).await
    }
}

fn grant_err(e: OAuthError) -> GrantError {
    match e {
        OAuthError::Grant(g) => g,
        other => panic!("expected a grant error, got {other:?}"),
    }
}

#[tokio::test]
async fn nodes_share_one_keyring_and_see_each_others_rotations() {
    on_every_backend!(|w, db| {
        let other = Broker::open(w.store.clone(), config()).await.unwrap();
        let first = w.broker.active_kid().await.unwrap();
        assert_eq!(other.active_kid().await, Some(first.clone()), "{}", db.name);
        assert_eq!(w.store.signing_keys().await.unwrap().len(), 1);

        let token = w.login(w.now).await.access_token;
        // The other node rotates; this node's cache still signs with the old key, and a token
        // signed by the new key is verified here after a forced reload (unknown kid).
        let rotation = other.rotate_keys(w.now).await.unwrap();
        assert_ne!(rotation.active, first);
        assert!(rotation.retired.is_empty());
        let code = other
            .issue_login_code(&w.polls, &w.bob, challenge(), w.now)
            .await
            .unwrap();
        let fresh = other
            .exchange_code(&w.client, code.expose(), Some(VERIFIER), w.now)
            .await
            .unwrap();
        let claims = w.check(&fresh.access_token, None).await.unwrap();
        assert_eq!(claims.aud, w.polls);
        assert!(
            w.check(&token, Some(Scope::MessagesSend)).await.is_ok(),
            "old tokens stay valid after a rotation"
        );
        let kids: Vec<String> = w
            .broker
            .jwks()
            .await
            .keys
            .into_iter()
            .map(|k| k.kid)
            .collect();
        assert!(kids.contains(&first.to_string()) && kids.contains(&rotation.active.to_string()));

        // Once no token of the old key can be valid, it is retired and its tokens refused.
        let later = w.now.plus(w.broker.key_retirement_delay_secs());
        assert_eq!(
            other.retire_expired_keys(later).await.unwrap(),
            vec![first.clone()]
        );
        let reloaded = Broker::open(w.store.clone(), config()).await.unwrap();
        assert!(matches!(
            reloaded.verify(&token, None, w.now).await,
            Err(TokenError::UnknownKid(_))
        ));
        assert!(
            !reloaded
                .jwks()
                .await
                .keys
                .iter()
                .any(|k| k.kid == first.as_str())
        );
    });
}

#[tokio::test]
async fn a_code_is_exchanged_once_and_its_reuse_revokes_what_it_issued() {
    on_every_backend!(|w, db| {
        let code = w
            .broker
            .issue_login_code(&w.polls, &w.bob, challenge(), w.now)
            .await
            .unwrap();
        let wrong = "x".repeat(43);
        assert_eq!(
            grant_err(
                w.broker
                    .exchange_code(&w.client, code.expose(), Some(&wrong), w.now)
                    .await
                    .unwrap_err()
            ),
            GrantError::Pkce(PkceError::Mismatch)
        );
        let missing = w
            .broker
            .exchange_code(&w.client, code.expose(), None, w.now)
            .await
            .unwrap_err();
        assert_eq!(
            (missing.error_code(), missing.http_status()),
            ("invalid_request", 400)
        );

        // Concurrent exchanges with the right verifier: exactly one gets tokens.
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let broker = w.broker.clone();
            let client = w.client.clone();
            let code = code.expose().to_owned();
            let now = w.now;
            tasks.push(tokio::spawn(async move {
                broker
                    .exchange_code(&client, &code, Some(VERIFIER), now)
                    .await
            }));
        }
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(tokens) => won.push(tokens),
                Err(e) => assert!(
                    matches!(grant_err(e), GrantError::CodeReused { .. }),
                    "{}",
                    db.name
                ),
            }
        }
        assert_eq!(won.len(), 1, "{}: exactly one exchange wins", db.name);
        let tokens = won.pop().unwrap();
        assert_eq!(tokens.scope, "messages.send profile.read");
        assert_eq!(tokens.expires_in, ACCESS_TOKEN_TTL_SECS);
        // Losers' reuse revoked the winner's family and access token.
        assert_eq!(
            w.check(&tokens.access_token, None).await.unwrap_err(),
            TokenError::Revoked
        );
        let refresh = tokens.refresh_token.unwrap();
        assert_eq!(
            grant_err(
                w.broker
                    .refresh(&w.client, &refresh, w.now)
                    .await
                    .unwrap_err()
            ),
            GrantError::FamilyRevoked
        );
    });
}

#[tokio::test]
async fn codes_are_bound_to_their_app_and_expire() {
    on_every_backend!(|w, db| {
        let shop = AppId::parse("shop").unwrap();
        let dev = w.store.app("polls").await.unwrap().unwrap().developer;
        w.store.register_app("shop", "Shop", &dev).await.unwrap();
        let shop_creds = w.broker.register_client(&shop).await.unwrap();
        let shop_client = w
            .broker
            .authenticate_client(shop_creds.client_id.as_str(), shop_creds.secret.expose())
            .await
            .unwrap();

        let code = w
            .broker
            .issue_login_code(&w.polls, &w.bob, challenge(), w.now)
            .await
            .unwrap();
        assert_eq!(
            grant_err(
                w.broker
                    .exchange_code(&shop_client, code.expose(), Some(VERIFIER), w.now)
                    .await
                    .unwrap_err()
            ),
            GrantError::CodeWrongApp,
            "{}",
            db.name
        );
        let late = w.now.plus(LOGIN_CODE_TTL_SECS);
        assert_eq!(
            grant_err(
                w.broker
                    .exchange_code(&w.client, code.expose(), Some(VERIFIER), late)
                    .await
                    .unwrap_err()
            ),
            GrantError::CodeExpired
        );
        assert_eq!(
            grant_err(
                w.broker
                    .exchange_code(&w.client, "mlc_forged", Some(VERIFIER), w.now)
                    .await
                    .unwrap_err()
            ),
            GrantError::InvalidCode
        );

        // Wrong secrets and malformed client ids are one answer: invalid_client.
        for (id, secret) in [
            (shop_creds.client_id.as_str(), "mhcs_wrong"),
            ("mhc_000000000000000000000000", shop_creds.secret.expose()),
            ("not a client id", "x"),
        ] {
            let e = w.broker.authenticate_client(id, secret).await.unwrap_err();
            assert_eq!((e.error_code(), e.http_status()), ("invalid_client", 401));
        }
        // A rotated secret replaces the old one at once.
        let rotated = w.broker.rotate_client_secret(&shop).await.unwrap();
        assert_eq!(rotated.client_id, shop_creds.client_id);
        assert!(
            w.broker
                .authenticate_client(shop_creds.client_id.as_str(), shop_creds.secret.expose())
                .await
                .is_err()
        );
        assert!(
            w.broker
                .authenticate_client(rotated.client_id.as_str(), rotated.secret.expose())
                .await
                .is_ok()
        );
    });
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    on_every_backend!(|w, db| {
        let first = w.login(w.now).await;
        let r1 = first.refresh_token.clone().unwrap();
        let second = w
            .broker
            .refresh(&w.client, &r1, w.now.plus(60))
            .await
            .unwrap();
        let r2 = second.refresh_token.clone().unwrap();
        assert_ne!(r1, r2);
        let at = w.now.plus(61);
        assert!(
            w.broker
                .verify(&second.access_token, None, at)
                .await
                .is_ok()
        );

        // The thief replays r1: the family dies, with every access token issued in it.
        assert!(matches!(
            grant_err(
                w.broker
                    .refresh(&w.client, &r1, w.now.plus(120))
                    .await
                    .unwrap_err()
            ),
            GrantError::RefreshTokenReused(_)
        ));
        assert_eq!(
            grant_err(
                w.broker
                    .refresh(&w.client, &r2, w.now.plus(121))
                    .await
                    .unwrap_err()
            ),
            GrantError::FamilyRevoked,
            "{}",
            db.name
        );
        for token in [&first.access_token, &second.access_token] {
            assert_eq!(
                w.broker.verify(token, None, at).await.unwrap_err(),
                TokenError::Revoked
            );
        }
        // Another login is unaffected.
        let other = w.login(w.now).await;
        let claims = w
            .check(&other.access_token, Some(Scope::MessagesSend))
            .await
            .unwrap();
        assert_eq!(
            claims.sub,
            Subject::User(w.broker.app_user_id(&w.polls, &w.bob)),
            "the app sees bob's app-scoped id, never his internal one"
        );
    });
}

#[tokio::test]
async fn revocation_applies_at_once_to_tokens_and_grants() {
    on_every_backend!(|w, db| {
        let tokens = w.login(w.now).await;
        let intro = w
            .broker
            .introspect(&w.client, &tokens.access_token, w.now)
            .await
            .unwrap();
        assert!(intro.active);
        assert_eq!(intro.scope.as_deref(), Some("messages.send profile.read"));

        // RFC 7009 on the access token: refused at once, introspection says inactive.
        w.broker
            .revoke(&w.client, &tokens.access_token, w.now)
            .await
            .unwrap();
        assert_eq!(
            w.check(&tokens.access_token, None).await.unwrap_err(),
            TokenError::Revoked,
            "{}",
            db.name
        );
        assert!(
            !w.broker
                .introspect(&w.client, &tokens.access_token, w.now)
                .await
                .unwrap()
                .active
        );

        // bob revokes messages.send: a token carrying it is refused at once (not at expiry),
        // and the next refresh carries only what is still granted.
        let tokens = w.login(w.now).await;
        w.store
            .set_grant(&w.bob, "polls", &["profile.read".into()], "1.0.0")
            .await
            .unwrap();
        assert_eq!(
            w.check(&tokens.access_token, None).await.unwrap_err(),
            TokenError::Revoked
        );
        let later = w.now.plus(3600);
        let refreshed = w
            .broker
            .refresh(&w.client, tokens.refresh_token.as_deref().unwrap(), later)
            .await
            .unwrap();
        assert_eq!(refreshed.scope, "profile.read");
        assert_eq!(
            w.broker
                .verify(&refreshed.access_token, Some(Scope::MessagesSend), later)
                .await
                .unwrap_err(),
            TokenError::InsufficientScope(Scope::MessagesSend)
        );

        // The whole grant deleted: the family is over.
        assert!(w.store.delete_grant(&w.bob, "polls").await.unwrap());
        let e = w
            .broker
            .refresh(
                &w.client,
                refreshed.refresh_token.as_deref().unwrap(),
                later,
            )
            .await
            .unwrap_err();
        assert_eq!(e.error_code(), "invalid_grant");
        let code = w
            .broker
            .issue_login_code(&w.polls, &w.bob, challenge(), later)
            .await
            .unwrap();
        let e = w
            .broker
            .exchange_code(&w.client, code.expose(), Some(VERIFIER), later)
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::InvalidGrant(_)), "{e:?}");
    });
}

#[tokio::test]
async fn app_level_tokens_name_the_client_and_carry_no_scope() {
    on_every_backend!(|w, db| {
        let t = w
            .broker
            .client_credentials(&w.client, None, w.now)
            .await
            .unwrap();
        assert_eq!(t.refresh_token, None);
        let claims = w.check(&t.access_token, None).await.unwrap();
        assert_eq!(
            claims.sub,
            Subject::App(w.client.client_id.clone()),
            "{}",
            db.name
        );
        assert!(claims.scope.is_empty());
        assert_eq!(
            w.check(&t.access_token, Some(Scope::MessagesSend))
                .await
                .unwrap_err(),
            TokenError::InsufficientScope(Scope::MessagesSend)
        );
        let e = w
            .broker
            .client_credentials(&w.client, Some("messages.send"), w.now)
            .await
            .unwrap_err();
        assert_eq!(e.error_code(), "invalid_scope");
    });
}

#[tokio::test]
async fn a_short_access_ttl_is_honoured_and_expired_tokens_are_refused() {
    let short = BrokerConfig {
        access_ttl_secs: 5,
        keyring_refresh: Duration::from_secs(30),
        ..config()
    };
    on_every_backend!(short.clone(), |w, db| {
        let t = w.login(w.now).await;
        assert_eq!(t.expires_in, 5);
        let past_leeway = w.now.plus(5 + DEFAULT_LEEWAY_SECS);
        assert_eq!(
            w.broker
                .verify(&t.access_token, None, past_leeway)
                .await
                .unwrap_err(),
            TokenError::Expired,
            "{}",
            db.name
        );
        assert!(
            w.broker
                .verify(&t.access_token, None, w.now.plus(4))
                .await
                .is_ok()
        );
    });
}
