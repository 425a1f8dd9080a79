//! Minihost's sandbox runtime: runs mini-app components (the `minihost:app/miniapp` WIT world)
//! in a fresh, bounded wasmtime instance per event. It knows nothing of users, messages or
//! conversations: those reach an app only through [`Capability`] implementations, one crate
//! per WIT interface.
//!
//! # Use
//!
//! 1. Build one [`Runtime`] per process with [`RuntimeBuilder`], wiring each capability with
//!    one line: `RuntimeBuilder::new(config).with(LogCapability::default()).build()?`.
//!    Interfaces without a capability answer every call with `error::unavailable`.
//! 2. Before storing an upload, [`inspect`] its bytes: imports, exports and sizes, read
//!    without compiling, for the static checks that may refuse it.
//! 3. [`Runtime::load`] an app version's component once: it is compiled within the bounds of
//!    [`CompileConfig`] (or read from the disk cache, keyed by the component's sha256 and the
//!    engine, bounded in size, least recently used evicted) and pre-linked. The result,
//!    [`LoadedApp`], lists its [`imports`](LoadedApp::imports).
//! 4. For each event, build an [`Invocation`] (app, app-scoped user, conversation, locale, the
//!    user's [`Grant`], optional [`Limits`], typed [`Extensions`] for capabilities) and call
//!    [`Runtime::invoke`]. It returns an [`InvocationReport`]: the reply or a typed
//!    [`InvokeError`], duration, fuel, capability calls, log lines, captured stdout/stderr.
//!
//! # Guarantees
//!
//! Every store is bounded ([`Limits`]): memory (default 32 MiB, growth past it traps), wall
//! time (default 200 ms, epoch interruption driven by a ticker thread, plus an outer timeout
//! covering host calls), fuel, wasm stack, tables and instances, capability calls per
//! invocation, bytes per capability call and per copy across the boundary (wasmtime's hostcall
//! fuel, so an oversized lift traps before the host allocates it), reply size, and concurrency
//! per app. With an [`ExecutorConfig`], guests run on dedicated lower-priority threads behind an
//! admission queue (bounded per app and per owner, round-robin across apps, overflow refused as
//! [`ErrorKind::Busy`]), so hostile apps cannot starve the host's other work. Guests get an
//! empty WASI context: no files, sockets, environment or inherited stdio. A misbehaving guest
//! yields an [`ErrorKind`], never a host panic or stall, and the next event runs in a fresh
//! instance.

pub mod bindings;
mod cache;
mod capability;
mod compile;
mod config;
mod executor;
mod inspect;
mod invocation;
mod report;
mod runtime;
mod state;

pub use bindings::{ByteSize, Content, Error, Event, Interface};
pub use capability::{Capability, CapabilityCx};
pub use compile::{
    CompileConfig, CompileWorker, DEFAULT_COMPILE_MEMORY_BYTES, DEFAULT_COMPILE_TIMEOUT,
    compile_worker_main,
};
pub use config::{DEFAULT_CACHE_MAX_BYTES, FUEL_PER_MS, Limits, RuntimeConfig};
pub use executor::{ExecutorConfig, ExecutorLoad, FastLane};
pub use inspect::{ComponentInfo, InspectError, inspect};
pub use invocation::{Extensions, Grant, Invocation, Scopes};
pub use report::{CallOutcome, CapabilityCall, ErrorKind, InvocationReport, InvokeError, LogLine};
pub use runtime::{BuildError, LoadError, LoadOrigin, LoadedApp, Runtime, RuntimeBuilder};
pub use state::{InvocationData, StoreState};
/// The wasmtime crate the runtime is built on (for `Linker`, `HasData`, `Result` in capability
/// crates), so capabilities never depend on a different version.
pub use wasmtime;
