//! The broker as a service: the pure core wired to the store. [`Broker`] keeps the signing
//! keyring (created on first start, cached, reloaded), the platform secret of app-scoped ids, and
//! implements app credentials, login codes, the OAuth token endpoint's grants, revocation,
//! introspection and the verification of bearer tokens for the Open API. Every method that
//! depends on time takes `now`; nothing here reads the wall clock except the key cache's age.

use crate::ids::{AppId, AppUserId, ClientId, Issuer, Kid, TokenId, UnixTime};
use crate::keys::{Jwks, KeyError, KeyState, Keyring, StoredKey};
use crate::oauth::{
    FamilyId, GrantError, LoginCode, LoginCodeRecord, PkceChallenge, RefreshFamily,
    RefreshTokenRecord, TokenResponse,
};
use crate::scope::{Scope, ScopeSet};
use crate::secret::{AppCredentials, PlatformSecret, SecretHash};
use crate::token::{
    ACCESS_TOKEN_TTL_SECS, AccessClaims, AccessTokenRequest, DEFAULT_LEEWAY_SECS, Expectation,
    Introspection, IssueError, IssuedToken, PendingRevocation, Subject, TokenError, TokenIssuer,
    TokenVerifier,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use minihost_core::UserId;
use minihost_store::{
    AccessTokenCheck, LoginCodeRow, RefreshFamilyRow, RefreshTokenRow, SigningKeyRow, Store,
    StoreError,
};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The name under which the platform secret of app-scoped ids is stored (shared with
/// `minihost-appsvc`, which derives the same ids).
pub const PLATFORM_SECRET_NAME: &str = "app-user-ids";

/// How the broker is set up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `iss` of every token: the platform's public base URL. Every node must agree.
    pub issuer: Issuer,
    /// Lifetime of access tokens.
    pub access_ttl_secs: u64,
    /// How long a node signs and verifies with its cached keyring before reading the keys
    /// again (so that a rotation made elsewhere reaches it).
    pub keyring_refresh: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            issuer: Issuer::new("minihost"),
            access_ttl_secs: ACCESS_TOKEN_TTL_SECS,
            keyring_refresh: Duration::from_secs(30),
        }
    }
}

/// A failure of the broker itself (not a refusal): storage down, corrupt state.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The store failed (or said `NotFound` / `Conflict`, which callers map).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored keyring is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Signing failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// A stored value could not be read back.
    #[error("corrupt broker state: {0}")]
    Corrupt(String),
    /// A dependency (the revocation lookup) could not answer now.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// An answer of the token, revocation or introspection endpoints other than success, with its
/// RFC 6749 section 5.2 error code and HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong secret, none given).
    #[error("client authentication failed")]
    InvalidClient,
    /// The code or refresh token was refused.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The user no longer grants the app anything.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// The `grant_type` is not one this server supports.
    #[error("grant_type must be authorization_code, refresh_token or client_credentials")]
    UnsupportedGrantType,
    /// The requested scope is not available.
    #[error("{0}")]
    InvalidScope(String),
    /// The broker failed.
    #[error("the authorization server failed")]
    Server(#[from] BrokerError),
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn error_code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::Grant(g) => g.oauth_error(),
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Server(
                BrokerError::Store(StoreError::Closed) | BrokerError::Unavailable(_),
            ) => "temporarily_unavailable",
            OAuthError::Server(_) => "server_error",
        }
    }

    /// The HTTP status: 401 for client authentication, 5xx for failures, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient => 401,
            OAuthError::Server(
                BrokerError::Store(StoreError::Closed) | BrokerError::Unavailable(_),
            ) => 503,
            OAuthError::Server(_) => 500,
            _ => 400,
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Server(BrokerError::Store(e))
    }
}

/// An authenticated OAuth client: an app's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The app.
    pub app: AppId,
    /// Its client id.
    pub client_id: ClientId,
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub active: Kid,
    /// Keys retired because no token they signed can still be valid.
    pub retired: Vec<Kid>,
}

struct KeyCache {
    ring: Arc<Keyring>,
    loaded: Instant,
    forced: Option<Instant>,
    purged: Option<Instant>,
}

