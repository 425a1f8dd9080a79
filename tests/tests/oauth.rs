//! OAuth for app backends over the real server, on every backend: app registration, the login
//! code (minted through the broker service as the `auth` capability does) exchanged with PKCE,
//! the Open API, refresh rotation and replay, revocation of tokens and grants, client
//! authentication, app isolation, key rotation with JWKS, and RFC-shaped errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minihost_broker::service::now;
use minihost_broker::{AppId, PkceChallenge, UnixTime};
use minihost_core::{ConversationId, UserId};
use minihost_tests::{Client, TestNode, on_every_backend};
use serde_json::{Value, json};

/// The RFC 7636 appendix B verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// An answer: status, headers and JSON body (`Null` when empty).
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    /// The RFC 6749 `error` of an OAuth endpoint's answer.
    fn oauth_error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// The `error.code` of an API answer.
    fn api_error(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

async fn reply(rb: reqwest::RequestBuilder) -> Reply {
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// `application/x-www-form-urlencoded` encoding of `fields`.
fn form_body(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A registered app's credentials.
#[derive(Clone)]
struct App {
    id: String,
    client_id: String,
    secret: String,
}

async fn register(dev: &Client, id: &str) -> App {
    let r = dev
        .post(
            "/api/v1/apps",
            &json!({"id": id, "name": id.to_uppercase()}),
        )
        .await;
    assert_eq!(r.0, 201, "{r:?}");
    App {
        id: id.to_owned(),
        client_id: r.1["client_id"].as_str().unwrap().to_owned(),
        secret: r.1["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// A developer with two apps (`shop`, `other`), bob who granted both `messages.send` and
/// `profile.read`, and a group of bob and alice where `shop` is installed.
struct World {
    anon: Client,
    dev: Client,
    bob: Client,
    bob_id: UserId,
    shop: App,
    other: App,
    group: String,
}

async fn world(node: &TestNode) -> World {
    let dev = node.developer("dev").await;
    let bob = node.user("bob").await;
    node.user("alice").await;
    let shop = register(&dev, "shop").await;
    let other = register(&dev, "other").await;
    let bob_id = UserId::from_string(bob.get("/api/v1/me").await.1["id"].as_str().unwrap());
    for app in ["shop", "other"] {
        grant(node, &bob_id, app, &["messages.send", "profile.read"]).await;
    }
    let group = bob.group("shopping", &["alice"]).await;
    node.node
        .store
        .install(
            &ConversationId::from_string(group.clone()),
            "shop",
            "1.0.0",
            &bob_id,
            false,
        )
        .await
        .unwrap();
    World {
        anon: node.client(),
        dev,
        bob,
        bob_id,
        shop,
        other,
        group,
    }
}

async fn grant(node: &TestNode, user: &UserId, app: &str, scopes: &[&str]) {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    node.node
        .store
        .set_grant(user, app, &scopes, "1.0.0")
        .await
        .unwrap();
}

impl World {
    /// A login code for bob in `app`, as the `auth` capability mints it inside the sandbox.
    async fn code(&self, node: &TestNode, app: &App, at: UnixTime) -> String {
        node.node
            .broker
            .issue_login_code(
                &AppId::parse(&app.id).unwrap(),
                &self.bob_id,
                PkceChallenge::from_verifier(VERIFIER),
                at,
            )
            .await
            .unwrap()
            .expose()
            .to_owned()
    }

    /// `POST path` with a form body, authenticated as `app` with HTTP Basic.
    async fn form(&self, path: &str, app: &App, fields: &[(&str, &str)]) -> Reply {
        reply(
            self.anon
                .raw(reqwest::Method::POST, path)
                .basic_auth(&app.client_id, Some(&app.secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(fields)),
        )
        .await
    }

    /// `POST path` with a form body as is (no HTTP authentication).
    async fn raw_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        reply(
            self.anon
                .raw(reqwest::Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(fields)),
        )
        .await
    }

    async fn exchange(&self, app: &App, code: &str) -> Reply {
        self.form(
            "/oauth/token",
            app,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    /// Logs bob in to `app`'s backend: the token response.
    async fn login(&self, node: &TestNode, app: &App) -> Value {
        let code = self.code(node, app, now()).await;
        let r = self.exchange(app, &code).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body
    }

    async fn refresh(&self, app: &App, refresh_token: &str) -> Reply {
        // Client authentication in the body this time (RFC 6749 section 2.3.1).
        self.raw_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &app.client_id),
                ("client_secret", &app.secret),
            ],
        )
        .await
    }

    /// An Open API call with a bearer token.
    async fn open(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut rb = self
            .anon
            .raw(method, path)
            .header("authorization", format!("Bearer {token}"));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        reply(rb).await
    }

    async fn send(&self, token: &str, text: &str) -> Reply {
        self.open(
            token,
            reqwest::Method::POST,
            &format!("/open/v1/conversations/{}/messages", self.group),
            Some(json!({"content": {"type": "text", "text": text}})),
        )
        .await
    }

    async fn me(&self, token: &str) -> Reply {
        self.open(token, reqwest::Method::GET, "/open/v1/me", None)
            .await
    }
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

fn refresh_of(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().unwrap()
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    header["kid"].as_str().unwrap().to_owned()
}

fn assert_invalid_token(r: &Reply, context: &str) {
    assert_eq!(r.status, 401, "{context}: {r:?}");
    assert!(
        r.header("www-authenticate")
            .starts_with("Bearer realm=\"minihost\", error=\"invalid_token\""),
        "{context}: {}",
        r.header("www-authenticate")
    );
    assert_eq!(r.api_error(), "invalid_token", "{context}");
}

fn assert_oauth_error(r: &Reply, status: u16, error: &str, context: &str) {
    assert_eq!(
        (r.status, r.oauth_error()),
        (status, error),
        "{context}: {r:?}"
    );
    assert!(r.body["error_description"].is_string(), "{context}: {r:?}");
    assert_eq!(r.header("cache-control"), "no-store", "{context}");
}

#[tokio::test]
async fn backend_flow_login_code_token_send_revoke_then_401() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let code = w.code(&node, &w.shop, now()).await;
        let r = w.exchange(&w.shop, &code).await;
        assert_eq!(r.status, 200, "{}: {r:?}", node.backend());
        assert_eq!(r.header("cache-control"), "no-store");
        let tokens = r.body;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 600);
        assert_eq!(tokens["scope"], "messages.send profile.read");
        assert!(refresh_of(&tokens).starts_with("mrt_"));
        let token = access(&tokens);

        let me = w.me(token).await;
        assert_eq!(me.status, 200, "{me:?}");
        assert_eq!(
            (me.body["app"].as_str(), me.body["kind"].as_str()),
            (Some("shop"), Some("user"))
        );
        let sub = me.body["sub"].as_str().unwrap().to_owned();
        assert!(sub.starts_with("au_") && !sub.contains(w.bob_id.as_str()));

        // Send as the app; bob sees it in the group.
        let sent = w.send(token, "your order shipped").await;
        assert_eq!(sent.status, 201, "{sent:?}");
        assert_eq!(sent.body["sender"]["type"], "app");
        assert_eq!(sent.body["sender"]["id"], "shop");
        let history = w
            .bob
            .get(&format!(
                "/api/v1/conversations/{}/messages?after=0&limit=50",
                w.group
            ))
            .await;
        assert!(
            history.1.to_string().contains("your order shipped"),
            "{history:?}"
        );
        let profile = w
            .open(
                token,
                reqwest::Method::GET,
                &format!("/open/v1/users/{sub}/profile"),
                None,
            )
            .await;
        assert_eq!(
            (profile.status, profile.body["display_name"].as_str()),
            (200, Some("BOB")),
            "{profile:?}"
        );

        // RFC 7009: the backend revokes its access token; the very next call is a 401.
        let r = w.form("/oauth/revoke", &w.shop, &[("token", token)]).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("cache-control"), "no-store");
        assert_invalid_token(&w.send(token, "again").await, "after revoke");
        assert_invalid_token(&w.me(token).await, "me after revoke");
        let intro = w
            .form("/oauth/introspect", &w.shop, &[("token", token)])
            .await;
        assert_eq!(
            (intro.status, &intro.body),
            (200, &json!({"active": false}))
        );
        node.node.store.ping().await.unwrap();
    });
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let first = w.login(&node, &w.shop).await;
        let r = w.refresh(&w.shop, refresh_of(&first)).await;
        assert_eq!(r.status, 200, "{}: {r:?}", node.backend());
        let second = r.body;
        assert_ne!(refresh_of(&second), refresh_of(&first));
        assert_eq!(w.me(access(&second)).await.status, 200);

        // The old refresh token is replayed (stolen): the whole family is revoked, the
        // legitimate newest token and every access token issued in the family with it.
        let replay = w.refresh(&w.shop, refresh_of(&first)).await;
        assert_oauth_error(&replay, 400, "invalid_grant", "replay");
        let newest = w.refresh(&w.shop, refresh_of(&second)).await;
        assert_oauth_error(&newest, 400, "invalid_grant", "after replay");
        assert_invalid_token(&w.me(access(&first)).await, "first access token");
        assert_invalid_token(&w.me(access(&second)).await, "second access token");

        // Another app's client cannot use shop's refresh token.
        let third = w.login(&node, &w.shop).await;
        let foreign = w.refresh(&w.other, refresh_of(&third)).await;
        assert_oauth_error(&foreign, 400, "invalid_grant", "other client");
        assert_eq!(w.refresh(&w.shop, refresh_of(&third)).await.status, 200);
    });
}

