//! Attacks on access tokens, each built by hand (base64url JSON and a signature) so that they
//! go through the real parser: algorithm confusion, key-id tricks, key-carrying headers,
//! audience, scope, time, revocation and key rotation.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use hmac::Mac as _;
use minihost_broker::*;
use serde_json::{Value, json};
use std::collections::HashSet;

const NOW: u64 = 1_900_000_000;

struct World {
    keyring: Keyring,
    issuer: Issuer,
    tokens: TokenIssuer,
    app_a: AppId,
    app_b: AppId,
    client_a: ClientId,
    alice: AppUserId,
}

fn world() -> World {
    let mut keyring = Keyring::new();
    keyring.rotate(UnixTime::from_secs(NOW - 1000)).unwrap();
    let issuer = Issuer::new("https://minihost.test");
    let platform = PlatformSecret::from_bytes([9; 32]);
    let app_a = AppId::parse("shop-a").unwrap();
    World {
        alice: platform.app_user_id(&app_a, &minihost_core::UserId::from_string("u_alice")),
        tokens: TokenIssuer::new(issuer.clone()),
        keyring,
        issuer,
        app_b: AppId::parse("shop-b").unwrap(),
        client_a: ClientId::generate(),
        app_a,
    }
}

impl World {
    fn verifier(&self) -> TokenVerifier<'_> {
        TokenVerifier::new(&self.keyring, &self.issuer)
    }

    fn issue(&self, scope: &str, now: u64) -> IssuedToken {
        let request = AccessTokenRequest {
            app: self.app_a.clone(),
            client_id: self.client_a.clone(),
            subject: Subject::User(self.alice.clone()),
            scope: scope.parse().unwrap(),
            payment: None,
        };
        self.tokens
            .issue(&self.keyring, request, UnixTime::from_secs(now))
            .unwrap()
    }

    /// Verifies for app A requiring `messages.send`, at `now`, nothing revoked.
    fn verify_at(&self, token: &str, now: u64) -> Result<AccessClaims, TokenError> {
        let expect = Expectation::for_app(&self.app_a).requiring(Scope::MessagesSend);
        self.verifier()
            .verify(token, &expect, UnixTime::from_secs(now), &NoRevocations)
    }

    fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_at(token, NOW)
    }

    fn active_kid(&self) -> String {
        self.keyring.active().unwrap().kid().to_string()
    }

    /// The active private key, read back from its stored form as an attacker who stole it
    /// would, or as a test that forges "validly signed" tokens.
    fn signing_key(&self) -> SigningKey {
        let stored = self.keyring.to_stored().unwrap();
        let active = stored.iter().find(|k| k.state == KeyState::Active).unwrap();
        SigningKey::from_pkcs8_pem(&active.private_key_pem).unwrap()
    }

    /// The claims a genuine token for alice in app A would carry.
    fn claims(&self) -> Value {
        json!({
            "iss": self.issuer.as_str(),
            "aud": self.app_a.as_str(),
            "sub": self.alice.as_str(),
            "exp": NOW + 600,
            "nbf": NOW,
            "iat": NOW,
            "jti": "forged-jti-1",
            "scope": "messages.send profile.read",
            "client_id": self.client_a.as_str(),
        })
    }

    fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.active_kid()})
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

enum Sig<'a> {
    Ed(&'a SigningKey),
    Hs256(&'a [u8]),
    Empty,
}

fn forge(header: &Value, claims: &Value, sig: Sig<'_>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = match sig {
        Sig::Ed(key) => URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()),
        Sig::Hs256(secret) => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Sig::Empty => String::new(),
    };
    format!("{input}.{signature}")
}

