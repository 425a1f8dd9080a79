//! The timers capability (`minihost:app/timers`, no scope): the app asks for a `timer` event
//! later, in the conversation of the current event and on behalf of its user;
//! `minihost-appsvc` checks and stores it, and the platform fires it.

use minihost_appsvc::AppServices;
use minihost_cap_common::{actor, wit_error};
use minihost_runtime::bindings::timers;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{Capability, CapabilityCx, Interface, StoreState};

/// The timers capability.
#[derive(Clone)]
pub struct TimersCapability {
    svc: AppServices,
}

impl TimersCapability {
    /// Timers through `svc`.
    pub fn new(svc: AppServices) -> Self {
        TimersCapability { svc }
    }
}

/// The host side of `minihost:app/timers` for one call.
pub struct TimersHost<'a>(CapabilityCx<'a, TimersCapability>);

struct TimersData;

impl HasData for TimersData {
    type Data<'a> = TimersHost<'a>;
}

impl Capability for TimersCapability {
    const INTERFACE: Interface = Interface::Timers;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        timers::add_to_linker::<_, TimersData>(linker, |s| TimersHost(s.capability::<Self>()))
    }
}

impl timers::Host for TimersHost<'_> {
    async fn set(
        &mut self,
        key: String,
        after_seconds: u32,
    ) -> minihost_runtime::wasmtime::Result<Result<(), minihost_runtime::Error>> {
        let bytes = key.len() + 4;
        self.0
            .call("set", None, bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc
                    .set_timer(&actor, &key, after_seconds)
                    .await
                    .map_err(wit_error)
            })
            .await
    }

    async fn cancel(
        &mut self,
        key: String,
    ) -> minihost_runtime::wasmtime::Result<Result<bool, minihost_runtime::Error>> {
        let bytes = key.len();
        self.0
            .call("cancel", None, bytes, async |cap, data| {
                let actor = actor(data)?;
                cap.svc.cancel_timer(&actor, &key).await.map_err(wit_error)
            })
            .await
    }
}
