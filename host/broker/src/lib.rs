//! The token broker's pure core: app-scoped user ids, app credentials, the signing keyring and
//! JWKS, access-token issue and verification (RFC 8725 / RFC 9068), and the OAuth pieces for
//! app backends (login codes with PKCE, rotating refresh tokens, introspection). The core does no
//! IO and reads no clock: callers pass `now` and persist the records it returns. [`service`]
//! wires it to the store: the [`service::Broker`] the API and the capabilities call.

mod ids;
mod keys;
mod oauth;
mod scope;
mod secret;
pub mod service;
mod token;

pub use ids::{AppId, AppUserId, ClientId, InvalidId, Issuer, Kid, TokenId, UnixTime};
pub use keys::{Jwk, Jwks, KeyEntry, KeyError, KeyState, Keyring, StoredKey};
pub use oauth::{
    FamilyId, GrantError, LOGIN_CODE_TTL_SECS, LoginCode, LoginCodeRecord, PkceChallenge,
    PkceError, REFRESH_FAMILY_TTL_SECS, RefreshFamily, RefreshToken, RefreshTokenRecord,
    TokenResponse,
};
pub use scope::{Scope, ScopeSet, UnknownScope};
pub use secret::{AppCredentials, AppSecret, InvalidPlatformSecret, PlatformSecret, SecretHash};
pub use token::{
    ACCESS_TOKEN_TTL_SECS, ACCESS_TOKEN_TYPE, AccessClaims, AccessTokenRequest,
    AuthorizationDetail, DEFAULT_LEEWAY_SECS, Expectation, Introspection, IssueError, IssuedToken,
    NoRevocations, PendingRevocation, RevocationCheck, Subject, TokenError, TokenIssuer,
    TokenVerifier,
};
