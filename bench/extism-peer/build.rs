//! Builds the Extism plugin (`plugin/`, its own workspace) with a nested
//! `cargo build --release --target wasm32-unknown-unknown` into `target/plugin`, and passes its
//! path to the crate as `PLUGIN_WASM`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let plugin = dir.join("plugin");
    let target_dir = dir.join("target").join("plugin");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", plugin.join("src").display());
    println!(
        "cargo:rerun-if-changed={}",
        plugin.join("Cargo.toml").display()
    );

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugin)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir)
        .stdout(Stdio::from(std::io::stderr()));
    // Outer-cargo settings (flags, wrappers, jobserver, profile) must not leak into the nested build.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = ["CARGO_HOME", "CARGO_NET_", "CARGO_HTTP_", "CARGO_REGISTR"]
            .iter()
            .any(|k| key.starts_with(k));
        let outer = key.starts_with("CARGO_")
            || key.starts_with("__CARGO")
            || key.starts_with("RUSTC")
            || matches!(
                key,
                "RUSTFLAGS"
                    | "RUSTDOC"
                    | "MAKEFLAGS"
                    | "MFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "PROFILE"
                    | "NUM_JOBS"
            );
        if outer && !keep {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!(
            "building the Extism plugin failed ({status}); it needs the wasm32-unknown-unknown \
             target: `rustup target add wasm32-unknown-unknown`"
        )
        .into());
    }
    let wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join("minihost_extism_plugin.wasm");
    if !wasm.is_file() {
        return Err(format!("expected {} after the plugin build", wasm.display()).into());
    }
    println!("cargo:rustc-env=PLUGIN_WASM={}", wasm.display());
    Ok(())
}
