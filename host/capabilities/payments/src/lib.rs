//! The payments capability (`minihost:app/payments`, scope `payments.request`): the app asks the
//! invoking user to pay for an order; `minihost-appsvc` checks and stores it and puts it in front
//! of the user. Money moves only when the user confirms; the app then gets a `payment` event.

use minihost_appsvc::{AppServices, PaymentAsk};
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::payments;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{ByteSize, Capability, CapabilityCx, Interface, StoreState};

/// The scope this capability needs.
pub const SCOPE: &str = "payments.request";

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
}
