//! The messaging capability (`minihost:app/messaging`, scope `messages.send`): `send` and
//! `update` messages as the app, and read the remaining `budget`. Every rule (grant at call time,
//! conversations of the app only, per-conversation token bucket, content limits) lives in
//! `minihost-appsvc`, shared with the Open API.

use minihost_appsvc::AppServices;
use minihost_cap_common::{actor, to_core, wit_error};
use minihost_core::ConversationId;
use minihost_runtime::bindings::messaging;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{ByteSize, Capability, CapabilityCx, Content, Error, Interface, StoreState};

/// The scope this capability needs.
pub const SCOPE: &str = "messages.send";

/// The messaging capability.
#[derive(Clone)]
pub struct MessagingCapability {
    svc: AppServices,
}

impl MessagingCapability {
    /// Messaging through `svc`.
    pub fn new(svc: AppServices) -> Self {
        MessagingCapability { svc }
    }
}

/// The host side of `minihost:app/messaging` for one call.
pub struct MessagingHost<'a>(CapabilityCx<'a, MessagingCapability>);

struct MessagingData;

impl HasData for MessagingData {
    type Data<'a> = MessagingHost<'a>;
}

impl Capability for MessagingCapability {
    const INTERFACE: Interface = Interface::Messaging;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        messaging::add_to_linker::<_, MessagingData>(linker, |s| {
            MessagingHost(s.capability::<Self>())
        })
    }
}

impl messaging::Host for MessagingHost<'_> {
    async fn send(
        &mut self,
        conversation: String,
        content: Content,
    ) -> minihost_runtime::wasmtime::Result<Result<String, Error>> {
        let bytes = conversation.len() + content.byte_size();
        self.0
            .call("send", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let conv = ConversationId::from_string(conversation);
                cap.svc
                    .send_message(&actor, &conv, to_core(content))
                    .await
                    .map(|m| m.id.to_string())
                    .map_err(wit_error)
            })
            .await
    }

    async fn update(
        &mut self,
        message: String,
        content: Content,
    ) -> minihost_runtime::wasmtime::Result<Result<(), Error>> {
        let bytes = message.len() + content.byte_size();
        self.0
            .call("update", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let conv = actor
                    .conversation
                    .clone()
                    .ok_or_else(|| Error::Invalid("no conversation in this invocation".into()))?;
                cap.svc
                    .update_message(&actor, &conv, &message, to_core(content))
                    .await
                    .map(|_| ())
                    .map_err(wit_error)
            })
            .await
    }

    async fn budget(
        &mut self,
        conversation: String,
    ) -> minihost_runtime::wasmtime::Result<Result<u32, Error>> {
        let bytes = conversation.len();
        self.0
            .call("budget", Some(SCOPE), bytes, async |cap, data| {
                let actor = actor(data)?;
                let conv = ConversationId::from_string(conversation);
                cap.svc.send_budget(&actor, &conv).await.map_err(wit_error)
            })
            .await
    }
}
