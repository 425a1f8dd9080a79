//! The OAuth flow for app backends at the broker's level: login codes bound to app, user and
//! PKCE; code reuse; refresh-token rotation with replay detection; and the whole backend flow
//! from login code to a revoked access token.

// Test helpers outside `#[test]` functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use minihost_broker::*;
use minihost_core::UserId;
use std::collections::HashSet;

const NOW: u64 = 1_900_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn t(secs: u64) -> UnixTime {
    UnixTime::from_secs(secs)
}

fn polls() -> AppId {
    AppId::parse("polls").unwrap()
}

fn code() -> (LoginCode, LoginCodeRecord) {
    let challenge =
        PkceChallenge::parse(PkceChallenge::from_verifier(VERIFIER).as_str(), "S256").unwrap();
    LoginCodeRecord::issue(polls(), UserId::from_string("u_bob"), challenge, t(NOW))
}

#[test]
fn pkce_s256_matches_the_rfc_7636_example() {
    // RFC 7636 appendix B.
    assert_eq!(
        PkceChallenge::from_verifier(VERIFIER).as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    assert_eq!(
        PkceChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "plain"),
        Err(PkceError::UnsupportedMethod)
    );
    assert_eq!(
        PkceChallenge::parse("short", "S256"),
        Err(PkceError::MalformedChallenge)
    );
}

#[test]
fn a_code_needs_the_right_pkce_verifier() {
    let (code, mut record) = code();
    let err = |r: &mut LoginCodeRecord, v: Option<&str>| {
        r.redeem(code.expose(), &polls(), v, t(NOW + 1))
            .unwrap_err()
    };
    assert_eq!(
        err(&mut record, None),
        GrantError::Pkce(PkceError::MissingVerifier)
    );
    assert_eq!(err(&mut record, None).oauth_error(), "invalid_request");
    let wrong = "x".repeat(43);
    assert_eq!(
        err(&mut record, Some(&wrong)),
        GrantError::Pkce(PkceError::Mismatch)
    );
    assert_eq!(
        err(&mut record, Some(&wrong)).oauth_error(),
        "invalid_grant"
    );
    assert_eq!(
        err(&mut record, Some("too-short")),
        GrantError::Pkce(PkceError::MalformedVerifier)
    );
    assert_eq!(
        err(&mut record, Some(&format!("{VERIFIER} "))),
        GrantError::Pkce(PkceError::MalformedVerifier)
    );
    // None of the failures consumed the code: the right verifier still works, once.
    assert_eq!(record.consumed_at, None);
    assert_eq!(
        record.redeem(code.expose(), &polls(), Some(VERIFIER), t(NOW + 1)),
        Ok(UserId::from_string("u_bob"))
    );
}

#[test]
fn a_code_works_once_for_its_app_within_five_minutes() {
    let (code, record) = code();
    assert!(
        !record.code_hash.as_str().contains(code.expose()),
        "stored hashed"
    );
    assert_eq!(
        record.code_hash,
        SecretHash::of(code.expose()),
        "found by hash"
    );

    let mut r = record.clone();
    assert_eq!(
        r.redeem("mlc_guess", &polls(), Some(VERIFIER), t(NOW)),
        Err(GrantError::InvalidCode)
    );
    let other_app = AppId::parse("shop").unwrap();
    assert_eq!(
        r.redeem(code.expose(), &other_app, Some(VERIFIER), t(NOW)),
        Err(GrantError::CodeWrongApp)
    );
    let mut late = record.clone();
    assert_eq!(
        late.redeem(
            code.expose(),
            &polls(),
            Some(VERIFIER),
            t(NOW + LOGIN_CODE_TTL_SECS)
        ),
        Err(GrantError::CodeExpired)
    );
    assert!(
        late.clone()
            .redeem(
                code.expose(),
                &polls(),
                Some(VERIFIER),
                t(NOW + LOGIN_CODE_TTL_SECS - 1)
            )
            .is_ok()
    );

    assert!(
        r.redeem(code.expose(), &polls(), Some(VERIFIER), t(NOW + 2))
            .is_ok()
    );
    assert_eq!(r.consumed_at, Some(t(NOW + 2)));
    let (family, _, _) = RefreshFamily::start(
        polls(),
        UserId::from_string("u_bob"),
        ClientId::generate(),
        t(NOW + 2),
    );
    r.issued_family = Some(family.id.clone());
    assert_eq!(
        r.redeem(code.expose(), &polls(), Some(VERIFIER), t(NOW + 3)),
        Err(GrantError::CodeReused {
            issued_family: Some(family.id)
        })
    );
}

