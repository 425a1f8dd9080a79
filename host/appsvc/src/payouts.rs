//! Paying a user out of the app's merchant account (scope `payments.payout`): only the user of
//! the app's current event (the actor's user) can be paid, only from money the merchant account
//! holds, and each payout is named by the app's idempotency key. The user is told with a
//! `payout` frame.

use crate::payments::{check_description, check_key};
use crate::{Actor, AppError, AppServices};
use minihost_core::Currency;
use minihost_hub::{Event as HubEvent, Topic};
use minihost_store::{NewPayout, PaidOut, PayoutRefusal, StoreError};

/// The scope payouts need.
pub const SCOPE: &str = "payments.payout";

/// What an app pays its user.
#[derive(Debug, Clone)]
pub struct PayoutAsk {
    /// Minor units.
    pub amount: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// What it is for, shown on the user's statement.
    pub description: String,
    /// The app's key: the same key and parameters are the same payout.
    pub idempotency_key: String,
}

fn check_payout(ask: &PayoutAsk) -> Result<(Currency, i64, String), AppError> {
    let currency = Currency::parse(&ask.currency).map_err(|e| AppError::Invalid(e.to_string()))?;
    let amount = minihost_core::money::check_amount(ask.amount)
        .map_err(|e| AppError::Invalid(e.to_string()))?;
    let description = check_description(&ask.description)?;
    check_key(&ask.idempotency_key)?;
    Ok((currency, amount, description.to_owned()))
}

impl AppServices {
    /// Pays the actor's user `ask` from the actor's app's merchant account. A new payout is
    /// told to the user (`payout` frame) and written to their privacy record, as is a refusal
    /// for want of the scope.
    pub async fn pay_out(&self, actor: &Actor, ask: PayoutAsk) -> Result<PaidOut, AppError> {
        if let Err(e) = self.require(actor, SCOPE).await {
            return self.noted(&actor.user, actor, SCOPE, Err(e)).await;
        }
        let (currency, amount, description) = check_payout(&ask)?;
        let paid = self
            .store
            .pay_out(NewPayout {
                app_id: &actor.app,
                user_id: &actor.user,
                conversation_id: actor.conversation.as_ref().map(|c| c.as_str()),
                amount,
                currency: currency.code(),
                description: &description,
                idempotency_key: &ask.idempotency_key,
            })
            .await
            .map_err(|e| match e {
                StoreError::IdempotencyKeyReused => AppError::Conflict(
                    "the idempotency key was already used for a different payout".into(),
                ),
                e => e.into(),
            })?
            .map_err(|PayoutRefusal::MerchantShort(c)| {
                AppError::Invalid(format!(
                    "the app's {c} merchant account holds less than the payout"
                ))
            })?;
        if paid.new {
            let _: () = self.noted(&actor.user, actor, SCOPE, Ok(())).await?;
            let frame = serde_json::json!({
                "type": "payout",
                "payout": {
                    "id": paid.payout.id,
                    "app": actor.app,
                    "app_name": actor.app_name,
                    "amount": paid.payout.amount,
                    "currency": paid.payout.currency,
                    "exponent": currency.exponent(),
                    "amount_text": currency.format(amount.unsigned_abs(), "en"),
                    "description": paid.payout.description,
                    "conversation": paid.payout.conversation_id,
                    "created_at": minihost_store::rfc3339(paid.payout.created_at_ms),
                },
            });
            self.fanout
                .publish(Topic::User(actor.user.clone()), HubEvent::json(&frame));
        }
        Ok(paid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(amount: u64, currency: &str, description: &str, key: &str) -> PayoutAsk {
        PayoutAsk {
            amount,
            currency: currency.into(),
            description: description.into(),
            idempotency_key: key.into(),
        }
    }

    #[test]
    fn payouts_are_checked_before_anything_is_stored() {
        assert_eq!(
            check_payout(&ask(5, "EUR", " share ", "k")).unwrap().2,
            "share"
        );
        let bad = [
            (ask(0, "EUR", "share", "k"), "at least one minor unit"),
            (ask(u64::MAX, "EUR", "share", "k"), "cap"),
            (ask(5, "QQQ", "share", "k"), "unknown currency"),
            (ask(5, "EUR", "", "k"), "description"),
            (ask(5, "EUR", "a\nb", "k"), "control"),
            (ask(5, "EUR", "share", "no spaces"), "idempotency_key"),
        ];
        for (a, needle) in bad {
            let e = check_payout(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
    }
}
