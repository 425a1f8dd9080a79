//! Loading within bounds: components are read before they are compiled (a refused one is never
//! compiled), compiles run in a bounded worker process when one is configured, and the disk
//! cache stays under its size bound, least recently used evicted, recompiling what it evicted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{command, config, reply_text, wasm};
use minihost_runtime::{
    CompileConfig, CompileWorker, InspectError, LoadError, LoadOrigin, Runtime, RuntimeBuilder,
    RuntimeConfig, inspect,
};

/// The runtime's own worker binary (the `minihost` binary's `__compile` is the same function).
fn worker() -> CompileWorker {
    CompileWorker {
        program: PathBuf::from(env!("CARGO_BIN_EXE_minihost-compile-worker")),
        args: Vec::new(),
    }
}

fn runtime_with(cache: Option<&Path>, max_bytes: u64, compile: CompileConfig) -> Runtime {
    RuntimeBuilder::new(RuntimeConfig {
        cache_dir: cache.map(Path::to_path_buf),
        cache_max_bytes: max_bytes,
        compile,
        ..config()
    })
    .build()
    .unwrap()
}

fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `wasm` with every occurrence of `from` replaced by `to` (same length): a quick way to make
/// a component that differs in one name.
fn patched(wasm: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = wasm.to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "{} not found", String::from_utf8_lossy(from));
    out
}

#[test]
fn inspect_reads_imports_exports_and_sizes_without_compiling() {
    let faults = inspect(&wasm(minihost_guest_artifacts::FAULTS)).unwrap();
    for import in [
        "minihost:app/messaging@0.2.0",
        "minihost:app/profile@0.2.0",
        "minihost:app/log@0.2.0",
    ] {
        assert!(
            faults.imports.iter().any(|i| i == import),
            "{:?}",
            faults.imports
        );
    }
    assert!(
        !faults.imports.iter().any(|i| i.contains("payments")),
        "{:?}",
        faults.imports
    );
    assert_eq!(faults.exports, vec!["handle".to_owned()]);

    let unknown = inspect(&wasm(minihost_guest_artifacts::UNKNOWN_IMPORT)).unwrap();
    assert!(
        unknown.imports.iter().any(|i| i == "test:unknown/secret"),
        "{:?}",
        unknown.imports
    );

    let big_bytes = wasm(minihost_guest_artifacts::BIG);
    let big = inspect(&big_bytes).unwrap();
    assert_eq!(big.bytes, big_bytes.len());
    assert!(big.core_modules >= 1);
    assert!(big.functions > 5_000, "{big:?}");
    assert!(big.code_bytes > 0 && big.code_bytes < big.bytes as u64);

    // The same names the compiled component lists.
    let rt = common::runtime();
    let app = common::load(&rt, minihost_guest_artifacts::FAULTS);
    assert_eq!(app.imports(), &faults.imports[..]);

    assert_eq!(inspect(b"\0asm\x01\0\0\0"), Err(InspectError::CoreModule));
}

#[test]
fn components_the_host_cannot_link_are_refused_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(Some(dir.path()), 1 << 30, CompileConfig::default());
    let echo = wasm(minihost_guest_artifacts::ECHO);
    let refused = [
        wasm(minihost_guest_artifacts::UNKNOWN_IMPORT),
        // Built against a platform version the host does not implement.
        patched(
            &echo,
            b"minihost:app/types@0.2.0",
            b"minihost:app/types@0.9.0",
        ),
        b"\0asm\x01\0\0\0".to_vec(),
        b"\0asm not really".to_vec(),
    ];
    for bytes in &refused {
        let err = rt.load(bytes).unwrap_err();
        assert!(
            matches!(err, LoadError::Link { .. } | LoadError::Invalid(_)),
            "{err:?}"
        );
    }
    assert_eq!(rt.compile_count(), 0, "a refused component was compiled");
    assert_eq!(files(dir.path()), Vec::new());
}

#[test]
fn a_component_that_compiles_but_does_not_link_leaves_no_artefact() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(Some(dir.path()), 1 << 30, CompileConfig::default());
    // Exports `handlf` instead of `handle`: it compiles, but is not a miniapp.
    let bytes = patched(&wasm(minihost_guest_artifacts::ECHO), b"handle", b"handlf");
    let err = rt.load(&bytes).unwrap_err();
    assert!(matches!(err, LoadError::Link { .. }), "{err:?}");
    assert_eq!(rt.compile_count(), 1);
    assert_eq!(files(dir.path()), Vec::new());
    assert_eq!(rt.cache_size(), Some(0));
}

