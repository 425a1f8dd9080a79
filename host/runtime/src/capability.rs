//! The one trait through which capabilities link in ([`Capability`]), the per-call context they
//! get ([`CapabilityCx`]: scope check, call bounds, recording), and the default host that
//! answers `unavailable` for every interface nobody registered.
//!
//! A capability crate owns one WIT interface: it implements that interface's generated `Host`
//! trait on a small view type wrapping `CapabilityCx<'_, Self>`, and routes every function
//! through [`CapabilityCx::call`], which checks the grant, counts and times the call, bounds its
//! bytes and deadline, and records it in the report. See the `minihost-cap-log` crate for a
//! complete example.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasData, Linker};

use crate::bindings::{
    ByteSize, Content, Error, Interface, auth, log, messaging, payments, profile, storage, timers,
};
use crate::report::{CallOutcome, CapabilityCall};
use crate::state::{Fault, InvocationData, StoreState};

/// A host capability implementing one WIT interface of the `miniapp` world.
///
/// Register it with one line: `RuntimeBuilder::new(config).with(MyCapability::new(..))`.
/// The value is shared by all invocations (put per-invocation state in
/// [`Invocation::extensions`](crate::Invocation)); it is reached from the store on each call.
///
/// ```ignore
/// pub struct LogHost<'a>(CapabilityCx<'a, LogCapability>);
/// struct LogData;
/// impl HasData for LogData { type Data<'a> = LogHost<'a>; }
///
/// impl Capability for LogCapability {
///     const INTERFACE: Interface = Interface::Log;
///     fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
///         log::add_to_linker::<_, LogData>(linker, |s| LogHost(s.capability::<Self>()))
///     }
/// }
///
/// impl log::Host for LogHost<'_> {
///     async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
///         let bytes = message.len();
///         let _ = self.0.call("write", None, bytes, async |cap, data| {
///             cap.append(data, level, message);
///             Ok(())
///         }).await?;
///         Ok(())
///     }
/// }
/// ```
pub trait Capability: Any + Send + Sync + Sized {
    /// The interface this capability implements.
    const INTERFACE: Interface;

    /// Adds the interface's host functions to the linker, with a getter that builds this
    /// capability's view from the store via [`StoreState::capability`].
    fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()>;
}

/// The registered capabilities, one slot per interface.
#[derive(Default)]
pub(crate) struct Registry {
    slots: [Option<Arc<dyn Any + Send + Sync>>; Interface::ALL.len()],
}

impl Registry {
    pub(crate) fn get<C: Capability>(&self) -> Option<&C> {
        self.slots[C::INTERFACE.index()]
            .as_deref()
            .and_then(|any| any.downcast_ref::<C>())
    }

    pub(crate) fn insert(&mut self, interface: Interface, cap: Arc<dyn Any + Send + Sync>) -> bool {
        let slot = &mut self.slots[interface.index()];
        let was_empty = slot.is_none();
        *slot = Some(cap);
        was_empty
    }

    pub(crate) fn has(&self, interface: Interface) -> bool {
        self.slots[interface.index()].is_some()
    }
}

impl StoreState {
    /// The call context of capability `C` for this invocation: what a capability's getter
    /// passed to `add_to_linker` returns (wrapped in its view type).
    pub fn capability<C: Capability>(&mut self) -> CapabilityCx<'_, C> {
        let StoreState { registry, data, .. } = self;
        CapabilityCx {
            interface: C::INTERFACE,
            cap: registry.get::<C>(),
            data,
        }
    }

    fn missing(&mut self, interface: Interface) -> CapabilityCx<'_, ()> {
        CapabilityCx {
            interface,
            cap: None,
            data: &mut self.data,
        }
    }
}

/// What a capability sees during one host call: its own value, the invocation (grant, ids,
/// extensions) and the report. Every host function should go through [`CapabilityCx::call`].
pub struct CapabilityCx<'a, C> {
    interface: Interface,
    cap: Option<&'a C>,
    data: &'a mut InvocationData,
}