/// How often a node deletes expired token state (on a key reload, so only while it serves).
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// The token broker service. Share it behind an `Arc`.
pub struct Broker {
    store: Store,
    config: BrokerConfig,
    issuer: TokenIssuer,
    platform: PlatformSecret,
    keys: RwLock<KeyCache>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The current time, for callers that serve live requests.
pub fn now() -> UnixTime {
    UnixTime::from_millis(minihost_core::now_millis())
}

fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn time(v: i64) -> UnixTime {
    UnixTime::from_secs(u64::try_from(v).unwrap_or(0))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Corrupt(format!("{what}: {e}"))
}

fn key_to_row(k: StoredKey) -> SigningKeyRow {
    let state = match k.state {
        KeyState::Active => "active",
        KeyState::Retiring => "retiring",
        KeyState::Retired => "retired",
    };
    SigningKeyRow {
        kid: k.kid.to_string(),
        state: state.to_owned(),
        created_at: secs(k.created_at),
        retiring_since: k.retiring_since.map(secs),
        private_key_pem: k.private_key_pem,
    }
}

fn key_from_row(r: SigningKeyRow) -> Result<StoredKey, BrokerError> {
    let state = match r.state.as_str() {
        "active" => KeyState::Active,
        "retiring" => KeyState::Retiring,
        "retired" => KeyState::Retired,
        other => return Err(corrupt("key state", other)),
    };
    Ok(StoredKey {
        kid: Kid::parse(&r.kid).map_err(|e| corrupt("kid", e))?,
        state,
        created_at: time(r.created_at),
        retiring_since: r.retiring_since.map(time),
        private_key_pem: r.private_key_pem,
    })
}

fn keyring_from_rows(rows: Vec<SigningKeyRow>) -> Result<Keyring, BrokerError> {
    let stored = rows
        .into_iter()
        .map(key_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keyring::from_stored(stored)?)
}

fn keyring_to_rows(ring: &Keyring) -> Result<Vec<SigningKeyRow>, BrokerError> {
    Ok(ring.to_stored()?.into_iter().map(key_to_row).collect())
}

fn code_from_row(r: LoginCodeRow) -> Result<LoginCodeRecord, BrokerError> {
    Ok(LoginCodeRecord {
        code_hash: SecretHash::parse(&r.code_hash).map_err(|e| corrupt("code hash", e))?,
        app: AppId::parse(&r.app_id).map_err(|e| corrupt("code app", e))?,
        user: r.user_id,
        pkce: PkceChallenge::try_from(r.pkce).map_err(|e| corrupt("pkce", e))?,
        issued_at: time(r.issued_at),
        expires_at: time(r.expires_at),
        consumed_at: r.consumed_at.map(time),
        issued_family: r
            .issued_family
            .map(|f| FamilyId::parse(&f))
            .transpose()
            .map_err(|e| corrupt("code family", e))?,
    })
}

fn family_from_row(r: RefreshFamilyRow) -> Result<RefreshFamily, BrokerError> {
    Ok(RefreshFamily {
        id: FamilyId::parse(&r.id).map_err(|e| corrupt("family id", e))?,
        app: AppId::parse(&r.app_id).map_err(|e| corrupt("family app", e))?,
        user: r.user_id,
        client_id: ClientId::parse(&r.client_id).map_err(|e| corrupt("family client", e))?,
        generation: u32::try_from(r.generation).map_err(|e| corrupt("generation", e))?,
        created_at: time(r.created_at),
        expires_at: time(r.expires_at),
        revoked_at: r.revoked_at.map(time),
    })
}

fn family_to_row(f: &RefreshFamily) -> RefreshFamilyRow {
    RefreshFamilyRow {
        id: f.id.to_string(),
        app_id: f.app.to_string(),
        user_id: f.user.clone(),
        client_id: f.client_id.to_string(),
        generation: i64::from(f.generation),
        created_at: secs(f.created_at),
        expires_at: secs(f.expires_at),
        revoked_at: f.revoked_at.map(secs),
    }
}

fn refresh_row(r: &RefreshTokenRecord, access: &IssuedToken) -> RefreshTokenRow {
    RefreshTokenRow {
        token_hash: r.token_hash.as_str().to_owned(),
        family_id: r.family.to_string(),
        generation: i64::from(r.generation),
        issued_at: secs(r.issued_at),
        access_jti: access.claims.jti.to_string(),
        // Verification tolerates the leeway past `exp`; so must its revocation.
        access_expires_at: secs(access.claims.exp.plus(DEFAULT_LEEWAY_SECS)),
    }
}

/// Reads the (unverified) `aud` of a compact JWS, to know which app's expectations to verify it
/// against. The signature check that follows covers `aud`, so trusting it afterwards is sound.
fn peek_audience(token: &str) -> Result<AppId, TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| malformed("expected 3 parts"))?;
    if payload.len() > 8 * 1024 {
        return Err(malformed("token too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| malformed("payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| malformed("payload is not JSON"))?;
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => {
            AppId::parse(aud).map_err(|_| malformed("aud is not an app id"))
        }
        Some(_) => Err(malformed("aud must be one app id")),
        None => Err(TokenError::MissingClaim("aud")),
    }
}