#[tokio::test]
async fn a_worker_process_compiles_and_the_artefact_runs_and_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let compile = CompileConfig {
        worker: Some(worker()),
        ..CompileConfig::default()
    };
    let bytes = wasm(minihost_guest_artifacts::ECHO);
    let rt = runtime_with(Some(dir.path()), 1 << 30, compile.clone());
    let app = rt.load(&bytes).unwrap();
    assert_eq!(app.origin(), LoadOrigin::Compiled);
    assert_eq!(rt.compile_count(), 1);
    assert_eq!(reply_text(&command(&rt, &app, "echo", "hi").await), "hi");
    assert_eq!(files(dir.path()).len(), 1);

    let again = runtime_with(Some(dir.path()), 1 << 30, compile.clone());
    let app = again.load(&bytes).unwrap();
    assert_eq!(app.origin(), LoadOrigin::DiskCache);
    assert_eq!(again.compile_count(), 0);
    assert_eq!(
        reply_text(&command(&again, &app, "echo", "cached").await),
        "cached"
    );
}

#[test]
fn a_worker_over_its_memory_bound_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime_with(
        Some(dir.path()),
        1 << 30,
        CompileConfig {
            worker: Some(worker()),
            memory_bytes: 48 << 20,
            ..CompileConfig::default()
        },
    );
    let err = rt.load(&wasm(minihost_guest_artifacts::BIG)).unwrap_err();
    match &err {
        LoadError::CompileLimit(message) => assert!(message.contains("memory"), "{message}"),
        other => panic!("expected the memory bound, got {other:?}"),
    }
    assert_eq!(files(dir.path()), Vec::new());
}

#[test]
fn a_worker_past_its_deadline_is_killed() {
    // A "worker" that never answers: the deadline, not the worker, ends the compile.
    let rt = runtime_with(
        None,
        0,
        CompileConfig {
            worker: Some(CompileWorker {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "exec sleep 600".into()],
            }),
            timeout: Duration::from_millis(300),
            ..CompileConfig::default()
        },
    );
    let err = rt.load(&wasm(minihost_guest_artifacts::ECHO)).unwrap_err();
    match &err {
        LoadError::CompileLimit(message) => assert!(message.contains("longer"), "{message}"),
        other => panic!("expected the time bound, got {other:?}"),
    }
}

#[test]
fn a_missing_worker_is_a_host_fault() {
    let rt = runtime_with(
        None,
        0,
        CompileConfig {
            worker: Some(CompileWorker {
                program: "/nonexistent/minihost".into(),
                args: Vec::new(),
            }),
            ..CompileConfig::default()
        },
    );
    let err = rt.load(&wasm(minihost_guest_artifacts::ECHO)).unwrap_err();
    assert!(matches!(err, LoadError::Worker(_)), "{err:?}");
}

#[tokio::test]
async fn the_cache_stays_under_its_bound_and_recompiles_what_it_evicted() {
    let guests = [
        minihost_guest_artifacts::ECHO,
        minihost_guest_artifacts::CARD,
        minihost_guest_artifacts::POLLS,
        minihost_guest_artifacts::FAULTS,
    ];
    // Measure each artefact in an unbounded cache.
    let roomy = tempfile::tempdir().unwrap();
    let rt = runtime_with(Some(roomy.path()), 1 << 30, CompileConfig::default());
    let mut sizes = Vec::new();
    for g in guests {
        drop(rt.load(&wasm(g)).unwrap());
        sizes.push(
            std::fs::metadata(rt.cache_path(&wasm(g)).unwrap())
                .unwrap()
                .len(),
        );
    }
    // Room for the two largest, not for all four.
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    let bound = sorted[3] + sorted[2];
    assert!(sizes.iter().sum::<u64>() > bound);

    let dir = tempfile::tempdir().unwrap();
    for g in guests {
        // A fresh runtime each time: every load goes to the disk cache or the compiler.
        let rt = runtime_with(Some(dir.path()), bound, CompileConfig::default());
        drop(rt.load(&wasm(g)).unwrap());
        let on_disk: u64 = files(dir.path()).iter().map(|(_, size)| size).sum();
        assert!(
            on_disk <= bound,
            "{on_disk} > {bound}: {:?}",
            files(dir.path())
        );
        assert_eq!(rt.cache_size(), Some(on_disk));
    }
    // The last one loaded is cached; the first was evicted, so it is compiled again, and runs.
    let rt = runtime_with(Some(dir.path()), bound, CompileConfig::default());
    assert_eq!(
        rt.load(&wasm(guests[3])).unwrap().origin(),
        LoadOrigin::DiskCache
    );
    let echo = rt.load(&wasm(guests[0])).unwrap();
    assert_eq!(echo.origin(), LoadOrigin::Compiled);
    assert_eq!(
        reply_text(&command(&rt, &echo, "echo", "back").await),
        "back"
    );
    let on_disk: u64 = files(dir.path()).iter().map(|(_, size)| size).sum();
    assert!(on_disk <= bound);

    // A deleted version's artefact can be removed by its hash; anything else is refused.
    let hash = echo.content_hash();
    assert!(rt.evict_cached(&hash).unwrap());
    assert!(!rt.cache_path(&wasm(guests[0])).unwrap().exists());
    for bad in ["../x", "/etc/passwd", "", &hash.to_uppercase()] {
        let err = rt.evict_cached(bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
}
