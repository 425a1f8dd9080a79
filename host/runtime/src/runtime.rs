//! [`Runtime`]: the one wasmtime `Engine` (pooling allocator, copy-on-write memory images reset
//! by dirty page, epoch ticker), loading components into [`LoadedApp`]s (checked before compiling, compiled
//! within bounds, disk cache, pre-linked `InstancePre`), and invoking them in a fresh bounded
//! store per event.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Store, Strategy,
    Trap, UpdateDeadline, WasmBacktraceDetails,
};

use crate::bindings::{ByteSize, Event, Interface, MiniappPre};
use crate::cache::{DiskCache, content_hash, deserialize, parse_hash};
use crate::capability::{Capability, Registry, add_missing_to_linker};
use crate::compile::{Slots, compile_in_worker};
use crate::config::{Limits, RuntimeConfig};
use crate::executor::{Executor, ExecutorLoad};
use crate::inspect::inspect;
use crate::invocation::Invocation;
use crate::report::{ErrorKind, InvocationReport, InvokeError};
use crate::state::{Capture, Fault, StoreState};

/// Why a [`Runtime`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Two capabilities were registered for one interface.
    #[error("two capabilities registered for interface `{0}`")]
    DuplicateCapability(Interface),
    /// wasmtime rejected the engine configuration (e.g. the pool could not be reserved).
    #[error("engine configuration rejected: {0}")]
    Engine(String),
    /// Linking the world's imports failed.
    #[error("linking the host interfaces failed: {0}")]
    Link(String),
}

/// Why a component could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are larger than [`RuntimeConfig::max_component_bytes`].
    #[error("component is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid component (or not one wasmtime can compile).
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component imports something the host does not provide, or does not export
    /// `handle` with the world's signature.
    #[error("component does not link against the miniapp world: {message}")]
    Link {
        /// The offending import, when wasmtime names one.
        import: Option<String>,
        /// wasmtime's explanation.
        message: String,
    },
    /// Compiling went over a bound of [`CompileConfig`](crate::CompileConfig) (time or memory)
    /// and was stopped.
    #[error("{0}")]
    CompileLimit(String),
    /// Every compile slot stayed taken for as long as a load may wait: try again later.
    #[error("{0}")]
    Busy(String),
    /// The compile worker could not be run (a fault of the host, not of the component).
    #[error("compile worker: {0}")]
    Worker(String),
}

/// Where a [`LoadedApp`]'s compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOrigin {
    /// Compiled from the wasm bytes.
    Compiled,
    /// Deserialized from the disk cache.
    DiskCache,
    /// Shared with an app already loaded in this runtime.
    Memory,
}

/// A compiled, pre-linked component: one per app version. Cheap to share; every invocation
/// instantiates it afresh.
pub struct LoadedApp {
    hash: [u8; 32],
    pre: MiniappPre<StoreState>,
    imports: Vec<String>,
    origin: LoadOrigin,
    permits: Arc<Semaphore>,
}

impl LoadedApp {
    /// The hex sha256 of the component bytes.
    pub fn content_hash(&self) -> String {
        hex::encode(self.hash)
    }

    /// The names of everything the component imports (e.g. `minihost:app/messaging@0.2.0`,
    /// `wasi:cli/stdout@0.2.6`), for static checks against a manifest.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The world interfaces the component imports.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.imports
            .iter()
            .filter_map(|i| Interface::from_import(i))
            .collect()
    }

    /// Where the compiled code came from.
    pub fn origin(&self) -> LoadOrigin {
        self.origin
    }

    /// Another handle on the same compiled component (cheap: the code is shared).
    fn share(&self, origin: LoadOrigin) -> LoadedApp {
        LoadedApp {
            hash: self.hash,
            pre: self.pre.clone(),
            imports: self.imports.clone(),
            origin,
            permits: self.permits.clone(),
        }
    }
}

impl std::fmt::Debug for LoadedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedApp")
            .field("hash", &self.content_hash())
            .field("imports", &self.imports)
            .field("origin", &self.origin)
            .finish()
    }
}

/// Builds a [`Runtime`]: configuration plus one `.with(capability)` per wired interface.
///
/// ```no_run
/// # use minihost_runtime::{RuntimeBuilder, RuntimeConfig};
/// # fn demo() -> Result<(), minihost_runtime::BuildError> {
/// let runtime = RuntimeBuilder::new(RuntimeConfig::default())
///     // .with(MessagingCapability::new(..))
///     .build()?;
/// # Ok(()) }
/// ```
pub struct RuntimeBuilder {
    config: RuntimeConfig,
    registry: Registry,
    linkers: Vec<(Interface, LinkFn)>,
    duplicate: Option<Interface>,
}

