//! Asking a user for money, whichever way the app asks (the `payments` capability from the
//! sandbox, or `POST /open/v1/payments` from its backend): the scope check, the order's rules
//! (a known currency, an amount within the cap, a description and key of bounded size, an expiry
//! within bounds), the idempotent order in the store, and the `payment_request` frame that puts
//! it in front of the user. Only the user can confirm (in `minihost-api`); the app never moves an
//! order to paid. Refunds, by the app's backend or its developer, are checked here too (an
//! amount within the cap, a bounded key and reason) and told to the user.

use crate::{Actor, AppError, AppServices};
use minihost_core::{Currency, UserId};
use minihost_hub::{Event as HubEvent, Topic};
use minihost_store::{NewOrder, NewRefund, PaymentOrder, RefundRefusal, Refunded, StoreError};
use serde::Serialize;

/// The scope payment requests need.
pub const SCOPE: &str = "payments.request";
/// How long a payment request waits for the user by default: 15 minutes.
pub const DEFAULT_TTL_SECS: u32 = 15 * 60;
/// The longest wait an app may ask for: one day.
pub const MAX_TTL_SECS: u32 = 24 * 60 * 60;
/// The shortest: one minute.
pub const MIN_TTL_SECS: u32 = 60;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 200;
/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// What an app asks the user to pay.
#[derive(Debug, Clone)]
pub struct PaymentAsk {
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// What it is for, shown to the user.
    pub description: String,
    /// The app's key: the same key and parameters are the same order.
    pub idempotency_key: String,
    /// How long the user has to answer (default [`DEFAULT_TTL_SECS`]).
    pub expires_in_secs: Option<u32>,
}

/// Longest refund reason, in bytes.
pub const MAX_REASON_BYTES: usize = 200;

/// A refund the app's backend or its developer asks for.
#[derive(Debug, Clone)]
pub struct RefundAsk {
    /// Minor units to give back.
    pub amount: u64,
    /// The app's key for this refund: the same key and parameters are the same refund.
    pub idempotency_key: String,
    /// Why, for the record (and the user's statement).
    pub reason: Option<String>,
}

/// An order as its user and the app's developer see it.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentView {
    /// The order id.
    pub id: String,
    /// The app that asked.
    pub app: String,
    /// Its name.
    pub app_name: String,
    /// Who is paid: the app's developer, by display name.
    pub merchant: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Digits after the decimal point for this currency.
    pub exponent: u8,
    /// The amount written for the reader's locale, e.g. `€12.50`.
    pub amount_text: String,
    /// What it is for.
    pub description: String,
    /// pending, paid, declined, expired, partially_refunded, refunded.
    pub state: String,
    /// Minor units refunded so far.
    pub refunded: i64,
    /// Where the app asked, if in a conversation.
    pub conversation: Option<String>,
    /// When a pending order expires, RFC 3339.
    pub expires_at: String,
    /// When it was asked for, RFC 3339.
    pub created_at: String,
}

fn check_ask(ask: &PaymentAsk) -> Result<(Currency, i64, u32), AppError> {
    let currency = Currency::parse(&ask.currency).map_err(|e| AppError::Invalid(e.to_string()))?;
    let amount = minihost_core::money::check_amount(ask.amount)
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    check_description(&ask.description)?;
    check_key(&ask.idempotency_key)?;
    let ttl = ask.expires_in_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
        return Err(AppError::Invalid(format!(
            "expires_in_seconds must be {MIN_TTL_SECS} to {MAX_TTL_SECS}"
        )));
    }
    Ok((currency, amount, ttl))
}

/// A description people read (of an order or a payout), trimmed: 1 to
/// [`MAX_DESCRIPTION_BYTES`] bytes, no control characters.
pub(crate) fn check_description(description: &str) -> Result<&str, AppError> {
    let description = description.trim();
    if description.is_empty() || description.len() > MAX_DESCRIPTION_BYTES {
        return Err(AppError::Invalid(format!(
            "description must be 1 to {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if description.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "description must not contain control characters".into(),
        ));
    }
    Ok(description)
}

pub(crate) fn check_key(key: &str) -> Result<(), AppError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::Invalid(format!(
            "idempotency_key must be 1 to {MAX_KEY_BYTES} printable ASCII characters"
        )));
    }
    Ok(())
}