#[tokio::test]
async fn a_login_code_works_once() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let code = w.code(&node, &w.shop, now()).await;
        let first = w.exchange(&w.shop, &code).await;
        assert_eq!(first.status, 200, "{first:?}");
        let again = w.exchange(&w.shop, &code).await;
        assert_oauth_error(&again, 400, "invalid_grant", node.backend());
        // The reuse revoked what the first exchange issued (RFC 6749 section 4.1.2).
        assert_invalid_token(&w.me(access(&first.body)).await, "after code reuse");
        assert_oauth_error(
            &w.refresh(&w.shop, refresh_of(&first.body)).await,
            400,
            "invalid_grant",
            "refresh after code reuse",
        );
    });
}

#[tokio::test]
async fn the_pkce_verifier_is_required_and_must_match() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let code = w.code(&node, &w.shop, now()).await;
        let wrong = "x".repeat(43);
        for (verifier, error) in [
            (None, "invalid_request"),
            (Some(wrong.as_str()), "invalid_grant"),
            (Some("short"), "invalid_request"),
        ] {
            let mut fields = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
            ];
            fields.extend(verifier.map(|v| ("code_verifier", v)));
            let r = w.form("/oauth/token", &w.shop, &fields).await;
            assert_oauth_error(&r, 400, error, &format!("verifier {verifier:?}"));
        }
        // None of the failures used the code up.
        let ok = w.exchange(&w.shop, &code).await;
        assert_eq!(ok.status, 200, "{}: {ok:?}", node.backend());
    });
}

