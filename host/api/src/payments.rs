//! Payments as the user and the merchant see them: the user's payment PIN, the requests waiting
//! for their answer, confirming (with the PIN: five wrong tries lock payments for 15 minutes,
//! held in the store) or declining, their payment history and wallet; and an app developer's
//! merchant ledger, their app's orders and refunds of them (the refund body and answers are
//! shared with the backend's `POST /open/v1/payments/{payment}/refunds`). Only these user routes
//! move an order to `paid`; apps can only ask (`minihost-appsvc`).

use crate::auth::{AuthUser, ClientAddr};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use minihost_appsvc::{AppError, PaymentView};
use minihost_core::Currency;
use minihost_store::{
    AccountKind, PaymentOrder, PaymentRefusal, PinRecord, RefundRefusal, Refunded, StatementLine,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Wrong PINs in a row that lock payments.
pub const MAX_PIN_FAILURES: i64 = 5;
/// How long payments stay locked after too many wrong PINs: 15 minutes.
pub const PIN_LOCK_MS: i64 = 15 * 60 * 1000;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me/payment-pin", put(set_pin))
        .route("/api/v1/me/payments", get(history))
        .route("/api/v1/me/payments/pending", get(pending))
        .route("/api/v1/me/payments/{payment}/confirm", post(confirm))
        .route("/api/v1/me/payments/{payment}/decline", post(decline))
        .route("/api/v1/me/wallet", get(wallet))
        .route("/api/v1/apps/{app}/ledger", get(merchant_ledger))
        .route("/api/v1/apps/{app}/payments", get(app_payments))
        .route(
            "/api/v1/apps/{app}/payments/{payment}/refunds",
            post(developer_refund),
        )
}

/// The reader's language, from `Accept-Language` (its first tag), for writing amounts.
pub(crate) fn locale(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split([',', ';']).next())
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 35
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .unwrap_or("en")
        .to_owned()
}