#[test]
fn genuine_and_hand_built_tokens_verify() {
    let w = world();
    let issued = w.issue("messages.send", NOW);
    let claims = w.verify(&issued.token).unwrap();
    assert_eq!(claims.aud, w.app_a);
    assert_eq!(claims.sub, Subject::User(w.alice.clone()));
    assert_eq!(claims, issued.claims);

    // The forging helper makes tokens the verifier accepts: so every rejection below is due
    // to the one thing each test changes.
    let key = w.signing_key();
    let token = forge(&w.header(), &w.claims(), Sig::Ed(&key));
    assert_eq!(w.verify(&token).unwrap().jti.as_str(), "forged-jti-1");
}

#[test]
fn alg_none_is_rejected() {
    let w = world();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let mut header = w.header();
        header["alg"] = json!(alg);
        let unsigned = forge(&header, &w.claims(), Sig::Empty);
        assert_eq!(
            w.verify(&unsigned),
            Err(TokenError::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
        // Even with a real EdDSA signature attached.
        let signed = forge(&header, &w.claims(), Sig::Ed(&w.signing_key()));
        assert_eq!(
            w.verify(&signed),
            Err(TokenError::UnsupportedAlgorithm(alg.into()))
        );
    }
    // A header without alg at all.
    let header = json!({"typ": "at+jwt", "kid": w.active_kid()});
    assert!(matches!(
        w.verify(&forge(&header, &w.claims(), Sig::Empty)),
        Err(TokenError::Malformed(_))
    ));
    // An EdDSA header with the signature stripped.
    let stripped = forge(&w.header(), &w.claims(), Sig::Empty);
    assert!(matches!(w.verify(&stripped), Err(TokenError::Malformed(_))));
}

#[test]
fn hs256_signed_with_the_public_key_is_rejected() {
    let w = world();
    let entry = w.keyring.active().unwrap();
    let raw = entry.public_key();
    let jwk_x = w.keyring.jwks().keys[0].x.clone();
    let jwks_json = serde_json::to_string(&w.keyring.jwks()).unwrap();
    let mut header = w.header();
    header["alg"] = json!("HS256");
    for secret in [&raw[..], jwk_x.as_bytes(), jwks_json.as_bytes()] {
        let token = forge(&header, &w.claims(), Sig::Hs256(secret));
        assert_eq!(
            w.verify(&token),
            Err(TokenError::UnsupportedAlgorithm("HS256".into()))
        );
    }
    for alg in [
        "HS512", "RS256", "ES256", "PS256", "EdDSA ", "eddsa", "Ed25519",
    ] {
        let mut header = w.header();
        header["alg"] = json!(alg);
        let token = forge(&header, &w.claims(), Sig::Hs256(&raw));
        assert_eq!(
            w.verify(&token),
            Err(TokenError::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
    }
    let mut header = w.header();
    header["alg"] = json!(["EdDSA"]);
    assert!(matches!(
        w.verify(&forge(&header, &w.claims(), Sig::Ed(&w.signing_key()))),
        Err(TokenError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn unknown_kid_is_rejected() {
    let w = world();
    // A token from another platform's keyring: well-formed kid, unknown here.
    let mut other = Keyring::new();
    let other_kid = other.rotate(UnixTime::from_secs(NOW)).unwrap();
    let stranger = TokenIssuer::new(w.issuer.clone());
    let request = AccessTokenRequest {
        app: w.app_a.clone(),
        client_id: w.client_a.clone(),
        subject: Subject::User(w.alice.clone()),
        scope: "messages.send".parse().unwrap(),
        payment: None,
    };
    let token = stranger
        .issue(&other, request, UnixTime::from_secs(NOW))
        .unwrap()
        .token;
    assert_eq!(w.verify(&token), Err(TokenError::UnknownKid(other_kid)));

    // Our key's signature under a kid we never issued.
    let mut header = w.header();
    header["kid"] = json!("k-0000000000000000");
    let token = forge(&header, &w.claims(), Sig::Ed(&w.signing_key()));
    assert_eq!(
        w.verify(&token),
        Err(TokenError::UnknownKid(
            Kid::parse("k-0000000000000000").unwrap()
        ))
    );

    // No kid at all.
    let header = json!({"alg": "EdDSA", "typ": "at+jwt"});
    assert_eq!(
        w.verify(&forge(&header, &w.claims(), Sig::Ed(&w.signing_key()))),
        Err(TokenError::MissingKid)
    );
}

#[test]
fn injected_kids_are_rejected_before_any_lookup() {
    let w = world();
    let key = w.signing_key();
    let injected = [
        json!("../../../../dev/null"),
        json!("/etc/passwd"),
        json!("' OR '1'='1"),
        json!("k-1; DROP TABLE keys; --"),
        json!(format!("{}\u{0}", w.active_kid())),
        json!(format!("{} ", w.active_kid())),
        json!("x".repeat(65)),
        json!(""),
        json!(1),
        json!({"kid": w.active_kid()}),
        json!([w.active_kid()]),
    ];
    for kid in injected {
        let mut header = w.header();
        header["kid"] = kid.clone();
        let token = forge(&header, &w.claims(), Sig::Ed(&key));
        assert_eq!(w.verify(&token), Err(TokenError::InvalidKid), "{kid}");
    }
}

#[test]
fn key_carrying_headers_are_never_honoured() {
    let w = world();
    let key = w.signing_key();
    // The attacker's own key, offered in the header.
    let attacker = SigningKey::from_bytes(&[42; 32]);
    let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(attacker.verifying_key().to_bytes())});
    let cases = [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", attacker_jwk),
        (
            "x5c",
            json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]),
        ),
        ("x5t", json!("dGh1bWJwcmludA")),
        ("crit", json!(["exp"])),
    ];
    for (name, value) in cases {
        let mut header = w.header();
        header[name] = value;
        // Signed by the attacker's key, or even by the genuine key: refused either way.
        for signer in [&attacker, &key] {
            let token = forge(&header, &w.claims(), Sig::Ed(signer));
            assert_eq!(
                w.verify(&token),
                Err(TokenError::ForbiddenHeader(name)),
                "{name}"
            );
        }
    }
}

#[test]
fn the_token_type_is_checked() {
    let w = world();
    let key = w.signing_key();
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt+x"),
        json!("refresh+jwt"),
        json!(1),
    ] {
        let mut header = w.header();
        header["typ"] = typ.clone();
        let token = forge(&header, &w.claims(), Sig::Ed(&key));
        assert!(
            matches!(w.verify(&token), Err(TokenError::WrongType(Some(_)))),
            "{typ}"
        );
    }
    let mut header = w.header();
    header.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        w.verify(&forge(&header, &w.claims(), Sig::Ed(&key))),
        Err(TokenError::WrongType(None))
    );
    // RFC 9068 allows the full media type, case-insensitively.
    header["typ"] = json!("application/AT+JWT");
    assert!(
        w.verify(&forge(&header, &w.claims(), Sig::Ed(&key)))
            .is_ok()
    );
}

#[test]
fn a_token_for_app_a_is_refused_by_app_b() {
    let w = world();
    let token = w.issue("messages.send", NOW).token;
    let expect = Expectation::for_app(&w.app_b).requiring(Scope::MessagesSend);
    let err = w
        .verifier()
        .verify(&token, &expect, UnixTime::from_secs(NOW), &NoRevocations)
        .unwrap_err();
    assert_eq!(
        err,
        TokenError::WrongAudience {
            expected: w.app_b.clone(),
            found: w.app_a.clone()
        }
    );
    assert_eq!(err.http_status(), 401);

    // An audience array smuggling both apps is not a valid audience either.
    let mut claims = w.claims();
    claims["aud"] = json!([w.app_b.as_str(), w.app_a.as_str()]);
    let token = forge(&w.header(), &claims, Sig::Ed(&w.signing_key()));
    assert!(matches!(w.verify(&token), Err(TokenError::Malformed(_))));
}

#[test]
fn a_profile_only_token_cannot_send_messages() {
    let w = world();
    let token = w.issue("profile.read", NOW).token;
    let err = w.verify(&token).unwrap_err();
    assert_eq!(err, TokenError::InsufficientScope(Scope::MessagesSend));
    assert_eq!(
        (err.http_status(), err.bearer_error()),
        (403, "insufficient_scope")
    );
    // The same token is fine for what it was granted.
    let expect = Expectation::for_app(&w.app_a).requiring(Scope::ProfileRead);
    assert!(
        w.verifier()
            .verify(&token, &expect, UnixTime::from_secs(NOW), &NoRevocations)
            .is_ok()
    );
    // An unknown scope smuggled into a signed token is malformed, not ignored.
    let mut claims = w.claims();
    claims["scope"] = json!("messages.send admin");
    assert!(matches!(
        w.verify(&forge(&w.header(), &claims, Sig::Ed(&w.signing_key()))),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn expiry_and_not_before_hold_with_a_small_leeway() {
    let w = world();
    let issued = w.issue("messages.send", NOW);
    let exp = issued.claims.exp.as_secs();
    assert!(
        w.verify_at(&issued.token, exp + DEFAULT_LEEWAY_SECS - 1)
            .is_ok()
    );
    assert_eq!(
        w.verify_at(&issued.token, exp + DEFAULT_LEEWAY_SECS),
        Err(TokenError::Expired)
    );
    assert_eq!(
        w.verify_at(&issued.token, exp + 86_400),
        Err(TokenError::Expired)
    );

    // Issued for later: not yet valid now, valid once its time comes (within the leeway).
    let later = w.issue("messages.send", NOW + 3600);
    assert_eq!(w.verify(&later.token), Err(TokenError::NotYetValid));
    assert!(
        w.verify_at(&later.token, NOW + 3600 - DEFAULT_LEEWAY_SECS)
            .is_ok()
    );

    // A forged far-future nbf with a normal exp.
    let mut claims = w.claims();
    claims["nbf"] = json!(NOW + 120);
    assert_eq!(
        w.verify(&forge(&w.header(), &claims, Sig::Ed(&w.signing_key()))),
        Err(TokenError::NotYetValid)
    );
}

#[test]
fn time_claims_must_be_numbers() {
    let w = world();
    let key = w.signing_key();
    for (claim, value) in [
        ("exp", json!("9999999999")),
        ("exp", json!(9_999_999_999.5)),
        ("exp", json!(-1)),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("nbf", json!("0")),
        ("iat", json!([NOW])),
    ] {
        let mut claims = w.claims();
        claims[claim] = value.clone();
        let token = forge(&w.header(), &claims, Sig::Ed(&key));
        assert!(
            matches!(w.verify(&token), Err(TokenError::ClaimNotNumeric(c)) if c == claim),
            "{claim}={value}: {:?}",
            w.verify(&token)
        );
    }
    let mut claims = w.claims();
    claims.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        w.verify(&forge(&w.header(), &claims, Sig::Ed(&key))),
        Err(TokenError::MissingClaim("exp"))
    );
}

#[test]
fn tampered_or_foreign_tokens_are_rejected() {
    let w = world();
    let token = w.issue("profile.read", NOW).token;
    // Swap in a payload granting more; keep the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("messages.send profile.read");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_eq!(w.verify(&tampered), Err(TokenError::BadSignature));

    // Right key, wrong issuer.
    let mut claims = w.claims();
    claims["iss"] = json!("https://evil.test");
    assert_eq!(
        w.verify(&forge(&w.header(), &claims, Sig::Ed(&w.signing_key()))),
        Err(TokenError::WrongIssuer)
    );

    // Malformed shapes.
    for garbage in [
        "",
        "a.b",
        "a.b.c.d",
        "!!.??.**",
        &format!("{}.{}", parts[0], parts[1]),
        &"a".repeat(9000),
    ] {
        assert!(
            matches!(w.verify(garbage), Err(TokenError::Malformed(_))),
            "{garbage:.20}"
        );
    }
    let not_json = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode("not json"),
        parts[1],
        parts[2]
    );
    assert!(matches!(w.verify(&not_json), Err(TokenError::Malformed(_))));
}

#[test]
fn revoked_tokens_are_refused_and_revocation_fails_closed() {
    let w = world();
    let issued = w.issue("messages.send", NOW);
    let expect = Expectation::for_app(&w.app_a).requiring(Scope::MessagesSend);
    let now = UnixTime::from_secs(NOW);

    let mut revoked: HashSet<TokenId> = HashSet::new();
    assert!(
        w.verifier()
            .verify(&issued.token, &expect, now, &revoked)
            .is_ok()
    );
    revoked.insert(issued.claims.jti.clone());
    assert_eq!(
        w.verifier().verify(&issued.token, &expect, now, &revoked),
        Err(TokenError::Revoked)
    );

    // A grant revoked after the token was issued (a store-backed check by user and time).
    let alice = w.alice.clone();
    let grant_revoked_at = NOW;
    let by_grant = move |c: &AccessClaims| {
        Ok(c.sub == Subject::User(alice.clone()) && c.iat.as_secs() <= grant_revoked_at)
    };
    assert_eq!(
        w.verifier().verify(&issued.token, &expect, now, &by_grant),
        Err(TokenError::Revoked)
    );

    let unavailable = |_: &AccessClaims| Err("store down".to_owned());
    let err = w
        .verifier()
        .verify(&issued.token, &expect, now, &unavailable)
        .unwrap_err();
    assert_eq!(
        (err.clone(), err.http_status()),
        (TokenError::RevocationUnavailable("store down".into()), 503)
    );

    // The two-step form for async stores.
    let pending = w
        .verifier()
        .verify_pending(&issued.token, &expect, now)
        .unwrap();
    let jti = pending.claims_to_check().jti.clone();
    assert_eq!(
        pending.finish(Ok(revoked.contains(&jti))),
        Err(TokenError::Revoked)
    );
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_retired() {
    let mut w = world();
    let old_kid = w.keyring.active().unwrap().kid().clone();
    let before = w.issue("messages.send", NOW);

    let new_kid = w.keyring.rotate(UnixTime::from_secs(NOW + 10)).unwrap();
    let after = w.issue("messages.send", NOW + 10);
    let header_kid = |t: &str| -> String {
        let h: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        h["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(header_kid(&after.token), new_kid.as_str());
    assert_eq!(header_kid(&before.token), old_kid.as_str());

    // Nobody is logged out by the rotation, and the JWKS publishes both keys.
    assert!(w.verify_at(&before.token, NOW + 20).is_ok());
    assert!(w.verify_at(&after.token, NOW + 20).is_ok());
    assert_eq!(w.keyring.jwks().keys.len(), 2);

    // Once the old key's tokens have all expired it is retired, and its tokens die with it.
    let lifetime = ACCESS_TOKEN_TTL_SECS + DEFAULT_LEEWAY_SECS;
    assert!(
        w.keyring
            .retire_expired(UnixTime::from_secs(NOW + 10 + lifetime - 1), lifetime)
            .is_empty()
    );
    assert_eq!(
        w.keyring
            .retire_expired(UnixTime::from_secs(NOW + 10 + lifetime), lifetime),
        vec![old_kid.clone()]
    );
    assert_eq!(
        w.verify_at(&before.token, NOW + 20),
        Err(TokenError::UnknownKid(old_kid))
    );
    assert!(w.verify_at(&after.token, NOW + 20).is_ok());
    assert_eq!(w.keyring.jwks().keys.len(), 1);

    // The keyring survives storage with its states.
    let reread = Keyring::from_stored(w.keyring.to_stored().unwrap()).unwrap();
    assert!(
        TokenVerifier::new(&reread, &w.issuer)
            .verify(
                &after.token,
                &Expectation::for_app(&w.app_a),
                UnixTime::from_secs(NOW + 20),
                &NoRevocations
            )
            .is_ok()
    );
}

#[test]
fn a_payment_token_is_good_for_exactly_one_order() {
    let w = world();
    let payment = AuthorizationDetail::Payment {
        order_id: "order-1".into(),
        amount_minor: 450,
        currency: "EUR".into(),
    };
    let mut request = AccessTokenRequest {
        app: w.app_a.clone(),
        client_id: w.client_a.clone(),
        subject: Subject::User(w.alice.clone()),
        scope: "messages.send".parse().unwrap(),
        payment: Some(payment.clone()),
    };
    assert_eq!(
        w.tokens
            .issue(&w.keyring, request.clone(), UnixTime::from_secs(NOW))
            .err(),
        Some(IssueError::PaymentWithoutScope)
    );
    request.scope = "payments.request".parse().unwrap();
    let issued = w
        .tokens
        .issue(&w.keyring, request, UnixTime::from_secs(NOW))
        .unwrap();
    assert_eq!(issued.claims.authorization_details, vec![payment]);

    let now = UnixTime::from_secs(NOW);
    let check = |token: &str, order: &str| {
        let expect = Expectation::for_app(&w.app_a).for_order(order);
        w.verifier().verify(token, &expect, now, &NoRevocations)
    };
    assert!(check(&issued.token, "order-1").is_ok());
    assert_eq!(
        check(&issued.token, "order-2"),
        Err(TokenError::OrderNotAuthorized)
    );
    let plain = w.issue("payments.request", NOW).token;
    assert_eq!(
        check(&plain, "order-1"),
        Err(TokenError::OrderNotAuthorized)
    );

    // A forged token listing two orders authorises neither.
    let mut claims = w.claims();
    claims["scope"] = json!("payments.request");
    claims["authorization_details"] = json!([
        {"type": "payment", "order_id": "order-1", "amount_minor": 1, "currency": "EUR"},
        {"type": "payment", "order_id": "order-2", "amount_minor": 1, "currency": "EUR"},
    ]);
    let two = forge(&w.header(), &claims, Sig::Ed(&w.signing_key()));
    assert_eq!(check(&two, "order-1"), Err(TokenError::OrderNotAuthorized));
}

#[test]
fn client_credentials_tokens_speak_for_the_app() {
    let w = world();
    let issued = w
        .tokens
        .issue_client_credentials(
            &w.keyring,
            w.app_a.clone(),
            w.client_a.clone(),
            "messages.send".parse().unwrap(),
            UnixTime::from_secs(NOW),
        )
        .unwrap();
    let claims = w.verify(&issued.token).unwrap();
    assert_eq!(claims.sub, Subject::App(w.client_a.clone()));

    // An app token whose sub names another client is not accepted.
    let mut forged = w.claims();
    forged["sub"] = json!(ClientId::generate().as_str());
    assert!(matches!(
        w.verify(&forge(&w.header(), &forged, Sig::Ed(&w.signing_key()))),
        Err(TokenError::Malformed(_))
    ));
}

#[test]
fn introspection_reveals_only_valid_tokens_of_the_caller() {
    let w = world();
    let issued = w.issue("messages.send storage", NOW);
    let now = UnixTime::from_secs(NOW);
    let active = w
        .verifier()
        .introspect(&issued.token, &w.app_a, now, &NoRevocations);
    assert!(active.active);
    assert_eq!(active.scope.as_deref(), Some("messages.send storage"));
    assert_eq!(active.sub.as_deref(), Some(w.alice.as_str()));
    assert_eq!(active.client_id.as_deref(), Some(w.client_a.as_str()));

    let json = |i: &Introspection| serde_json::to_value(i).unwrap();
    assert_eq!(
        json(
            &w.verifier()
                .introspect(&issued.token, &w.app_b, now, &NoRevocations)
        ),
        json!({"active": false})
    );
    let revoked: HashSet<TokenId> = [issued.claims.jti.clone()].into();
    assert!(
        !w.verifier()
            .introspect(&issued.token, &w.app_a, now, &revoked)
            .active
    );
    assert!(
        !w.verifier()
            .introspect("garbage", &w.app_a, now, &NoRevocations)
            .active
    );
}
