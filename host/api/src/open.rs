//! The Open API for app backends, `/open/v1/...`, authenticated by the broker's access tokens
//! (`Authorization: Bearer <jwt>`): who the token is for, send a message as the app, read a
//! profile, ask a user for a payment and refund one. A call acts for the token's app (`aud`) and user (`sub`) only, and goes through the
//! same checks, budgets and privacy record as a call from inside the sandbox (`minihost-appsvc`).
//! Bad tokens are 401 with `WWW-Authenticate: Bearer error="invalid_token"`; a missing scope is
//! 403 `insufficient_scope` (RFC 6750).

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use minihost_appsvc::{Actor, AppError, Profile, Trigger};
use minihost_broker::service::now;
use minihost_broker::{AccessClaims, Scope, Subject, TokenError};
use minihost_core::{Content, ConversationId, Message, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open/v1/me", get(me))
        .route("/open/v1/conversations/{id}/messages", post(send))
        .route("/open/v1/users/{app_user_id}/profile", get(profile))
        .route("/open/v1/payments", post(request_payment))
        .route("/open/v1/payments/{payment}", get(payment))
        .route("/open/v1/payments/{payment}/refunds", post(refund))
}

/// A refusal of the Open API.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// No bearer token at all (RFC 6750 section 3.1: no error code).
    NoToken,
    /// The token was refused.
    Token(TokenError),
    /// The app may not do this (from `minihost-appsvc`).
    App(AppError),
    /// Anything else.
    Api(ApiError),
}

impl From<TokenError> for OpenError {
    fn from(e: TokenError) -> Self {
        OpenError::Token(e)
    }
}

impl From<AppError> for OpenError {
    fn from(e: AppError) -> Self {
        OpenError::App(e)
    }
}

impl From<ApiError> for OpenError {
    fn from(e: ApiError) -> Self {
        OpenError::Api(e)
    }
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    crate::error::ErrorBody::new(code, message).into_response(status)
}

/// A `WWW-Authenticate` value with only safe characters inside its quoted strings.
fn challenge(error: Option<&str>, description: &str, scope: Option<Scope>) -> HeaderValue {
    let mut value = "Bearer realm=\"minihost\"".to_owned();
    if let Some(error) = error {
        let safe: String = description
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
            .collect();
        value.push_str(&format!(
            ", error=\"{error}\", error_description=\"{safe}\""
        ));
    }
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

impl IntoResponse for OpenError {
    fn into_response(self) -> Response {
        match self {
            OpenError::NoToken => {
                let mut r = error_body(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing Authorization: Bearer <access token>",
                );
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, challenge(None, "", None));
                r
            }
            OpenError::Token(e) => {
                let status =
                    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
                let description = match &e {
                    TokenError::RevocationUnavailable(_) => "try again later".to_owned(),
                    other => other.to_string(),
                };
                let scope = match &e {
                    TokenError::InsufficientScope(s) => Some(*s),
                    _ => None,
                };
                let mut r = error_body(status, e.bearer_error(), &description);
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    challenge(Some(e.bearer_error()), &description, scope),
                );
                r
            }
            OpenError::App(e) => {
                let (status, code) = match &e {
                    AppError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "permission_denied"),
                    AppError::QuotaExceeded(_) => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
                    AppError::BudgetExceeded(_) => {
                        (StatusCode::TOO_MANY_REQUESTS, "budget_exceeded")
                    }
                    AppError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
                    AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                    AppError::Conflict(_) => (StatusCode::CONFLICT, "idempotency_key_reused"),
                    AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                };
                error_body(status, code, &e.to_string())
            }
            OpenError::Api(e) => e.into_response(),
        }
    }
}

/// Verifies the request's bearer token, requiring `scope` if given.
async fn verified(
    state: &AppState,
    headers: &HeaderMap,
    scope: Option<Scope>,
) -> Result<AccessClaims, OpenError> {
    let token = bearer_token(headers).ok_or(OpenError::NoToken)?;
    Ok(state.broker.verify(token, scope, now()).await?)
}

/// The app and user a verified user token acts as.
async fn actor(state: &AppState, claims: &AccessClaims) -> Result<Actor, OpenError> {
    let Subject::User(app_user) = &claims.sub else {
        // App-level tokens carry no scope, so the scope check refuses them first.
        return Err(TokenError::InsufficientScope(Scope::MessagesSend).into());
    };
    let app = claims.aud.as_str();
    let user: UserId = state
        .app_services
        .user_for(app, app_user.as_str())
        .await?
        .ok_or(TokenError::Revoked)?;
    let record = state
        .store
        .app(app)
        .await
        .map_err(ApiError::from)?
        .ok_or(TokenError::Revoked)?;
    Ok(Actor {
        app: app.to_owned(),
        app_name: record.name,
        user,
        app_user_id: app_user.as_str().to_owned(),
        conversation: None,
        trigger: Trigger::Unsolicited,
        reviewed_here: None,
    })
}

