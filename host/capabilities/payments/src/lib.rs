//! The payments capability (`minihost:app/payments`): the app asks the invoking user to pay for
//! an order, or refunds one of its paid orders (scope `payments.request`), or pays the invoking
//! user from its merchant account (scope `payments.payout`); `minihost-appsvc` checks and stores
//! each. Money moves into the merchant account only when the user confirms; the app then gets a
//! `payment` event.

use minihost_appsvc::{AppError, AppServices, PaymentAsk, PayoutAsk, RefundAsk};
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::payments;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{ByteSize, Capability, CapabilityCx, Interface, StoreState};

/// The scope requests and refunds need.
pub const SCOPE: &str = "payments.request";
/// The scope payouts need.
pub const PAYOUT_SCOPE: &str = "payments.payout";

/// The payments capability.
#[derive(Clone)]
pub struct PaymentsCapability {
    svc: AppServices,
}

impl PaymentsCapability {
    /// Payment requests through `svc`.
    pub fn new(svc: AppServices) -> Self {
        PaymentsCapability { svc }
    }
}

/// The host side of `minihost:app/payments` for one call.
pub struct PaymentsHost<'a>(CapabilityCx<'a, PaymentsCapability>);

struct PaymentsData;

impl HasData for PaymentsData {
    type Data<'a> = PaymentsHost<'a>;
}

impl Capability for PaymentsCapability {
    const INTERFACE: Interface = Interface::Payments;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        payments::add_to_linker::<_, PaymentsData>(linker, |s| PaymentsHost(s.capability::<Self>()))
    }
}

impl payments::Host for PaymentsHost<'_> {
    async fn request(
        &mut self,
        order: payments::Order,
    ) -> minihost_runtime::wasmtime::Result<Result<String, minihost_runtime::Error>> {
        let bytes = order.byte_size();
        self.0
            .call("request", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let ask = PaymentAsk {
                    amount: order.amount,
                    currency: order.currency,
                    description: order.description,
                    idempotency_key: order.idempotency_key,
                    expires_in_secs: None,
                };
                let placed = cap
                    .svc
                    .request_payment(&actor, ask)
                    .await
                    .map_err(wit_error)?;
                Ok(placed.id)
            })
            .await
    }

    async fn refund(
        &mut self,
        request: String,
        amount: u64,
        idempotency_key: String,
    ) -> minihost_runtime::wasmtime::Result<Result<String, minihost_runtime::Error>> {
        let bytes = 8 + request.len() + idempotency_key.len();
        self.0
            .call("refund", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .require_scope(&actor, SCOPE)
                    .await
                    .map_err(wit_error)?;
                let ask = RefundAsk {
                    amount,
                    idempotency_key,
                    reason: None,
                };
                let who = format!("app:{}", actor.app);
                match cap
                    .svc
                    .refund_payment(&actor.app, &request, ask, &who)
                    .await
                    .map_err(wit_error)?
                {
                    Ok(refunded) => Ok(refunded.refund.id),
                    Err(refused) => Err(wit_error(AppError::Invalid(refused.to_string()))),
                }
            })
            .await
    }

    async fn pay_user(
        &mut self,
        payout: payments::Payout,
    ) -> minihost_runtime::wasmtime::Result<Result<String, minihost_runtime::Error>> {
        let bytes = payout.byte_size();
        self.0
            .call("pay-user", Some(PAYOUT_SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let ask = PayoutAsk {
                    amount: payout.amount,
                    currency: payout.currency,
                    description: payout.description,
                    idempotency_key: payout.idempotency_key,
                };
                let paid = cap.svc.pay_out(&actor, ask).await.map_err(wit_error)?;
                Ok(paid.payout.id)
            })
            .await
    }
}
