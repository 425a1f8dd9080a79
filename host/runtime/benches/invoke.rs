//! Criterion benches of the runtime (issue 3): fresh-instance invocation of a no-op `handle`
//! and of one `messaging.send`, on 1 and 2 threads; the same through raw wasmtime (pooling,
//! epochs, fuel, no runtime logic) as the reference limit; and cold start from the disk cache
//! vs compiling. Run with `RUST_BACKTRACE` unset:
//! `env -u RUST_BACKTRACE cargo bench -p minihost-runtime --bench invoke`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use minihost_runtime::bindings::{Miniapp, MiniappPre, messaging};
use minihost_runtime::wasmtime::component::{Component, HasData, Linker, ResourceTable};
use minihost_runtime::wasmtime::{
    self, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use minihost_runtime::{
    ByteSize, Capability, CapabilityCx, Content, Error, Event, Interface, Invocation, LoadedApp,
    Runtime, RuntimeBuilder, RuntimeConfig, Scopes, StoreState,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A messaging capability that only counts sends.
#[derive(Clone, Default)]
struct CountingMessaging(Arc<AtomicU64>);

struct CountingHost<'a>(CapabilityCx<'a, CountingMessaging>);
struct CountingData;
impl HasData for CountingData {
    type Data<'a> = CountingHost<'a>;
}

impl Capability for CountingMessaging {
    const INTERFACE: Interface = Interface::Messaging;
    fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
        messaging::add_to_linker::<_, CountingData>(linker, |s| {
            CountingHost(s.capability::<Self>())
        })
    }
}

impl messaging::Host for CountingHost<'_> {
    async fn send(
        &mut self,
        c: String,
        content: Content,
    ) -> wasmtime::Result<Result<String, Error>> {
        let bytes = c.len() + content.byte_size();
        self.0
            .call("send", Some("messages.send"), bytes, async |cap, _| {
                cap.0.fetch_add(1, Ordering::Relaxed);
                Ok("m".to_string())
            })
            .await
    }
    async fn update(&mut self, _m: String, _c: Content) -> wasmtime::Result<Result<(), Error>> {
        Ok(Ok(()))
    }
    async fn budget(&mut self, _c: String) -> wasmtime::Result<Result<u32, Error>> {
        Ok(Ok(0))
    }
}

fn bench_wasm() -> Vec<u8> {
    std::fs::read(minihost_guest_artifacts::BENCH).unwrap()
}

fn runtime(cache: Option<std::path::PathBuf>) -> Runtime {
    RuntimeBuilder::new(RuntimeConfig {
        cache_dir: cache,
        ..RuntimeConfig::default()
    })
    .with(CountingMessaging::default())
    .build()
    .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn invoke_once(rt: &Runtime, app: &LoadedApp, command: &str) {
    let inv = Invocation::new("bench", "u", "c").grant(Scopes::new(["messages.send"]));
    let report = rt.invoke(app, inv, Event::command(command, "")).await;
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
}

/// `iters` invocations spread over `threads` OS threads, each with its own tokio runtime.
fn on_threads(threads: u64, iters: u64, f: impl Fn(u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let share = iters / threads + u64::from(t < iters % threads);
            let f = &f;
            s.spawn(move || f(share));
        }
    });
    start.elapsed()
}

fn runtime_invocations(c: &mut Criterion) {
    let rt = runtime(None);
    let app = rt.load(&bench_wasm()).unwrap();
    let mut group = c.benchmark_group("runtime");
    for (name, command) in [("noop", "noop"), ("send", "send")] {
        for threads in [1u64, 2] {
            group.bench_function(format!("{name}/{threads}-thread"), |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |n| {
                        let tokio = current_thread();
                        tokio.block_on(async {
                            for _ in 0..n {
                                invoke_once(&rt, &app, command).await;
                            }
                        })
                    })
                })
            });
        }
    }
    group.finish();
}

/// Store data of the raw-wasmtime reference: an empty WASI context and nothing else.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The same engine settings as the runtime (pooling, epochs, fuel, copy-on-write images).
fn raw_engine() -> Engine {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(true)
        .memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(128)
        .total_core_instances(2048)
        .total_memories(256)
        .total_tables(1024)
        .total_stacks(128)
        .max_memory_size(64 << 20);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).unwrap()
}

fn raw_pre(engine: &Engine, wasm: &[u8]) -> MiniappPre<Raw> {
    let component = Component::new(engine, wasm).unwrap();
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker
        .instance("minihost:app/messaging@0.1.0")
        .unwrap()
        .func_wrap_async("send", |_cx, (_c, _content): (String, Content)| {
            Box::new(async { Ok((Ok::<String, Error>("m".to_string()),)) })
        })
        .unwrap();
    linker.define_unknown_imports_as_traps(&component).unwrap();
    MiniappPre::new(linker.instantiate_pre(&component).unwrap()).unwrap()
}

async fn raw_once(engine: &Engine, pre: &MiniappPre<Raw>, command: &str) {
    let mut store = Store::new(
        engine,
        Raw {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_fuel(u64::MAX / 2).unwrap();
    store.set_epoch_deadline(100);
    let app: Miniapp = pre.instantiate_async(&mut store).await.unwrap();
    let ctx = minihost_runtime::bindings::Context {
        app: "bench".into(),
        user: "u".into(),
        conversation: "c".into(),
        locale: "en".into(),
    };
    let r = app
        .call_handle(&mut store, &ctx, &Event::command(command, ""))
        .await
        .unwrap();
    assert!(r.is_ok());
}

fn raw_invocations(c: &mut Criterion) {
    let engine = raw_engine();
    let pre = raw_pre(&engine, &bench_wasm());
    let mut group = c.benchmark_group("raw-wasmtime");
    for command in ["noop", "send"] {
        for threads in [1u64, 2] {
            group.bench_function(format!("{command}/{threads}-thread"), |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |n| {
                        current_thread().block_on(async {
                            for _ in 0..n {
                                raw_once(&engine, &pre, command).await;
                            }
                        })
                    })
                })
            });
        }
    }
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let wasm = bench_wasm();
    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    let rt = runtime(None);
    group.bench_function(format!("compile/{}KiB", wasm.len() / 1024), |b| {
        b.iter(|| drop(rt.load(&wasm).unwrap()))
    });
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(Some(dir.path().to_path_buf()));
    drop(rt.load(&wasm).unwrap());
    group.bench_function(format!("disk-cache/{}KiB", wasm.len() / 1024), |b| {
        b.iter(|| {
            let app = rt.load(&wasm).unwrap();
            assert_eq!(app.origin(), minihost_runtime::LoadOrigin::DiskCache);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = runtime_invocations, raw_invocations, cold_start
}
criterion_main!(benches);
