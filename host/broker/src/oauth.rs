//! OAuth for app backends: one-time login codes bound to app, user and a PKCE S256 challenge
//! (RFC 7636), rotating refresh tokens grouped in families whose reuse is detected, and the
//! token endpoint's response. Every record here is plain data for the store to persist.

use crate::ids::{AppId, ClientId, InvalidId, UnixTime};
use crate::secret::{SecretHash, new_opaque};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minihost_core::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq as _;

/// Lifetime of a login code: 5 minutes.
pub const LOGIN_CODE_TTL_SECS: u64 = 300;
/// Absolute lifetime of a refresh-token family: 30 days from the login.
pub const REFRESH_FAMILY_TTL_SECS: u64 = 30 * 24 * 3600;

/// PKCE failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// Only `S256` is accepted (RFC 7636 `plain` gives no protection against a stolen code).
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// The challenge is not 43 base64url characters (a SHA-256 digest).
    #[error("malformed code_challenge")]
    MalformedChallenge,
    /// The token request carried no `code_verifier`.
    #[error("code_verifier missing")]
    MissingVerifier,
    /// The verifier is not 43-128 unreserved characters.
    #[error("malformed code_verifier")]
    MalformedVerifier,
    /// The verifier does not hash to the challenge.
    #[error("code_verifier does not match the challenge")]
    Mismatch,
}

/// An RFC 7636 S256 code challenge: base64url(SHA-256(verifier)), 43 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// Reads a challenge and its method as sent by the client.
    pub fn parse(challenge: &str, method: &str) -> Result<PkceChallenge, PkceError> {
        if method != "S256" {
            return Err(PkceError::UnsupportedMethod);
        }
        Self::parse_s256(challenge)
    }

    fn parse_s256(challenge: &str) -> Result<PkceChallenge, PkceError> {
        let ok = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(PkceChallenge(challenge.to_owned()))
        } else {
            Err(PkceError::MalformedChallenge)
        }
    }

    /// The challenge of a verifier (what a client computes).
    pub fn from_verifier(verifier: &str) -> PkceChallenge {
        PkceChallenge(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
    }

    /// The challenge as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a `code_verifier` against this challenge (constant-time comparison).
    pub fn verify(&self, verifier: Option<&str>) -> Result<(), PkceError> {
        let verifier = verifier.ok_or(PkceError::MissingVerifier)?;
        let unreserved =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(unreserved) {
            return Err(PkceError::MalformedVerifier);
        }
        let computed = PkceChallenge::from_verifier(verifier);
        if bool::from(computed.0.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(PkceError::Mismatch)
        }
    }
}

impl TryFrom<String> for PkceChallenge {
    type Error = PkceError;
    fn try_from(s: String) -> Result<Self, PkceError> {
        PkceChallenge::parse_s256(&s)
    }
}

impl From<PkceChallenge> for String {
    fn from(c: PkceChallenge) -> String {
        c.0
    }
}

/// Why a code or refresh token was refused. All map to the OAuth error `invalid_grant`
/// (RFC 6749 section 5.2), except PKCE syntax errors which are `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The code does not match the record (wrong or forged code).
    #[error("invalid login code")]
    InvalidCode,
    /// The code was already exchanged. Revoke whatever was issued from it.
    #[error("login code already used")]
    CodeReused {
        /// The refresh family issued when the code was first exchanged.
        issued_family: Option<FamilyId>,
    },
    /// The code is older than 5 minutes.
    #[error("login code expired")]
    CodeExpired,
    /// The code was issued to another app.
    #[error("login code belongs to another app")]
    CodeWrongApp,
    /// PKCE failed.
    #[error(transparent)]
    Pkce(#[from] PkceError),
    /// The refresh token does not belong to this family.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// An already-rotated refresh token was presented: the family is now revoked (persist it)
    /// and so should the grant be.
    #[error("refresh token reused; family {0} revoked")]
    RefreshTokenReused(FamilyId),
    /// The family was revoked earlier.
    #[error("refresh token family revoked")]
    FamilyRevoked,
    /// The family passed its absolute lifetime.
    #[error("refresh token expired")]
    RefreshExpired,
    /// The refresh token was issued to another client.
    #[error("refresh token belongs to another client")]
    WrongClient,
}

