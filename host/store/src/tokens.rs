//! What the token broker persists: signing keys, app (OAuth client) credentials, one-time login
//! codes, refresh-token families and their tokens, revoked access-token ids, and when granted
//! scopes were revoked. Rows are plain data (the broker depends on this crate, not the reverse);
//! every race (two redemptions of one code, two rotations of one family) is decided by the row
//! count of a conditional update.

use crate::{Result, Store, StoreError};
use minihost_core::UserId;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A signing key as stored. Times are Unix seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// Key id.
    pub kid: String,
    /// `active`, `retiring` or `retired`.
    pub state: String,
    /// When it was created.
    pub created_at: i64,
    /// When it stopped signing.
    pub retiring_since: Option<i64>,
    /// The private key (PKCS#8 PEM): a secret.
    pub private_key_pem: String,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retiring_since", &self.retiring_since)
            .finish_non_exhaustive()
    }
}

/// An app's OAuth client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// The app.
    pub app_id: String,
    /// Public client id.
    pub client_id: String,
    /// Hash of the client secret.
    pub secret_hash: String,
}

/// A one-time login code as stored (found by the hash of the code). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCodeRow {
    /// Hash of the code.
    pub code_hash: String,
    /// The app it was issued to.
    pub app_id: String,
    /// The user it logs in.
    pub user_id: UserId,
    /// The PKCE S256 challenge.
    pub pkce: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was exchanged.
    pub consumed_at: Option<i64>,
    /// The refresh family its exchange started.
    pub issued_family: Option<String>,
}

/// A refresh-token family (one login of one user in one app). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamilyRow {
    /// Family id.
    pub id: String,
    /// The app.
    pub app_id: String,
    /// The user.
    pub user_id: UserId,
    /// The client its tokens were issued to.
    pub client_id: String,
    /// The generation of the only usable token.
    pub generation: i64,
    /// When the login happened.
    pub created_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// One refresh token ever issued, and the access token issued beside it. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRow {
    /// Hash of the token.
    pub token_hash: String,
    /// Its family.
    pub family_id: String,
    /// Its generation.
    pub generation: i64,
    /// When it was issued.
    pub issued_at: i64,
    /// `jti` of the access token issued with it (revoked with the family).
    pub access_jti: String,
    /// `exp` of that access token.
    pub access_expires_at: i64,
}

/// What decides whether a verified access token has been revoked since it was issued.
#[derive(Debug, Clone)]
pub struct AccessTokenCheck<'a> {
    /// The token's `jti`.
    pub jti: &'a str,
    /// The token's `aud`.
    pub app_id: &'a str,
    /// The app-scoped user id (`sub`), or `None` for an app-level token.
    pub app_user_id: Option<&'a str>,
    /// The token's scopes.
    pub scopes: &'a [&'a str],
    /// The token's `iat`, Unix seconds.
    pub issued_at: i64,
}

/// What [`Store::purge_expired_tokens`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired login codes.
    pub login_codes: u64,
    /// Expired refresh families (with their tokens).
    pub refresh_families: u64,
    /// Revocations of access tokens that have expired anyway.
    pub revoked_tokens: u64,
}

fn key_from_row(r: &AnyRow) -> Result<SigningKeyRow> {
    Ok(SigningKeyRow {
        kid: r.try_get("kid")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        retiring_since: r.try_get("retiring_since")?,
        private_key_pem: r.try_get("private_key_pem")?,
    })
}

