//! Bounds on compiling components. Every compile, in this process or not, first takes one of
//! [`CompileConfig::max_concurrent`] slots, so uploads cannot take every core. Cranelift cannot
//! be interrupted in-process, so a hard bound on time and memory needs another process: with a
//! [`CompileWorker`] configured, each compile runs in a child (the `minihost` binary's hidden
//! `__compile` command, which calls [`compile_worker_main`]) that limits its own address space
//! and CPU time before it reads the component, compiles on one thread with the runtime's engine
//! settings, and writes the serialized artefact to stdout; the parent kills it at the
//! wall-clock deadline.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy};

use crate::config::RuntimeConfig;
use crate::runtime::{LoadError, engine_config};

/// Default wall-clock bound of one compile in a worker: 60 s.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default address-space bound of a compile worker: 2 GiB.
pub const DEFAULT_COMPILE_MEMORY_BYTES: u64 = 2 << 30;

/// How components are compiled, and within which bounds.
///
/// | knob | default | bounds |
/// |---|---|---|
/// | `max_concurrent` | one per two cores (at least one) | compiles at once, in or out of process |
/// | `worker` | `None` (compile in this process) | with a worker: time and memory below |
/// | `timeout` | 60 s | a worker's wall-clock time (then it is killed), its CPU time (RLIMIT_CPU, plus 1 s), and the wait for a slot |
/// | `memory_bytes` | 2 GiB | a worker's address space (RLIMIT_AS) |
///
/// In this process (no worker) a compile is bounded only by the slots: it runs to the end.
/// That is the mode of tests and the developer's simulator; a server turns the worker on.
#[derive(Debug, Clone)]
pub struct CompileConfig {
    /// Most compiles at once. A load that finds every slot taken waits up to `timeout`, then
    /// fails with [`LoadError::Busy`].
    pub max_concurrent: usize,
    /// Compile in a child process (`None`: in this process).
    pub worker: Option<CompileWorker>,
    /// Wall-clock bound of one compile in a worker, and of the wait for a compile slot.
    pub timeout: Duration,
    /// Address-space bound of a worker, in bytes.
    pub memory_bytes: u64,
}

impl Default for CompileConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        CompileConfig {
            max_concurrent: (cores / 2).max(1),
            worker: None,
            timeout: DEFAULT_COMPILE_TIMEOUT,
            memory_bytes: DEFAULT_COMPILE_MEMORY_BYTES,
        }
    }
}

/// The program run as a compile worker: `program args… <engine settings>`. It must end up
/// calling [`compile_worker_main`] with the arguments after `args`.
#[derive(Debug, Clone)]
pub struct CompileWorker {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the engine settings (e.g. `["__compile"]`).
    pub args: Vec<OsString>,
}

impl CompileWorker {
    /// This executable, run with `args` (the `minihost` binary uses `["__compile"]`).
    pub fn current_exe<I, S>(args: I) -> std::io::Result<CompileWorker>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Ok(CompileWorker {
            program: std::env::current_exe()?,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        })
    }
}

/// A counting semaphore for blocking code (`Runtime::load` is synchronous).
pub(crate) struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One taken slot; dropping it frees the slot.
pub(crate) struct Slot<'a> {
    slots: &'a Slots,
}

impl Slots {
    pub(crate) fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting up to `wait` for one to be freed.
    pub(crate) fn acquire(&self, wait: Duration) -> Option<Slot<'_>> {
        let deadline = Instant::now() + wait;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            free = self
                .freed
                .wait_timeout(free, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= 1;
        Some(Slot { slots: self })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.slots.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.slots.freed.notify_one();
    }
}

/// Exit code of a worker whose input is not a valid component (the reason is on stderr).
const EXIT_INVALID: u8 = 2;
/// Exit code of a worker that could not do its job for another reason (stderr says why).
const EXIT_FAILED: u8 = 3;
/// Most bytes of a worker's stderr kept for the error message.
const MAX_STDERR: u64 = 8 << 10;

/// The engine settings and bounds a worker is given on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WorkerArgs {
    max_instances: u32,
    max_memory_bytes: usize,
    max_wasm_stack: usize,
    table_elements: usize,
    wasm_backtrace_frames: usize,
    max_component_bytes: usize,
    memory_bytes: u64,
    cpu_seconds: u64,
}

impl WorkerArgs {
    fn of(config: &RuntimeConfig) -> WorkerArgs {
        WorkerArgs {
            max_instances: config.max_instances,
            max_memory_bytes: config.max_memory_bytes,
            max_wasm_stack: config.max_wasm_stack,
            table_elements: config.limits.table_elements,
            wasm_backtrace_frames: config.wasm_backtrace_frames,
            max_component_bytes: config.max_component_bytes,
            memory_bytes: config.compile.memory_bytes,
            // Rounded up, plus a second: the wall clock normally stops the worker first.
            cpu_seconds: config.compile.timeout.as_secs() + 2,
        }
    }