impl<C> CapabilityCx<'_, C> {
    /// The invocation's host-side data (ids, grant, extensions, deadline).
    pub fn data(&mut self) -> &mut InvocationData {
        self.data
    }

    /// Runs one host function under the runtime's rules, in order:
    ///
    /// 1. counts the call; past [`Limits::max_calls`](crate::Limits) the guest traps
    ///    ([`ErrorKind::TooManyCalls`](crate::ErrorKind::TooManyCalls)); past the deadline it
    ///    traps ([`ErrorKind::Timeout`](crate::ErrorKind::Timeout));
    /// 2. rejects inputs over [`Limits::max_call_bytes`](crate::Limits) with `error::invalid`;
    /// 3. returns `error::unavailable` if no capability is registered for the interface;
    /// 4. returns `error::permission-denied(scope)` unless the grant allows `scope`
    ///    (`None`: the function needs no scope);
    /// 5. runs `f` with the capability and the invocation data, bounded by the deadline, and
    ///    replaces an over-large result with `error::invalid`;
    /// 6. records the call (interface, function, outcome, duration) in the report.
    ///
    /// The outer `wasmtime::Result` is the trap channel and only the runtime fills it; `f` can
    /// only return typed errors.
    pub async fn call<T, F>(
        &mut self,
        function: &'static str,
        scope: Option<&str>,
        input_bytes: usize,
        f: F,
    ) -> wasmtime::Result<Result<T, Error>>
    where
        T: ByteSize,
        F: AsyncFnOnce(&C, &mut InvocationData) -> Result<T, Error>,
    {
        let started = Instant::now();
        let data = &mut *self.data;
        data.calls_made = data.calls_made.saturating_add(1);
        if data.calls_made > data.limits.max_calls {
            let fault = Fault::TooManyCalls(data.limits.max_calls);
            return Err(self.abort(function, started, fault));
        }
        if started >= data.deadline {
            let fault = Fault::Timeout(data.limits.deadline);
            return Err(self.abort(function, started, fault));
        }
        let max = data.limits.max_call_bytes;
        if input_bytes > max {
            let err = Error::Invalid(format!(
                "{}.{function}: {input_bytes} bytes passed, over the {max}-byte limit of one call",
                self.interface
            ));
            return Ok(self.finish(function, started, Err(err)));
        }
        let Some(cap) = self.cap else {
            let err = Error::Unavailable(format!(
                "{} is not available on this host",
                self.interface.qualified_name()
            ));
            return Ok(self.finish(function, started, Err(err)));
        };
        if let Some(scope) = scope
            && !data.invocation.grant.allows(scope)
        {
            let err = Error::PermissionDenied(scope.to_string());
            return Ok(self.finish(function, started, Err(err)));
        }
        let deadline = tokio::time::Instant::from_std(data.deadline);
        let result = match tokio::time::timeout_at(deadline, f(cap, data)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let fault = Fault::Timeout(self.data.limits.deadline);
                return Err(self.abort(function, started, fault));
            }
        };
        let result = match result {
            Ok(value) if value.byte_size() > max => Err(Error::Invalid(format!(
                "{}.{function}: result of {} bytes is over the {max}-byte limit of one call",
                self.interface,
                value.byte_size()
            ))),
            other => other,
        };
        Ok(self.finish(function, started, result))
    }

    fn finish<T>(
        &mut self,
        function: &'static str,
        started: Instant,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(Error::PermissionDenied(scope)) => CallOutcome::Denied(scope.clone()),
            Err(e) => CallOutcome::Failed(e.clone()),
        };
        self.record(function, started, outcome);
        result
    }

    fn abort(&mut self, function: &'static str, started: Instant, fault: Fault) -> wasmtime::Error {
        self.record(function, started, CallOutcome::Aborted(fault.kind()));
        self.data.fault = Some(fault.clone());
        wasmtime::Error::new(fault)
    }

    fn record(&mut self, function: &'static str, started: Instant, outcome: CallOutcome) {
        // The call list is bounded by `max_calls` (plus the one aborted call).
        self.data.calls.push(CapabilityCall {
            interface: self.interface,
            function,
            outcome,
            duration: started.elapsed(),
        });
    }
}

/// The host of an interface with no registered capability: every call is counted, recorded
/// and answered with `error::unavailable` (log lines are dropped).
pub(crate) struct Missing<'a>(CapabilityCx<'a, ()>);

struct MissingData;

impl HasData for MissingData {
    type Data<'a> = Missing<'a>;
}

impl Missing<'_> {
    async fn unavailable<T: ByteSize>(
        &mut self,
        function: &'static str,
        input_bytes: usize,
    ) -> wasmtime::Result<Result<T, Error>> {
        // `cap` is `None`, so `call` answers `unavailable` before reaching the closure.
        self.0
            .call(function, None, input_bytes, async |_, _| {
                Err(Error::Unavailable("no capability".into()))
            })
            .await
    }
}

