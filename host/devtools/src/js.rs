//! JavaScript and TypeScript apps: the scaffold `minihost app new --lang js|ts` writes (carried in
//! this binary: package.json with its lockfile pinning ComponentizeJS and jco, the build script,
//! the WIT and the types `jco guest-types` generates from it), and the build `minihost app build`
//! runs for them (`npm ci` when node_modules is missing, then `npm run build`, which writes
//! `dist/app.wasm`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};

use crate::carried;

const PACKAGE_JSON: &str = include_str!("../template/js/package.json.in");
const PACKAGE_LOCK: &str = include_str!("../template/js/package-lock.json.in");
/// The build script: one for every JS and TS app of this version.
pub const BUILD_MJS: &str = include_str!("../template/js/build.mjs");
const APP_JS: &str = include_str!("../template/js/app.js.in");
const APP_TS: &str = include_str!("../template/js/app.ts.in");
const TSCONFIG_JS: &str = include_str!("../template/js/tsconfig.js.json");
const TSCONFIG_TS: &str = include_str!("../template/js/tsconfig.ts.json");
const README: &str = include_str!("../template/js/README.md.in");
const GITIGNORE: &str = include_str!("../template/js/gitignore.in");
const TEST_MJS: &str = include_str!("../template/js/app.test.mjs.in");
const HARNESS_MJS: &str = include_str!("../template/js/minihost-test.mjs");

/// The type definitions `npm run types` (`jco guest-types`) generates from the WIT, as
/// (path in the app, text).
pub const TYPES: &[(&str, &str)] = &[
    (
        "types/miniapp.d.ts",
        include_str!("../template/js/types/miniapp.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-types.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-types.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-messaging.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-messaging.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-profile.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-profile.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-payments.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-payments.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-storage.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-storage.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-log.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-log.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-auth.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-auth.d.ts"),
    ),
    (
        "types/interfaces/minihost-app-timers.d.ts",
        include_str!("../template/js/types/interfaces/minihost-app-timers.d.ts"),
    ),
];

/// Where `npm run build` writes the component, relative to the app.
pub const COMPONENT: &str = "dist/app.wasm";

/// JavaScript or TypeScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `src/app.js`, type-checked from JSDoc by `npm run check`.
    JavaScript,
    /// `src/app.ts`, compiled by tsc before the build.
    TypeScript,
}

/// The files of a new JS or TS app (placeholders filled by `fill`), as (path, text); the
/// manifest is the caller's.
pub fn files(flavour: Flavour, fill: &dyn Fn(&str) -> String) -> Vec<(String, String)> {
    let mut files = vec![
        ("package.json".to_string(), fill(PACKAGE_JSON)),
        ("package-lock.json".to_string(), fill(PACKAGE_LOCK)),
        ("build.mjs".to_string(), BUILD_MJS.to_string()),
        ("README.md".to_string(), fill(README)),
        (".gitignore".to_string(), GITIGNORE.to_string()),
        ("wit/miniapp.wit".to_string(), carried::WIT.to_string()),
        (
            "test/minihost-test.mjs".to_string(),
            HARNESS_MJS.to_string(),
        ),
        ("test/app.test.mjs".to_string(), fill(TEST_MJS)),
    ];
    match flavour {
        Flavour::JavaScript => {
            files.push(("src/app.js".into(), fill(APP_JS)));
            files.push(("tsconfig.json".into(), TSCONFIG_JS.into()));
        }
        Flavour::TypeScript => {
            files.push(("src/app.ts".into(), fill(APP_TS)));
            files.push(("tsconfig.json".into(), TSCONFIG_TS.into()));
        }
    }
    files.extend(TYPES.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    files
}

/// Whether `dir` holds a JS or TS app (a package.json and no Cargo.toml).
pub fn is_js_app(dir: &Path) -> bool {
    dir.join("package.json").is_file() && !dir.join("Cargo.toml").is_file()
}

/// Builds the JS or TS app in `dir` and returns its component: checks its WIT against the one
/// this binary carries, installs the pinned build tools from the lockfile when node_modules is
/// missing (`npm ci`), then runs `npm run build`.
pub async fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    carried::check_wit(dir)?;
    if !dir.join("node_modules").is_dir() {
        eprintln!(
            "installing the build tools pinned in {} (npm ci)",
            dir.join("package-lock.json").display()
        );
        npm(dir, &["ci", "--no-audit", "--no-fund"]).await?;
    }
    npm(dir, &["run", "--silent", "build"]).await?;
    let wasm = dir.join(COMPONENT);
    if !wasm.is_file() {
        bail!(
            "`npm run build` in {} wrote no {COMPONENT} (is its build script build.mjs?)",
            dir.display()
        );
    }
    Ok(wasm)
}

/// Runs npm in `dir`, its output on stderr. A failure's error carries the `error:` lines the
/// build printed (the build script names what is wrong there).
async fn npm(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let npm = std::env::var_os("MINIHOST_NPM").unwrap_or_else(|| "npm".into());
    let output = tokio::process::Command::new(&npm)
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::piped())
        // `app dev` drops a build when it is stopped.
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| {
            format!(
                "running {npm:?} in {} (are Node.js and npm installed?)",
                dir.display()
            )
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    if !output.status.success() {
        let errors: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.trim().strip_prefix("error: "))
            .collect();
        let why = if errors.is_empty() {
            String::new()
        } else {
            format!(": {}", errors.join("; "))
        };
        bail!(
            "`npm {}` failed in {} ({}){why}",
            args.join(" "),
            dir.display(),
            output.status
        );
    }
    Ok(())
}