#[tokio::test]
async fn clients_authenticate_with_their_current_secret() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let cc = [("grant_type", "client_credentials")];
        assert_eq!(w.form("/oauth/token", &w.shop, &cc).await.status, 200);

        let wrong = App {
            secret: "mhcs_wrong".into(),
            ..w.shop.clone()
        };
        let r = w.form("/oauth/token", &wrong, &cc).await;
        assert_oauth_error(&r, 401, "invalid_client", "wrong secret");
        assert!(r.header("www-authenticate").starts_with("Basic"), "{r:?}");
        let unknown = App {
            client_id: "mhc_000000000000000000000000".into(),
            ..w.shop.clone()
        };
        assert_oauth_error(
            &w.form("/oauth/token", &unknown, &cc).await,
            401,
            "invalid_client",
            "unknown client",
        );
        assert_oauth_error(
            &w.raw_form("/oauth/token", &cc).await,
            401,
            "invalid_client",
            "no credentials",
        );
        let both = w
            .form(
                "/oauth/token",
                &w.shop,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_secret", &w.shop.secret),
                ],
            )
            .await;
        assert_oauth_error(&both, 400, "invalid_request", "two methods");
        let body_auth = w
            .raw_form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &w.shop.client_id),
                    ("client_secret", &w.shop.secret),
                ],
            )
            .await;
        assert_eq!(body_auth.status, 200, "{body_auth:?}");

        // Rotation: the old secret stops working at once, the new one works.
        let r = w.dev.post("/api/v1/apps/shop/secret", &json!({})).await;
        assert_eq!(r.0, 200, "{}: {r:?}", node.backend());
        assert_eq!(r.1["client_id"].as_str(), Some(w.shop.client_id.as_str()));
        let rotated = App {
            secret: r.1["client_secret"].as_str().unwrap().to_owned(),
            ..w.shop.clone()
        };
        assert_ne!(rotated.secret, w.shop.secret);
        assert_oauth_error(
            &w.form("/oauth/token", &w.shop, &cc).await,
            401,
            "invalid_client",
            "old secret",
        );
        assert_eq!(w.form("/oauth/token", &rotated, &cc).await.status, 200);
        // Only the app's developer rotates it.
        let eve = node.developer("eve").await;
        assert_eq!(
            eve.post("/api/v1/apps/shop/secret", &json!({})).await.0,
            404
        );
        assert_eq!(
            w.bob.post("/api/v1/apps/nope/secret", &json!({})).await.0,
            404
        );
    });
}

