//! Runtime configuration: engine-wide settings ([`RuntimeConfig`]) and the per-invocation
//! bounds every sandbox gets ([`Limits`]).

use std::path::PathBuf;

use crate::executor::ExecutorConfig;
use std::time::Duration;

use crate::compile::CompileConfig;

/// Fuel per millisecond of an invocation's time budget, by default. Fuel bounds an invocation's
/// work even when the epoch thread that enforces deadlines gets no CPU; this rate is about twice
/// what a tight wasm loop burns per millisecond on the benchmark machine (BENCHMARKS.md,
/// "Fuel"), so the deadline stays the usual bound and fuel the backstop.
pub const FUEL_PER_MS: u64 = 40_000_000;

/// Bounds applied to one invocation's store. The defaults suit a chat reply: 32 MiB of memory,
/// 200 ms of wall time, fuel for that time ([`FUEL_PER_MS`]), 1 000 capability calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes. Growing past it traps (reported as
    /// [`ErrorKind::MemoryLimit`](crate::ErrorKind::MemoryLimit)). Clamped to
    /// [`RuntimeConfig::max_memory_bytes`].
    pub memory_bytes: usize,
    /// Wall-clock budget for instantiation plus `handle`, including host calls.
    pub deadline: Duration,
    /// Fuel budget (roughly one unit per wasm instruction); the fuel used is reported. The
    /// default is [`FUEL_PER_MS`] per millisecond of `deadline`; [`Limits::with_deadline`]
    /// keeps that rate when the deadline changes.
    pub fuel: u64,
    /// Most elements in any one table.
    pub table_elements: usize,
    /// Most core instances the component may create.
    pub instances: usize,
    /// Most tables the component may create.
    pub tables: usize,
    /// Most linear memories the component may create.
    pub memories: usize,
    /// Most capability calls in one invocation; one more traps with
    /// [`ErrorKind::TooManyCalls`](crate::ErrorKind::TooManyCalls).
    pub max_calls: u32,
    /// Most bytes passed into or returned from one capability call; larger calls get
    /// `error::invalid`.
    pub max_call_bytes: usize,
    /// Largest reply `handle` may return, in bytes of text; larger is
    /// [`ErrorKind::OutputTooLarge`](crate::ErrorKind::OutputTooLarge).
    pub max_output_bytes: usize,
    /// Bytes of stdout and of stderr kept in the report (the rest is dropped).
    pub max_stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 << 20,
            deadline: Duration::from_millis(200),
            fuel: FUEL_PER_MS * 200,
            table_elements: 20_000,
            instances: 32,
            tables: 32,
            memories: 4,
            max_calls: 1_000,
            max_call_bytes: 1 << 20,
            max_output_bytes: 64 << 10,
            max_stdio_bytes: 16 << 10,
        }
    }
}

impl Limits {
    /// These limits with time budget `deadline` and the fuel for it at the current rate
    /// (fuel per millisecond of the current deadline).
    pub fn with_deadline(self, deadline: Duration) -> Limits {
        let per_ms = self.fuel / duration_ms(self.deadline).max(1);
        Limits {
            deadline,
            fuel: per_ms.saturating_mul(duration_ms(deadline).max(1)),
            ..self
        }
    }

    /// These limits with `per_ms` fuel per millisecond of their deadline.
    pub fn with_fuel_per_ms(self, per_ms: u64) -> Limits {
        Limits {
            fuel: per_ms.saturating_mul(duration_ms(self.deadline).max(1)),
            ..self
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Default bound of the compiled-component cache: 512 MiB.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 512 << 20;

/// Engine-wide settings, fixed when the [`Runtime`](crate::Runtime) is built.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: compile on every fresh runtime). The
    /// directory is opened once, when the runtime is built, and every cache file is reached
    /// through that handle only (`cap_std::fs::Dir`).
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache directory may hold (default 512 MiB). Past it, the artefacts used
    /// least recently (by this cache's own record, not the filesystem's atime) are deleted.
    pub cache_max_bytes: u64,
    /// Bounds on compiling: how many at once, and whether in a bounded child process
    /// (see [`CompileConfig`]).
    pub compile: CompileConfig,
    /// Default bounds of each invocation (an [`Invocation`](crate::Invocation) may override).
    pub limits: Limits,
    /// Most instances alive at once, over all apps (the pooling allocator's slot count).
    /// Invocations beyond it wait for a slot until their deadline. Each slot that has run a
    /// guest keeps up to 7 MiB resident (4 MiB of linear memory, 1 MiB of tables, 2 MiB of
    /// async stack: the keep-resident settings), so this also bounds the memory the pool holds
    /// after any burst, memory bombs included: about `7 MiB x max_instances` (plus, per slot,
    /// the mapping of the copy-on-write image it last ran, whose untouched pages are the page
    /// cache's, shared by every slot of that component).
    pub max_instances: u32,
    /// The largest memory any invocation may be allowed (each pool slot reserves it).
    pub max_memory_bytes: usize,
    /// Most concurrent invocations of one app; more wait until their deadline.
    pub max_concurrency_per_app: usize,
    /// Period of the epoch ticker thread: the granularity of deadlines.
    pub epoch_tick: Duration,
    /// Native stack a guest may use; deeper recursion traps with
    /// [`ErrorKind::StackOverflow`](crate::ErrorKind::StackOverflow).
    pub max_wasm_stack: usize,
    /// Wasm frames captured in a trap's message. 0 (the default) captures none, which keeps
    /// traps cheap; a developer tool may ask for a few.
    pub wasm_backtrace_frames: usize,
    /// Largest component accepted by [`Runtime::load`](crate::Runtime::load), in bytes.
    pub max_component_bytes: usize,
    /// The longest deadline any invocation gets, whatever it asks for: the operator's cap on
    /// manifest timeouts.
    pub max_deadline: Duration,
    /// Guest execution on dedicated threads behind an admission queue (`None`: on the caller's
    /// async threads, unqueued; for benchmarks and the local simulator).
    pub executor: Option<ExecutorConfig>,
}

impl RuntimeConfig {
    /// How far past its deadline an invocation that holds a slot may run: five epoch ticks
    /// (50 ms by default). The epoch check stops wasm on the first tick past the deadline; the
    /// outer timeout, which also bounds host calls, fires three ticks past it; two more ticks
    /// allow for the guest thread being scheduled late on a busy machine (guest threads run at
    /// a lower priority than the messenger's).
    pub fn deadline_slack(&self) -> Duration {
        self.epoch_tick * 5
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            compile: CompileConfig::default(),
            limits: Limits::default(),
            max_instances: 128,
            max_memory_bytes: 64 << 20,
            max_concurrency_per_app: 16,
            epoch_tick: Duration::from_millis(10),
            max_wasm_stack: 512 << 10,
            wasm_backtrace_frames: 0,
            max_component_bytes: 32 << 20,
            max_deadline: Duration::from_secs(2),
            executor: None,
        }
    }
}

#[cfg(test)]
mod fuel_tests {
    use super::*;

    #[test]
    fn fuel_follows_the_time_budget() {
        let d = Limits::default();
        assert_eq!(d.fuel, FUEL_PER_MS * 200);
        let long = d.with_deadline(Duration::from_millis(2_000));
        assert_eq!(long.fuel, FUEL_PER_MS * 2_000);
        assert_eq!(long.deadline, Duration::from_millis(2_000));
        let slow = d
            .with_fuel_per_ms(1_000)
            .with_deadline(Duration::from_millis(50));
        assert_eq!(slow.fuel, 50_000);
    }
}
