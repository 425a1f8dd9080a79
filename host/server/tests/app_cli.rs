//! The developer loop through the real binary, copied away from the checkout it was built from
//! (so nothing it writes may point back there), as a developer types it:
//! `minihost app new demo && cd demo && cargo test && minihost app build && minihost app run
//! target/.../demo.wasm --command "/demo Ada"`, plus the JSON report, the warning for a `--grant`
//! miniapp.toml does not declare, and the non-zero exit of a failing app; the same for a
//! TypeScript app (`--lang ts`, npm's build and `npm test`), and the JS example's `npm test`.
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

/// The binary, copied into a folder of its own outside the checkout (once per test process).
fn binary() -> &'static Path {
    static COPY: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &COPY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("minihost");
            std::fs::copy(env!("CARGO_BIN_EXE_minihost"), &bin).unwrap();
            (dir, bin)
        })
        .1
}

fn minihost(dir: &Path, args: &[&str]) -> Output {
    // A smoke run that got no CPU (this machine runs other builds) is refused as busy, with
    // the advice to try again: a developer would.
    for _ in 0..3 {
        let out = shell(binary(), dir, args);
        if !String::from_utf8_lossy(&out.stderr).contains("the sandbox is busy") {
            return out;
        }
    }
    shell(binary(), dir, args)
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
    // The SDK and its WIT are the ones the binary carries, in the app: nothing names the checkout.
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checkout = checkout.canonicalize().unwrap();
    let cargo_toml = std::fs::read_to_string(demo.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("minihost-sdk = { path = \"vendor/minihost-sdk\" }"),
        "{cargo_toml}"
    );
    assert!(
        !cargo_toml.contains(checkout.to_str().unwrap()),
        "{cargo_toml}"
    );
    assert_eq!(
        std::fs::read_to_string(demo.join("vendor/wit/miniapp.wit")).unwrap(),
        std::fs::read_to_string(checkout.join("wit/miniapp.wit")).unwrap()
    );

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

    // A grant the manifest does not declare is refused: no user could give it on a server.
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
    assert_eq!(undeclared.status.code(), Some(2), "{undeclared:?}");
    let stderr = String::from_utf8_lossy(&undeclared.stderr);
    assert!(
        stderr.contains("\"storage\" is not a scope this app declares"),
        "{stderr}"
    );
    // So is a command it does not declare: a server would not run the app for it.
    let unknown = minihost(&demo, &["app", "run", wasm, "--command", "/nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("declares no command /nope"), "{stderr}");

    let json = ok(
        "minihost app run --json",
        &minihost(&demo, &["app", "run", wasm, "--command", "/demo", "--json"]),
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let run = &report["runs"][0];
    assert_eq!(
        run["outcome"]["ok"],
        serde_json::json!({"type": "text", "text": "Hello from demo!"})
    );
    assert_eq!(run["event"], "command");
    // The reply was posted into the simulated conversation, as on a server.
    assert_eq!(
        report["messages"][0]["content"],
        serde_json::json!({"type": "text", "text": "Hello from demo!"})
    );

    // An app that cannot run exits 1 and names the error kind.
    std::fs::write(tmp.path().join("faults.toml"), FAULTS_MANIFEST).unwrap();
    let looping = minihost(
        tmp.path(),
        &[
            "app",
            "run",
            minihost_guest_artifacts::FAULTS,
            "--manifest",
            "faults.toml",
            "--command",
            "/loop",
        ],
    );
    assert_eq!(looping.status.code(), Some(1), "{looping:?}");
    let stderr = String::from_utf8_lossy(&looping.stderr);
    assert!(stderr.contains("timeout"), "{stderr}");
    let stdout = String::from_utf8_lossy(&looping.stdout);
    assert!(
        stdout.contains("the user reads: Faults (unreviewed) took too long to answer"),
        "{stdout}"
    );
}

const FAULTS_MANIFEST: &str = r#"
id = "faults"
name = "Faults"
version = "0.1.0"
description = "Misbehaves on purpose."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "profile.read"
reason = "To greet you."

[[scopes]]
name = "auth.login"
reason = "To sign you in to our website."

[[scopes]]
name = "storage"
reason = "To remember things."

[[commands]]
name = "loop"
help = "/loop"
"#;

/// A TypeScript app from the copied binary alone (and Node): scaffold, npm's build from the
/// template's lockfile, the upload checks, a run with a button press, and the template's own
/// `npm test`; then the JS example's build and `npm test`.
#[test]
fn new_build_run_test_in_typescript() {
    let tmp = tempfile::tempdir().unwrap();
    ok(
        "minihost app new --lang ts hello-ts",
        &minihost(tmp.path(), &["app", "new", "--lang", "ts", "hello-ts"]),
    );
    let app = tmp.path().join("hello-ts");
    let built = minihost(&app, &["app", "build"]);
    let stdout = ok("minihost app build (ts)", &built);
    assert!(
        stdout.contains(
            "ok: hello-ts@0.1.0 links against minihost:app/miniapp; capabilities used: log"
        ),
        "{stdout}"
    );
    let json = ok(
        "minihost app run --json (ts)",
        &minihost(
            &app,
            &[
                "app",
                "run",
                "dist/app.wasm",
                "--command",
                "/hello-ts Ada",
                "--action",
                "wave",
                "--json",
            ],
        ),
    );
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        report["runs"][0]["outcome"]["ok"]["blocks"][0],
        serde_json::json!({"kind": "text", "text": "Hello, Ada!"})
    );
    assert_eq!(
        report["runs"][1]["outcome"]["ok"],
        serde_json::json!({"type": "text", "text": "Ada waves back."})
    );
    let bin = binary().to_str().unwrap().to_owned();
    let npm_test = |dir: &Path| {
        let mut cmd = Command::new("npm");
        cmd.current_dir(dir)
            .args(["test", "--silent"])
            .env("MINIHOST_BIN", &bin);
        cmd.output().unwrap()
    };
    ok("npm test (ts scaffold)", &npm_test(&app));
    // The types the binary carries are what jco generates from the WIT today.
    let types = Command::new("npm")
        .current_dir(&app)
        .args(["run", "--silent", "types"])
        .output()
        .unwrap();
    ok("npm run types", &types);
    for (path, carried) in minihost_devtools::js::TYPES {
        let generated = std::fs::read_to_string(app.join(path)).unwrap();
        assert!(
            generated == *carried,
            "{path} is stale: regenerate host/devtools/template/js/types with \
             `npx jco guest-types wit --world-name miniapp -o types -q`"
        );
    }

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/echo-js");
    let example = example.to_str().unwrap();
    ok(
        "minihost app build --dir examples/echo-js",
        &minihost(tmp.path(), &["app", "build", "--dir", example]),
    );
    ok("npm test (examples/echo-js)", &npm_test(Path::new(example)));
}
