//! The "JavaScript apps" bench (BENCHMARKS.md): fresh-instance latency and memory of the
//! JavaScript echo (`examples/echo-js`, a ComponentizeJS component of ~11 MiB whose linear memory
//! starts with SpiderMonkey's initialised heap) beside the Rust echo (`examples/echo`), for the
//! pooling settings considered, through raw wasmtime (the settings alone), then through the
//! runtime as configured. Prints tables; no criterion statistics. Run with
//! `env -u RUST_BACKTRACE cargo bench -p minihost-runtime --bench js` (it builds the JS example
//! with npm when `examples/echo-js/dist/app.wasm` is missing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::path::PathBuf;
use std::time::{Duration, Instant};

use minihost_runtime::bindings::{Miniapp, MiniappPre, log};
use minihost_runtime::wasmtime::component::{Component, Linker, ResourceTable};
use minihost_runtime::wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use minihost_runtime::{Event, Invocation, RuntimeBuilder, RuntimeConfig};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The JS echo's component, built with npm from its lockfile when missing.
fn js_wasm() -> Vec<u8> {
    let dir = root().join("examples/echo-js");
    let wasm = dir.join("dist/app.wasm");
    if !wasm.is_file() {
        if !dir.join("node_modules").is_dir() {
            let ok = std::process::Command::new("npm")
                .current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "npm ci failed in {}", dir.display());
        }
        let ok = std::process::Command::new("npm")
            .current_dir(&dir)
            .args(["run", "build"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "npm run build failed in {}", dir.display());
    }
    std::fs::read(wasm).unwrap()
}

fn rust_wasm() -> Vec<u8> {
    std::fs::read(minihost_guest_artifacts::ECHO).unwrap()
}

/// Bytes of linear memory the component's core modules start with (initial pages), and of
/// their data segments.
fn memory_sizes(wasm: &[u8]) -> (u64, u64) {
    let (mut initial, mut data) = (0, 0);
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::MemorySection(r) => {
                for m in r {
                    initial += m.unwrap().initial * 65536;
                }
            }
            wasmparser::Payload::DataSection(r) => {
                for d in r {
                    data += d.unwrap().data.len() as u64;
                }
            }
            _ => {}
        }
    }
    (initial, data)
}

/// Resident set of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    kib * 1024
}

/// One pooling setting considered.
#[derive(Clone, Copy)]
struct Setting {
    label: &'static str,
    cow: bool,
    keep_resident: usize,
    pagemap: bool,
}

const SETTINGS: &[Setting] = &[
    Setting {
        label: "keep-resident 4 MiB, no CoW (runtime before)",
        cow: false,
        keep_resident: 4 << 20,
        pagemap: false,
    },
    Setting {
        label: "CoW, no keep-resident (runtime before d5659aa)",
        cow: true,
        keep_resident: 0,
        pagemap: false,
    },
    Setting {
        label: "CoW + keep-resident 4 MiB",
        cow: true,
        keep_resident: 4 << 20,
        pagemap: false,
    },
    Setting {
        label: "CoW + keep-resident 4 MiB + PAGEMAP_SCAN",
        cow: true,
        keep_resident: 4 << 20,
        pagemap: true,
    },
];

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

fn raw_engine(s: Setting) -> Engine {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(true)
        .memory_init_cow(s.cow);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(128)
        .total_core_instances(2048)
        .total_memories(256)
        .total_tables(1024)
        .total_stacks(128)
        .max_memory_size(64 << 20)
        .linear_memory_keep_resident(s.keep_resident)
        .table_keep_resident(if s.keep_resident > 0 { 1 << 20 } else { 0 })
        .async_stack_keep_resident(if s.keep_resident > 0 { 2 << 20 } else { 0 })
        .pagemap_scan(if s.pagemap {
            Enabled::Auto
        } else {
            Enabled::No
        });
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).unwrap()
}

fn raw_pre(engine: &Engine, wasm: &[u8]) -> MiniappPre<Raw> {
    let component = Component::new(engine, wasm).unwrap();
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker
        .instance("minihost:app/log@0.2.0")
        .unwrap()
        .func_wrap("write", |_cx, (_l, _m): (log::Level, String)| Ok(()))
        .unwrap();
    linker.define_unknown_imports_as_traps(&component).unwrap();
    MiniappPre::new(linker.instantiate_pre(&component).unwrap()).unwrap()
}

