//! Criterion benches of the runtime (issue 3): fresh-instance invocation of a no-op `handle`
//! and of one `messaging.send`, on 1 and 2 threads; the same through raw wasmtime (pooling,
//! epochs, fuel, no runtime logic) as the reference limit; cold start from the disk cache vs
//! compiling, for the 45 KiB bench guest and the ~1 MiB `big` guest; and a per-invocation
//! latency summary (p50/p99 and invocations/s, printed as a table). Run with `RUST_BACKTRACE`
//! unset: `env -u RUST_BACKTRACE cargo bench -p minihost-runtime --bench invoke`; figures and
//! the Extism peer are in BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)] // bench code; unsafe: `Component::deserialize` of artefacts it just serialized

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

fn big_wasm() -> Vec<u8> {
    std::fs::read(minihost_guest_artifacts::BIG).unwrap()
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

/// The same engine settings as the runtime (pooling with copy-on-write images and keep-resident
/// slots reset by dirty page, epochs, fuel).
fn raw_engine() -> Engine {
    raw_engine_with(true)
}

/// `keep_resident`: the runtime's setting (copy-on-write images; memories, tables and stacks
/// reset by memcpy/memset of the pages a guest dirtied, found by PAGEMAP_SCAN, not by
/// `madvise`), which avoids mmap-lock contention and TLB-shootdown IPIs between threads.
/// Without it: copy-on-write images reset by `madvise`, the runtime's settings before d5659aa,
/// kept in the latency summary as `raw-wasmtime-cow` for comparison.
fn raw_engine_with(keep_resident: bool) -> Engine {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(true)
        // Copy-on-write images in both; keep-resident resets dirty pages by PAGEMAP_SCAN (the
        // runtime since the "JavaScript apps" change; before it, keep-resident had no images).
        .memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(128)
        .total_core_instances(2048)
        .total_memories(256)
        .total_tables(1024)
        .total_stacks(128)
        .max_memory_size(64 << 20);
    if keep_resident {
        pool.linear_memory_keep_resident(4 << 20)
            .table_keep_resident(1 << 20)
            .async_stack_keep_resident(2 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).unwrap()
}

fn raw_pre(engine: &Engine, wasm: &[u8]) -> MiniappPre<Raw> {
    let component = Component::new(engine, wasm).unwrap();
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker
        .instance("minihost:app/messaging@0.2.0")
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
        developer: false,
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
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for (name, wasm) in [("bench", bench_wasm()), ("big", big_wasm())] {
        let label = format!("{name}-{}KiB", wasm.len() / 1024);
        let rt = runtime(None);
        group.bench_function(format!("compile/{label}"), |b| {
            b.iter(|| {
                let app = rt.load(&wasm).unwrap();
                assert_eq!(app.origin(), minihost_runtime::LoadOrigin::Compiled);
            })
        });
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(Some(dir.path().to_path_buf()));
        drop(rt.load(&wasm).unwrap());
        group.bench_function(format!("disk-cache/{label}"), |b| {
            b.iter(|| {
                let app = rt.load(&wasm).unwrap();
                assert_eq!(app.origin(), minihost_runtime::LoadOrigin::DiskCache);
            })
        });
        // The loaded app must run, or the figure means nothing.
        let app = rt.load(&wasm).unwrap();
        current_thread().block_on(invoke_once(&rt, &app, "noop"));
        // Where a cache hit's time goes: wasmtime alone deserializing the same artefact (from
        // memory, and mmapped from its file), and the sha256 of the input.
        let artefact = std::fs::read(rt.cache_path(&wasm).unwrap()).unwrap();
        let engine = raw_engine();
        let serialized = Component::new(&engine, &wasm).unwrap().serialize().unwrap();
        let file = dir.path().join("raw.cwasm");
        std::fs::write(&file, &serialized).unwrap();
        println!(
            "{label}: cache artefact {} KiB, raw serialized {} KiB",
            artefact.len() / 1024,
            serialized.len() / 1024
        );
        group.bench_function(format!("parts/raw-deserialize/{label}"), |b| {
            // SAFETY: bytes just produced by `serialize` on this engine.
            b.iter(|| unsafe { Component::deserialize(&engine, &serialized) }.unwrap())
        });
        group.bench_function(format!("parts/raw-deserialize-file/{label}"), |b| {
            // SAFETY: file just written from `serialize` on this engine.
            b.iter(|| unsafe { Component::deserialize_file(&engine, &file) }.unwrap())
        });
        group.bench_function(format!("parts/sha256/{label}"), |b| {
            use sha2::Digest;
            b.iter(|| sha2::Sha256::digest(&wasm))
        });
    }
    group.finish();
}

/// Per-invocation latency, outside criterion's statistics (criterion's median is of batch
/// means): `per_thread` invocations on each of `threads` threads, each one timed alone; prints
/// p50, p99 and invocations/s (all invocations over the wall time).
fn latency_row(
    label: &str,
    threads: u64,
    per_thread: u64,
    run: impl Fn(u64) -> Vec<Duration> + Sync,
) {
    let start = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| run(per_thread))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = start.elapsed();
    all.sort_unstable();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "| {label} | {threads} | {:.1} µs | {:.1} µs | {:.0} |",
        pct(50).as_secs_f64() * 1e6,
        pct(99).as_secs_f64() * 1e6,
        all.len() as f64 / wall.as_secs_f64(),
    );
}

/// Whether the command line's filter (if any) selects the latency summary.
fn latency_selected() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| "latency".contains(f.as_str()))
}

fn latency(_c: &mut Criterion) {
    if !latency_selected() {
        return;
    }
    const N: u64 = 20_000;
    let rt = runtime(None);
    let app = rt.load(&bench_wasm()).unwrap();
    let engine = raw_engine();
    let pre = raw_pre(&engine, &bench_wasm());
    let cow = raw_engine_with(false);
    let cow_pre = raw_pre(&cow, &bench_wasm());
    println!("\nlatency: {N} invocations per thread, each timed alone");
    println!("| bench | threads | p50 | p99 | invocations/s |\n|---|---|---|---|---|");
    for command in ["noop", "send"] {
        for threads in [1, 2] {
            latency_row(&format!("runtime/{command}"), threads, N, |n| {
                current_thread().block_on(async {
                    let mut times = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let t = Instant::now();
                        invoke_once(&rt, &app, command).await;
                        times.push(t.elapsed());
                    }
                    times
                })
            });
        }
        for (label, engine, pre) in [
            ("raw-wasmtime", &engine, &pre),
            ("raw-wasmtime-cow", &cow, &cow_pre),
        ] {
            for threads in [1, 2] {
                latency_row(&format!("{label}/{command}"), threads, N, |n| {
                    current_thread().block_on(async {
                        let mut times = Vec::with_capacity(n as usize);
                        for _ in 0..n {
                            let t = Instant::now();
                            raw_once(engine, pre, command).await;
                            times.push(t.elapsed());
                        }
                        times
                    })
                });
            }
        }
    }
    println!();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = latency, runtime_invocations, raw_invocations, cold_start
}
criterion_main!(benches);