/// The scopes a stored grant gives, ignoring names this broker does not know (it cannot put
/// them in a token anyway).
fn grant_scopes(names: &[String]) -> ScopeSet {
    names
        .iter()
        .filter_map(|n| n.parse::<Scope>().ok())
        .collect()
}

impl Broker {
    /// Loads the platform secret and the keyring from the store, creating them on first start
    /// (exactly once, however many nodes start together).
    pub async fn open(store: Store, config: BrokerConfig) -> Result<Broker, BrokerError> {
        let stored = store
            .platform_secret(PLATFORM_SECRET_NAME, || {
                PlatformSecret::generate().to_storage_string()
            })
            .await?;
        let platform = PlatformSecret::from_storage_string(&stored)
            .map_err(|e| corrupt("platform secret", e))?;
        let start = now();
        let rows = store
            .update_signing_keys(|rows| {
                let mut ring = keyring_from_rows(rows)?;
                if ring.active().is_some() {
                    return Ok(None);
                }
                let kid = ring.rotate(start)?;
                tracing::info!(%kid, "created the first signing key");
                keyring_to_rows(&ring).map(Some)
            })
            .await?;
        let ring = keyring_from_rows(rows)?;
        Ok(Broker {
            issuer: TokenIssuer {
                issuer: config.issuer.clone(),
                access_ttl_secs: config.access_ttl_secs,
            },
            store,
            config,
            platform,
            keys: RwLock::new(KeyCache {
                ring: Arc::new(ring),
                loaded: Instant::now(),
                forced: None,
                purged: None,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `user` as `app` sees them (stable per pair, unlinkable across apps).
    pub fn app_user_id(&self, app: &AppId, user: &UserId) -> AppUserId {
        self.platform.app_user_id(app, user)
    }

    /// How long after a key stops signing a token it signed may still be valid: the token
    /// lifetime, the verification leeway, and the time a node may keep signing with a stale
    /// cached keyring.
    pub fn key_retirement_delay_secs(&self) -> u64 {
        self.config
            .access_ttl_secs
            .saturating_add(DEFAULT_LEEWAY_SECS)
            .saturating_add(self.config.keyring_refresh.as_secs().saturating_add(1))
    }

    fn cached(&self) -> (Arc<Keyring>, bool) {
        let cache = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        (
            cache.ring.clone(),
            cache.loaded.elapsed() >= self.config.keyring_refresh,
        )
    }

    fn install(&self, ring: Keyring) -> Arc<Keyring> {
        let ring = Arc::new(ring);
        let mut cache = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        cache.ring = ring.clone();
        cache.loaded = Instant::now();
        ring
    }

    /// Whether this node is due to delete expired token state (and, if so, notes that it does).
    fn purge_due(&self) -> bool {
        let mut cache = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if cache.purged.is_some_and(|at| at.elapsed() < PURGE_INTERVAL) {
            return false;
        }
        cache.purged = Some(Instant::now());
        true
    }

    /// Reads the keys from the store into the cache, retiring keys whose tokens have all
    /// expired and (at most hourly) deleting expired token state on the way.
    async fn reload(&self) -> Result<Arc<Keyring>, BrokerError> {
        let ring = keyring_from_rows(self.store.signing_keys().await?)?;
        let delay = self.key_retirement_delay_secs();
        let at = now();
        if self.purge_due() {
            match self.purge_expired(at).await {
                Ok(purged) => tracing::debug!(?purged, "purged expired token state"),
                Err(e) => tracing::warn!(error = %e, "could not purge expired token state"),
            }
        }
        let expired = ring.keys().any(|k| {
            k.state() == KeyState::Retiring
                && k.retiring_since().is_none_or(|s| s.plus(delay) <= at)
        });
        if expired {
            self.retire_expired_keys(at).await?;
            let (ring, _) = self.cached();
            return Ok(ring);
        }
        Ok(self.install(ring))
    }

    /// The keyring, reloaded from the store when the cached one is older than the refresh
    /// interval (a failed reload keeps the cached one and is logged).
    async fn keyring(&self) -> Arc<Keyring> {
        let (ring, stale) = self.cached();
        if !stale {
            return ring;
        }
        match self.reload().await {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "could not reload the signing keys; using cached ones");
                ring
            }
        }
    }

    /// Whether a token with an unknown kid may trigger a reload now (at most once a second, so
    /// that made-up kids cannot hammer the store).
    fn may_force_reload(&self) -> bool {
        let mut cache = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if cache
            .forced
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        cache.forced = Some(Instant::now());
        true
    }

    /// The public keys (`/.well-known/jwks.json`).
    pub async fn jwks(&self) -> Jwks {
        self.keyring().await.jwks()
    }

    /// The kid of the key that signs new tokens.
    pub async fn active_kid(&self) -> Option<Kid> {
        self.keyring().await.active().map(|k| k.kid().clone())
    }

    /// Adds a new active key (the previous one keeps verifying until its tokens have expired)
    /// and retires the keys whose tokens have all expired. Serialised across nodes.
    pub async fn rotate_keys(&self, now: UnixTime) -> Result<Rotation, BrokerError> {
        let delay = self.key_retirement_delay_secs();
        let mut outcome = None;
        let rows = self
            .store
            .update_signing_keys(|rows| {
                let mut ring = keyring_from_rows(rows)?;
                let retired = ring.retire_expired(now, delay);
                let active = ring.rotate(now)?;
                outcome = Some(Rotation { active, retired });
                keyring_to_rows(&ring).map(Some)
            })
            .await?;
        self.install(keyring_from_rows(rows)?);
        outcome.ok_or_else(|| BrokerError::Corrupt("rotation did not run".into()))
    }

    /// Retires the keys that stopped signing long enough ago that no token they signed can
    /// still be valid at `now`; returns their kids.
    pub async fn retire_expired_keys(&self, now: UnixTime) -> Result<Vec<Kid>, BrokerError> {
        let delay = self.key_retirement_delay_secs();
        let mut retired = Vec::new();
        let rows = self
            .store
            .update_signing_keys(|rows| {
                let mut ring = keyring_from_rows(rows)?;
                retired = ring.retire_expired(now, delay);
                if retired.is_empty() {
                    Ok(None)
                } else {
                    keyring_to_rows(&ring).map(Some)
                }
            })
            .await?;
        for kid in &retired {
            tracing::info!(%kid, "retired a signing key");
        }
        self.install(keyring_from_rows(rows)?);
        Ok(retired)
    }

    /// Creates the OAuth credentials of an app (registered in the store already). The secret
    /// is in the result only: show it once. `StoreError::Conflict` if the app has some.
    pub async fn register_client(&self, app: &AppId) -> Result<AppCredentials, BrokerError> {
        let creds = AppCredentials::generate();
        self.store
            .create_client(
                app.as_str(),
                creds.client_id.as_str(),
                creds.secret_hash.as_str(),
            )
            .await?;
        Ok(creds)
    }

    /// A new secret for the app's client id; the old one stops working at once.
    /// `StoreError::NotFound` if the app has no credentials.
    pub async fn rotate_client_secret(&self, app: &AppId) -> Result<AppCredentials, BrokerError> {
        let current = self
            .store
            .client_of_app(app.as_str())
            .await?
            .ok_or(StoreError::NotFound)?;
        let client_id = ClientId::parse(&current.client_id).map_err(|e| corrupt("client id", e))?;
        let creds = AppCredentials::rotate(client_id);
        self.store
            .set_client_secret(app.as_str(), creds.secret_hash.as_str())
            .await?;
        Ok(creds)
    }

    /// The client id of an app, if it has credentials.
    pub async fn client_id_of(&self, app: &AppId) -> Result<Option<ClientId>, BrokerError> {
        self.store
            .client_of_app(app.as_str())
            .await?
            .map(|c| ClientId::parse(&c.client_id).map_err(|e| corrupt("client id", e)))
            .transpose()
    }

    /// Authenticates an app's backend by client id and secret.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<Client, OAuthError> {
        let Ok(client_id) = ClientId::parse(client_id) else {
            return Err(OAuthError::InvalidClient);
        };
        let Some(row) = self.store.client(client_id.as_str()).await? else {
            // Spend the same work as a real comparison.
            let _ = SecretHash::of("mhcs_unknown-client").matches(secret);
            return Err(OAuthError::InvalidClient);
        };
        let hash = SecretHash::parse(&row.secret_hash).map_err(|e| corrupt("secret hash", e))?;
        if !hash.matches(secret) {
            return Err(OAuthError::InvalidClient);
        }
        let app = AppId::parse(&row.app_id).map_err(|e| corrupt("client app", e))?;
        Ok(Client { app, client_id })
    }

    /// A one-time login code for `user` in `app`, bound to the backend's PKCE challenge, valid
    /// for 5 minutes from `now`. Called by the `auth` capability inside the sandbox.
    pub async fn issue_login_code(
        &self,
        app: &AppId,
        user: &UserId,
        pkce: PkceChallenge,
        now: UnixTime,
    ) -> Result<LoginCode, BrokerError> {
        let (code, record) = LoginCodeRecord::issue(app.clone(), user.clone(), pkce, now);
        self.store
            .insert_login_code(&LoginCodeRow {
                code_hash: record.code_hash.as_str().to_owned(),
                app_id: record.app.to_string(),
                user_id: record.user.clone(),
                pkce: record.pkce.as_str().to_owned(),
                issued_at: secs(record.issued_at),
                expires_at: secs(record.expires_at),
                consumed_at: None,
                issued_family: None,
            })
            .await?;
        Ok(code)
    }

    /// The user's current grant to the app as a token's scopes, or `invalid_grant` when there
    /// is none or it is empty (the user refused or revoked everything).
    async fn current_scopes(&self, user: &UserId, app: &AppId) -> Result<ScopeSet, OAuthError> {
        let scopes = self
            .store
            .grant(user, app.as_str())
            .await?
            .map(|g| grant_scopes(&g.scopes))
            .unwrap_or_default();
        if scopes.is_empty() {
            return Err(OAuthError::InvalidGrant(
                "the user does not grant this app anything",
            ));
        }
        Ok(scopes)
    }

    /// Signs an access token for `user` in the client's app with `scope`.
    async fn user_token(
        &self,
        client: &Client,
        user: &UserId,
        scope: ScopeSet,
        now: UnixTime,
    ) -> Result<IssuedToken, BrokerError> {
        let app_user = self.app_user_id(&client.app, user);
        self.store
            .remember_app_user(client.app.as_str(), app_user.as_str(), user)
            .await?;
        let ring = self.keyring().await;
        Ok(self.issuer.issue(
            &ring,
            AccessTokenRequest {
                app: client.app.clone(),
                client_id: client.client_id.clone(),
                subject: Subject::User(app_user),
                scope,
                payment: None,
            },
            now,
        )?)
    }

    /// `grant_type=authorization_code`: exchanges a login code (with its PKCE verifier) for an
    /// access token scoped to the user's current grant and the first refresh token of a new
    /// family. Presenting a used code again revokes what its first exchange issued.
    pub async fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        verifier: Option<&str>,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let code_hash = SecretHash::of(code);
        let row = self
            .store
            .login_code(code_hash.as_str())
            .await?
            .ok_or(GrantError::InvalidCode)?;
        let mut record = code_from_row(row)?;
        let user = match record.redeem(code, &client.app, verifier, now) {
            Ok(user) => user,
            Err(GrantError::CodeReused { issued_family }) => {
                return Err(self.code_reused(issued_family, now).await);
            }
            Err(e) => return Err(e.into()),
        };
        let scope = self.current_scopes(&user, &client.app).await?;
        let issued = self.user_token(client, &user, scope, now).await?;
        let (family, refresh, first) =
            RefreshFamily::start(client.app.clone(), user, client.client_id.clone(), now);
        let won = self
            .store
            .redeem_login_code(
                code_hash.as_str(),
                secs(now),
                &family_to_row(&family),
                &refresh_row(&first, &issued),
            )
            .await?;
        if !won {
            // Another exchange of the same code won the race: this one is a reuse.
            let family = self
                .store
                .login_code(code_hash.as_str())
                .await?
                .and_then(|r| r.issued_family)
                .and_then(|f| FamilyId::parse(&f).ok());
            return Err(self.code_reused(family, now).await);
        }
        Ok(TokenResponse::new(&issued, Some(&refresh), now))
    }

    /// RFC 6749 section 4.1.2: a code used twice revokes the tokens its first use issued.
    async fn code_reused(&self, family: Option<FamilyId>, now: UnixTime) -> OAuthError {
        if let Some(id) = &family {
            tracing::warn!(family = %id, "login code reused; revoking what it issued");
            if let Err(e) = self
                .store
                .revoke_refresh_family(id.as_str(), secs(now))
                .await
            {
                return e.into();
            }
        }
        GrantError::CodeReused {
            issued_family: family,
        }
        .into()
    }

    /// `grant_type=refresh_token`: rotates the refresh token and issues an access token scoped
    /// to the user's current grant. An old (already rotated) token revokes the whole family.
    pub async fn refresh(
        &self,
        client: &Client,
        token: &str,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let hash = SecretHash::of(token);
        let (token_row, family_row) = self
            .store
            .refresh_token(hash.as_str())
            .await?
            .ok_or(GrantError::InvalidRefreshToken)?;
        let presented = RefreshTokenRecord {
            token_hash: hash,
            family: FamilyId::parse(&token_row.family_id).map_err(|e| corrupt("family", e))?,
            generation: u32::try_from(token_row.generation)
                .map_err(|e| corrupt("generation", e))?,
            issued_at: time(token_row.issued_at),
        };
        let mut family = family_from_row(family_row)?;
        if family.app != client.app {
            return Err(GrantError::WrongClient.into());
        }
        let from = family.generation;
        let (next, next_record) = match family.rotate(&presented, &client.client_id, now) {
            Ok(next) => next,
            Err(GrantError::RefreshTokenReused(id)) => {
                tracing::warn!(family = %id, "refresh token replayed; revoking its family");
                self.store
                    .revoke_refresh_family(id.as_str(), secs(now))
                    .await?;
                return Err(GrantError::RefreshTokenReused(id).into());
            }
            Err(e) => return Err(e.into()),
        };
        let scope = match self.current_scopes(&family.user, &client.app).await {
            Ok(scope) => scope,
            Err(e) => {
                self.store
                    .revoke_refresh_family(family.id.as_str(), secs(now))
                    .await?;
                return Err(e);
            }
        };
        let issued = self.user_token(client, &family.user, scope, now).await?;
        let won = self
            .store
            .rotate_refresh_family(
                family.id.as_str(),
                i64::from(from),
                &refresh_row(&next_record, &issued),
            )
            .await?;
        if !won {
            // A concurrent refresh (or a revocation) got there first: treat as a replay.
            self.store
                .revoke_refresh_family(family.id.as_str(), secs(now))
                .await?;
            return Err(GrantError::RefreshTokenReused(family.id).into());
        }
        Ok(TokenResponse::new(&issued, Some(&next), now))
    }

    /// `grant_type=client_credentials`: an app-level token (no user, no user scopes).
    pub async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        if scope.is_some_and(|s| !s.trim().is_empty()) {
            return Err(OAuthError::InvalidScope(
                "app-level tokens carry no scope; user scopes come with a login code".into(),
            ));
        }
        let ring = self.keyring().await;
        let issued = self
            .issuer
            .issue_client_credentials(
                &ring,
                client.app.clone(),
                client.client_id.clone(),
                ScopeSet::new(),
                now,
            )
            .map_err(BrokerError::from)?;
        Ok(TokenResponse::new(&issued, None, now))
    }