fn family_from_row(r: &AnyRow) -> Result<RefreshFamilyRow> {
    Ok(RefreshFamilyRow {
        id: r.try_get("id")?,
        app_id: r.try_get("app_id")?,
        user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
        client_id: r.try_get("client_id")?,
        generation: r.try_get("generation")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// The columns of `refresh_families f`, as a literal for `concat!` (queries are static text).
macro_rules! family_columns {
    () => {
        "f.id, f.app_id, f.user_id, f.client_id, f.generation, f.created_at, f.expires_at, f.revoked_at"
    };
}

async fn insert_refresh_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    t: &RefreshTokenRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens
            (token_hash, family_id, generation, issued_at, access_jti, access_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&t.token_hash)
    .bind(&t.family_id)
    .bind(t.generation)
    .bind(t.issued_at)
    .bind(&t.access_jti)
    .bind(t.access_expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks a family revoked and revokes the access tokens issued in it that may still be valid.
/// Returns whether the family was live.
async fn revoke_family_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    family_id: &str,
    at: i64,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(family_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, app_id, expires_at)
         SELECT t.access_jti, f.app_id, t.access_expires_at
           FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
          WHERE t.family_id = $1 AND t.access_expires_at > $2
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(family_id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(n == 1)
}

/// Records, in the caller's transaction, that `scopes` of `user`'s grant to `app` were revoked at
/// `at_ms` (`*` for the whole grant). Revoking the whole grant, or `auth.login` (the scope under
/// which the app's backend keeps the user logged in), also ends the user's refresh families for
/// the app, for good. Called by the grant updates, so that tokens issued earlier are refused.
pub(crate) async fn record_grant_revocation(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: &UserId,
    app: &str,
    scopes: &[&str],
    at_ms: i64,
) -> Result<()> {
    for scope in scopes {
        sqlx::query(
            "INSERT INTO grant_revocations (user_id, app_id, scope, revoked_at_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, app_id, scope) DO UPDATE SET revoked_at_ms = excluded.revoked_at_ms",
        )
        .bind(user.as_str())
        .bind(app)
        .bind(*scope)
        .bind(at_ms)
        .execute(&mut **tx)
        .await?;
    }
    if scopes
        .iter()
        .any(|s| *s == "*" || *s == minihost_core::Scope::AuthLogin.as_str())
    {
        let families: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM refresh_families
              WHERE user_id = $1 AND app_id = $2 AND revoked_at IS NULL",
        )
        .bind(user.as_str())
        .bind(app)
        .fetch_all(&mut **tx)
        .await?;
        for (id,) in families {
            revoke_family_in(tx, &id, at_ms / 1000).await?;
        }
    }
    Ok(())
}

impl Store {
    /// Every stored signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, state, created_at, retiring_since, private_key_pem FROM signing_keys
              ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Reads the signing keys and lets `change` decide, under a lock that serialises every node,
    /// whether to write a new set: `Ok(Some(keys))` upserts each key (keys are never deleted),
    /// `Ok(None)` leaves them. Returns the keys as they are afterwards. Used to create the first
    /// key exactly once, to rotate, and to retire.
    pub async fn update_signing_keys<E: From<StoreError>>(
        &self,
        change: impl FnOnce(Vec<SigningKeyRow>) -> std::result::Result<Option<Vec<SigningKeyRow>>, E>,
    ) -> std::result::Result<Vec<SigningKeyRow>, E> {
        let mut tx = self.begin_write().await?;
        self.lock_key(&mut tx, "signing-keys").await?;
        let rows = sqlx::query(
            "SELECT kid, state, created_at, retiring_since, private_key_pem FROM signing_keys
              ORDER BY created_at, kid",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let current = rows.iter().map(key_from_row).collect::<Result<Vec<_>>>()?;
        let Some(next) = change(current.clone())? else {
            return Ok(current);
        };
        for k in &next {
            sqlx::query(
                "INSERT INTO signing_keys (kid, state, created_at, retiring_since, private_key_pem)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (kid) DO UPDATE SET state = excluded.state,
                                                 retiring_since = excluded.retiring_since",
            )
            .bind(&k.kid)
            .bind(&k.state)
            .bind(k.created_at)
            .bind(k.retiring_since)
            .bind(&k.private_key_pem)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(next)
    }

    /// Stores the first credentials of `app_id`; [`StoreError::Conflict`]`("app credentials")`
    /// if it has some already (rotate the secret instead).
    pub async fn create_client(
        &self,
        app_id: &str,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<()> {
        let now = minihost_core::now_millis();
        let n = sqlx::query(
            "INSERT INTO app_credentials (app_id, client_id, secret_hash, created_at, rotated_at)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (app_id) DO NOTHING",
        )
        .bind(app_id)
        .bind(client_id)
        .bind(secret_hash)
        .bind(now)
        .execute(&self.write_pool)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, "client id"))?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::Conflict("app credentials"));
        }
        Ok(())
    }

    /// Replaces the secret hash of `app_id` (the old secret stops working at once); returns the
    /// credentials, or [`StoreError::NotFound`] if the app has none.
    pub async fn set_client_secret(&self, app_id: &str, secret_hash: &str) -> Result<ClientRow> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "UPDATE app_credentials SET secret_hash = $1, rotated_at = $2 WHERE app_id = $3
             RETURNING app_id, client_id, secret_hash",
        )
        .bind(secret_hash)
        .bind(minihost_core::now_millis())
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?;
        let (app_id, client_id, secret_hash) = row.ok_or(StoreError::NotFound)?;
        Ok(ClientRow {
            app_id,
            client_id,
            secret_hash,
        })
    }

    /// The credentials with this client id.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRow>> {
        self.client_where(
            "SELECT app_id, client_id, secret_hash FROM app_credentials WHERE client_id = $1",
            client_id,
        )
        .await
    }

    /// The credentials of an app.
    pub async fn client_of_app(&self, app_id: &str) -> Result<Option<ClientRow>> {
        self.client_where(
            "SELECT app_id, client_id, secret_hash FROM app_credentials WHERE app_id = $1",
            app_id,
        )
        .await
    }

    async fn client_where(&self, sql: &'static str, key: &str) -> Result<Option<ClientRow>> {
        let row: Option<(String, String, String)> = sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(app_id, client_id, secret_hash)| ClientRow {
            app_id,
            client_id,
            secret_hash,
        }))
    }

    /// Stores a newly issued login code.
    pub async fn insert_login_code(&self, c: &LoginCodeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_codes (code_hash, app_id, user_id, pkce, issued_at, expires_at,
                                      consumed_at, issued_family)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.code_hash)
        .bind(&c.app_id)
        .bind(c.user_id.as_str())
        .bind(&c.pkce)
        .bind(c.issued_at)
        .bind(c.expires_at)
        .bind(c.consumed_at)
        .bind(c.issued_family.clone())
        .execute(&self.write_pool)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, "login code"))?;
        Ok(())
    }

    /// The login code with this hash.
    pub async fn login_code(&self, code_hash: &str) -> Result<Option<LoginCodeRow>> {
        let row = sqlx::query(
            "SELECT code_hash, app_id, user_id, pkce, issued_at, expires_at, consumed_at,
                    issued_family
               FROM login_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LoginCodeRow {
                code_hash: r.try_get("code_hash")?,
                app_id: r.try_get("app_id")?,
                user_id: UserId::from_string(r.try_get::<String, _>("user_id")?),
                pkce: r.try_get("pkce")?,
                issued_at: r.try_get("issued_at")?,
                expires_at: r.try_get("expires_at")?,
                consumed_at: r.try_get("consumed_at")?,
                issued_family: r.try_get("issued_family")?,
            })
        })
        .transpose()
    }

    /// Consumes a login code and starts the refresh family its exchange issued, in one
    /// transaction. The code is consumed by `UPDATE ... WHERE consumed_at IS NULL`: of concurrent
    /// exchanges exactly one sees a row count of 1 and returns `true`; the others write nothing
    /// and return `false` (a reuse).
    pub async fn redeem_login_code(
        &self,
        code_hash: &str,
        consumed_at: i64,
        family: &RefreshFamilyRow,
        first: &RefreshTokenRow,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE login_codes SET consumed_at = $1, issued_family = $2
              WHERE code_hash = $3 AND consumed_at IS NULL",
        )
        .bind(consumed_at)
        .bind(&family.id)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_families (id, app_id, user_id, client_id, generation, created_at,
                                           expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&family.id)
        .bind(&family.app_id)
        .bind(family.user_id.as_str())
        .bind(&family.client_id)
        .bind(family.generation)
        .bind(family.created_at)
        .bind(family.expires_at)
        .bind(family.revoked_at)
        .execute(&mut *tx)
        .await?;
        insert_refresh_token(&mut tx, first).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The refresh token with this hash and its family.
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(RefreshTokenRow, RefreshFamilyRow)>> {
        let row = sqlx::query(concat!(
            "SELECT t.token_hash, t.family_id, t.generation AS token_generation, t.issued_at,
                    t.access_jti, t.access_expires_at, ",
            family_columns!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
              WHERE t.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                RefreshTokenRow {
                    token_hash: r.try_get("token_hash")?,
                    family_id: r.try_get("family_id")?,
                    generation: r.try_get("token_generation")?,
                    issued_at: r.try_get("issued_at")?,
                    access_jti: r.try_get("access_jti")?,
                    access_expires_at: r.try_get("access_expires_at")?,
                },
                family_from_row(&r)?,
            ))
        })
        .transpose()
    }

    /// A refresh family by id.
    pub async fn refresh_family(&self, id: &str) -> Result<Option<RefreshFamilyRow>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            family_columns!(),
            " FROM refresh_families f WHERE f.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(family_from_row).transpose()
    }

    /// Moves a live family from generation `from` to `next.generation` and stores `next`, in one
    /// transaction. `UPDATE ... WHERE generation = from AND revoked_at IS NULL` decides a race:
    /// only one of two concurrent rotations of the same token returns `true`.
    pub async fn rotate_refresh_family(
        &self,
        family_id: &str,
        from: i64,
        next: &RefreshTokenRow,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE refresh_families SET generation = $1
              WHERE id = $2 AND generation = $3 AND revoked_at IS NULL",
        )
        .bind(next.generation)
        .bind(family_id)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        insert_refresh_token(&mut tx, next).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes a refresh family and the access tokens issued in it that may still be valid
    /// (`at` in Unix seconds); returns whether it was live.
    pub async fn revoke_refresh_family(&self, family_id: &str, at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let live = revoke_family_in(&mut tx, family_id, at).await?;
        tx.commit().await?;
        Ok(live)
    }

    /// Revokes one access token until its expiry (idempotent).
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        app_id: &str,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, app_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(app_id)
        .bind(expires_at)
        .execute(&self.write_pool)
        .await?;
        Ok(())
    }

    /// Whether a verified access token must be refused: its `jti` was revoked, or (for a user's
    /// token) the app-scoped id is unknown, the user's current grant is gone or lacks one of
    /// the token's scopes, or one of them (or the whole grant) was revoked in or after the
    /// second of `iat` (a token issued in the same second as a revocation is refused too).
    pub async fn access_token_revoked(&self, check: &AccessTokenCheck<'_>) -> Result<bool> {
        let revoked: Option<(String,)> =
            sqlx::query_as("SELECT jti FROM revoked_tokens WHERE jti = $1")
                .bind(check.jti)
                .fetch_optional(&self.pool)
                .await?;
        if revoked.is_some() {
            return Ok(true);
        }
        let Some(app_user_id) = check.app_user_id else {
            return Ok(false);
        };
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT g.user_id, g.scopes FROM app_users u
               JOIN grants g ON g.user_id = u.user_id AND g.app_id = u.app_id
              WHERE u.app_id = $1 AND u.app_user_id = $2",
        )
        .bind(check.app_id)
        .bind(app_user_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((user_id, granted)) = row else {
            return Ok(true);
        };
        let granted: Vec<&str> = granted.split_whitespace().collect();
        if !check.scopes.iter().all(|s| granted.contains(s)) {
            return Ok(true);
        }
        let since: Vec<(String,)> = sqlx::query_as(
            "SELECT scope FROM grant_revocations
              WHERE user_id = $1 AND app_id = $2 AND revoked_at_ms >= $3",
        )
        .bind(&user_id)
        .bind(check.app_id)
        .bind(check.issued_at.saturating_mul(1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(since
            .iter()
            .any(|(scope,)| scope == "*" || check.scopes.contains(&scope.as_str())))
    }

    /// Deletes what can no longer matter at `now` (Unix seconds): expired login codes, refresh
    /// families past their absolute end (with their tokens), and revocations of access tokens
    /// that have expired anyway.
    pub async fn purge_expired_tokens(&self, now: i64) -> Result<Purged> {
        let mut tx = self.begin_write().await?;
        let login_codes = sqlx::query("DELETE FROM login_codes WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN
                (SELECT id FROM refresh_families WHERE expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let refresh_families = sqlx::query("DELETE FROM refresh_families WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let revoked_tokens = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Purged {
            login_codes,
            refresh_families,
            revoked_tokens,
        })
    }
}