async fn views(
    state: &AppState,
    orders: &[PaymentOrder],
    locale: &str,
) -> Result<Vec<PaymentView>, ApiError> {
    state
        .app_services
        .payment_views(orders, locale)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn view(
    state: &AppState,
    order: &PaymentOrder,
    locale: &str,
) -> Result<PaymentView, ApiError> {
    state
        .app_services
        .payment_view(order, locale)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Body of `PUT /api/v1/me/payment-pin`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPin {
    /// The new PIN: exactly six digits.
    pin: String,
    /// The account password, proving it is the account's owner who sets it.
    password: String,
}

#[utoipa::path(put, path = "/api/v1/me/payment-pin", operation_id = "set_payment_pin",
    security(("session" = [])),
    request_body(content = SetPin, example = json!({"pin": "246810", "password": "correct horse battery staple"})),
    responses((status = 204, description = "The PIN is set (and any lock from wrong tries lifted)"),
              (status = 403, description = "Wrong account password (`forbidden`)"),
              (status = 422, description = "The PIN is not six digits"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session,
              crate::openapi::errors::Throttled, crate::openapi::errors::Server))]
pub(crate) async fn set_pin(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    addr: ClientAddr,
    ApiJson(body): ApiJson<SetPin>,
) -> Result<StatusCode, ApiError> {
    if body.pin.len() != 6 || !body.pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "pin",
            "a payment PIN is exactly six digits",
        ));
    }
    crate::sessions::check_password(&state, &me, addr, body.password).await?;
    let hash = crate::auth::hash_pin(&state, body.pin).await?;
    state.store.set_payment_pin(&me.id, &hash).await?;
    state.guards.pins.forget(me.id.as_str());
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /api/v1/me/payments`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// How many, newest first (1 to 200, default 50).
    limit: Option<u32>,
}

fn limit(l: Option<u32>) -> Result<u32, ApiError> {
    let l = l.unwrap_or(50);
    if l == 0 || l > 200 {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
    Ok(l)
}

#[utoipa::path(get, path = "/api/v1/me/payments", operation_id = "payment_history",
    params(ListParams), security(("session" = [])),
    responses((status = 200, description = "The user's payment requests, newest first, amounts written for `Accept-Language`", body = Vec<crate::openapi::AnyObject>),
              (status = 422, description = "A limit out of range"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn history(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    let orders = state
        .store
        .orders_of(&me.id, false, limit(q.limit)?)
        .await?;
    Ok(Json(views(&state, &orders, &locale(&headers)).await?))
}

#[utoipa::path(get, path = "/api/v1/me/payments/pending", operation_id = "pending_payments",
    security(("session" = [])),
    responses((status = 200, description = "Payment requests waiting for the user's answer (not expired), newest first", body = Vec<crate::openapi::AnyObject>),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn pending(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    let orders = state.store.orders_of(&me.id, true, 200).await?;
    Ok(Json(views(&state, &orders, &locale(&headers)).await?))
}

/// Body of `POST /api/v1/me/payments/{payment}/confirm`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirm {
    /// The user's payment PIN.
    pin: String,
}

/// A refusal of a confirmation or decline, with its own code.
fn refused(r: PaymentRefusal) -> ApiError {
    let code = match r {
        PaymentRefusal::Declined => "payment_declined",
        PaymentRefusal::Expired => "payment_expired",
        PaymentRefusal::InsufficientFunds(_) => "insufficient_funds",
        PaymentRefusal::AlreadyPaid => "payment_already_paid",
    };
    ApiError::Refused {
        status: StatusCode::CONFLICT,
        code,
        message: r.to_string(),
    }
}

/// Checks the user's PIN (`record`, `None` if they set none), counting wrong tries and honouring
/// the lock.
async fn check_pin(
    state: &AppState,
    me: &minihost_store::User,
    addr: ClientAddr,
    record: Option<PinRecord>,
    pin: String,
) -> Result<(), ApiError> {
    let Some(record) = record else {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "pin_not_set",
            message: "set a payment PIN first (PUT /api/v1/me/payment-pin)".into(),
        });
    };
    let now = minihost_core::now_millis();
    if record.locked_until_ms > now {
        let minutes = (record.locked_until_ms - now + 59_999) / 60_000;
        return Err(ApiError::Refused {
            status: StatusCode::LOCKED,
            code: "payments_locked",
            message: format!(
                "too many wrong PINs: payments are locked for {minutes} more minute(s)"
            ),
        });
    }
    // Throttled per user and client address before the hash (whose slot is capped too); only
    // wrong PINs keep their tokens.
    let guards = &state.guards;
    let throttles = [&guards.secret_address, &guards.secret_user];
    let admitted = guards
        .admit(
            addr.0,
            &[(throttles[0], &addr.key()), (throttles[1], me.id.as_str())],
        )
        .await?;
    let user = me.id.as_str();
    let checked = if guards.pins.recalls(user, &record.hash, &pin) {
        Ok(true)
    } else {
        let (p, h) = (pin.clone(), record.hash.clone());
        let checked = crate::auth::verify_pin(state, p, h).await;
        match &checked {
            Ok(true) => guards.pins.remember(user, &record.hash, &pin),
            _ => guards.pins.forget(user),
        }
        checked
    };
    if admitted.settle(&throttles, checked).await? {
        // Only a count to clear is worth a write (on SQLite, even an update that changes no
        // row takes the write lock).
        if record.failures != 0 {
            state.store.record_pin_success(&me.id).await?;
        }
        return Ok(());
    }
    let after = state
        .store
        .record_pin_failure(&me.id, MAX_PIN_FAILURES, PIN_LOCK_MS)
        .await?;
    let message = match after {
        Some(r) if r.locked_until_ms > now => {
            "wrong PIN; too many wrong PINs: payments are locked for 15 minutes".to_owned()
        }
        Some(r) => format!(
            "wrong PIN; {} more wrong PIN(s) lock payments for 15 minutes",
            MAX_PIN_FAILURES - r.failures
        ),
        None => "wrong PIN".to_owned(),
    };
    Err(ApiError::Refused {
        status: StatusCode::FORBIDDEN,
        code: "wrong_pin",
        message,
    })
}

#[utoipa::path(post, path = "/api/v1/me/payments/{payment}/confirm", operation_id = "confirm_payment",
    params(crate::openapi::params::Payment), security(("session" = [])),
    request_body(content = Confirm, example = json!({"pin": "246810"})),
    responses((status = 200, description = "Paid (or already paid by an earlier confirmation): the money moved exactly once", body = crate::openapi::AnyObject),
              (status = 403, description = "Wrong PIN (`wrong_pin`; the message says how many tries are left)"),
              (status = 404, description = "No such payment request of this user"),
              (status = 409, description = "Declined, expired, not enough money (`insufficient_funds`), or no PIN set (`pin_not_set`)"),
              (status = 423, description = "Too many wrong PINs: payments are locked for 15 minutes (`payments_locked`)"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session,
              crate::openapi::errors::Throttled, crate::openapi::errors::Server))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    addr: ClientAddr,
    headers: HeaderMap,
    Path(payment): Path<String>,
    ApiJson(body): ApiJson<Confirm>,
) -> Result<Json<PaymentView>, ApiError> {
    // An unknown order answers 404 before the PIN is tried (no PIN guessing on other orders).
    let Some((pin, suspended)) = state.store.order_pin(&payment, &me.id).await? else {
        return Err(ApiError::NotFound("payment request"));
    };
    // Nothing moves toward a suspended app.
    if suspended {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "app_suspended",
            message: "the app is suspended: its payment requests cannot be paid".into(),
        });
    }
    check_pin(&state, &me, addr, pin, body.pin).await?;
    let order = state
        .store
        .confirm_order(&payment, &me.id)
        .await?
        .ok_or(ApiError::NotFound("payment request"))?
        .map_err(refused)?;
    settled(&state, &order, &locale(&headers)).await
}

#[utoipa::path(post, path = "/api/v1/me/payments/{payment}/decline", operation_id = "decline_payment",
    params(crate::openapi::params::Payment), security(("session" = [])),
    responses((status = 200, description = "Declined (final)", body = crate::openapi::AnyObject),
              (status = 404, description = "No such payment request of this user"),
              (status = 409, description = "Already paid, or expired"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn decline(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    Path(payment): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let order = state
        .store
        .decline_order(&payment, &me.id)
        .await?
        .ok_or(ApiError::NotFound("payment request"))?
        .map_err(refused)?;
    settled(&state, &order, &locale(&headers)).await
}

/// After a user's answer: tell their other screens, wake the dispatcher of app events.
async fn settled(
    state: &AppState,
    order: &PaymentOrder,
    locale: &str,
) -> Result<Json<PaymentView>, ApiError> {
    let v = view(state, order, locale).await?;
    state
        .app_services
        .notify_user(&order.user_id, "payment_update", &v);
    if let Some(platform) = &state.platform {
        platform.payments_changed();
    }
    Ok(Json(v))
}

/// One account and its newest entries.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountStatement {
    /// ISO 4217 code.
    currency: String,
    /// Balance in minor units.
    balance: i64,
    /// The balance written for the reader.
    balance_text: String,
    /// The newest entries (positive: money in), newest first.
    #[schema(value_type = Vec<crate::openapi::AnyObject>)]
    entries: Vec<StatementLine>,
}

async fn statements(
    state: &AppState,
    kind: AccountKind,
    owner: &str,
    locale: &str,
) -> Result<Vec<AccountStatement>, ApiError> {
    let mut out = Vec::new();
    for account in state.store.accounts_of(kind, owner).await? {
        let balance_text = Currency::parse(&account.currency)
            .map(|c| c.format(account.balance.unsigned_abs(), locale))
            .unwrap_or_else(|_| account.balance.to_string());
        out.push(AccountStatement {
            entries: state.store.statement(&account.id, 100).await?,
            currency: account.currency,
            balance: account.balance,
            balance_text,
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/me/wallet", operation_id = "wallet",
    security(("session" = [])),
    responses((status = 200, description = "The user's wallet: one account per currency with its balance and newest entries", body = Vec<AccountStatement>),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn wallet(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
) -> Result<Json<Vec<AccountStatement>>, ApiError> {
    Ok(Json(
        statements(
            &state,
            AccountKind::Wallet,
            me.id.as_str(),
            &locale(&headers),
        )
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/ledger", operation_id = "merchant_ledger",
    params(crate::openapi::params::App), security(("session" = [])),
    responses((status = 200, description = "The app's merchant account per currency: what it earned, with its newest entries", body = Vec<AccountStatement>),
              (status = 404, description = "No such app of yours"),
              crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn merchant_ledger(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<Vec<AccountStatement>>, ApiError> {
    own_app(&state, &me, &app).await?;
    Ok(Json(
        statements(&state, AccountKind::Merchant, &app, &locale(&headers)).await?,
    ))
}

/// Body of the refund routes (`POST /open/v1/payments/{payment}/refunds` and
/// `POST /api/v1/apps/{app}/payments/{payment}/refunds`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundBody {
    /// Minor units to give back: at least 1, at most what was paid and not yet refunded.
    #[schema(value_type = i64)]
    amount: i128,
    /// The caller's key for this refund: the same key with the same amount and reason is the
    /// same refund (nothing moves again); with others it is refused (409).
    idempotency_key: String,
    /// Why (at most 200 bytes), kept with the refund and shown on the user's statement.
    #[serde(default)]
    reason: Option<String>,
}

impl RefundBody {
    /// What the app services check: a negative amount reads as zero (refused as not positive),
    /// one beyond `u64` as over the cap.
    pub(crate) fn ask(self) -> minihost_appsvc::RefundAsk {
        let amount = if self.amount <= 0 {
            0
        } else {
            u64::try_from(self.amount).unwrap_or(u64::MAX)
        };
        minihost_appsvc::RefundAsk {
            amount,
            idempotency_key: self.idempotency_key,
            reason: self.reason,
        }
    }
}

/// A refused refund, with its own code.
pub(crate) fn refund_refused(r: RefundRefusal) -> ApiError {
    let code = match r {
        RefundRefusal::NotPaid(_) => "payment_not_paid",
        RefundRefusal::OverRefund { .. } => "refund_exceeds_payment",
        RefundRefusal::MerchantShort(_) => "merchant_insufficient_funds",
    };
    ApiError::Refused {
        status: StatusCode::CONFLICT,
        code,
        message: r.to_string(),
    }
}

/// After a refund: wake the dispatcher of app events (the user was told by the app services).
pub(crate) async fn refunded(
    state: &AppState,
    outcome: Refunded,
    locale: &str,
) -> Result<PaymentView, ApiError> {
    if outcome.new
        && let Some(platform) = &state.platform
    {
        platform.payments_changed();
    }
    view(state, &outcome.order, locale).await
}

/// An app error as the session API answers it.
fn app_error(e: AppError) -> ApiError {
    match e {
        AppError::Invalid(message) => ApiError::Unprocessable {
            code: "invalid",
            message,
        },
        AppError::Conflict(message) => ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "idempotency_key_reused",
            message,
        },
        AppError::NotFound(what) => ApiError::NotFound(what),
        AppError::PermissionDenied(m)
        | AppError::QuotaExceeded(m)
        | AppError::BudgetExceeded(m) => ApiError::Forbidden(m),
        AppError::Unavailable(m) => ApiError::Internal(m),
    }
}

/// The app `app` if `me` is its developer; 404 otherwise.
async fn own_app(state: &AppState, me: &minihost_store::User, app: &str) -> Result<(), ApiError> {
    match state.store.app(app).await? {
        Some(a) if a.developer == me.id => Ok(()),
        _ => Err(ApiError::NotFound("app")),
    }
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/payments", operation_id = "app_payments",
    params(crate::openapi::params::App, ListParams), security(("session" = [])),
    responses((status = 200, description = "The app's payment requests, newest first (what its developer may refund), amounts written for `Accept-Language`", body = Vec<crate::openapi::AnyObject>),
              (status = 404, description = "No such app of yours"),
              (status = 422, description = "A limit out of range"),
              crate::openapi::errors::Query, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn app_payments(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    Path(app): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    own_app(&state, &me, &app).await?;
    let orders = state.store.orders_of_app(&app, limit(q.limit)?).await?;
    Ok(Json(views(&state, &orders, &locale(&headers)).await?))
}

#[utoipa::path(post, path = "/api/v1/apps/{app}/payments/{payment}/refunds", operation_id = "developer_refund",
    params(crate::openapi::params::App, crate::openapi::params::Payment), security(("session" = [])),
    request_body(content = RefundBody, example = json!({"amount": 500, "idempotency_key": "refund-7731-1", "reason": "one box arrived damaged"})),
    responses((status = 201, description = "Refunded (or the same refund again, for a repeated key): the payment request as it is now, with `refunded` and its state", body = crate::openapi::AnyObject),
              (status = 404, description = "No such app of yours, or no such payment request of the app"),
              (status = 409, description = "More than what can still be refunded (`refund_exceeds_payment`), not paid (`payment_not_paid`), the merchant account holds less (`merchant_insufficient_funds`), or the key was used for another refund (`idempotency_key_reused`)"),
              (status = 422, description = "An amount below one minor unit or over the cap, a bad key or reason"),
              crate::openapi::errors::JsonBody, crate::openapi::errors::Session, crate::openapi::errors::Server))]
pub(crate) async fn developer_refund(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    Path((app, payment)): Path<(String, String)>,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<(StatusCode, Json<PaymentView>), ApiError> {
    own_app(&state, &me, &app).await?;
    let actor = format!("developer:{}", me.username);
    let outcome = state
        .app_services
        .refund_payment(&app, &payment, body.ask(), &actor)
        .await
        .map_err(app_error)?
        .map_err(refund_refused)?;
    let v = refunded(&state, outcome, &locale(&headers)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}