    /// RFC 7009: revokes a refresh token (its whole family) or an access token (its `jti`)
    /// issued to `client`. Unknown, invalid, expired or other clients' tokens change nothing
    /// and are not reported (the endpoint answers 200 either way).
    pub async fn revoke(
        &self,
        client: &Client,
        token: &str,
        now: UnixTime,
    ) -> Result<(), BrokerError> {
        if token.starts_with("mrt_") {
            if let Some((_, family)) = self
                .store
                .refresh_token(SecretHash::of(token).as_str())
                .await?
                && family.client_id == client.client_id.as_str()
            {
                self.store
                    .revoke_refresh_family(&family.id, secs(now))
                    .await?;
            }
            return Ok(());
        }
        let ring = self.keyring().await;
        let verifier = TokenVerifier::new(&ring, &self.config.issuer);
        if let Ok(pending) = verifier.verify_pending(token, &Expectation::for_app(&client.app), now)
        {
            let claims = pending.claims_to_check();
            self.store
                .revoke_access_token(
                    claims.jti.as_str(),
                    claims.aud.as_str(),
                    secs(claims.exp.plus(DEFAULT_LEEWAY_SECS)),
                )
                .await?;
        }
        Ok(())
    }

    /// RFC 7662: whether `token` is a valid, unrevoked access token of `client`'s app. Tokens
    /// of other apps, refresh tokens and garbage are all `{"active": false}`.
    pub async fn introspect(
        &self,
        client: &Client,
        token: &str,
        now: UnixTime,
    ) -> Result<Introspection, BrokerError> {
        let expect = Expectation::for_app(&client.app);
        match self.verify_expecting(token, &expect, now).await {
            Ok(claims) => Ok(Introspection::from_claims(&claims)),
            Err(TokenError::RevocationUnavailable(e)) => Err(BrokerError::Unavailable(e)),
            Err(_) => Ok(Introspection::inactive()),
        }
    }