/// Links the default host for `interface`.
pub(crate) fn add_missing_to_linker(
    linker: &mut Linker<StoreState>,
    interface: Interface,
) -> wasmtime::Result<()> {
    match interface {
        Interface::Messaging => messaging::add_to_linker::<_, MissingData>(linker, |s| {
            Missing(s.missing(Interface::Messaging))
        }),
        Interface::Profile => profile::add_to_linker::<_, MissingData>(linker, |s| {
            Missing(s.missing(Interface::Profile))
        }),
        Interface::Payments => payments::add_to_linker::<_, MissingData>(linker, |s| {
            Missing(s.missing(Interface::Payments))
        }),
        Interface::Storage => storage::add_to_linker::<_, MissingData>(linker, |s| {
            Missing(s.missing(Interface::Storage))
        }),
        Interface::Log => {
            log::add_to_linker::<_, MissingData>(linker, |s| Missing(s.missing(Interface::Log)))
        }
        Interface::Auth => {
            auth::add_to_linker::<_, MissingData>(linker, |s| Missing(s.missing(Interface::Auth)))
        }
        Interface::Timers => timers::add_to_linker::<_, MissingData>(linker, |s| {
            Missing(s.missing(Interface::Timers))
        }),
    }
}

impl messaging::Host for Missing<'_> {
    async fn send(
        &mut self,
        conversation: String,
        content: Content,
    ) -> wasmtime::Result<Result<String, Error>> {
        self.unavailable("send", conversation.len() + content.byte_size())
            .await
    }

    async fn update(
        &mut self,
        message: String,
        content: Content,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unavailable("update", message.len() + content.byte_size())
            .await
    }

    async fn budget(&mut self, conversation: String) -> wasmtime::Result<Result<u32, Error>> {
        self.unavailable("budget", conversation.len()).await
    }
}

impl profile::Host for Missing<'_> {
    async fn get(&mut self, user: String) -> wasmtime::Result<Result<profile::Profile, Error>> {
        self.unavailable("get", user.len()).await
    }
}

impl payments::Host for Missing<'_> {
    async fn request(&mut self, order: payments::Order) -> wasmtime::Result<Result<String, Error>> {
        self.unavailable("request", order.byte_size()).await
    }

    async fn refund(
        &mut self,
        request: String,
        _amount: u64,
        idempotency_key: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        self.unavailable("refund", 8 + request.len() + idempotency_key.len())
            .await
    }

    async fn pay_user(
        &mut self,
        payout: payments::Payout,
    ) -> wasmtime::Result<Result<String, Error>> {
        self.unavailable("pay-user", payout.byte_size()).await
    }
}

impl timers::Host for Missing<'_> {
    async fn set(&mut self, key: String, _after: u32) -> wasmtime::Result<Result<(), Error>> {
        self.unavailable("set", key.len() + 4).await
    }

    async fn cancel(&mut self, key: String) -> wasmtime::Result<Result<bool, Error>> {
        self.unavailable("cancel", key.len()).await
    }
}

impl storage::Host for Missing<'_> {
    async fn get(
        &mut self,
        _bucket: storage::Bucket,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        self.unavailable("get", key.len()).await
    }

    async fn set(
        &mut self,
        _bucket: storage::Bucket,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.unavailable("set", key.len() + value.len()).await
    }

    async fn delete(
        &mut self,
        _bucket: storage::Bucket,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.unavailable("delete", key.len()).await
    }

    async fn keys(
        &mut self,
        _bucket: storage::Bucket,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        self.unavailable("keys", prefix.len()).await
    }

    async fn compare_and_set(
        &mut self,
        _bucket: storage::Bucket,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<bool, Error>> {
        self.unavailable(
            "compare-and-set",
            key.len() + expected.byte_size() + value.len(),
        )
        .await
    }
}

impl log::Host for Missing<'_> {
    async fn write(&mut self, _level: log::Level, message: String) -> wasmtime::Result<()> {
        // Log lines have no error channel: the unavailable answer is recorded, not returned.
        let _ = self.unavailable::<()>("write", message.len()).await?;
        Ok(())
    }
}

impl auth::Host for Missing<'_> {
    async fn login_code(
        &mut self,
        code_challenge: String,
    ) -> wasmtime::Result<Result<String, Error>> {
        self.unavailable("login-code", code_challenge.len()).await
    }
}