#[test]
fn refresh_tokens_rotate_and_a_replay_revokes_the_family() {
    let client = ClientId::generate();
    let (mut family, first, first_record) = RefreshFamily::start(
        polls(),
        UserId::from_string("u_bob"),
        client.clone(),
        t(NOW),
    );
    assert!(first.expose().starts_with("mrt_"));
    assert_eq!(first_record.token_hash, SecretHash::of(first.expose()));

    let (second, second_record) = family.rotate(&first_record, &client, t(NOW + 60)).unwrap();
    assert_ne!(second.expose(), first.expose());
    assert_eq!((second_record.generation, family.generation), (1, 1));
    let (_third, third_record) = family
        .rotate(&second_record, &client, t(NOW + 120))
        .unwrap();

    // Another client cannot use it; that alone does not revoke anything.
    assert_eq!(
        family.rotate(&third_record, &ClientId::generate(), t(NOW + 130)),
        Err(GrantError::WrongClient)
    );
    assert_eq!(family.revoked_at, None);

    // The thief replays the first token: the whole family dies, the legitimate one included.
    assert_eq!(
        family.rotate(&first_record, &client, t(NOW + 180)),
        Err(GrantError::RefreshTokenReused(family.id.clone()))
    );
    assert_eq!(family.revoked_at, Some(t(NOW + 180)));
    assert_eq!(
        family.rotate(&third_record, &client, t(NOW + 200)),
        Err(GrantError::FamilyRevoked)
    );

    // The family's records survive storage as plain data.
    let json = serde_json::to_string(&family).unwrap();
    assert_eq!(
        serde_json::from_str::<RefreshFamily>(&json).unwrap(),
        family
    );
}

#[test]
fn refresh_families_expire_and_reject_foreign_tokens() {
    let client = ClientId::generate();
    let (mut family, _, record) = RefreshFamily::start(
        polls(),
        UserId::from_string("u_bob"),
        client.clone(),
        t(NOW),
    );
    let (_, _, foreign) = RefreshFamily::start(
        polls(),
        UserId::from_string("u_bob"),
        client.clone(),
        t(NOW),
    );
    assert_eq!(
        family.rotate(&foreign, &client, t(NOW)),
        Err(GrantError::InvalidRefreshToken)
    );
    assert_eq!(
        family.rotate(&record, &client, t(NOW + REFRESH_FAMILY_TTL_SECS)),
        Err(GrantError::RefreshExpired)
    );
}

/// Login code -> token -> call with `messages.send` -> revoke -> refused.
#[test]
fn backend_flow_from_login_code_to_revoked_token() {
    let platform = PlatformSecret::generate();
    let mut keyring = Keyring::new();
    keyring.rotate(t(NOW - 100)).unwrap();
    let issuer = Issuer::new("https://minihost.test");
    let tokens = TokenIssuer::new(issuer.clone());
    let creds = AppCredentials::generate();
    let app = polls();

    // Inside the mini-app: a login code bound to bob and the backend's PKCE challenge.
    let (code, mut record) = code();

    // The backend authenticates and exchanges the code.
    assert!(creds.secret_hash.matches(creds.secret.expose()));
    let user = record
        .redeem(code.expose(), &app, Some(VERIFIER), t(NOW + 5))
        .unwrap();
    let grant: ScopeSet = "messages.send storage".parse().unwrap();
    let request = AccessTokenRequest {
        app: app.clone(),
        client_id: creds.client_id.clone(),
        subject: Subject::User(platform.app_user_id(&app, &user)),
        scope: grant,
        payment: None,
    };
    let issued = tokens.issue(&keyring, request, t(NOW + 5)).unwrap();
    let (family, refresh, _) =
        RefreshFamily::start(app.clone(), user, creds.client_id.clone(), t(NOW + 5));
    record.issued_family = Some(family.id.clone());
    let response = TokenResponse::new(&issued, Some(&refresh), t(NOW + 5));
    assert_eq!(
        (response.token_type.as_str(), response.expires_in),
        ("Bearer", ACCESS_TOKEN_TTL_SECS)
    );
    assert_eq!(response.scope, "messages.send storage");

    // The backend calls the Open API to send a message.
    let verifier = TokenVerifier::new(&keyring, &issuer);
    let expect = Expectation::for_app(&app).requiring(Scope::MessagesSend);
    let mut revoked = HashSet::new();
    let claims = verifier
        .verify(&response.access_token, &expect, t(NOW + 10), &revoked)
        .unwrap();
    assert!(!claims.sub_is_internal_id());

    // The token is revoked (RFC 7009): the next call is a 401.
    revoked.insert(claims.jti.clone());
    let err = verifier
        .verify(&response.access_token, &expect, t(NOW + 11), &revoked)
        .unwrap_err();
    assert_eq!(
        (err, 401),
        (TokenError::Revoked, TokenError::Revoked.http_status())
    );
}

trait SubCheck {
    fn sub_is_internal_id(&self) -> bool;
}

impl SubCheck for AccessClaims {
    fn sub_is_internal_id(&self) -> bool {
        match &self.sub {
            Subject::User(u) => u.as_str().contains("u_bob"),
            Subject::App(_) => false,
        }
    }
}