type LinkFn = fn(&mut Linker<StoreState>) -> wasmtime::Result<()>;

impl RuntimeBuilder {
    /// A builder with no capability (every interface answers `unavailable`).
    pub fn new(config: RuntimeConfig) -> RuntimeBuilder {
        RuntimeBuilder {
            config,
            registry: Registry::default(),
            linkers: Vec::new(),
            duplicate: None,
        }
    }

    /// Wires `capability` in for its interface.
    pub fn with<C: Capability>(mut self, capability: C) -> RuntimeBuilder {
        if !self.registry.insert(C::INTERFACE, Arc::new(capability)) {
            self.duplicate.get_or_insert(C::INTERFACE);
        }
        self.linkers.push((C::INTERFACE, C::add_to_linker));
        self
    }

    /// Builds the engine (and its epoch ticker thread) and links every interface.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if let Some(i) = self.duplicate {
            return Err(BuildError::DuplicateCapability(i));
        }
        let config = self.config;
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| BuildError::Engine(format!("{e:#}")))?;
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| BuildError::Link(format!("{e:#}")))?;
        for (interface, link) in &self.linkers {
            link(&mut linker).map_err(|e| BuildError::Link(format!("{interface}: {e:#}")))?;
        }
        for interface in Interface::ALL {
            if !self.registry.has(interface) {
                add_missing_to_linker(&mut linker, interface)
                    .map_err(|e| BuildError::Link(format!("{interface}: {e:#}")))?;
            }
        }
        let cache = match &config.cache_dir {
            Some(dir) => match DiskCache::new(dir, &engine, config.cache_max_bytes) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "component cache disabled");
                    None
                }
            },
            None => None,
        };
        spawn_epoch_ticker(&engine, config.epoch_tick);
        let slots = config.max_instances as usize;
        let executor = match &config.executor {
            Some(c) => Some(
                Executor::new(c.clone())
                    .map_err(|e| BuildError::Engine(format!("guest threads: {e}")))?,
            ),
            None => None,
        };
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                registry: Arc::new(self.registry),
                cache,
                slots: Arc::new(Semaphore::new(slots)),
                compile_slots: Slots::new(config.compile.max_concurrent),
                compiles: AtomicU64::new(0),
                loaded: Mutex::new(HashMap::new()),
                executor,
                config,
            }),
        })
    }
}

/// The engine's configuration. Compile workers build theirs with this same function from the
/// settings on their command line (`compile.rs`, `WorkerArgs`): a field read here must be passed
/// there too, or their artefacts will not deserialize.
pub(crate) fn engine_config(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(config.max_wasm_stack)
        // Fiber stacks for async calls hold the wasm stack plus host frames.
        .async_stack_size(config.max_wasm_stack + (1 << 20))
        // Copy-on-write memory images: a slot keeps the image of the component it last ran
        // mapped, so a fresh instance of a large initialised heap (a JavaScript app's 9 MiB)
        // copies nothing. Resetting a slot restores only the pages the guest dirtied (found by
        // the PAGEMAP_SCAN ioctl, Linux 6.7+) from the image by memcpy, up to the keep-resident
        // size below, so steady state does no madvise/mprotect: no TLB shootdowns serialising
        // the cores (BENCHMARKS.md, "Sandbox runtime" and "JavaScript apps"). Each fresh
        // instance still starts from the component's initial memory.
        .memory_init_cow(true)
        .wasm_backtrace_max_frames(NonZeroUsize::new(config.wasm_backtrace_frames))
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    let slots = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(16))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(8))
        .total_stacks(slots)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(config.max_memory_bytes)
        .table_elements(config.limits.table_elements.max(20_000))
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(2 << 20)
        // Where the kernel lacks it, wasmtime memsets/copies the first keep-resident bytes.
        .pagemap_scan(wasmtime::Enabled::Auto);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("minihost-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        // Without a ticker, deadlines still hold through the outer timeout in `invoke`.
        tracing::error!(error = %e, "could not start the epoch ticker thread");
    }
}