    fn to_args(self) -> Vec<String> {
        vec![
            format!("max-instances={}", self.max_instances),
            format!("max-memory-bytes={}", self.max_memory_bytes),
            format!("max-wasm-stack={}", self.max_wasm_stack),
            format!("table-elements={}", self.table_elements),
            format!("wasm-backtrace-frames={}", self.wasm_backtrace_frames),
            format!("max-component-bytes={}", self.max_component_bytes),
            format!("memory-bytes={}", self.memory_bytes),
            format!("cpu-seconds={}", self.cpu_seconds),
        ]
    }

    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<WorkerArgs, String> {
        let mut values = std::collections::HashMap::new();
        for arg in args {
            let arg = arg
                .into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("argument {arg:?} is not key=value"))?;
            let value: u64 = value
                .parse()
                .map_err(|_| format!("argument {arg:?} is not a number"))?;
            values.insert(key.to_owned(), value);
        }
        let get = |key: &str| {
            values
                .get(key)
                .copied()
                .ok_or_else(|| format!("missing argument {key}=N"))
        };
        let size = |key: &str| {
            get(key).and_then(|v| usize::try_from(v).map_err(|_| format!("{key} is too large")))
        };
        Ok(WorkerArgs {
            max_instances: u32::try_from(get("max-instances")?)
                .map_err(|_| "max-instances is too large".to_owned())?,
            max_memory_bytes: size("max-memory-bytes")?,
            max_wasm_stack: size("max-wasm-stack")?,
            table_elements: size("table-elements")?,
            wasm_backtrace_frames: size("wasm-backtrace-frames")?,
            max_component_bytes: size("max-component-bytes")?,
            memory_bytes: get("memory-bytes")?,
            cpu_seconds: get("cpu-seconds")?,
        })
    }

    /// The runtime configuration whose engine settings these are.
    fn runtime_config(self) -> RuntimeConfig {
        let mut config = RuntimeConfig {
            max_instances: self.max_instances,
            max_memory_bytes: self.max_memory_bytes,
            max_wasm_stack: self.max_wasm_stack,
            wasm_backtrace_frames: self.wasm_backtrace_frames,
            max_component_bytes: self.max_component_bytes,
            ..RuntimeConfig::default()
        };
        config.limits.table_elements = self.table_elements;
        config
    }
}

/// The engine a worker compiles with: the runtime's settings (so the artefact deserializes in
/// the parent; wasmtime checks it), without the instance pool (a worker instantiates nothing,
/// and the pool's reservation would not fit under its address-space bound), on one thread
/// (so one compile takes one core).
fn worker_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut c = engine_config(config);
    c.allocation_strategy(InstanceAllocationStrategy::OnDemand)
        .parallel_compilation(false);
    Engine::new(&c)
}

/// Entry point of a compile worker process, given the arguments after the worker's own
/// (`minihost __compile <these>`). Limits its own address space and CPU time first, then reads
/// a component from stdin, compiles it, and writes the serialized artefact to stdout.
///
/// Exit status: 0 with the artefact on stdout; 2 when the component does not compile (the
/// reason on stderr); 3 on any other failure; killed by a signal when over a bound.
pub fn compile_worker_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match worker(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            ExitCode::from(code)
        }
    }
}

fn worker(args: impl IntoIterator<Item = OsString>) -> Result<(), (u8, String)> {
    let failed = |what: &str, e: &dyn std::fmt::Display| (EXIT_FAILED, format!("{what}: {e}"));
    // Die with the thread that started us: nothing may outlive the compile it was asked for.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| failed("setting the parent-death signal", &e))?;
    let args = WorkerArgs::parse(args).map_err(|e| (EXIT_FAILED, e))?;
    limit_self(&args).map_err(|e| failed("limiting the worker", &e))?;
    let mut wasm = Vec::new();
    std::io::stdin()
        .lock()
        .take(args.max_component_bytes as u64 + 1)
        .read_to_end(&mut wasm)
        .map_err(|e| failed("reading the component", &e))?;
    if wasm.len() > args.max_component_bytes {
        return Err((
            EXIT_INVALID,
            format!(
                "component is over the limit of {} bytes",
                args.max_component_bytes
            ),
        ));
    }
    let engine = worker_engine(&args.runtime_config())
        .map_err(|e| failed("building the engine", &format!("{e:#}")))?;
    let component = Component::new(&engine, &wasm).map_err(|e| (EXIT_INVALID, format!("{e:#}")))?;
    let artefact = component
        .serialize()
        .map_err(|e| failed("serializing", &format!("{e:#}")))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&artefact)
        .and_then(|()| out.flush())
        .map_err(|e| failed("writing the artefact", &e))
}

