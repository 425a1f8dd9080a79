//! The data of one invocation's `Store`: an empty WASI context with captured stdio, the
//! resource limiter, the registered capabilities, and [`InvocationData`] (the invocation, its
//! deadline and limits, and the report being filled in).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::log::Level;
use crate::capability::Registry;
use crate::config::Limits;
use crate::invocation::{Extensions, Invocation};
use crate::report::{CapabilityCall, ErrorKind, LogLine};

/// A reason the runtime stops a guest, raised as a trap and recognised when classifying the
/// error (see `Runtime::invoke`).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Fault {
    #[error("the invocation ran past its deadline of {0:?}")]
    Timeout(Duration),
    #[error("the app tried to grow its memory to {desired} bytes, over its cap of {cap} bytes")]
    Memory { desired: usize, cap: usize },
    #[error("the app tried to grow a table to {desired} elements, over the limit of {cap}")]
    Table { desired: usize, cap: usize },
    #[error("the app made more than {0} capability calls in one invocation")]
    TooManyCalls(u32),
}

impl Fault {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Fault::Timeout(_) => ErrorKind::Timeout,
            Fault::Memory { .. } => ErrorKind::MemoryLimit,
            Fault::Table { .. } => ErrorKind::ResourceLimit,
            Fault::TooManyCalls(_) => ErrorKind::TooManyCalls,
        }
    }
}

/// The part of the store data a capability may see: the invocation, its deadline and limits,
/// and the report being built. Reached through [`CapabilityCx`](crate::CapabilityCx).
pub struct InvocationData {
    pub(crate) invocation: Invocation,
    pub(crate) deadline: Instant,
    pub(crate) limits: Limits,
    pub(crate) calls: Vec<CapabilityCall>,
    pub(crate) calls_made: u32,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) logs_dropped: u32,
    pub(crate) fault: Option<Fault>,
}

impl InvocationData {
    /// The invocation (app, user, conversation, locale, grant).
    pub fn invocation(&self) -> &Invocation {
        &self.invocation
    }

    /// Per-invocation typed data put there by the host or by capabilities.
    pub fn extensions(&self) -> &Extensions {
        &self.invocation.extensions
    }

    /// Per-invocation typed data, mutably.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.invocation.extensions
    }

    /// When the invocation must end.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Log lines recorded so far.
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// Appends a line to the report's log (the log capability bounds count and size).
    pub fn push_log(&mut self, level: Level, message: String) {
        self.logs.push(LogLine { level, message });
    }

    /// Counts a log line dropped by a bound.
    pub fn count_dropped_log(&mut self) {
        self.logs_dropped = self.logs_dropped.saturating_add(1);
    }
}

/// The data of one invocation's `Store`. Capabilities reach it through the getter they pass to
/// their interface's `add_to_linker`, via [`StoreState::capability`].
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) registry: Arc<Registry>,
    pub(crate) data: InvocationData,
}

impl StoreState {
    pub(crate) fn new(
        registry: Arc<Registry>,
        invocation: Invocation,
        limits: Limits,
        deadline: Instant,
        stdout: &Capture,
        stderr: &Capture,
    ) -> StoreState {
        // An empty WASI context: no preopened directories, no sockets or name lookup, no
        // environment or arguments, stdin empty, stdout/stderr captured (bounded).
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        StoreState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                limits,
                memory_denied: false,
            },
            registry,
            data: InvocationData {
                invocation,
                deadline,
                limits,
                calls: Vec::new(),
                calls_made: 0,
                logs: Vec::new(),
                logs_dropped: 0,
                fault: None,
            },
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces [`Limits`] on memories, tables and instance counts. Growing past a cap traps
/// (like `trap_on_grow_failure`) with a [`Fault`] the runtime recognises.
pub(crate) struct Limiter {
    limits: Limits,
    pub(crate) memory_denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.memory_denied = true;
            return Err(wasmtime::Error::new(Fault::Memory {
                desired,
                cap: self.limits.memory_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            return Err(wasmtime::Error::new(Fault::Table {
                desired,
                cap: self.limits.table_elements,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// A bounded in-memory stdout/stderr: keeps the first `cap` bytes, drops the rest and remembers
/// it did. Unlike wasmtime-wasi's `MemoryOutputPipe`, a full buffer never traps the guest.
#[derive(Clone)]
pub(crate) struct Capture {
    inner: Arc<Mutex<CaptureBuf>>,
}

struct CaptureBuf {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Capture {
        Capture {
            inner: Arc::new(Mutex::new(CaptureBuf {
                bytes: Vec::new(),
                cap,
                truncated: false,
            })),
        }
    }

    /// The captured text (lossy UTF-8) and whether it was cut.
    pub(crate) fn take(&self) -> (String, bool) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = std::mem::take(&mut buf.bytes);
        (String::from_utf8_lossy(&bytes).into_owned(), buf.truncated)
    }

    fn append(&self, data: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = buf.cap.saturating_sub(buf.bytes.len());
        if data.len() > room {
            buf.truncated = true;
        }
        let keep = data.len().min(room);
        buf.bytes.extend_from_slice(&data[..keep]);
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_first_bytes_and_flags_the_cut() {
        let c = Capture::new(5);
        c.append(b"abc");
        assert_eq!(c.take(), ("abc".to_string(), false));
        c.append(b"abcdefgh");
        assert_eq!(c.take(), ("abcde".to_string(), true));
    }
}