/// The sandbox runtime: compiles, caches and runs mini-app components. Cheap to clone (an
/// `Arc`); share one per process.
///
/// ```no_run
/// # use minihost_runtime::*;
/// # async fn demo(wasm: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = RuntimeBuilder::new(RuntimeConfig::default()).build()?;
/// let app = runtime.load(wasm)?;
/// let report = runtime
///     .invoke(&app, Invocation::new("echo", "u_1", "c_1"), Event::command("echo", "hi"))
///     .await;
/// match report.outcome {
///     Ok(Some(reply)) => println!("reply: {reply:?}"),
///     Ok(None) => println!("no reply"),
///     Err(e) => println!("app failed: {} ({})", e.kind, e.message),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreState>,
    registry: Arc<Registry>,
    cache: Option<DiskCache>,
    slots: Arc<Semaphore>,
    compile_slots: Slots,
    compiles: AtomicU64,
    loaded: Mutex<HashMap<[u8; 32], Weak<LoadedApp>>>,
    executor: Option<Executor>,
    config: RuntimeConfig,
}

impl Runtime {
    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The wasmtime engine (for benchmarks and tools that compare against raw wasmtime).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Checks, compiles (or fetches from the disk cache) and pre-links a component. Loading
    /// the same bytes again while the first [`LoadedApp`] is alive returns it.
    ///
    /// Before anything is compiled, the bytes are read without compiling
    /// ([`inspect`](crate::inspect())): over [`RuntimeConfig::max_component_bytes`], not a
    /// component, or importing anything outside WASI and `minihost:app@0.2.0`, it is refused at
    /// the cost of a parse. Compiling then takes one of the compile slots and, with a
    /// [`CompileWorker`](crate::CompileWorker) configured, runs in a child process bounded in
    /// time and memory (see [`CompileConfig`](crate::CompileConfig)). A component that
    /// compiles but does not link leaves no artefact in the cache.
    ///
    /// This is blocking (compiling takes milliseconds to seconds, and may wait for a slot);
    /// from async code call it via `tokio::task::spawn_blocking`.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<LoadedApp>, LoadError> {
        let inner = &*self.inner;
        let max = inner.config.max_component_bytes;
        if wasm.len() > max {
            return Err(LoadError::TooLarge {
                size: wasm.len(),
                max,
            });
        }
        let hash = content_hash(wasm);
        if let Some(app) = self.loaded(&hash) {
            return Ok(app);
        }
        let info = inspect(wasm).map_err(|e| LoadError::Invalid(e.to_string()))?;
        if let Some(import) = info.imports.iter().find(|i| !linkable(i)) {
            return Err(LoadError::Link {
                import: Some(import.clone()),
                message: format!(
                    "component imports `{import}`, which the host does not provide (it provides \
                     WASI and minihost:app@{WORLD_VERSION})"
                ),
            });
        }
        let cached = inner
            .cache
            .as_ref()
            .and_then(|c| c.load(&inner.engine, &hash));
        let (component, origin) = match cached {
            Some(c) => (c, LoadOrigin::DiskCache),
            None => (self.compile(&hash, wasm)?, LoadOrigin::Compiled),
        };
        let imports = component
            .component_type()
            .imports(&inner.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .and_then(MiniappPre::new)
            .map_err(|e| {
                // Nothing that cannot run stays in the cache.
                self.forget_artefact(&hash);
                link_error(e)
            })?;
        let app = Arc::new(LoadedApp {
            hash,
            pre,
            imports,
            origin,
            permits: Arc::new(Semaphore::new(inner.config.max_concurrency_per_app.max(1))),
        });
        let mut loaded = inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.retain(|_, weak| weak.strong_count() > 0);
        loaded.insert(hash, Arc::downgrade(&app));
        Ok(app)
    }

