//! What one invocation produced: [`InvocationReport`] (outcome, duration, fuel, capability
//! calls, log lines, captured stdio) and the typed failure [`InvokeError`] / [`ErrorKind`].

use std::fmt;
use std::time::Duration;

use crate::bindings::{Content, Error, Interface, log::Level};

/// Everything the host learns from one invocation. Built even when the guest misbehaves.
#[derive(Debug, Clone)]
pub struct InvocationReport {
    /// The reply (`Ok(None)`: the app stayed silent) or why the invocation failed.
    pub outcome: Result<Option<Content>, InvokeError>,
    /// The event kind (`command`, `message`, `action`, `opened`, `payment`).
    pub event: &'static str,
    /// Wall time from getting an execution slot until the guest returned or was stopped (the
    /// deadline runs from the same start).
    pub duration: Duration,
    /// Time spent waiting for an execution slot in the admission queue.
    pub queued: Duration,
    /// Fuel used by instantiation and `handle`. Exact for invocations that return or run out of
    /// fuel; for one stopped by its deadline, wasmtime 48 counts only up to the guest's last call
    /// or function boundary (the epoch check does not flush the fuel counter), so it is a lower
    /// bound.
    pub fuel_consumed: u64,
    /// Every capability call, in order.
    pub calls: Vec<CapabilityCall>,
    /// Lines the app logged (see the log capability for its bounds).
    pub logs: Vec<LogLine>,
    /// Log lines dropped because a bound was reached.
    pub logs_dropped: u32,
    /// What the guest wrote to stdout (lossy UTF-8, bounded).
    pub stdout: String,
    /// What the guest wrote to stderr (lossy UTF-8, bounded); a Rust guest's panic message
    /// lands here.
    pub stderr: String,
    /// Whether stdout or stderr was cut at [`Limits::max_stdio_bytes`](crate::Limits).
    pub stdio_truncated: bool,
}

impl InvocationReport {
    /// The error kind, if the invocation failed.
    pub fn error_kind(&self) -> Option<&ErrorKind> {
        self.outcome.as_ref().err().map(|e| &e.kind)
    }
}

/// One capability call made by the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityCall {
    /// The interface called.
    pub interface: Interface,
    /// The function called (`send`, `get`, ...).
    pub function: &'static str,
    /// What came of it.
    pub outcome: CallOutcome,
    /// Host time spent in the call.
    pub duration: Duration,
}

/// What came of one capability call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call was allowed and succeeded.
    Ok,
    /// The scope named was not granted; the guest got `error::permission-denied`.
    Denied(String),
    /// The call was allowed but returned this typed error to the guest (including
    /// `unavailable` when no capability is wired for the interface).
    Failed(Error),
    /// The runtime stopped the invocation during this call (too many calls, deadline).
    Aborted(ErrorKind),
}

impl CallOutcome {
    /// A short stable string: `ok`, `denied`, the WIT error kind, or `aborted`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Denied(_) => "denied",
            CallOutcome::Failed(e) => e.kind(),
            CallOutcome::Aborted(_) => "aborted",
        }
    }
}

/// One line of the app's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

impl LogLine {
    /// The level's name: `trace`, `debug`, `info`, `warn` or `error`.
    pub fn level_name(&self) -> &'static str {
        match self.level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Why an invocation failed: a kind to match on and a message for the developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct InvokeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Details for the developer's log (never shown to end users as is).
    pub message: String,
}

impl InvokeError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> InvokeError {
        InvokeError {
            kind,
            message: message.into(),
        }
    }
}

/// The kind of an [`InvokeError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The invocation ran past its deadline (guest loop, slow host call, guest sleeping).
    Timeout,
    /// The guest used up its fuel budget.
    FuelExhausted,
    /// The guest tried to grow its memory past the cap.
    MemoryLimit,
    /// The guest exceeded a table, instance or memory-count limit.
    ResourceLimit,
    /// The guest recursed past the wasm stack limit.
    StackOverflow,
    /// The guest trapped: a Rust panic, `unreachable`, an out-of-bounds access, ...
    Trap,
    /// The reply was larger than [`Limits::max_output_bytes`](crate::Limits).
    OutputTooLarge,
    /// The guest passed more bytes to the host in one call (arguments or reply) than
    /// [`Limits::max_call_bytes`](crate::Limits) allows: stopped while copying, before the host
    /// allocated the data.
    DataLimit,
    /// The guest made more capability calls than [`Limits::max_calls`](crate::Limits).
    TooManyCalls,
    /// No instance slot or concurrency permit freed up before the deadline.
    Busy,
    /// The component could not be linked or instantiated against the world.
    Link,
    /// The handler returned this error.
    App(Error),
    /// A bug or resource failure in the host.
    Internal,
}

impl ErrorKind {
    /// A short stable string for logs and exit messages (`timeout`, `memory_limit`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::FuelExhausted => "fuel_exhausted",
            ErrorKind::MemoryLimit => "memory_limit",
            ErrorKind::ResourceLimit => "resource_limit",
            ErrorKind::StackOverflow => "stack_overflow",
            ErrorKind::Trap => "trap",
            ErrorKind::OutputTooLarge => "output_too_large",
            ErrorKind::DataLimit => "data_limit",
            ErrorKind::TooManyCalls => "too_many_calls",
            ErrorKind::Busy => "busy",
            ErrorKind::Link => "link",
            ErrorKind::App(_) => "app_error",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