#[tokio::test]
async fn registering_apps_is_for_developers_and_ids_are_owned() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let r = w
            .bob
            .post("/api/v1/apps", &json!({"id": "bobs", "name": "Bob's"}))
            .await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        let r = w
            .anon
            .post("/api/v1/apps", &json!({"id": "anon", "name": "Anon"}))
            .await;
        assert_eq!(r.0, 401);
        let r = w
            .dev
            .post("/api/v1/apps", &json!({"id": "Shop!", "name": "Shop"}))
            .await;
        assert_eq!((r.0, r.1["error"]["field"].as_str()), (422, Some("id")));
        let r = w
            .dev
            .post("/api/v1/apps", &json!({"id": "blank", "name": "  "}))
            .await;
        assert_eq!((r.0, r.1["error"]["field"].as_str()), (422, Some("name")));
        let r = w
            .dev
            .post("/api/v1/apps", &json!({"id": "shop", "name": "Shop"}))
            .await;
        assert_eq!(
            r.0,
            409,
            "{}: already has credentials: {r:?}",
            node.backend()
        );
        let eve = node.developer("eve").await;
        let r = eve
            .post("/api/v1/apps", &json!({"id": "shop", "name": "Mine"}))
            .await;
        assert_eq!(r.0, 409, "another developer's id: {r:?}");
        let r = w
            .dev
            .post(
                "/api/v1/apps",
                &json!({"id": "x1", "name": "X", "extra": 1}),
            )
            .await;
        assert_eq!(r.0, 400, "{r:?}");
        // The secret is shown once and stored hashed.
        assert!(w.shop.secret.starts_with("mhcs_"));
        assert!(w.shop.client_id.starts_with("mhc_"));
        let stored = node
            .node
            .store
            .client(&w.shop.client_id)
            .await
            .unwrap()
            .unwrap();
        assert!(!stored.secret_hash.contains(&w.shop.secret));

        // Every route of this part is in the OpenAPI document.
        let doc = w.anon.get("/api/v1/openapi.json").await.1;
        for path in [
            "/api/v1/apps",
            "/api/v1/apps/{app}/secret",
            "/.well-known/jwks.json",
            "/oauth/token",
            "/oauth/revoke",
            "/oauth/introspect",
            "/open/v1/me",
            "/open/v1/conversations/{id}/messages",
            "/open/v1/users/{app_user_id}/profile",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    });
}

#[tokio::test]
async fn one_apps_token_does_not_reach_another_app() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let shop_tokens = w.login(&node, &w.shop).await;
        let other_tokens = w.login(&node, &w.other).await;
        let shop_token = access(&shop_tokens);
        let other_token = access(&other_tokens);

        // Introspection answers only the app the token was issued to.
        let by_shop = w
            .form("/oauth/introspect", &w.shop, &[("token", shop_token)])
            .await;
        assert_eq!(by_shop.body["active"], true, "{by_shop:?}");
        assert_eq!(by_shop.body["aud"], "shop");
        let by_other = w
            .form("/oauth/introspect", &w.other, &[("token", shop_token)])
            .await;
        assert_eq!(
            by_other.body,
            json!({"active": false}),
            "{}",
            node.backend()
        );
        // Nor can another app revoke it.
        w.form("/oauth/revoke", &w.other, &[("token", shop_token)])
            .await;
        assert_eq!(w.me(shop_token).await.status, 200);

        // bob is someone else to each app, and other's token reaches nothing of shop's.
        let shop_sub = w.me(shop_token).await.body["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let other_sub = w.me(other_token).await.body["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(shop_sub, other_sub, "app-scoped ids are unlinkable");
        let r = w.send(other_token, "not installed here").await;
        assert_eq!((r.status, r.api_error()), (404, "not_found"), "{r:?}");
        let r = w
            .open(
                other_token,
                reqwest::Method::GET,
                &format!("/open/v1/users/{shop_sub}/profile"),
                None,
            )
            .await;
        assert_eq!(r.status, 404, "{r:?}");

        // shop's login code is no good to other's client.
        let code = w.code(&node, &w.shop, now()).await;
        assert_oauth_error(
            &w.exchange(&w.other, &code).await,
            400,
            "invalid_grant",
            "foreign code",
        );
    });
}