    /// Compiles within the configured bounds and writes the artefact to the disk cache.
    fn compile(&self, hash: &[u8; 32], wasm: &[u8]) -> Result<Component, LoadError> {
        let inner = &*self.inner;
        let bounds = &inner.config.compile;
        let _slot = inner.compile_slots.acquire(bounds.timeout).ok_or_else(|| {
            LoadError::Busy(format!(
                "all {} compile slots stayed busy for {} s; try again later",
                bounds.max_concurrent.max(1),
                bounds.timeout.as_secs_f32()
            ))
        })?;
        inner.compiles.fetch_add(1, Ordering::Relaxed);
        let (component, artefact) = match &bounds.worker {
            Some(worker) => {
                let artefact = compile_in_worker(worker, &inner.config, wasm)?;
                let component = deserialize(&inner.engine, &artefact).map_err(|e| {
                    LoadError::Worker(format!("the worker's artefact does not load: {e:#}"))
                })?;
                (component, Some(artefact))
            }
            None => {
                let component = Component::new(&inner.engine, wasm)
                    .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
                let artefact = match &inner.cache {
                    Some(_) => component
                        .serialize()
                        .map_err(|e| tracing::warn!(error = %e, "could not serialize"))
                        .ok(),
                    None => None,
                };
                (component, artefact)
            }
        };
        if let (Some(cache), Some(artefact)) = (&inner.cache, artefact)
            && let Err(e) = cache.store(hash, &artefact)
        {
            tracing::warn!(error = %e, "could not write the component cache");
        }
        Ok(component)
    }

    /// How many components this runtime has compiled (not counting cache hits).
    pub fn compile_count(&self) -> u64 {
        self.inner.compiles.load(Ordering::Relaxed)
    }

