//! `minihost app build`: `cargo build --target wasm32-wasip2` (or, for a JS or TS app, its npm
//! build: [`crate::js::build`]), then the same checks as an upload: the component must load and
//! link against the world, and its imports must be covered by the scopes miniapp.toml declares.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::{Context as _, bail};

use crate::Simulator;

pub(crate) async fn run(
    dir: &Path,
    release: bool,
    simulator: &dyn Simulator,
) -> anyhow::Result<ExitCode> {
    let wasm = build_component(dir, release).await?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let size = bytes.len();
    let manifest_path = dir.join("miniapp.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let checked = match simulator.check(text, bytes).await? {
        Ok(checked) => checked,
        Err(refusal) => {
            eprintln!(
                "error: a server would refuse {} with {}: {refusal}",
                wasm.display(),
                manifest_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("built {} ({} KiB)", wasm.display(), size.div_ceil(1024));
    println!(
        "ok: {}@{} links against minihost:app/miniapp; capabilities used: {}; miniapp.toml \
         covers them",
        checked.app,
        checked.version,
        if checked.interfaces.is_empty() {
            "none".to_string()
        } else {
            checked.interfaces.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds the app in `dir` and returns the component it produced (also for `minihost app
/// publish`): a JS or TS app by its npm build, a Rust crate for wasm32-wasip2 (release profile
/// unless `release` is false).
pub async fn build_component(dir: &Path, release: bool) -> anyhow::Result<PathBuf> {
    if crate::js::is_js_app(dir) {
        return crate::js::build(dir).await;
    }
    cargo_build(dir, release).await
}

/// Runs cargo and returns the `.wasm` it produced.
async fn cargo_build(dir: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = tokio::process::Command::new(&cargo);
    cmd.current_dir(dir)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // `app dev` drops a build when it is stopped.
        .kill_on_drop(true);
    if release {
        cmd.arg("--release");
    }
    let output = cmd
        .output()
        .await
        .with_context(|| format!("running {cargo:?} in {}", dir.display()))?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .flat_map(|msg| {
            msg["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"));
    match wasm {
        Some(path) => Ok(path),
        None => bail!(
            "cargo built no .wasm in {}: is the crate a `cdylib` (see `minihost app new`)?",
            dir.display()
        ),
    }
}
