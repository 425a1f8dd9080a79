//! What this binary carries from the checkout it was built from, so that apps scaffolded and
//! built with it never need that checkout: the platform's WIT (and the check that an app's copy
//! of it is that same contract), the Rust SDK's sources with a standalone Cargo.toml, and the
//! checkout's Cargo.lock (the dependency versions the SDK was tested with).

use std::path::Path;

/// The WIT this minihost speaks (`wit/miniapp.wit` of the checkout it was built from).
pub const WIT: &str = include_str!("../../../wit/miniapp.wit");

/// The WIT package this minihost speaks.
pub const PACKAGE: &str = "minihost:app@0.2.0";

/// The version of the SDK (and of this minihost).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SDK's Cargo.toml, standalone (no workspace inheritance).
const SDK_CARGO_TOML: &str = include_str!("../template/sdk-Cargo.toml.in");

/// The SDK's sources, as (path under the SDK's folder, text).
const SDK_SOURCES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../../sdk/src/lib.rs")),
    ("src/card.rs", include_str!("../../../sdk/src/card.rs")),
    (
        "src/webhook.rs",
        include_str!("../../../sdk/src/webhook.rs"),
    ),
];

/// The checkout's lock file: seeds a new crate's, so it builds with the tested versions.
pub const CARGO_LOCK: &str = include_str!("../../../Cargo.lock");

/// Where [`write_sdk`] puts the SDK, relative to the app (its WIT goes to `vendor/wit`, where the
/// SDK's bindings look for it).
pub const VENDORED_SDK: &str = "vendor/minihost-sdk";

/// Writes the SDK this binary carries, and the WIT it binds, under `app/vendor`.
pub fn write_sdk(app: &Path) -> std::io::Result<()> {
    let sdk = app.join(VENDORED_SDK);
    std::fs::create_dir_all(sdk.join("src"))?;
    std::fs::write(
        sdk.join("Cargo.toml"),
        SDK_CARGO_TOML.replace("{{version}}", SDK_VERSION),
    )?;
    for (path, text) in SDK_SOURCES {
        std::fs::write(sdk.join(path), text)?;
    }
    let wit = app.join("vendor").join("wit");
    std::fs::create_dir_all(&wit)?;
    std::fs::write(wit.join("miniapp.wit"), WIT)
}

/// Why an app's copy of the WIT cannot be built against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitMismatch {
    /// The file is not there.
    #[error(
        "{path} is missing: the app is built against the platform's WIT ({PACKAGE}); \
         `minihost app wit > {path}` writes the one this minihost speaks"
    )]
    Missing {
        /// The file looked for.
        path: String,
    },
    /// It declares another package or version.
    #[error(
        "{path} declares package {found}, but this minihost speaks {PACKAGE}: \
         `minihost app wit > {path}` writes it (and the app's imports must name {PACKAGE})"
    )]
    Package {
        /// The file.
        path: String,
        /// The package it declares (`(none)` when it declares none).
        found: String,
    },
    /// Same package, other text: someone edited the contract.
    #[error(
        "{path} is not the {PACKAGE} this minihost speaks: line {line} differs (`{found}`, \
         expected `{expected}`); the platform's WIT cannot be changed by an app, \
         `minihost app wit > {path}` restores it"
    )]
    Differs {
        /// The file.
        path: String,
        /// The first line (1-based) that differs.
        line: usize,
        /// That line in the app's copy.
        found: String,
        /// That line in the platform's.
        expected: String,
    },
}

/// Checks that `dir/wit/miniapp.wit` is the WIT this binary carries.
pub fn check_wit(dir: &Path) -> Result<(), WitMismatch> {
    let file = dir.join("wit").join("miniapp.wit");
    let path = file.display().to_string();
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Err(WitMismatch::Missing { path });
    };
    compare_wit(&path, &text)
}

/// The lines of a WIT text that are the contract, numbered from 1: comments and blank lines
/// are not (an app whose copy differs only in doc comments builds).
fn meaningful(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with("//"))
}

