//! Builds every guest component with a nested `cargo build --target wasm32-wasip2 --profile
//! guest` into its own target directory (`target/guests`, so it never waits on the outer
//! cargo's lock), then writes their paths as consts into `$OUT_DIR/guests.rs`. Modelled on
//! wasmtime's `crates/test-programs/artifacts/build.rs`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// (const name, package) of each guest.
const GUESTS: &[(&str, &str)] = &[
    ("ECHO", "minihost-example-echo"),
    ("CARD", "minihost-example-card"),
    ("SHOP", "minihost-example-shop"),
    ("POLLS", "minihost-plugin-polls"),
    ("RED_ENVELOPE", "minihost-plugin-red-envelope"),
    ("FAULTS", "minihost-test-faults"),
    ("BENCH", "minihost-test-bench"),
    ("UNKNOWN_IMPORT", "minihost-test-unknown-import"),
    ("BIG", "minihost-test-big"),
];

/// Inputs of the guests, relative to the workspace root.
const WATCH: &[&str] = &[
    "wit",
    "sdk",
    "examples/echo",
    "examples/card",
    "examples/shop",
    "plugins",
    "host/runtime/test-guests",
    "Cargo.lock",
];

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("../..").canonicalize()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target").join("guests");

    println!("cargo:rerun-if-changed=build.rs");
    for path in WATCH {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    ensure_target(&root)?;

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target_dir)
        // The child's output is for humans; build-script stdout would be read as directives.
        .stdout(Stdio::from(std::io::stderr()));
    for (_, package) in GUESTS {
        cmd.args(["-p", package]);
    }
    for (key, _) in std::env::vars_os() {
        if strip(&key) {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("could not run {cargo:?}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest components failed ({status}); to see why, run from {}:\n  \
             cargo build --target wasm32-wasip2 --profile guest{}",
            root.display(),
            GUESTS
                .iter()
                .map(|(_, p)| format!(" -p {p}"))
                .collect::<String>()
        )
        .into());
    }

    let mut consts = String::new();
    for (name, package) in GUESTS {
        let path = wasm_path(&target_dir, package);
        if !path.is_file() {
            return Err(format!("expected {} after the guest build", path.display()).into());
        }
        writeln!(
            consts,
            "/// Path of the `{package}` component (built for wasm32-wasip2)."
        )?;
        writeln!(
            consts,
            "pub const {name}: &str = {:?};",
            path.display().to_string()
        )?;
    }
    writeln!(consts, "/// Every guest: (package, path).")?;
    writeln!(consts, "pub const ALL: &[(&str, &str)] = &[")?;
    for (name, package) in GUESTS {
        writeln!(consts, "    ({package:?}, {name}),")?;
    }
    writeln!(consts, "];")?;
    std::fs::write(out_dir.join("guests.rs"), consts)?;
    Ok(())
}

/// Installs the `wasm32-wasip2` standard library when it is missing: rustup installs the
/// targets of `rust-toolchain.toml` only with a toolchain it installs, not into one already there.
fn ensure_target(root: &Path) -> Result<(), BoxError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .current_dir(root)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .map_err(|e| format!("could not run {rustc:?}: {e}"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    if libdir.is_dir() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", "wasm32-wasip2"])
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(|e| {
            format!("the wasm32-wasip2 target is missing and rustup could not run: {e}")
        })?;
    if !status.success() {
        return Err(format!("`rustup target add wasm32-wasip2` failed ({status})").into());
    }
    Ok(())
}

fn wasm_path(target_dir: &Path, package: &str) -> PathBuf {
    target_dir
        .join("wasm32-wasip2")
        .join("guest")
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// Whether an outer-cargo variable must not leak into the nested build (flags, wrappers such as
/// clippy-driver, the jobserver, the outer target dir and profile settings).
fn strip(key: &OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
    ];
    const STRIP: &[&str] = &[
        "CARGO",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC",
        "RUSTDOC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "MAKEFLAGS",
        "MFLAGS",
        "TARGET",
        "HOST",
        "OUT_DIR",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
        "NUM_JOBS",
    ];
    if key.starts_with("CARGO_") || key.starts_with("__CARGO") {
        return !KEEP.iter().any(|k| key.starts_with(k));
    }
    STRIP.contains(&key)
}