    /// Verifies a bearer token presented to the Open API: signature, `typ`, issuer, times,
    /// `scope` if given, and revocation (its `jti`, and the user's current grant). The token's
    /// own `aud` is the app the call acts for: everything it reaches is scoped to that app.
    pub async fn verify(
        &self,
        token: &str,
        scope: Option<Scope>,
        now: UnixTime,
    ) -> Result<AccessClaims, TokenError> {
        let audience = peek_audience(token)?;
        let mut expect = Expectation::for_app(&audience);
        if let Some(scope) = scope {
            expect = expect.requiring(scope);
        }
        self.verify_expecting(token, &expect, now).await
    }

    async fn verify_expecting(
        &self,
        token: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
    ) -> Result<AccessClaims, TokenError> {
        let pending = self.verify_signed(token, expect, now).await?;
        let status = self.is_revoked(pending.claims_to_check()).await;
        pending.finish(status)
    }

    async fn verify_signed(
        &self,
        token: &str,
        expect: &Expectation<'_>,
        now: UnixTime,
    ) -> Result<PendingRevocation, TokenError> {
        let ring = self.keyring().await;
        let verifier = TokenVerifier::new(&ring, &self.config.issuer);
        match verifier.verify_pending(token, expect, now) {
            Err(TokenError::UnknownKid(kid)) if self.may_force_reload() => {
                // Another node may have rotated: read the keys once more.
                let ring = self.reload().await.map_err(|e| {
                    tracing::warn!(error = %e, "could not reload the signing keys");
                    TokenError::UnknownKid(kid)
                })?;
                TokenVerifier::new(&ring, &self.config.issuer).verify_pending(token, expect, now)
            }
            other => other,
        }
    }

    async fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, String> {
        let scopes: Vec<&str> = claims.scope.iter().map(Scope::as_str).collect();
        let app_user_id = match &claims.sub {
            Subject::User(u) => Some(u.as_str()),
            Subject::App(_) => None,
        };
        self.store
            .access_token_revoked(&AccessTokenCheck {
                jti: claims.jti.as_str(),
                app_id: claims.aud.as_str(),
                app_user_id,
                scopes: &scopes,
                issued_at: secs(claims.iat),
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "revocation check failed");
                "revocation status unavailable".to_owned()
            })
    }

    /// Revokes one access token by id until `expires_at` (e.g. after a leak).
    pub async fn revoke_token_id(
        &self,
        app: &AppId,
        jti: &TokenId,
        expires_at: UnixTime,
    ) -> Result<(), BrokerError> {
        Ok(self
            .store
            .revoke_access_token(jti.as_str(), app.as_str(), secs(expires_at))
            .await?)
    }

    /// Deletes token state that can no longer matter at `now`.
    pub async fn purge_expired(
        &self,
        now: UnixTime,
    ) -> Result<minihost_store::Purged, BrokerError> {
        Ok(self.store.purge_expired_tokens(secs(now)).await?)
    }
}