#[tokio::test]
async fn a_profile_only_token_cannot_send() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        grant(&node, &w.bob_id, "shop", &["profile.read"]).await;
        let tokens = w.login(&node, &w.shop).await;
        assert_eq!(tokens["scope"], "profile.read");
        let r = w.send(access(&tokens), "hi").await;
        assert_eq!(
            (r.status, r.api_error()),
            (403, "insufficient_scope"),
            "{}: {r:?}",
            node.backend()
        );
        let challenge = r.header("www-authenticate");
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("scope=\"messages.send\""),
            "{challenge}"
        );
        let sub = w.me(access(&tokens)).await.body["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = w
            .open(
                access(&tokens),
                reqwest::Method::GET,
                &format!("/open/v1/users/{sub}/profile"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    });
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        // Log in two hours ago, through the service with an explicit clock.
        let past = UnixTime::from_secs(now().as_secs() - 7200);
        let broker = &node.node.broker;
        let client = broker
            .authenticate_client(&w.shop.client_id, &w.shop.secret)
            .await
            .unwrap();
        let code = w.code(&node, &w.shop, past).await;
        let tokens = broker
            .exchange_code(&client, &code, Some(VERIFIER), past)
            .await
            .unwrap();
        let r = w.me(&tokens.access_token).await;
        assert_invalid_token(&r, node.backend());
        assert!(
            r.header("www-authenticate").contains("expired"),
            "{}",
            r.header("www-authenticate")
        );
        // Its login code expired too.
        let stale = w.code(&node, &w.shop, past).await;
        assert_oauth_error(
            &w.exchange(&w.shop, &stale).await,
            400,
            "invalid_grant",
            "expired code",
        );
    });
}

#[tokio::test]
async fn a_revoked_grant_is_refused_at_the_next_call() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let tokens = w.login(&node, &w.shop).await;
        assert_eq!(w.send(access(&tokens), "first").await.status, 201);

        // bob takes messages.send back in the client: the token is refused at once.
        let r = w
            .bob
            .delete("/api/v1/me/grants/shop/scopes/messages.send")
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        assert_invalid_token(&w.send(access(&tokens), "second").await, node.backend());

        // A refresh gets what is still granted, and that is not enough to send.
        let r = w.refresh(&w.shop, refresh_of(&tokens)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["scope"], "profile.read");
        let narrowed = r.body;
        let sent = w.send(access(&narrowed), "third").await;
        assert_eq!(sent.status, 403, "{sent:?}");
        assert_eq!(w.me(access(&narrowed)).await.status, 200);

        // bob revokes the whole app: nothing works, and the backend cannot refresh.
        assert_eq!(w.bob.delete("/api/v1/me/grants/shop").await.0, 204);
        assert_invalid_token(&w.me(access(&narrowed)).await, "after revoking the app");
        assert_oauth_error(
            &w.refresh(&w.shop, refresh_of(&narrowed)).await,
            400,
            "invalid_grant",
            "refresh after revoking the app",
        );
        // other is unaffected.
        let other = w.login(&node, &w.other).await;
        assert_eq!(w.me(access(&other)).await.status, 200);
    });
}

#[tokio::test]
async fn jwks_serves_the_token_kid_and_rotation_keeps_old_tokens_valid() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let before = w.login(&node, &w.shop).await;
        let old_kid = kid_of(access(&before));
        let jwks = reply(w.anon.raw(reqwest::Method::GET, "/.well-known/jwks.json")).await;
        assert_eq!(jwks.status, 200);
        assert!(jwks.header("cache-control").contains("max-age"));
        let keys = jwks.body["keys"].as_array().unwrap().clone();
        let key = keys.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
            (
                &json!("OKP"),
                &json!("Ed25519"),
                &json!("EdDSA"),
                &json!("sig")
            )
        );
        assert!(key.get("d").is_none(), "never the private key");

        // Rotate (what `minihost admin rotate-keys` does): new tokens carry the new kid,
        // the old token still works, and both keys are published.
        let rotation = node.node.broker.rotate_keys(now()).await.unwrap();
        let after = w.login(&node, &w.shop).await;
        let new_kid = kid_of(access(&after));
        assert_eq!(new_kid, rotation.active.as_str());
        assert_ne!(new_kid, old_kid, "{}", node.backend());
        assert_eq!(w.me(access(&before)).await.status, 200);
        assert_eq!(w.me(access(&after)).await.status, 200);
        let jwks = reply(w.anon.raw(reqwest::Method::GET, "/.well-known/jwks.json")).await;
        let kids: Vec<&str> = jwks.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
    });
}