fn check_refund(ask: &RefundAsk) -> Result<(i64, String), AppError> {
    let amount = minihost_core::money::check_amount(ask.amount)
        .map_err(|e| AppError::Invalid(format!("amount: {e}")))?;
    check_key(&ask.idempotency_key)?;
    let reason = ask.reason.as_deref().unwrap_or("").trim();
    if reason.len() > MAX_REASON_BYTES {
        return Err(AppError::Invalid(format!(
            "reason must be at most {MAX_REASON_BYTES} bytes"
        )));
    }
    if reason.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "reason must not contain control characters".into(),
        ));
    }
    Ok((amount, reason.to_owned()))
}

impl AppServices {
    /// Refunds `ask.amount` of `app`'s order `payment` to the user who paid it, recorded as
    /// asked by `actor`; never beyond what was paid (a [`RefundRefusal`] otherwise). The same
    /// key with the same parameters is the same refund; with others, a conflict. A new refund
    /// is told to the user (`payment_update`).
    pub async fn refund_payment(
        &self,
        app: &str,
        payment: &str,
        ask: RefundAsk,
        actor: &str,
    ) -> Result<Result<Refunded, RefundRefusal>, AppError> {
        let (amount, reason) = check_refund(&ask)?;
        let outcome = self
            .store
            .refund_order(NewRefund {
                order_id: payment,
                app_id: app,
                amount,
                idempotency_key: &ask.idempotency_key,
                reason: &reason,
                actor,
            })
            .await
            .map_err(|e| match e {
                StoreError::IdempotencyKeyReused => AppError::Conflict(
                    "the idempotency key was already used for a different refund".into(),
                ),
                e => e.into(),
            })?
            .ok_or(AppError::NotFound("payment request"))?;
        if let Ok(r) = &outcome
            && r.new
        {
            let view = self.payer_view(&r.order).await?;
            self.notify_user(&r.order.user_id, "payment_update", &view);
        }
        Ok(outcome)
    }

    /// Asks the actor's user to pay `ask`: from the sandbox (the order belongs to the
    /// invocation's conversation) or from the backend. Returns the order (an earlier one for a
    /// repeated key with the same parameters) and, when it is still pending, puts it in front
    /// of the user.
    pub async fn request_payment(
        &self,
        actor: &Actor,
        ask: PaymentAsk,
    ) -> Result<PaymentOrder, AppError> {
        if let Err(e) = self.require(actor, SCOPE).await {
            return self.noted(&actor.user, actor, SCOPE, Err(e)).await;
        }
        let (currency, amount, ttl) = check_ask(&ask)?;
        let origin = if actor.conversation.is_some() {
            "sandbox"
        } else {
            "backend"
        };
        let order = self
            .store
            .create_order(NewOrder {
                app_id: actor.app.clone(),
                user_id: actor.user.clone(),
                conversation_id: actor.conversation.as_ref().map(|c| c.as_str().to_owned()),
                origin,
                amount,
                currency: currency.code().to_owned(),
                description: ask.description.trim().to_owned(),
                idempotency_key: ask.idempotency_key.clone(),
                expires_at_ms: minihost_core::now_millis() + i64::from(ttl) * 1000,
            })
            .await
            .map_err(|e| match e {
                StoreError::IdempotencyKeyReused => AppError::Conflict(
                    "the idempotency key was already used for a different order".into(),
                ),
                e => e.into(),
            })?;
        let order = self.noted(&actor.user, actor, SCOPE, Ok(order)).await?;
        if order.state == "pending" {
            let view = self.payer_view(&order).await?;
            self.notify_user(&order.user_id, "payment_request", &view);
        }
        Ok(order)
    }

    /// The order as its payer reads it: amounts written for the payer's locale (English for
    /// one who chose none). What the payer's own frames carry.
    pub async fn payer_view(&self, order: &PaymentOrder) -> Result<PaymentView, AppError> {
        let payer = self.store.user_by_id(&order.user_id).await?;
        let locale = payer.and_then(|u| u.locale);
        self.payment_view(order, locale.as_deref().unwrap_or("en"))
            .await
    }

    /// The order as people read it, amounts written for `locale`.
    pub async fn payment_view(
        &self,
        order: &PaymentOrder,
        locale: &str,
    ) -> Result<PaymentView, AppError> {
        let mut views = self
            .payment_views(std::slice::from_ref(order), locale)
            .await?;
        views.pop().ok_or(AppError::NotFound("payment request"))
    }