fn compare_wit(path: &str, text: &str) -> Result<(), WitMismatch> {
    let package = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("package "))
        .map(|p| p.trim_end_matches(';').trim().to_string());
    if package.as_deref() != Some(PACKAGE) {
        return Err(WitMismatch::Package {
            path: path.to_string(),
            found: package.unwrap_or_else(|| "(none)".into()),
        });
    }
    let mut ours = meaningful(WIT);
    let mut theirs = meaningful(text);
    loop {
        match (theirs.next(), ours.next()) {
            (None, None) => return Ok(()),
            (Some((_, a)), Some((_, b))) if a == b => continue,
            (a, b) => {
                return Err(WitMismatch::Differs {
                    path: path.to_string(),
                    line: a.map_or(text.lines().count() + 1, |(n, _)| n),
                    found: a.map_or("(end of file)", |(_, l)| l).to_string(),
                    expected: b.map_or("(end of file)", |(_, l)| l).to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_carried_wit_is_the_package() {
        assert!(WIT.contains(&format!("package {PACKAGE};")));
        assert_eq!(compare_wit("w", WIT), Ok(()));
    }

    /// The SDK's sources are all carried, and its standalone Cargo.toml asks for what the
    /// workspace gives it.
    #[test]
    fn the_carried_sdk_is_the_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files: Vec<String> = std::fs::read_dir(root.join("sdk/src"))
            .unwrap()
            .map(|e| format!("src/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        files.sort();
        let mut carried: Vec<String> = SDK_SOURCES.iter().map(|(p, _)| p.to_string()).collect();
        carried.sort();
        assert_eq!(files, carried, "every file of sdk/src is carried");
        let parse = |text: &str| text.parse::<toml::Table>().unwrap();
        let workspace = parse(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap());
        let sdk = parse(&std::fs::read_to_string(root.join("sdk/Cargo.toml")).unwrap());
        let standalone = parse(SDK_CARGO_TOML);
        let deps = |t: &toml::Table| -> toml::Table {
            let mut all = t["dependencies"].as_table().unwrap().clone();
            for (_, target) in t["target"].as_table().unwrap() {
                all.extend(target["dependencies"].as_table().unwrap().clone());
            }
            all
        };
        let (sdk_deps, standalone_deps) = (deps(&sdk), deps(&standalone));
        assert_eq!(
            sdk_deps.keys().collect::<Vec<_>>(),
            standalone_deps.keys().collect::<Vec<_>>()
        );
        for (name, spec) in &standalone_deps {
            let from_workspace = &workspace["workspace"]["dependencies"][name];
            // `"0.4"` is `{ version = "0.4" }`.
            let normal = |v: &toml::Value| match v {
                toml::Value::String(_) => {
                    toml::Value::Table(toml::Table::from_iter([("version".to_string(), v.clone())]))
                }
                other => other.clone(),
            };
            assert_eq!(normal(spec), normal(from_workspace), "{name}");
        }
    }

    #[test]
    fn mismatches_are_named() {
        let old = WIT.replace(PACKAGE, "minihost:app@0.1.0");
        let e = compare_wit("wit/miniapp.wit", &old).unwrap_err();
        assert!(matches!(&e, WitMismatch::Package { found, .. } if found == "minihost:app@0.1.0"));
        assert!(e.to_string().contains("minihost:app@0.1.0"), "{e}");
        let edited = WIT.replace("  import timers;", "  import clocks;");
        match compare_wit("w", &edited).unwrap_err() {
            WitMismatch::Differs {
                found, expected, ..
            } => {
                assert_eq!(found, "import clocks;");
                assert_eq!(expected, "import timers;");
            }
            other => panic!("{other:?}"),
        }
        // Doc comments and blank lines are not the contract.
        let recommented: String = WIT
            .lines()
            .filter(|l| !l.trim().starts_with("//"))
            .flat_map(|l| [l, "", "  // a comment of another SDK version"])
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(compare_wit("w", &recommented), Ok(()));
        let none = compare_wit("w", "world x {}").unwrap_err();
        assert!(matches!(none, WitMismatch::Package { found, .. } if found == "(none)"));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_wit(dir.path()),
            Err(WitMismatch::Missing { .. })
        ));
    }
}
