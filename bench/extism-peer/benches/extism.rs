//! The Extism peer of `host/runtime/benches/invoke.rs` (issue 3): the plugin of `plugin/`
//! (`handle` with a small JSON context and event; `/noop` returns nothing, `/send` calls the
//! host function `send` once), instantiated fresh per call from one `CompiledPlugin`
//! (`Plugin::new_from_compiled` + `call` + drop) on 1 and 2 threads, and a warm call on one
//! reused plugin for reference; and a per-call latency summary (p50/p99, calls/s). Run with `RUST_BACKTRACE` unset:
//! `env -u RUST_BACKTRACE cargo bench --manifest-path bench/extism-peer/Cargo.toml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use extism::{CompiledPlugin, PTR, Plugin, PluginBuilder, UserData, host_fn};

// The equivalent of the runtime bench's counting `messaging.send`: count and return an id.
host_fn!(send(sent: Arc<AtomicU64>; _message: String) -> String {
    sent.get()?.lock().unwrap().fetch_add(1, Ordering::Relaxed);
    Ok("m".to_string())
});

fn input(command: &str) -> String {
    serde_json::json!({
        "context": {"app": "bench", "user": "u", "conversation": "c", "locale": "en"},
        "event": {"command": command, "args": ""},
    })
    .to_string()
}

/// Compiled once, like our `Runtime::load`: no WASI (the plugin needs none; this favours
/// Extism, as our guests get an empty WASI context), no wasmtime disk cache.
fn compiled(sent: &Arc<AtomicU64>) -> CompiledPlugin {
    let wasm = std::fs::read(minihost_extism_peer::PLUGIN_WASM).unwrap();
    let builder = PluginBuilder::new(extism::Manifest::new([extism::Wasm::data(wasm)]))
        .with_wasi(false)
        .with_cache_disabled()
        .with_function("send", [PTR], [PTR], UserData::new(sent.clone()), send);
    CompiledPlugin::new(builder).unwrap()
}

fn call(plugin: &mut Plugin, input: &str) {
    let out: &[u8] = plugin.call("handle", input).unwrap();
    assert!(out.is_empty());
}

/// `iters` calls spread over `threads` OS threads (as in the runtime bench).
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

fn fresh(c: &mut Criterion) {
    let sent = Arc::new(AtomicU64::new(0));
    let compiled = compiled(&sent);
    let mut group = c.benchmark_group("extism");
    for command in ["noop", "send"] {
        let input = input(command);
        for threads in [1u64, 2] {
            group.bench_function(format!("{command}/{threads}-thread"), |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |n| {
                        for _ in 0..n {
                            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
                            call(&mut plugin, &input);
                        }
                    })
                })
            });
        }
    }
    group.finish();
    let before = sent.load(Ordering::Relaxed);
    let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
    call(&mut plugin, &input("send"));
    assert_eq!(
        sent.load(Ordering::Relaxed),
        before + 1,
        "send was not called"
    );
}

fn warm(c: &mut Criterion) {
    let sent = Arc::new(AtomicU64::new(0));
    let compiled = compiled(&sent);
    let mut group = c.benchmark_group("extism-warm");
    for command in ["noop", "send"] {
        let input = input(command);
        let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
        group.bench_function(command.to_string(), |b| {
            b.iter(|| call(&mut plugin, &input))
        });
    }
    group.finish();
}

/// Per-invocation latency, as in the runtime bench's summary: `per_thread` calls on each of
/// `threads` threads, each timed alone; prints p50, p99 and calls/s over the wall time.
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
    const N: u64 = 5_000;
    let sent = Arc::new(AtomicU64::new(0));
    let compiled = compiled(&sent);
    println!("\nlatency: {N} calls per thread, each timed alone");
    println!("| bench | threads | p50 | p99 | calls/s |\n|---|---|---|---|---|");
    for command in ["noop", "send"] {
        let input = input(command);
        for threads in [1, 2] {
            latency_row(&format!("extism/{command}"), threads, N, |n| {
                (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
                        call(&mut plugin, &input);
                        drop(plugin);
                        t.elapsed()
                    })
                    .collect()
            });
        }
        latency_row(&format!("extism-warm/{command}"), 1, N * 4, |n| {
            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
            (0..n)
                .map(|_| {
                    let t = Instant::now();
                    call(&mut plugin, &input);
                    t.elapsed()
                })
                .collect()
        });
    }
    println!();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = latency, fresh, warm
}
criterion_main!(benches);
