//! The developer loop through the real binary, as a developer types it on a fresh clone:
//! `minihost app new demo && cd demo && cargo test && minihost app build && minihost app run
//! target/.../demo.wasm --command "/demo Ada"`, plus the JSON report, the warning for a `--grant`
//! miniapp.toml does not declare, and the non-zero exit of a failing app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command with the environment of a developer's shell rather than of `cargo test` (no
/// CARGO_* variables of the outer build leak into the nested cargo).
fn shell(program: impl AsRef<std::ffi::OsStr>, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let outer = (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || matches!(
                k.as_ref(),
                "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOCFLAGS"
            );
        if outer {
            cmd.env_remove(&key);
        }
    }
    cmd.output().unwrap()
}

fn minihost(dir: &Path, args: &[&str]) -> Output {
    shell(env!("CARGO_BIN_EXE_minihost"), dir, args)
}

fn ok(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn new_build_run() {
    let tmp = tempfile::tempdir().unwrap();
    let help = minihost(tmp.path(), &["app", "--help"]);
    assert!(
        help.status.success(),
        "the `app` subcommand is not wired into the minihost binary (host/server/src/main.rs: \
         `App(minihost_devtools::AppCommand)`):\n{}",
        String::from_utf8_lossy(&help.stderr)
    );

    ok(
        "minihost app new demo",
        &minihost(tmp.path(), &["app", "new", "demo"]),
    );
    let demo = tmp.path().join("demo");
    for file in ["Cargo.toml", "src/lib.rs", "miniapp.toml", "README.md"] {
        assert!(demo.join(file).is_file(), "app new did not write {file}");
    }

    // The scaffold's own test passes.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ok(
        "cargo test (in demo)",
        &shell(&cargo, &demo, &["test", "--quiet"]),
    );

    let built = ok("minihost app build", &minihost(&demo, &["app", "build"]));
    let wasm: PathBuf = built
        .lines()
        .find_map(|l| l.strip_prefix("built "))
        .and_then(|rest| rest.rsplit_once(" ("))
        .map(|(path, _)| PathBuf::from(path))
        .unwrap_or_else(|| panic!("no `built PATH` line in:\n{built}"));
    assert!(
        wasm.ends_with("wasm32-wasip2/release/demo.wasm"),
        "{}",
        wasm.display()
    );
    let wasm = wasm.to_str().unwrap();

    let ran = ok(
        "minihost app run",
        &minihost(&demo, &["app", "run", wasm, "--command", "/demo Ada"]),
    );
    assert!(ran.contains("reply: Hello, Ada!"), "{ran}");

    // A grant the manifest does not declare is named: no user could give it on a server.
    let undeclared = minihost(
        &demo,
        &[
            "app",
            "run",
            wasm,
            "--command",
            "/demo",
            "--grant",
            "storage",
        ],
    );
    ok("minihost app run --grant storage", &undeclared);
    let stderr = String::from_utf8_lossy(&undeclared.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: --grant storage: {} does not declare the scope `storage`",
            demo.join("miniapp.toml").display()
        )),
        "{stderr}"
    );

    let json = ok(
        "minihost app run --json",
        &minihost(&demo, &["app", "run", wasm, "--command", "/demo", "--json"]),
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        report["outcome"]["ok"],
        serde_json::json!({"type": "text", "text": "Hello from demo!"})
    );
    assert_eq!(report["event"], "command");

    // An app that cannot run exits non-zero and names the error kind.
    let starved = minihost(
        &demo,
        &[
            "app",
            "run",
            wasm,
            "--command",
            "/demo",
            "--memory-mib",
            "0",
        ],
    );
    assert_eq!(starved.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&starved.stderr);
    assert!(stderr.contains("memory_limit"), "{stderr}");
}