#[tokio::test]
async fn client_credentials_give_an_app_level_token() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let r = w
            .form(
                "/oauth/token",
                &w.shop,
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.get("refresh_token").is_none());
        assert_eq!(r.body["scope"], "");
        let token = r.body["access_token"].as_str().unwrap().to_owned();
        let me = w.me(&token).await;
        assert_eq!(
            (me.body["kind"].as_str(), me.body["sub"].as_str()),
            (Some("app"), Some(w.shop.client_id.as_str())),
            "{}",
            node.backend()
        );
        let r = w.send(&token, "as nobody").await;
        assert_eq!((r.status, r.api_error()), (403, "insufficient_scope"));
        let r = w
            .form(
                "/oauth/token",
                &w.shop,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "messages.send"),
                ],
            )
            .await;
        assert_oauth_error(&r, 400, "invalid_scope", "scoped client credentials");
    });
}

#[tokio::test]
async fn bad_requests_get_rfc_6749_errors() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let basic =
            |rb: reqwest::RequestBuilder| rb.basic_auth(&w.shop.client_id, Some(&w.shop.secret));
        let post = |path: &str| basic(w.anon.raw(reqwest::Method::POST, path));

        let json_body =
            reply(post("/oauth/token").json(&json!({"grant_type": "client_credentials"}))).await;
        assert_oauth_error(&json_body, 400, "invalid_request", "JSON body");
        let no_type = reply(post("/oauth/token").body("grant_type=client_credentials")).await;
        assert_oauth_error(&no_type, 400, "invalid_request", "no content type");
        let repeated = reply(
            post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&grant_type=password"),
        )
        .await;
        assert_oauth_error(&repeated, 400, "invalid_request", "repeated parameter");
        for (fields, status, error) in [
            (vec![], 400, "invalid_request"),
            (vec![("grant_type", "")], 400, "invalid_request"),
            (
                vec![("grant_type", "password")],
                400,
                "unsupported_grant_type",
            ),
            (
                vec![("grant_type", "authorization_code")],
                400,
                "invalid_request",
            ),
            (
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", "mlc_forged"),
                    ("code_verifier", VERIFIER),
                ],
                400,
                "invalid_grant",
            ),
            (
                vec![("grant_type", "refresh_token")],
                400,
                "invalid_request",
            ),
            (
                vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "mrt_forged"),
                ],
                400,
                "invalid_grant",
            ),
        ] {
            let r = w.form("/oauth/token", &w.shop, &fields).await;
            assert_oauth_error(
                &r,
                status,
                error,
                &format!("{}: {fields:?}", node.backend()),
            );
        }
        assert_oauth_error(
            &w.form("/oauth/revoke", &w.shop, &[]).await,
            400,
            "invalid_request",
            "revoke without token",
        );
        let garbage = w
            .form("/oauth/revoke", &w.shop, &[("token", "garbage")])
            .await;
        assert_eq!(
            garbage.status, 200,
            "RFC 7009: unknown tokens are not an error"
        );
        let r = w
            .form("/oauth/introspect", &w.shop, &[("token", "garbage")])
            .await;
        assert_eq!((r.status, &r.body), (200, &json!({"active": false})));
        assert_oauth_error(
            &w.raw_form("/oauth/introspect", &[("token", "garbage")])
                .await,
            401,
            "invalid_client",
            "introspect without client",
        );

        // The Open API: no token, garbage, `alg: none`, a session token.
        let r = reply(w.anon.raw(reqwest::Method::GET, "/open/v1/me")).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), "Bearer realm=\"minihost\"");
        assert_invalid_token(&w.me("garbage").await, "garbage");
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "typ": "at+jwt", "kid": "k-1"})),
            b64(
                json!({"aud": "shop", "sub": "au_00000000000000000000000000000000", "exp": 4_000_000_000u64})
            )
        );
        assert_invalid_token(&w.me(&none).await, "alg none");
        let session = w.bob.token.clone().unwrap();
        assert_invalid_token(&w.me(&session).await, "a session token");
        let tokens = w.login(&node, &w.shop).await;
        let r = reply(
            w.anon
                .raw(
                    reqwest::Method::POST,
                    &format!("/open/v1/conversations/{}/messages", w.group),
                )
                .bearer_auth(access(&tokens))
                .json(&json!({"content": {"type": "text", "text": ""}})),
        )
        .await;
        assert_eq!(r.status, 422, "empty text: {r:?}");
        let r = reply(
            w.anon
                .raw(
                    reqwest::Method::POST,
                    &format!("/open/v1/conversations/{}/messages", w.group),
                )
                .bearer_auth(access(&tokens))
                .json(&json!({"text": "wrong shape"})),
        )
        .await;
        assert_eq!(r.status, 400, "{r:?}");
    });
}