    /// Deletes the cached artefact of the component whose sha256 is `content_hash` (64
    /// lowercase hex digits, as [`LoadedApp::content_hash`] gives), e.g. when its version is
    /// deleted. `Ok(true)` when a file was removed; anything but a hash is `InvalidInput`.
    /// Apps already loaded keep running.
    pub fn evict_cached(&self, content_hash: &str) -> std::io::Result<bool> {
        let hash = parse_hash(content_hash).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a component hash (64 lowercase hex digits)",
            )
        })?;
        match &self.inner.cache {
            Some(cache) => cache.remove(&hash),
            None => Ok(false),
        }
    }

    /// Bytes held by the disk cache, if caching is on.
    pub fn cache_size(&self) -> Option<u64> {
        self.inner.cache.as_ref().map(DiskCache::size)
    }

    fn forget_artefact(&self, hash: &[u8; 32]) {
        if let Some(cache) = &self.inner.cache
            && let Err(e) = cache.remove(hash)
        {
            tracing::warn!(error = %e, "could not remove an artefact from the component cache");
        }
    }

    fn loaded(&self, hash: &[u8; 32]) -> Option<Arc<LoadedApp>> {
        let loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let app = loaded.get(hash)?.upgrade()?;
        Some(Arc::new(app.share(LoadOrigin::Memory)))
    }

    /// Invocations running and waiting in the admission queue (zero without an executor).
    pub fn load_now(&self) -> ExecutorLoad {
        self.inner
            .executor
            .as_ref()
            .map(Executor::load)
            .unwrap_or_default()
    }

    /// The path of the disk-cache file for these component bytes, if caching is on.
    pub fn cache_path(&self, wasm: &[u8]) -> Option<std::path::PathBuf> {
        let cache = self.inner.cache.as_ref()?;
        Some(cache.path(&content_hash(wasm)))
    }

    /// Runs one event: a fresh instance in a fresh store bounded by the invocation's limits,
    /// `handle(ctx, event)`, then the instance is dropped. Never panics and never outlives the
    /// deadline (plus [`RuntimeConfig::deadline_slack`]) once it has a slot: every failure is in the
    /// report's outcome. With an executor, it first waits in the admission queue (at most
    /// [`ExecutorConfig::max_queue_wait`](crate::ExecutorConfig)) and runs on the guest
    /// threads; refused, it reports [`ErrorKind::Busy`] without running.
    pub async fn invoke(
        &self,
        app: &LoadedApp,
        invocation: Invocation,
        event: Event,
    ) -> InvocationReport {
        let Some(executor) = &self.inner.executor else {
            return self.invoke_here(app, invocation, event).await;
        };
        let asked = Instant::now();
        let kind = event.kind();
        let key = invocation.app.clone();
        let owner = invocation.owner.clone();
        let config = &self.inner.config;
        let budget = clamp(invocation.limits.unwrap_or(config.limits), config).deadline;
        // One epoch tick short of the documented slack, so that the timer's own lateness still
        // ends the call within it.
        let slack = config.deadline_slack().saturating_sub(config.epoch_tick);
        let this = self.clone();
        let app = app.share(app.origin);
        let (admitted_tx, admitted_rx) = tokio::sync::oneshot::channel::<Instant>();
        let run = executor.run(
            &key,
            owner.as_deref(),
            move || {
                let _ = admitted_tx.send(Instant::now());
            },
            async move {
                let queued = asked.elapsed();
                let mut report = this.invoke_here(&app, invocation, event).await;
                report.queued = queued;
                report
            },
        );
        // The watchdog, on the caller's (ordinary priority) thread: if the guest threads get no
        // CPU (they yield to everything else), the invocation still ends for its caller by its
        // deadline plus the slack, as a timeout; the sandbox stops at its next epoch check and
        // frees its slot then.
        let watchdog = async {
            match admitted_rx.await {
                Ok(at) => {
                    tokio::time::sleep_until((at + budget + slack).into()).await;
                    at
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            outcome = run => match outcome {
                Ok(report) => report,
                Err(refused) => {
                    let mut report = empty_report(
                        kind,
                        InvokeError::new(ErrorKind::Busy, format!("not run: {refused}")),
                    );
                    report.queued = asked.elapsed();
                    report
                }
            },
            at = watchdog => {
                let mut report = empty_report(
                    kind,
                    InvokeError::new(
                        ErrorKind::Timeout,
                        format!(
                            "the invocation ran past its deadline of {}ms (the app's threads \
                             got too little CPU to finish)",
                            budget.as_millis()
                        ),
                    ),
                );
                report.queued = at.saturating_duration_since(asked);
                report.duration = at.elapsed();
                report
            }
        }
    }

    /// [`Runtime::invoke`] on the caller's own threads, without admission.
    async fn invoke_here(
        &self,
        app: &LoadedApp,
        invocation: Invocation,
        event: Event,
    ) -> InvocationReport {
        let started = Instant::now();
        let config = &self.inner.config;
        let limits = clamp(invocation.limits.unwrap_or(config.limits), config);
        let deadline = started + limits.deadline;
        let kind = event.kind();
        let stdout = Capture::new(limits.max_stdio_bytes);
        let stderr = Capture::new(limits.max_stdio_bytes);

        let permits = match self.acquire(app, deadline).await {
            Ok(p) => p,
            Err(error) => {
                let mut report = empty_report(kind, error);
                report.duration = started.elapsed();
                return report;
            }
        };

        let ctx = invocation.context();
        let state = StoreState::new(
            self.inner.registry.clone(),
            invocation,
            limits,
            deadline,
            &stdout,
            &stderr,
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Bytes the host lifts out of the guest in one call (arguments of a capability call,
        // the reply of `handle`): an oversized copy traps before the host allocates it.
        store.set_hostcall_fuel(limits.max_call_bytes.max(limits.max_output_bytes));
        let fuel_set = store.set_fuel(limits.fuel).is_ok();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            if Instant::now() >= deadline {
                let fault = Fault::Timeout(limits.deadline);
                cx.data_mut().data.fault = Some(fault.clone());
                Err(wasmtime::Error::new(fault))
            } else {
                // Let other tasks run on this worker, then check again next tick.
                Ok(UpdateDeadline::Yield(1))
            }
        });

        // The epoch callback stops running wasm; this outer bound also covers time spent in
        // host calls (WASI sleeps, slow capabilities). Its grace of three ticks lets the epoch
        // callback, which fires on the first tick past the deadline, stop running wasm first.
        let hard_deadline = tokio::time::Instant::from_std(deadline + config.epoch_tick * 3);
        let run = async {
            let instance = app.pre.instantiate_async(&mut store).await?;
            instance.call_handle(&mut store, &ctx, &event).await
        };
        let result = tokio::time::timeout_at(hard_deadline, run).await;
        let ran = started.elapsed();
        drop(permits);

        let fuel_consumed = if fuel_set {
            limits
                .fuel
                .saturating_sub(store.get_fuel().unwrap_or(limits.fuel))
        } else {
            0
        };
        let state = store.into_data();
        let outcome = match result {
            Err(_elapsed) => Err(InvokeError::new(
                ErrorKind::Timeout,
                Fault::Timeout(limits.deadline).to_string(),
            )),
            Ok(Err(error)) => Err(classify(&error, &state)),
            Ok(Ok(Err(app_error))) => Err(InvokeError::new(
                ErrorKind::App(app_error.clone()),
                app_error.to_string(),
            )),
            Ok(Ok(Ok(reply))) => {
                let size = reply.byte_size();
                if size > limits.max_output_bytes {
                    Err(InvokeError::new(
                        ErrorKind::OutputTooLarge,
                        format!(
                            "the reply is {size} bytes, over the limit of {}",
                            limits.max_output_bytes
                        ),
                    ))
                } else {
                    Ok(reply)
                }
            }
        };
        let (stdout, out_cut) = stdout.take();
        let (stderr, err_cut) = stderr.take();
        let data = state.data;
        InvocationReport {
            outcome,
            event: kind,
            duration: ran,
            queued: Duration::ZERO,
            fuel_consumed,
            calls: data.calls,
            logs: data.logs,
            logs_dropped: data.logs_dropped,
            stdout,
            stderr,
            stdio_truncated: out_cut || err_cut,
        }
    }

    /// Waits for a per-app permit and a pool slot, until the deadline.
    async fn acquire(
        &self,
        app: &LoadedApp,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), InvokeError> {
        let until = tokio::time::Instant::from_std(deadline);
        let busy = |what: &str| {
            InvokeError::new(
                ErrorKind::Busy,
                format!("no {what} became free before the deadline"),
            )
        };
        let app_permit =
            match tokio::time::timeout_at(until, app.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err(busy("concurrency permit for this app")),
            };
        let slot =
            match tokio::time::timeout_at(until, self.inner.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err(busy("instance slot")),
            };
        Ok((app_permit, slot))
    }
}

/// Applies the engine's ceilings to requested limits.
fn clamp(mut limits: Limits, config: &RuntimeConfig) -> Limits {
    limits.memory_bytes = limits.memory_bytes.min(config.max_memory_bytes);
    limits.deadline = limits.deadline.min(config.max_deadline);
    limits
}

/// The report of an invocation that never ran.
fn empty_report(event: &'static str, error: InvokeError) -> InvocationReport {
    InvocationReport {
        outcome: Err(error),
        event,
        duration: Duration::ZERO,
        queued: Duration::ZERO,
        fuel_consumed: 0,
        calls: Vec::new(),
        logs: Vec::new(),
        logs_dropped: 0,
        stdout: String::new(),
        stderr: String::new(),
        stdio_truncated: false,
    }
}

/// The `minihost:app` package version the host implements.
const WORLD_VERSION: &str = "0.2.0";

/// Whether the host can provide `import`: WASI (the linker has all of WASI p2; the upload
/// check refuses the parts apps may not use) or an interface of `minihost:app@0.2.0`.
fn linkable(import: &str) -> bool {
    if import.starts_with("wasi:") {
        return true;
    }
    let Some(rest) = import.strip_prefix("minihost:app/") else {
        return false;
    };
    let Some((interface, version)) = rest.split_once('@') else {
        return false;
    };
    version == WORLD_VERSION
        && (interface == "types" || Interface::ALL.iter().any(|i| i.name() == interface))
}

fn link_error(e: wasmtime::Error) -> LoadError {
    let message = format!("{e:#}");
    // wasmtime names the missing import between backticks: "component imports instance `x`".
    let import = message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("import"))
        .map(str::to_string);
    LoadError::Link { import, message }
}

