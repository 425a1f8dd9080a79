//! `minihost __compile` is a working compile worker: a runtime configured as `minihost serve`
//! configures it compiles through the real binary, and the artefact runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_runtime::{
    CompileConfig, CompileWorker, Content, Event, Invocation, LoadOrigin, RuntimeBuilder,
    RuntimeConfig,
};

#[tokio::test]
async fn the_binary_compiles_as_a_worker_and_the_artefact_runs() {
    let cache = tempfile::tempdir().unwrap();
    let rt = RuntimeBuilder::new(RuntimeConfig {
        max_instances: 4,
        cache_dir: Some(cache.path().to_path_buf()),
        compile: CompileConfig {
            worker: Some(CompileWorker {
                program: env!("CARGO_BIN_EXE_minihost").into(),
                args: vec!["__compile".into()],
            }),
            ..CompileConfig::default()
        },
        ..RuntimeConfig::default()
    })
    .build()
    .unwrap();
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO).unwrap();
    let app = rt.load(&wasm).unwrap();
    assert_eq!(app.origin(), LoadOrigin::Compiled);
    assert_eq!(rt.compile_count(), 1);
    assert!(rt.cache_path(&wasm).unwrap().is_file());
    let report = rt
        .invoke(
            &app,
            Invocation::new("echo", "u_1", "c_1"),
            Event::command("echo", "from the worker"),
        )
        .await;
    match report.outcome {
        Ok(Some(Content::Text(t))) => assert_eq!(t, "from the worker"),
        other => panic!("expected a text reply, got {other:?}"),
    }
}
