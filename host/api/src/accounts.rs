//! Accounts and sessions: sign up, sign in (both throttled, see [`crate::throttle`]), sign out,
//! who am I, the language I read in, and role changes and disabling by admins. Signing out, a role change and disabling
//! close the affected WebSockets at once ([`AppState::revoked`]).

use crate::auth::{
    AuthSession, AuthUser, ClientAddr, hash_password, new_session_token, verify_password,
};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use minihost_core::{DisplayName, Password, Role, Username};
use minihost_hub::Revocation;
use minihost_store::{NewUser, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/sessions", post(sign_in))
        .route("/api/v1/sessions/current", delete(sign_out))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/locale", put(set_locale))
        .route("/api/v1/users/{username}/role", put(set_role))
        .route("/api/v1/users/{username}/disabled", put(set_disabled))
}

/// Body of `POST /api/v1/accounts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUp {
    username: String,
    display_name: String,
    password: String,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserView {
    id: String,
    username: String,
    display_name: String,
    role: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            username: u.username.to_string(),
            display_name: u.display_name.as_str().to_owned(),
            role: u.role.as_str().to_owned(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/accounts", operation_id = "sign_up",
    request_body(content = SignUp, example = json!({"username": "alice", "display_name": "Alice", "password": "correct horse battery"})),
    responses((status = 201, body = UserView), (status = 409, description = "Username taken"),
              (status = 422, description = "A field breaks a rule"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Throttled,
              crate::openapi::errors::Server))]
pub(crate) async fn sign_up(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let username = Username::parse(&body.username)?;
    let display_name = DisplayName::parse(&body.display_name)?;
    let password = Password::parse(&body.password)?;
    state
        .guards
        .admit(addr.0, &[(&state.guards.sign_up_address, &addr.key())])
        .await?;
    let password_hash = hash_password(&state, password.expose().to_owned()).await?;
    let user = state
        .store
        .create_user(NewUser {
            username,
            display_name,
            password_hash,
            role: Role::User,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// Body of `POST /api/v1/sessions`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    username: String,
    password: String,
}

/// A new session.
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The session's public id (as `GET /api/v1/me/sessions` lists it).
    id: String,
    /// The bearer token (`mhs_...`): shown once.
    token: String,
    expires_at: String,
    user: UserView,
}

#[utoipa::path(post, path = "/api/v1/sessions", operation_id = "sign_in",
    request_body(content = SignIn, example = json!({"username": "alice", "password": "correct horse battery"})),
    responses((status = 200, body = SessionView), (status = 401, description = "Wrong username or password"),
              (status = 403, description = "The account is disabled (`account_disabled`)"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Throttled,
              crate::openapi::errors::Server))]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Json<SessionView>, ApiError> {
    let guards = &state.guards;
    let throttles = [&guards.sign_in_address, &guards.sign_in_account];
    let admitted = guards
        .admit(
            addr.0,
            &[(throttles[0], &addr.key()), (throttles[1], &body.username)],
        )
        .await?;
    let checked = async {
        let found = state.store.user_by_username(&body.username).await?;
        let hash = found.as_ref().map(|u| u.password_hash.clone());
        Ok::<_, ApiError>((verify_password(&state, body.password, hash).await?, found))
    }
    .await;
    // Only failures count against the account and the address.
    let found = match checked {
        Ok((true, found)) => {
            admitted.give_back(&throttles).await;
            found
        }
        Ok((false, _)) => return Err(ApiError::Unauthorized("wrong username or password")),
        Err(e) => {
            admitted.give_back(&throttles).await;
            return Err(e);
        }
    };
    let found = found.ok_or(ApiError::Unauthorized("wrong username or password"))?;
    if found.disabled {
        return Err(ApiError::Refused {
            status: StatusCode::FORBIDDEN,
            code: "account_disabled",
            message: "this account is disabled".into(),
        });
    }
    let user = found.user;
    let token = new_session_token();
    let ttl = i64::try_from(state.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires = minihost_core::now_millis().saturating_add(ttl);
    let id = state
        .store
        .create_session(&token, &user.id, expires)
        .await?;
    Ok(Json(SessionView {
        id,
        token,
        expires_at: minihost_store::rfc3339(expires),
        user: UserView::from(&user),
    }))
}

#[utoipa::path(delete, path = "/api/v1/sessions/current", operation_id = "sign_out",
    security(("session" = [])),
    responses((status = 204, description = "Signed out: the token stops working and the session's WebSockets close with code 4001"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    session: AuthSession,
) -> Result<StatusCode, ApiError> {
    state.cache.drop_session(&session.token);
    state.store.revoke_session(&session.token).await?;
    state.revoked(&session.user.id, Revocation::Session { id: session.id });
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", security(("session" = [])),
    responses((status = 200, body = UserView),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn me(AuthUser(user): AuthUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

/// Body and answer of `PUT /api/v1/me/locale`.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Locale {
    /// A BCP 47 language tag: `en`, `zh-CN`, `pt-BR`, ...
    locale: String,
}

/// Whether `tag` looks like a BCP 47 language tag: a 2-3 letter language, then up to four
/// subtags of 1 to 8 letters or digits, at most 35 characters.
fn valid_locale(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    tag.len() <= 35
        && (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts.clone().count() <= 4
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[utoipa::path(put, path = "/api/v1/me/locale", operation_id = "set_locale", security(("session" = [])),
    request_body(content = Locale, example = json!({"locale": "zh-CN"})),
    responses((status = 200, body = Locale, description = "Stored: mini-apps get it in their invocation context and in profiles"),
              (status = 422, description = "Not a language tag"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn set_locale(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<Locale>,
) -> Result<Json<Locale>, ApiError> {
    if !valid_locale(&body.locale) {
        return Err(ApiError::invalid(
            "locale",
            "a BCP 47 language tag such as `en` or `zh-CN`",
        ));
    }
    state.store.set_locale(&user.id, &body.locale).await?;
    Ok(Json(body))
}

/// Body of `PUT /api/v1/users/{username}/role`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRole {
    role: String,
}

#[utoipa::path(put, path = "/api/v1/users/{username}/role", operation_id = "set_role",
    params(crate::openapi::params::Username), security(("session" = [])),
    request_body(content = SetRole, example = json!({"role": "developer"})),
    responses((status = 200, body = UserView), (status = 403, description = "Only admins change roles"),
              (status = 404, description = "No such user"),
              (status = 422, description = "Not a role: `user`, `developer`, `reviewer` or `admin`"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session,
              crate::openapi::errors::Server))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    AuthUser(admin): AuthUser,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<SetRole>,
) -> Result<Json<UserView>, ApiError> {
    if admin.role != Role::Admin {
        return Err(ApiError::Forbidden("only admins can change roles".into()));
    }
    let role: Role = body.role.parse()?;
    let user = state
        .store
        .set_role(&username, role)
        .await
        .map_err(|e| match e {
            minihost_store::StoreError::NotFound => ApiError::NotFound("user"),
            other => other.into(),
        })?;
    // Open connections close (4002) and come back under the new role.
    state.revoked(&user.id, Revocation::AccountChanged);
    Ok(Json(UserView::from(&user)))
}

/// Body of `PUT /api/v1/users/{username}/disabled`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetDisabled {
    /// `true` disables the account (its sessions are revoked), `false` enables it again.
    disabled: bool,
}

#[utoipa::path(put, path = "/api/v1/users/{username}/disabled", operation_id = "set_disabled",
    params(crate::openapi::params::Username), security(("session" = [])),
    request_body(content = SetDisabled, example = json!({"disabled": true})),
    responses((status = 200, body = UserView, description = "Done; disabling revoked every session of the user and closed their WebSockets (code 4001)"),
              (status = 403, description = "Only admins disable accounts, and not their own"),
              (status = 404, description = "No such user"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session,
              crate::openapi::errors::Server))]
pub(crate) async fn set_disabled(
    State(state): State<AppState>,
    AuthUser(admin): AuthUser,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<SetDisabled>,
) -> Result<Json<UserView>, ApiError> {
    if admin.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only admins can disable accounts".into(),
        ));
    }
    if admin.username.as_str() == username {
        return Err(ApiError::Forbidden(
            "an admin cannot disable their own account".into(),
        ));
    }
    let user = state
        .store
        .set_disabled(&username, body.disabled)
        .await
        .map_err(|e| match e {
            minihost_store::StoreError::NotFound => ApiError::NotFound("user"),
            other => other.into(),
        })?;
    if body.disabled {
        state.revoked(&user.id, Revocation::AllSessions { keep: None });
    }
    Ok(Json(UserView::from(&user)))
}

#[cfg(test)]
mod tests {
    use super::valid_locale;

    #[test]
    fn locales_are_language_tags() {
        for ok in ["en", "zh-CN", "pt-BR", "zh-Hans-CN", "es-419", "fil"] {
            assert!(valid_locale(ok), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english",
            "zh_CN",
            "zh-",
            "-CN",
            "en-a-b-c-d-e",
            "zh-CN;q=1",
            "ｚｈ",
        ] {
            assert!(!valid_locale(bad), "{bad}");
        }
    }
}
