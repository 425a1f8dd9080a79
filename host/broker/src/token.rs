//! Access tokens: the claims (RFC 9068, with RFC 9396 `authorization_details` for a payment),
//! issuing them with the active key, and verifying them per RFC 8725: fixed algorithm, `typ`,
//! known `kid`, no key-carrying headers, issuer, audience, times, scope, order and revocation.

use crate::ids::{AppId, AppUserId, ClientId, Issuer, Kid, TokenId, UnixTime};
use crate::keys::Keyring;
use crate::scope::{Scope, ScopeSet};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The `typ` header of access tokens (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Lifetime of an access token: 10 minutes.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 600;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Longest token accepted for parsing, in bytes.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Headers that point at or carry keys: never honoured, so a token carrying one is refused
/// (RFC 8725 section 3.10); `crit` names extensions we do not implement.
const FORBIDDEN_HEADERS: [&str; 7] = ["jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit"];

/// Whom a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user, as the app knows them (authorization-code tokens).
    User(AppUserId),
    /// The app itself (client-credentials tokens): `sub` is the client id.
    App(ClientId),
}

impl Subject {
    fn as_str(&self) -> &str {
        match self {
            Subject::User(u) => u.as_str(),
            Subject::App(c) => c.as_str(),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s.starts_with(AppUserId::PREFIX) {
            AppUserId::parse(&s)
                .map(Subject::User)
                .map_err(serde::de::Error::custom)
        } else {
            ClientId::parse(&s)
                .map(Subject::App)
                .map_err(serde::de::Error::custom)
        }
    }
}

/// One RFC 9396 authorization detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthorizationDetail {
    /// `{"type":"payment","order_id":..,"amount_minor":..,"currency":..}`: the token may
    /// request payment for exactly this order.
    Payment {
        /// The app's order id.
        order_id: String,
        /// Amount in the currency's minor unit.
        amount_minor: u64,
        /// ISO 4217 code.
        currency: String,
    },
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the platform's base URL.
    pub iss: String,
    /// Audience: the app the token is for.
    pub aud: AppId,
    /// Subject: an app-scoped user id, or the client id for client-credentials tokens.
    pub sub: Subject,
    /// Expiry.
    pub exp: UnixTime,
    /// Not before.
    pub nbf: UnixTime,
    /// Issued at.
    pub iat: UnixTime,
    /// Unique id, the handle of revocation.
    pub jti: TokenId,
    /// Granted scopes, space separated.
    pub scope: ScopeSet,
    /// The OAuth client the token was issued to.
    pub client_id: ClientId,
    /// RFC 9396 details; at most one payment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details: Vec<AuthorizationDetail>,
}

/// What to put in a new access token.
#[derive(Debug, Clone)]
pub struct AccessTokenRequest {
    /// The app (`aud`).
    pub app: AppId,
    /// The client (`client_id`).
    pub client_id: ClientId,
    /// The subject (`sub`).
    pub subject: Subject,
    /// The scopes: for a user, their current grant (intersected with what was asked).
    pub scope: ScopeSet,
    /// A payment this token authorises, for exactly one order; needs `payments.request`.
    pub payment: Option<AuthorizationDetail>,
}

/// A freshly signed token and what it says.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// Its claims (persist `jti` and `exp` if you want to list or revoke it).
    pub claims: AccessClaims,
}

/// Issuing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The keyring has no active key (run a rotation).
    #[error("no active signing key")]
    NoActiveKey,
    /// A payment detail was asked without the `payments.request` scope.
    #[error("a payment authorisation needs the payments.request scope")]
    PaymentWithoutScope,
    /// The JWT library failed to sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Why a token was refused. [`TokenError::http_status`] maps each to 401, 403 or 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS, bad base64url or JSON, or claims of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `alg` is not `EdDSA` (`none`, `HS256`, ...).
    #[error("algorithm `{0}` is not accepted")]
    UnsupportedAlgorithm(String),
    /// `typ` is missing or not `at+jwt`.
    #[error("token type {0:?} is not at+jwt")]
    WrongType(Option<String>),
    /// The header carries `jku`, `x5u`, `jwk`, `x5c`, `x5t` or `crit`.
    #[error("header parameter `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// No `kid` header.
    #[error("token has no kid")]
    MissingKid,
    /// `kid` is not a well-formed key id (paths, quotes, ...).
    #[error("malformed kid")]
    InvalidKid,
    /// No active or retiring key has this kid.
    #[error("unknown kid `{0}`")]
    UnknownKid(Kid),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A required claim is absent.
    #[error("claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// `exp`, `nbf` or `iat` is not a non-negative integer (e.g. a string).
    #[error("claim `{0}` is not a NumericDate")]
    ClaimNotNumeric(&'static str),
    /// `iss` is not this platform.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is another app.
    #[error("token is for another app")]
    WrongAudience {
        /// The app that presented it.
        expected: AppId,
        /// The app it was issued for.
        found: AppId,
    },
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The token lacks the scope the call needs.
    #[error("token lacks scope `{0}`")]
    InsufficientScope(Scope),
    /// The call is a payment for an order this token does not authorise.
    #[error("token does not authorise a payment for this order")]
    OrderNotAuthorized,
    /// The token (or its grant) was revoked.
    #[error("token revoked")]
    Revoked,
    /// The revocation list could not be consulted; the token is refused.
    #[error("revocation status unavailable: {0}")]
    RevocationUnavailable(String),
}