/// Sets the worker's own resource limits: address space, CPU seconds (soft: SIGXCPU, hard one
/// second later: SIGKILL), and no core files.
fn limit_self(args: &WorkerArgs) -> std::io::Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let limit = |resource, soft: u64, hard: u64| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            },
        )
    };
    limit(Resource::As, args.memory_bytes, args.memory_bytes)?;
    limit(Resource::Cpu, args.cpu_seconds, args.cpu_seconds + 1)?;
    limit(Resource::Core, 0, 0)?;
    Ok(())
}

/// Compiles `wasm` in a worker process under `config.compile`'s bounds; returns the serialized
/// artefact.
pub(crate) fn compile_in_worker(
    worker: &CompileWorker,
    config: &RuntimeConfig,
    wasm: &[u8],
) -> Result<Vec<u8>, LoadError> {
    let bounds = &config.compile;
    let started = Instant::now();
    let mut child = Command::new(&worker.program)
        .args(&worker.args)
        .args(WorkerArgs::of(config).to_args())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            LoadError::Worker(format!(
                "could not start the compile worker {}: {e}",
                worker.program.display()
            ))
        })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (status, artefact, errors) = std::thread::scope(|s| {
        // Each pipe has its own thread, so a full pipe never stalls the wait below; when the
        // worker exits or is killed, every pipe closes and every thread ends.
        s.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(wasm);
            }
        });
        let out = s.spawn(move || read_bounded(stdout, bounds.memory_bytes));
        let err = s.spawn(move || read_bounded(stderr, MAX_STDERR));
        let status = wait_until(&mut child, started + bounds.timeout);
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        (status, out, err)
    });
    let errors = String::from_utf8_lossy(&errors.0).trim().to_owned();
    let status = status.map_err(|e| LoadError::Worker(format!("waiting for the worker: {e}")))?;
    classify(status, artefact, errors, config)
}

/// What the worker's exit means.
fn classify(
    status: Option<ExitStatus>,
    (artefact, overflow): (Vec<u8>, bool),
    errors: String,
    config: &RuntimeConfig,
) -> Result<Vec<u8>, LoadError> {
    use std::os::unix::process::ExitStatusExt;
    let bounds = &config.compile;
    let too_slow = || {
        LoadError::CompileLimit(format!(
            "compiling took longer than the limit of {} s",
            bounds.timeout.as_secs_f32()
        ))
    };
    let too_big = || {
        LoadError::CompileLimit(format!(
            "compiling needed more than the limit of {} MiB of memory",
            bounds.memory_bytes >> 20
        ))
    };
    let Some(status) = status else {
        return Err(too_slow());
    };
    match (status.code(), status.signal()) {
        (Some(0), _) if overflow => Err(too_big()),
        (Some(0), _) => Ok(artefact),
        (Some(code), _) if code == i32::from(EXIT_INVALID) => Err(LoadError::Invalid(errors)),
        (_, Some(signal)) if signal == rustix::process::Signal::XCPU.as_raw() => Err(too_slow()),
        // Rust reports a failed allocation on stderr, then aborts.
        _ if errors.contains("memory allocation") => Err(too_big()),
        (_, Some(signal)) => Err(LoadError::Worker(format!(
            "the compile worker died of signal {signal} (memory limit {} MiB): {errors}",
            bounds.memory_bytes >> 20
        ))),
        (code, None) => Err(LoadError::Worker(format!(
            "the compile worker failed (exit {code:?}): {errors}"
        ))),
    }
}

/// Reads up to `max` bytes, then drains (and drops) the rest; `true` when there was more.
fn read_bounded(pipe: Option<impl Read>, max: u64) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let _ = (&mut pipe).take(max).read_to_end(&mut kept);
    let rest = std::io::copy(&mut pipe, &mut std::io::sink()).unwrap_or(0);
    (kept, rest > 0)
}

/// Waits for `child` until `deadline`; past it, kills it and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_args_round_trip() {
        let config = RuntimeConfig {
            max_instances: 7,
            max_wasm_stack: 1 << 19,
            ..RuntimeConfig::default()
        };
        let args = WorkerArgs::of(&config);
        let parsed = WorkerArgs::parse(args.to_args().into_iter().map(OsString::from)).unwrap();
        assert_eq!(parsed, args);
        let back = parsed.runtime_config();
        assert_eq!(back.max_instances, 7);
        assert_eq!(back.max_wasm_stack, 1 << 19);
        assert_eq!(back.limits.table_elements, config.limits.table_elements);
        assert!(WorkerArgs::parse([OsString::from("max-instances=x")]).is_err());
        assert!(WorkerArgs::parse([OsString::from("max-instances=1")]).is_err());
    }

    #[test]
    fn slots_bound_concurrency() {
        let slots = Slots::new(2);
        let a = slots.acquire(Duration::ZERO).unwrap();
        let _b = slots.acquire(Duration::ZERO).unwrap();
        assert!(slots.acquire(Duration::ZERO).is_none());
        drop(a);
        assert!(slots.acquire(Duration::ZERO).is_some());
    }
}