async fn raw_once(engine: &Engine, pre: &MiniappPre<Raw>) {
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
        .call_handle(&mut store, &ctx, &Event::command("echo", "hi"))
        .await
        .unwrap();
    assert!(matches!(r, Ok(Some(_))), "{r:?}");
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Times `per_thread` calls of `once` on each of `threads` threads; prints a row with p50, p99,
/// invocations/s and the resident-set growth over the row.
fn row<F, Fut>(label: &str, threads: u64, per_thread: u64, once: F)
where
    F: Fn() -> Fut + Sync,
    Fut: std::future::Future<Output = ()>,
{
    let before = rss();
    let start = Instant::now();
    let mut all: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    current_thread().block_on(async {
                        let mut times = Vec::with_capacity(per_thread as usize);
                        for _ in 0..per_thread {
                            let t = Instant::now();
                            once().await;
                            times.push(t.elapsed());
                        }
                        times
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let wall = start.elapsed();
    all.sort_unstable();
    let pct = |p: usize| all[(all.len() * p / 100).min(all.len() - 1)];
    println!(
        "| {label} | {threads} | {:.1} µs | {:.1} µs | {:.0} | {:+.1} MiB |",
        pct(50).as_secs_f64() * 1e6,
        pct(99).as_secs_f64() * 1e6,
        all.len() as f64 / wall.as_secs_f64(),
        (rss() as f64 - before as f64) / f64::from(1 << 20),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word selects "raw" or "runtime" only.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |part: &str| filter.as_deref().is_none_or(|f| part.contains(f));
    let apps = [
        ("echo-rust", rust_wasm(), 20_000u64),
        ("echo-js", js_wasm(), 2_000),
    ];
    for (name, wasm, _) in &apps {
        let (initial, data) = memory_sizes(wasm);
        println!(
            "{name}: component {} KiB, initial linear memory {} KiB, data segments {} KiB",
            wasm.len() / 1024,
            initial / 1024,
            data / 1024
        );
    }
    println!("\n| app / setting | threads | p50 | p99 | invocations/s | RSS growth |");
    println!("|---|---|---|---|---|---|");
    if wants("raw") {
        for setting in SETTINGS {
            let engine = raw_engine(*setting);
            for (name, wasm, n) in &apps {
                let t = Instant::now();
                let pre = raw_pre(&engine, wasm);
                eprintln!("{name}: compiled in {:.1} s", t.elapsed().as_secs_f64());
                for threads in [1, 2] {
                    row(
                        &format!("raw {name} / {}", setting.label),
                        threads,
                        *n,
                        || raw_once(&engine, &pre),
                    );
                }
            }
        }
    }
    if wants("runtime") {
        let cache = tempfile::tempdir().unwrap();
        let config = || RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        let rt = RuntimeBuilder::new(config()).build().unwrap();
        for (name, wasm, n) in &apps {
            let t = Instant::now();
            let app = rt.load(wasm).unwrap();
            let compiled = t.elapsed();
            // A second runtime on the same cache: a cold start from the disk cache.
            let other = RuntimeBuilder::new(config()).build().unwrap();
            let t = Instant::now();
            let hit = other.load(wasm).unwrap();
            let from_cache = t.elapsed();
            assert_eq!(hit.origin(), minihost_runtime::LoadOrigin::DiskCache);
            let artefact = std::fs::metadata(rt.cache_path(wasm).unwrap())
                .unwrap()
                .len();
            println!(
                "{name}: compiled in {:.2} s, loaded from the disk cache in {:.1} ms \
                 (artefact {} KiB)",
                compiled.as_secs_f64(),
                from_cache.as_secs_f64() * 1e3,
                artefact / 1024
            );
            drop((hit, other));
            for threads in [1, 2] {
                row(&format!("runtime {name}"), threads, *n, || async {
                    let report = rt
                        .invoke(
                            &app,
                            Invocation::new("bench", "u", "c"),
                            Event::command("echo", "hi"),
                        )
                        .await;
                    assert!(
                        matches!(report.outcome, Ok(Some(_))),
                        "{:?}",
                        report.outcome
                    );
                });
            }
        }
    }
}
