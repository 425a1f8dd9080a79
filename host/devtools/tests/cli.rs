//! The developer loop in-process: `app new` scaffolds a crate whose test passes, `app build`
//! compiles and validates it, `app run` answers its command (and fails with a non-zero code when
//! the app cannot run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::ExitCode;

use minihost_devtools::{AppCommand, RunArgs, run};

fn run_args(wasm: std::path::PathBuf, command: &str) -> RunArgs {
    RunArgs {
        wasm,
        command: Some(command.into()),
        action: None,
        inputs: Vec::new(),
        opened: false,
        message: None,
        grants: Vec::new(),
        manifest: None,
        app: "demo".into(),
        user: "u_1".into(),
        conversation: "c_1".into(),
        locale: "en".into(),
        memory_mib: None,
        timeout_ms: None,
        json: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_build_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let new = AppCommand::New {
        name: "demo".into(),
        path: Some(dir.clone()),
        sdk: None,
    };
    assert_eq!(run(new).await.unwrap(), ExitCode::SUCCESS);
    assert!(dir.join("miniapp.toml").is_file());

    let build = AppCommand::Build {
        dir: dir.clone(),
        debug: false,
    };
    assert_eq!(run(build).await.unwrap(), ExitCode::SUCCESS);
    let wasm = dir.join("target/wasm32-wasip2/release/demo.wasm");
    assert!(wasm.is_file());

    let ok = run(AppCommand::Run(Box::new(run_args(
        wasm.clone(),
        "/demo Ada",
    ))))
    .await
    .unwrap();
    assert_eq!(ok, ExitCode::SUCCESS);
    let mut starved = run_args(wasm, "/demo Ada");
    starved.memory_mib = Some(0);
    assert_eq!(
        run(AppCommand::Run(Box::new(starved))).await.unwrap(),
        ExitCode::from(1)
    );
}
