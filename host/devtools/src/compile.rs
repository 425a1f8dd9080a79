//! `minihost app build`: `cargo build --target wasm32-wasip2`, then the same checks as an
//! upload: the component must load and link against the world, and its imports must be covered
//! by the scopes miniapp.toml declares.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use anyhow::{Context as _, bail};

use crate::run::{load, runtime};
use crate::sim::Shared;

pub(crate) async fn run(dir: &Path, release: bool) -> anyhow::Result<ExitCode> {
    let wasm = cargo_build(dir, release).await?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let size = bytes.len();
    let runtime = runtime(&Shared::default())?;
    let app = match load(&runtime, bytes).await? {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {} does not load: {e}", wasm.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let manifest_path = dir.join("miniapp.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = match minihost_manifest::parse(&text) {
        Ok(m) => m,
        Err(errors) => {
            eprintln!("error: {} is invalid:\n{errors}", manifest_path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let findings =
        minihost_manifest::check_imports(app.imports().iter().map(String::as_str), &manifest);
    if !findings.is_empty() {
        for f in &findings {
            eprintln!("error: the component {f}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let interfaces: Vec<&str> = app.interfaces().iter().map(|i| i.name()).collect();
    println!("built {} ({} KiB)", wasm.display(), size.div_ceil(1024));
    println!(
        "ok: links against minihost:app/miniapp; capabilities used: {}; miniapp.toml covers them",
        if interfaces.is_empty() {
            "none".to_string()
        } else {
            interfaces.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
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
        .stderr(Stdio::inherit());
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