/// Turns a trap or host error into a typed [`InvokeError`].
fn classify(error: &wasmtime::Error, state: &StoreState) -> InvokeError {
    let message = format!("{error:#}");
    if let Some(fault) = error.downcast_ref::<Fault>() {
        return InvokeError::new(fault.kind(), fault.to_string());
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        let kind = match trap {
            Trap::Interrupt => ErrorKind::Timeout,
            Trap::OutOfFuel => ErrorKind::FuelExhausted,
            Trap::StackOverflow => ErrorKind::StackOverflow,
            // A guest allocator aborts (`unreachable`) when memory cannot grow.
            _ if state.limiter.memory_denied => ErrorKind::MemoryLimit,
            _ => ErrorKind::Trap,
        };
        return InvokeError::new(kind, message);
    }
    if let Some(fault) = &state.data.fault {
        return InvokeError::new(fault.kind(), fault.to_string());
    }
    if state.limiter.memory_denied {
        return InvokeError::new(ErrorKind::MemoryLimit, message);
    }
    if message.contains("fuel allocated for hostcalls has been exhausted") {
        return InvokeError::new(
            ErrorKind::DataLimit,
            format!(
                "the guest tried to pass more than {} bytes to the host in one call",
                state
                    .data
                    .limits
                    .max_call_bytes
                    .max(state.data.limits.max_output_bytes)
            ),
        );
    }
    if message.contains("instance") && message.contains("limit") {
        return InvokeError::new(ErrorKind::ResourceLimit, message);
    }
    InvokeError::new(ErrorKind::Trap, message)
}