impl GrantError {
    /// The RFC 6749 `error` code of the token endpoint's answer.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            GrantError::Pkce(PkceError::MissingVerifier | PkceError::MalformedVerifier) => {
                "invalid_request"
            }
            _ => "invalid_grant",
        }
    }
}

/// A one-time login code, shown once to the mini-app (which passes it to its backend).
/// `mlc_` and 256 random bits. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginCode(String);

impl LoginCode {
    /// The code, to hand to the app.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LoginCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginCode([redacted])")
    }
}

/// A login code as stored: look it up by `code_hash` ([`SecretHash::of`] of the presented
/// code), then call [`LoginCodeRecord::redeem`], then persist `consumed_at` with a conditional
/// update (`... WHERE consumed_at IS NULL`) whose row count decides a race between two
/// exchanges of the same code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCodeRecord {
    /// Hash of the code.
    pub code_hash: SecretHash,
    /// The app it was issued to.
    pub app: AppId,
    /// The internal user it logs in (never shown to the app).
    pub user: UserId,
    /// The backend's PKCE challenge.
    pub pkce: PkceChallenge,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// When it was exchanged, if it was.
    pub consumed_at: Option<UnixTime>,
    /// The refresh family its exchange started (to revoke on reuse).
    pub issued_family: Option<FamilyId>,
}

impl LoginCodeRecord {
    /// Issues a code for `user` in `app`, bound to the backend's PKCE challenge.
    pub fn issue(
        app: AppId,
        user: UserId,
        pkce: PkceChallenge,
        now: UnixTime,
    ) -> (LoginCode, LoginCodeRecord) {
        let code = LoginCode(new_opaque("mlc_"));
        let record = LoginCodeRecord {
            code_hash: SecretHash::of(&code.0),
            app,
            user,
            pkce,
            issued_at: now,
            expires_at: now.plus(LOGIN_CODE_TTL_SECS),
            consumed_at: None,
            issued_family: None,
        };
        (code, record)
    }

    /// Exchanges the code presented by `client_app` with its PKCE verifier. On success marks
    /// the record consumed (persist it) and returns the user the code logs in.
    pub fn redeem(
        &mut self,
        presented: &str,
        client_app: &AppId,
        verifier: Option<&str>,
        now: UnixTime,
    ) -> Result<UserId, GrantError> {
        if !self.code_hash.matches(presented) {
            return Err(GrantError::InvalidCode);
        }
        if self.consumed_at.is_some() {
            return Err(GrantError::CodeReused {
                issued_family: self.issued_family.clone(),
            });
        }
        if &self.app != client_app {
            return Err(GrantError::CodeWrongApp);
        }
        if now >= self.expires_at {
            return Err(GrantError::CodeExpired);
        }
        self.pkce.verify(verifier)?;
        self.consumed_at = Some(now);
        Ok(self.user.clone())
    }
}

/// The id of a refresh-token family (all the tokens descended from one login): `rf_` and 32
/// hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FamilyId(String);

impl FamilyId {
    fn generate() -> FamilyId {
        FamilyId(format!("rf_{}", minihost_core::ids::random_hex(16)))
    }

