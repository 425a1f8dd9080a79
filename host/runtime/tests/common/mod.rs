//! Shared helpers of the runtime tests: a small runtime, the guest components, and a fake
//! messaging capability that records what it sends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::{Arc, Mutex};

use minihost_runtime::bindings::messaging;
use minihost_runtime::wasmtime::component::{HasData, Linker};
use minihost_runtime::{
    ByteSize, Capability, CapabilityCx, Content, Error, Event, Interface, Invocation,
    InvocationReport, LoadedApp, Runtime, RuntimeBuilder, RuntimeConfig, StoreState,
};

/// A runtime config with a small pool (tests run in parallel) and a component cache shared by
/// the tests, so each guest is compiled once per build rather than once per test.
pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        max_instances: 8,
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
        ..RuntimeConfig::default()
    }
}

pub fn runtime() -> Runtime {
    RuntimeBuilder::new(config()).build().unwrap()
}

pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn load(rt: &Runtime, path: &str) -> Arc<LoadedApp> {
    rt.load(&wasm(path)).unwrap()
}

pub fn invocation() -> Invocation {
    Invocation::new("test-app", "u_1", "c_1")
}

pub async fn command(rt: &Runtime, app: &LoadedApp, name: &str, args: &str) -> InvocationReport {
    rt.invoke(app, invocation(), Event::command(name, args))
        .await
}

/// The reply text of a successful invocation.
pub fn reply_text(report: &InvocationReport) -> String {
    match &report.outcome {
        Ok(Some(Content::Text(t))) => t.clone(),
        other => panic!("expected a text reply, got {other:?}"),
    }
}

/// A messaging capability that records sends instead of delivering them.
#[derive(Clone, Default)]
pub struct FakeMessaging {
    pub sent: Arc<Mutex<Vec<(String, Content)>>>,
}

pub struct FakeMessagingHost<'a>(CapabilityCx<'a, FakeMessaging>);

struct FakeMessagingData;

impl HasData for FakeMessagingData {
    type Data<'a> = FakeMessagingHost<'a>;
}

impl Capability for FakeMessaging {
    const INTERFACE: Interface = Interface::Messaging;

    fn add_to_linker(linker: &mut Linker<StoreState>) -> minihost_runtime::wasmtime::Result<()> {
        messaging::add_to_linker::<_, FakeMessagingData>(linker, |s| {
            FakeMessagingHost(s.capability::<Self>())
        })
    }
}

impl messaging::Host for FakeMessagingHost<'_> {
    async fn send(
        &mut self,
        conversation: String,
        content: Content,
    ) -> minihost_runtime::wasmtime::Result<Result<String, Error>> {
        let bytes = conversation.len() + content.byte_size();
        self.0
            .call("send", Some("messages.send"), bytes, async |cap, _data| {
                let mut sent = cap.sent.lock().unwrap();
                sent.push((conversation, content));
                Ok(format!("m{}", sent.len()))
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
            .call("update", Some("messages.send"), bytes, async |_, _| Ok(()))
            .await
    }

    async fn budget(
        &mut self,
        conversation: String,
    ) -> minihost_runtime::wasmtime::Result<Result<u32, Error>> {
        self.0
            .call(
                "budget",
                Some("messages.send"),
                conversation.len(),
                async |_, _| Ok(10),
            )
            .await
    }
}