#[tokio::test]
async fn revoking_the_whole_grant_ends_refresh_families_for_good() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let tokens = w.login(&node, &w.shop).await;
        assert_eq!(w.bob.delete("/api/v1/me/grants/shop").await.0, 204);
        assert_invalid_token(&w.me(access(&tokens)).await, "after revoking the app");

        // bob grants the app again (as answering its next consent request does), without any
        // new login: the old refresh token stays dead.
        grant(&node, &w.bob_id, "shop", &["messages.send", "profile.read"]).await;
        assert_oauth_error(
            &w.refresh(&w.shop, refresh_of(&tokens)).await,
            400,
            "invalid_grant",
            "old refresh token after a new grant",
        );
        assert_invalid_token(
            &w.me(access(&tokens)).await,
            "old access token after a new grant",
        );
        // A new login works. Token times are whole seconds and a revocation refuses every
        // token issued in its second, so the new login waits for the next one.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let fresh = w.login(&node, &w.shop).await;
        assert_eq!(w.me(access(&fresh)).await.status, 200);
    });
}

#[tokio::test]
async fn revoking_auth_login_ends_refresh_families() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        grant(&node, &w.bob_id, "shop", &["auth.login", "profile.read"]).await;
        let tokens = w.login(&node, &w.shop).await;
        let r = w
            .bob
            .delete("/api/v1/me/grants/shop/scopes/auth.login")
            .await;
        assert_eq!(r.0, 200, "{r:?}");
        // The backend may no longer keep bob logged in, even for what is still granted.
        assert_oauth_error(
            &w.refresh(&w.shop, refresh_of(&tokens)).await,
            400,
            "invalid_grant",
            "refresh after revoking auth.login",
        );
        // Granting it again does not bring the family back.
        grant(&node, &w.bob_id, "shop", &["auth.login", "profile.read"]).await;
        assert_oauth_error(
            &w.refresh(&w.shop, refresh_of(&tokens)).await,
            400,
            "invalid_grant",
            "refresh after granting auth.login again",
        );
    });
}

#[tokio::test]
async fn an_unreviewed_app_is_marked_when_it_speaks_through_the_open_api() {
    on_every_backend!(|node| {
        let w = world(&node).await;
        let tokens = w.login(&node, &w.shop).await;
        let sent = w.send(access(&tokens), "reviewed").await;
        assert_eq!(sent.status, 201, "{sent:?}");
        assert_eq!(sent.body["sender"]["name"], "SHOP");

        // The same app, sideloaded (unreviewed) in the group: its backend's messages say so.
        node.node
            .store
            .install(
                &ConversationId::from_string(w.group.clone()),
                "shop",
                "1.0.0",
                &w.bob_id,
                true,
            )
            .await
            .unwrap();
        let sent = w.send(access(&tokens), "unreviewed").await;
        assert_eq!(sent.status, 201, "{sent:?}");
        assert_eq!(
            sent.body["sender"]["name"],
            "SHOP (unreviewed)",
            "{}",
            node.backend()
        );
        let history = w
            .bob
            .get(&format!(
                "/api/v1/conversations/{}/messages?after=0&limit=50",
                w.group
            ))
            .await
            .1;
        let last = history["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["sender"]["name"], "SHOP (unreviewed)");
    });
}