    /// Checks the format and wraps the id.
    pub fn parse(s: &str) -> Result<FamilyId, InvalidId> {
        let ok = s
            .strip_prefix("rf_")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(FamilyId(s.to_owned()))
        } else {
            Err(InvalidId {
                kind: "refresh family id",
                reason: "expected `rf_` and 32 hex digits".into(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FamilyId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        FamilyId::parse(&s)
    }
}

impl From<FamilyId> for String {
    fn from(id: FamilyId) -> String {
        id.0
    }
}

/// A refresh token, shown once to the backend: `mrt_` and 256 random bits. Opaque.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// The token, to hand to the backend.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// One issued refresh token as stored (keep every one until its family expires: that is what
/// lets a replayed old token be recognised). Look it up by `token_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    /// Hash of the token.
    pub token_hash: SecretHash,
    /// Its family.
    pub family: FamilyId,
    /// Its place in the rotation; only the family's current generation is usable.
    pub generation: u32,
    /// When it was issued.
    pub issued_at: UnixTime,
}

/// A family of refresh tokens: one login of one user in one app, rotated at every use.
/// Persist it after every call that changes it; update it conditionally
/// (`... WHERE generation = <old>`) so that of two concurrent refreshes one wins and the
/// other is seen as a reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshFamily {
    /// The family id.
    pub id: FamilyId,
    /// The app.
    pub app: AppId,
    /// The internal user.
    pub user: UserId,
    /// The client the tokens were issued to.
    pub client_id: ClientId,
    /// The generation of the only token that may be used next.
    pub generation: u32,
    /// When the login happened.
    pub created_at: UnixTime,
    /// Absolute end of the family.
    pub expires_at: UnixTime,
    /// When it was revoked (reuse, logout, grant revoked).
    pub revoked_at: Option<UnixTime>,
}

impl RefreshFamily {
    /// Starts a family at a successful code exchange; returns its first token.
    pub fn start(
        app: AppId,
        user: UserId,
        client_id: ClientId,
        now: UnixTime,
    ) -> (RefreshFamily, RefreshToken, RefreshTokenRecord) {
        let family = RefreshFamily {
            id: FamilyId::generate(),
            app,
            user,
            client_id,
            generation: 0,
            created_at: now,
            expires_at: now.plus(REFRESH_FAMILY_TTL_SECS),
            revoked_at: None,
        };
        let (token, record) = family.mint(now);
        (family, token, record)
    }

    fn mint(&self, now: UnixTime) -> (RefreshToken, RefreshTokenRecord) {
        let token = RefreshToken(new_opaque("mrt_"));
        let record = RefreshTokenRecord {
            token_hash: SecretHash::of(&token.0),
            family: self.id.clone(),
            generation: self.generation,
            issued_at: now,
        };
        (token, record)
    }

    /// Uses the presented token (found by its hash) and returns its successor. Presenting a
    /// token of an earlier generation revokes the family in place and fails with
    /// [`GrantError::RefreshTokenReused`]: persist the family, and revoke the grant.
    pub fn rotate(
        &mut self,
        presented: &RefreshTokenRecord,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<(RefreshToken, RefreshTokenRecord), GrantError> {
        if presented.family != self.id {
            return Err(GrantError::InvalidRefreshToken);
        }
        if &self.client_id != client_id {
            return Err(GrantError::WrongClient);
        }
        if self.revoked_at.is_some() {
            return Err(GrantError::FamilyRevoked);
        }
        if presented.generation != self.generation {
            self.revoked_at = Some(now);
            return Err(GrantError::RefreshTokenReused(self.id.clone()));
        }
        if now >= self.expires_at {
            return Err(GrantError::RefreshExpired);
        }
        self.generation = self.generation.saturating_add(1);
        Ok(self.mint(now))
    }

    /// Revokes the family (logout, RFC 7009 revocation, grant revoked).
    pub fn revoke(&mut self, now: UnixTime) {
        if self.revoked_at.is_none() {
            self.revoked_at = Some(now);
        }
    }
}

/// The token endpoint's success answer (RFC 6749 section 5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The next refresh token (authorization-code and refresh grants only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space separated.
    pub scope: String,
}

impl TokenResponse {
    /// The answer for an issued access token and, optionally, a refresh token.
    pub fn new(
        issued: &crate::token::IssuedToken,
        refresh: Option<&RefreshToken>,
        now: UnixTime,
    ) -> TokenResponse {
        TokenResponse {
            access_token: issued.token.clone(),
            token_type: "Bearer".to_owned(),
            expires_in: issued.claims.exp.as_secs().saturating_sub(now.as_secs()),
            refresh_token: refresh.map(|r| r.expose().to_owned()),
            scope: issued.claims.scope.to_string(),
        }
    }
}