    /// Orders as people read them: each app and its merchant are read once, however many of
    /// its orders there are.
    pub async fn payment_views(
        &self,
        orders: &[PaymentOrder],
        locale: &str,
    ) -> Result<Vec<PaymentView>, AppError> {
        let mut names: std::collections::HashMap<&str, (String, String)> =
            std::collections::HashMap::new();
        let mut views = Vec::with_capacity(orders.len());
        for order in orders {
            if !names.contains_key(order.app_id.as_str()) {
                let named = match self.store.app(&order.app_id).await? {
                    Some(app) => {
                        let developer = self.store.user_by_id(&app.developer).await?;
                        (
                            app.name,
                            developer
                                .map_or_else(String::new, |d| d.display_name.as_str().to_owned()),
                        )
                    }
                    None => (order.app_id.clone(), String::new()),
                };
                names.insert(order.app_id.as_str(), named);
            }
            let (app_name, merchant) = names
                .get(order.app_id.as_str())
                .cloned()
                .unwrap_or_default();
            let currency = Currency::parse(&order.currency)
                .map_err(|e| AppError::Unavailable(format!("stored order: {e}")))?;
            views.push(PaymentView {
                id: order.id.clone(),
                app: order.app_id.clone(),
                app_name,
                merchant,
                amount: order.amount,
                currency: order.currency.clone(),
                exponent: currency.exponent(),
                amount_text: currency.format(order.amount.unsigned_abs(), locale),
                description: order.description.clone(),
                state: order.state.clone(),
                refunded: order.refunded,
                conversation: order.conversation_id.clone(),
                expires_at: minihost_store::rfc3339(order.expires_at_ms),
                created_at: minihost_store::rfc3339(order.created_at_ms),
            });
        }
        Ok(views)
    }

    /// Pushes `{"type": kind, "payment": view}` to every connection of `user`.
    pub fn notify_user(&self, user: &UserId, kind: &str, view: &PaymentView) {
        let frame = serde_json::json!({"type": kind, "payment": view});
        self.fanout
            .publish(Topic::User(user.clone()), HubEvent::json(&frame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(amount: u64, currency: &str, description: &str, key: &str) -> PaymentAsk {
        PaymentAsk {
            amount,
            currency: currency.into(),
            description: description.into(),
            idempotency_key: key.into(),
            expires_in_secs: None,
        }
    }

    #[test]
    fn orders_are_checked_before_anything_is_stored() {
        assert!(check_ask(&ask(100, "EUR", "Tea", "k1")).is_ok());
        let bad = [
            (ask(0, "EUR", "Tea", "k"), "at least one minor unit"),
            (ask(u64::MAX, "EUR", "Tea", "k"), "cap"),
            (ask(100, "XXX", "Tea", "k"), "unknown currency"),
            (ask(100, "eur", "Tea", "k"), "unknown currency"),
            (ask(100, "EUR", "  ", "k"), "description"),
            (ask(100, "EUR", &"x".repeat(201), "k"), "description"),
            (ask(100, "EUR", "Tea\u{7}", "k"), "control"),
            (ask(100, "EUR", "Tea", ""), "idempotency_key"),
            (ask(100, "EUR", "Tea", "a key"), "idempotency_key"),
        ];
        for (a, needle) in bad {
            let e = check_ask(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
        let refund = |amount, key: &str, reason: Option<&str>| RefundAsk {
            amount,
            idempotency_key: key.into(),
            reason: reason.map(Into::into),
        };
        assert_eq!(
            check_refund(&refund(100, "r1", Some(" damaged "))).unwrap(),
            (100, "damaged".to_owned())
        );
        let bad_refunds = [
            (
                refund(0, "r", None),
                "amount: the amount must be at least one minor unit",
            ),
            (refund(u64::MAX, "r", None), "cap"),
            (refund(100, "", None), "idempotency_key"),
            (refund(100, "r", Some(&"x".repeat(201))), "reason"),
            (refund(100, "r", Some("a\u{0}b")), "control"),
        ];
        for (a, needle) in bad_refunds {
            let e = check_refund(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
        let mut short = ask(100, "EUR", "Tea", "k");
        short.expires_in_secs = Some(5);
        assert!(check_ask(&short).is_err());
    }
}