impl TokenError {
    /// The HTTP status a resource server answers with: 403 for a valid token lacking power,
    /// 503 when revocation could not be checked, 401 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            TokenError::InsufficientScope(_) | TokenError::OrderNotAuthorized => 403,
            TokenError::RevocationUnavailable(_) => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error` code for the `WWW-Authenticate` header.
    pub fn bearer_error(&self) -> &'static str {
        match self.http_status() {
            403 => "insufficient_scope",
            503 => "temporarily_unavailable",
            _ => "invalid_token",
        }
    }
}

/// Answers whether a verified token has been revoked: by its `jti`, or because its grant was
/// revoked after `iat`. The store implements it; an `Err` refuses the token (fail closed).
pub trait RevocationCheck {
    /// Whether the token with these (already verified) claims is revoked.
    fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, String>;
}

/// Nothing is revoked (tests, or a caller that checks revocation itself via
/// [`TokenVerifier::verify_pending`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl RevocationCheck for NoRevocations {
    fn is_revoked(&self, _: &AccessClaims) -> Result<bool, String> {
        Ok(false)
    }
}

/// A set of revoked `jti`s, e.g. a cache the API keeps of the store's revocation table.
impl RevocationCheck for HashSet<TokenId> {
    fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, String> {
        Ok(self.contains(&claims.jti))
    }
}

impl<F: Fn(&AccessClaims) -> Result<bool, String>> RevocationCheck for F {
    fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, String> {
        self(claims)
    }
}

/// Signs access tokens with the keyring's active key.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    /// `iss` of every token.
    pub issuer: Issuer,
    /// Lifetime of access tokens.
    pub access_ttl_secs: u64,
}

impl TokenIssuer {
    /// An issuer with the default 10-minute lifetime.
    pub fn new(issuer: Issuer) -> TokenIssuer {
        TokenIssuer {
            issuer,
            access_ttl_secs: ACCESS_TOKEN_TTL_SECS,
        }
    }

    /// Signs an access token valid from `now` for `access_ttl_secs`.
    pub fn issue(
        &self,
        keyring: &Keyring,
        request: AccessTokenRequest,
        now: UnixTime,
    ) -> Result<IssuedToken, IssueError> {
        if request.payment.is_some() && !request.scope.contains(Scope::PaymentsRequest) {
            return Err(IssueError::PaymentWithoutScope);
        }
        let key = keyring.active().ok_or(IssueError::NoActiveKey)?;
        let claims = AccessClaims {
            iss: self.issuer.as_str().to_owned(),
            aud: request.app,
            sub: request.subject,
            exp: now.plus(self.access_ttl_secs),
            nbf: now,
            iat: now,
            jti: TokenId::generate(),
            scope: request.scope,
            client_id: request.client_id,
            authorization_details: request.payment.into_iter().collect(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(key.kid().as_str().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key.encoding_key())
            .map_err(|e| IssueError::Signing(e.to_string()))?;
        Ok(IssuedToken { token, claims })
    }

    /// An app-level token (OAuth client credentials): `sub` is the client id.
    pub fn issue_client_credentials(
        &self,
        keyring: &Keyring,
        app: AppId,
        client_id: ClientId,
        scope: ScopeSet,
        now: UnixTime,
    ) -> Result<IssuedToken, IssueError> {
        let subject = Subject::App(client_id.clone());
        self.issue(
            keyring,
            AccessTokenRequest {
                app,
                client_id,
                subject,
                scope,
                payment: None,
            },
            now,
        )
    }
}

/// What the resource being called requires of a token.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// The app on whose behalf the call is made: `aud` must be exactly this.
    pub audience: &'a AppId,
    /// The scope the call needs.
    pub scope: Option<Scope>,
    /// For a payment: the order it must be authorised for.
    pub order: Option<&'a str>,
}

impl<'a> Expectation<'a> {
    /// A token for `app`, any scope.
    pub fn for_app(audience: &'a AppId) -> Expectation<'a> {
        Expectation {
            audience,
            scope: None,
            order: None,
        }
    }

    /// Also requires `scope`.
    pub fn requiring(self, scope: Scope) -> Expectation<'a> {
        Expectation {
            scope: Some(scope),
            ..self
        }
    }

    /// Also requires a payment authorisation for exactly `order`.
    pub fn for_order(self, order: &'a str) -> Expectation<'a> {
        Expectation {
            order: Some(order),
            ..self
        }
    }
}

/// A token whose signature and claims passed, waiting for its revocation status (for callers
/// whose revocation lookup is async). Only [`PendingRevocation::finish`] yields the claims.
#[derive(Debug)]
#[must_use = "a token is not valid until its revocation status is checked"]
pub struct PendingRevocation {
    claims: AccessClaims,
}

impl PendingRevocation {
    /// The verified claims, to look up revocation by (`jti`, `sub`, `aud`, `iat`).
    pub fn claims_to_check(&self) -> &AccessClaims {
        &self.claims
    }

    /// Finishes verification with the looked-up status.
    pub fn finish(self, revoked: Result<bool, String>) -> Result<AccessClaims, TokenError> {
        match revoked {
            Ok(false) => Ok(self.claims),
            Ok(true) => Err(TokenError::Revoked),
            Err(e) => Err(TokenError::RevocationUnavailable(e)),
        }
    }
}

/// Verifies access tokens against the keyring.
#[derive(Debug, Clone, Copy)]
pub struct TokenVerifier<'a> {
    keyring: &'a Keyring,
    issuer: &'a Issuer,
    leeway_secs: u64,
}

impl<'a> TokenVerifier<'a> {
    /// A verifier with the default leeway.
    pub fn new(keyring: &'a Keyring, issuer: &'a Issuer) -> TokenVerifier<'a> {
        TokenVerifier {
            keyring,
            issuer,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// The same verifier with another clock-skew leeway.
    pub fn with_leeway(self, leeway_secs: u64) -> TokenVerifier<'a> {
        TokenVerifier {
            leeway_secs,
            ..self
        }
    }

    /// Verifies everything, revocation included.
    pub fn verify(
        &self,
        token: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
        revocation: &dyn RevocationCheck,
    ) -> Result<AccessClaims, TokenError> {
        let pending = self.verify_pending(token, expect, now)?;
        let status = revocation.is_revoked(pending.claims_to_check());
        pending.finish(status)
    }

    /// Verifies everything but revocation.
    pub fn verify_pending(
        &self,
        token: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
    ) -> Result<PendingRevocation, TokenError> {
        let header = parse_header(token)?;
        let kid = self.check_header(&header)?;
        if token.ends_with('.') {
            return Err(TokenError::Malformed("missing signature".into()));
        }
        let key = self
            .keyring
            .verifying(&kid)
            .ok_or_else(|| TokenError::UnknownKid(kid.clone()))?;

        // The signature, by the library, with the algorithm fixed to EdDSA. Its own claim
        // checks read the wall clock, so they are off: ours below take `now`.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation)
                .map_err(|e| match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        TokenError::UnsupportedAlgorithm(format!("{:?}", header.get("alg")))
                    }
                    _ => TokenError::Malformed(e.to_string()),
                })?;
        let claims = self.check_claims(data.claims, expect, now)?;
        Ok(PendingRevocation { claims })
    }

    /// RFC 7662 introspection by the app `caller` (already authenticated by its client
    /// secret): `active` only for a valid, unrevoked token issued to that same app.
    pub fn introspect(
        &self,
        token: &str,
        caller: &AppId,
        now: UnixTime,
        revocation: &dyn RevocationCheck,
    ) -> Introspection {
        match self.verify(token, &Expectation::for_app(caller), now, revocation) {
            Ok(claims) => Introspection::from_claims(&claims),
            Err(_) => Introspection::inactive(),
        }
    }

    fn check_header(&self, header: &Map<String, Value>) -> Result<Kid, TokenError> {
        match header.get("alg") {
            Some(Value::String(alg)) if alg == "EdDSA" => {}
            Some(Value::String(alg)) => return Err(TokenError::UnsupportedAlgorithm(alg.clone())),
            Some(other) => return Err(TokenError::UnsupportedAlgorithm(other.to_string())),
            None => return Err(TokenError::Malformed("header has no alg".into())),
        }
        if let Some(name) = FORBIDDEN_HEADERS
            .into_iter()
            .find(|h| header.contains_key(*h))
        {
            return Err(TokenError::ForbiddenHeader(name));
        }
        match header.get("typ") {
            Some(Value::String(typ))
                if typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)
                    || typ.eq_ignore_ascii_case("application/at+jwt") => {}
            Some(Value::String(typ)) => return Err(TokenError::WrongType(Some(typ.clone()))),
            Some(other) => return Err(TokenError::WrongType(Some(other.to_string()))),
            None => return Err(TokenError::WrongType(None)),
        }
        match header.get("kid") {
            Some(Value::String(kid)) => Kid::parse(kid).map_err(|_| TokenError::InvalidKid),
            Some(_) => Err(TokenError::InvalidKid),
            None => Err(TokenError::MissingKid),
        }
    }

    fn check_claims(
        &self,
        raw: Map<String, Value>,
        expect: &Expectation<'_>,
        now: UnixTime,
    ) -> Result<AccessClaims, TokenError> {
        for name in ["exp", "nbf", "iat"] {
            match raw.get(name) {
                None => return Err(TokenError::MissingClaim(name)),
                Some(Value::Number(n)) if n.as_u64().is_some() => {}
                Some(_) => return Err(TokenError::ClaimNotNumeric(name)),
            }
        }
        for name in ["iss", "aud", "sub", "jti", "scope", "client_id"] {
            if !raw.contains_key(name) {
                return Err(TokenError::MissingClaim(name));
            }
        }
        let claims: AccessClaims = serde_json::from_value(Value::Object(raw))
            .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;

        if claims.iss != self.issuer.as_str() {
            return Err(TokenError::WrongIssuer);
        }
        if &claims.aud != expect.audience {
            return Err(TokenError::WrongAudience {
                expected: expect.audience.clone(),
                found: claims.aud.clone(),
            });
        }
        if now >= claims.exp.plus(self.leeway_secs) {
            return Err(TokenError::Expired);
        }
        if now.plus(self.leeway_secs) < claims.nbf || now.plus(self.leeway_secs) < claims.iat {
            return Err(TokenError::NotYetValid);
        }
        if let Subject::App(client) = &claims.sub
            && client != &claims.client_id
        {
            return Err(TokenError::Malformed(
                "app token whose sub is not its client_id".into(),
            ));
        }
        if let Some(scope) = expect.scope
            && !claims.scope.contains(scope)
        {
            return Err(TokenError::InsufficientScope(scope));
        }
        if let Some(order) = expect.order {
            if !claims.scope.contains(Scope::PaymentsRequest) {
                return Err(TokenError::InsufficientScope(Scope::PaymentsRequest));
            }
            match claims.authorization_details.as_slice() {
                [AuthorizationDetail::Payment { order_id, .. }] if order_id == order => {}
                _ => return Err(TokenError::OrderNotAuthorized),
            }
        }
        Ok(claims)
    }
}

/// Splits a compact JWS into exactly three base64url parts and parses its header as a JSON
/// object, before any library sees it.
fn parse_header(token: &str) -> Result<Map<String, Value>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token too long".into()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(TokenError::Malformed(format!(
            "expected 3 parts, got {}",
            parts.len()
        )));
    };
    let b64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !b64url(header) || !b64url(payload) {
        return Err(TokenError::Malformed(
            "parts must be non-empty base64url".into(),
        ));
    }
    // An empty signature (`alg: none`) is refused after the header's `alg` is read, so that
    // the error says why.
    if !signature.is_empty() && !b64url(signature) {
        return Err(TokenError::Malformed("malformed signature".into()));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::Malformed(format!("header: {e}")))
}

/// An RFC 7662 introspection response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Granted scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Always `Bearer` when active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Introspection {
    /// `{"active":false}`: all a caller learns about an invalid token.
    pub fn inactive() -> Introspection {
        Introspection::default()
    }

    /// The response for a valid token.
    pub fn from_claims(claims: &AccessClaims) -> Introspection {
        Introspection {
            active: true,
            scope: Some(claims.scope.to_string()),
            client_id: Some(claims.client_id.to_string()),
            token_type: Some("Bearer".to_owned()),
            exp: Some(claims.exp.as_secs()),
            iat: Some(claims.iat.as_secs()),
            nbf: Some(claims.nbf.as_secs()),
            sub: Some(claims.sub.as_str().to_owned()),
            aud: Some(claims.aud.to_string()),
            iss: Some(claims.iss.clone()),
            jti: Some(claims.jti.to_string()),
        }
    }
}