/// Who a token speaks for.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenInfo {
    /// The app (`aud`).
    app: String,
    /// `user` for a user's token, `app` for an app-level (client credentials) token.
    kind: &'static str,
    /// The app-scoped user id, or the client id for an app-level token.
    sub: String,
    /// The token's scopes, space separated.
    scope: String,
    /// The client it was issued to.
    client_id: String,
    /// Expiry, Unix seconds.
    exp: u64,
}

#[utoipa::path(get, path = "/open/v1/me", operation_id = "open_me",
    security(("access_token" = [])),
    responses((status = 200, body = TokenInfo),
              (status = 503, description = "Revocations cannot be checked now (`temporarily_unavailable`); try again later"),
              crate::openapi::errors::Token))]
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TokenInfo>, OpenError> {
    let claims = verified(&state, &headers, None).await?;
    let (kind, sub) = match &claims.sub {
        Subject::User(u) => ("user", u.as_str().to_owned()),
        Subject::App(c) => ("app", c.as_str().to_owned()),
    };
    Ok(Json(TokenInfo {
        app: claims.aud.to_string(),
        kind,
        sub,
        scope: claims.scope.to_string(),
        client_id: claims.client_id.to_string(),
        exp: claims.exp.as_secs(),
    }))
}

/// Body of `POST /open/v1/conversations/{id}/messages`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenSend {
    /// `{"type": "text", "text": "..."}` or a card.
    #[schema(value_type = crate::schemas::ContentDoc)]
    content: Content,
}

#[utoipa::path(post, path = "/open/v1/conversations/{id}/messages", operation_id = "open_send_message",
    params(crate::openapi::params::Conversation), security(("access_token" = [])),
    request_body(content = OpenSend, example = json!({"content": {"type": "text", "text": "Your order has shipped"}})),
    responses((status = 201, description = "Sent as the app", body = crate::schemas::MessageDoc),
              (status = 403, description = "The token lacks messages.send (`insufficient_scope`), or the user no longer grants it (`permission_denied`)"),
              (status = 404, description = "The app is not installed there, or the user is not a member"),
              (status = 422, description = "Empty or oversized content"),
              (status = 429, description = "The app's unsolicited send budget for the conversation is spent (`budget_exceeded`)"),
              (status = 503, description = "Revocations cannot be checked now, or the server is shutting down; try again later"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Token, (status = 500, response = crate::openapi::errors::Internal)))]
pub(crate) async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OpenSend>,
) -> Result<(StatusCode, Json<Message>), OpenError> {
    let claims = verified(&state, &headers, Some(Scope::MessagesSend)).await?;
    let actor = actor(&state, &claims).await?;
    let message = state
        .app_services
        .send_message(&actor, &ConversationId::from_string(id), body.content)
        .await?;
    Ok((StatusCode::CREATED, Json(message)))
}

#[utoipa::path(get, path = "/open/v1/users/{app_user_id}/profile", operation_id = "open_profile",
    params(crate::openapi::params::AppUserId), security(("access_token" = [])),
    responses((status = 200, description = "`{user, display_name, avatar, locale}`", body = crate::openapi::AnyObject),
              (status = 403, description = "The token lacks profile.read (`insufficient_scope`), or that user has not granted it (`permission_denied`)"),
              (status = 404, description = "No such user for this app"),
              (status = 503, description = "Revocations cannot be checked now, or the server is shutting down; try again later"),
              crate::openapi::errors::Token, (status = 500, response = crate::openapi::errors::Internal)))]
pub(crate) async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app_user_id): Path<String>,
) -> Result<Json<Profile>, OpenError> {
    let claims = verified(&state, &headers, Some(Scope::ProfileRead)).await?;
    let actor = actor(&state, &claims).await?;
    Ok(Json(
        state.app_services.profile(&actor, &app_user_id).await?,
    ))
}

/// Body of `POST /open/v1/payments`: the "unified order" of the app's backend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenPayment {
    /// The user asked to pay, as this app sees them; must be the token's user when given.
    #[serde(default)]
    user: Option<String>,
    /// Minor units (cents), at least 1.
    amount: u64,
    /// ISO 4217 code such as `EUR`.
    currency: String,
    /// What it is for, shown to the user (1 to 200 bytes).
    description: String,
    /// The app's key for this order: the same key with the same parameters is the same order;
    /// with other parameters it is refused (409).
    idempotency_key: String,
    /// How long the user has to answer, 60 to 86400 seconds (default 900).
    #[serde(default)]
    expires_in_seconds: Option<u32>,
}

#[utoipa::path(post, path = "/open/v1/payments", operation_id = "open_request_payment",
    security(("access_token" = [])),
    request_body(content = OpenPayment, example = json!({"amount": 1250, "currency": "EUR", "description": "Green tea, 2 boxes", "idempotency_key": "order-7731"})),
    responses((status = 201, description = "The payment request, pending until the user answers (an earlier one for a repeated key)", body = crate::openapi::AnyObject),
              (status = 403, description = "The token lacks payments.request (`insufficient_scope`), the user no longer grants it (`permission_denied`), or `user` is not the token's user"),
              (status = 409, description = "The idempotency key was used for a different order (`idempotency_key_reused`)"),
              (status = 422, description = "Amount zero or over the cap, unknown currency, bad description, key or expiry"),
              (status = 503, description = "Revocations cannot be checked now; try again later"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Token, (status = 500, response = crate::openapi::errors::Internal)))]
pub(crate) async fn request_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OpenPayment>,
) -> Result<(StatusCode, Json<minihost_appsvc::PaymentView>), OpenError> {
    let claims = verified(&state, &headers, Some(Scope::PaymentsRequest)).await?;
    let actor = actor(&state, &claims).await?;
    if body.user.as_ref().is_some_and(|u| *u != actor.app_user_id) {
        return Err(ApiError::Forbidden(
            "`user` must be the user the access token was issued for".into(),
        )
        .into());
    }
    let order = state
        .app_services
        .request_payment(
            &actor,
            minihost_appsvc::PaymentAsk {
                amount: body.amount,
                currency: body.currency,
                description: body.description,
                idempotency_key: body.idempotency_key,
                expires_in_secs: body.expires_in_seconds,
            },
        )
        .await?;
    let view = state.app_services.payment_view(&order, "en").await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/open/v1/payments/{payment}", operation_id = "open_payment",
    params(crate::openapi::params::Payment), security(("access_token" = [])),
    responses((status = 200, description = "Where the app's payment request stands", body = crate::openapi::AnyObject),
              (status = 404, description = "No such payment request of this app"),
              (status = 503, description = "Revocations cannot be checked now; try again later"),
              crate::openapi::errors::Token, (status = 500, response = crate::openapi::errors::Internal)))]
pub(crate) async fn payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment): Path<String>,
) -> Result<Json<minihost_appsvc::PaymentView>, OpenError> {
    // Any token of the app: its backend may look up its own orders with an app-level token.
    let claims = verified(&state, &headers, None).await?;
    let order = state
        .store
        .order(&payment)
        .await
        .map_err(ApiError::from)?
        .filter(|o| o.app_id == claims.aud.as_str())
        .ok_or(ApiError::NotFound("payment request"))?;
    Ok(Json(state.app_services.payment_view(&order, "en").await?))
}

#[utoipa::path(post, path = "/open/v1/payments/{payment}/refunds", operation_id = "open_refund",
    params(crate::openapi::params::Payment), security(("access_token" = [])),
    request_body(content = crate::payments::RefundBody, example = json!({"amount": 500, "idempotency_key": "refund-7731-1", "reason": "one box arrived damaged"})),
    responses((status = 201, description = "Refunded (or the same refund again, for a repeated key): the payment request as it is now, with `refunded` and its state", body = crate::openapi::AnyObject),
              (status = 404, description = "No such payment request of this app"),
              (status = 409, description = "More than what can still be refunded (`refund_exceeds_payment`), not paid (`payment_not_paid`), the merchant account holds less (`merchant_insufficient_funds`), or the key was used for another refund (`idempotency_key_reused`)"),
              (status = 422, description = "An amount below one minor unit or over the cap, a bad key or reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Token, crate::openapi::errors::Server))]
pub(crate) async fn refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(payment): Path<String>,
    ApiJson(body): ApiJson<crate::payments::RefundBody>,
) -> Result<(StatusCode, Json<minihost_appsvc::PaymentView>), OpenError> {
    // Any token of the app: a user's, or its backend's own (client credentials).
    let claims = verified(&state, &headers, None).await?;
    let actor = format!("backend:{}", claims.client_id);
    let outcome = state
        .app_services
        .refund_payment(claims.aud.as_str(), &payment, body.ask(), &actor)
        .await?
        .map_err(crate::payments::refund_refused)?;
    let view = crate::payments::refunded(&state, outcome, "en").await?;
    Ok((StatusCode::CREATED, Json(view)))
}
