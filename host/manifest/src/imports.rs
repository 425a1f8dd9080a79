//! The upload-time check of a component's imports: every `minihost:app` interface it imports
//! must be of the platform's version and covered by a declared scope, and it may import only
//! the harmless part of WASI.

use crate::model::Manifest;
use crate::scope::Scope;
use std::fmt;

/// The version of the `minihost:app` package the platform implements; an app built against
/// another version is refused at upload.
pub const PLATFORM_VERSION: &str = "0.2.0";

/// `minihost:app` interfaces every app may import without a scope.
const FREE_PLATFORM_INTERFACES: [&str; 3] = ["log", "timers", "types"];
/// WASI packages a std guest imports that give it no reach outside its sandbox.
const HARMLESS_WASI_PACKAGES: [&str; 4] = ["cli", "io", "clocks", "random"];
/// WASI packages that reach files or the network: never allowed.
const FORBIDDEN_WASI_PACKAGES: [&str; 3] = ["filesystem", "sockets", "http"];

/// A reason to reject a component at upload. Each names the offending import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The component imports a platform interface whose scope the manifest does not declare.
    UndeclaredScope {
        /// The import, as written in the component (`minihost:app/payments@0.2.0`).
        import: String,
        /// The scope that would cover it.
        scope: Scope,
    },
    /// The component imports WASI filesystem, sockets or HTTP.
    ForbiddenWasi {
        /// The import (`wasi:filesystem/types@0.2.6`).
        import: String,
    },
    /// The component imports a `minihost` interface the platform does not have.
    UnknownPlatformInterface {
        /// The import.
        import: String,
    },
    /// The component imports a `minihost:app` interface of a version the platform does not
    /// implement.
    UnsupportedVersion {
        /// The import (`minihost:app/messaging@0.2.0`).
        import: String,
    },
    /// The component imports something the platform does not provide at all.
    UnknownImport {
        /// The import.
        import: String,
    },
}

impl Finding {
    /// The import this finding is about.
    pub fn import(&self) -> &str {
        match self {
            Finding::UndeclaredScope { import, .. }
            | Finding::ForbiddenWasi { import }
            | Finding::UnknownPlatformInterface { import }
            | Finding::UnsupportedVersion { import }
            | Finding::UnknownImport { import } => import,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::UndeclaredScope { import, scope } => write!(
                f,
                "imports `{import}`, which needs scope `{scope}`, but miniapp.toml does not declare it"
            ),
            Finding::ForbiddenWasi { import } => write!(
                f,
                "imports `{import}`: WASI filesystem, sockets and http are not available to mini-apps"
            ),
            Finding::UnknownPlatformInterface { import } => {
                write!(
                    f,
                    "imports `{import}`, which is not a minihost:app interface"
                )
            }
            Finding::UnsupportedVersion { import } => write!(
                f,
                "imports `{import}`, but the platform implements minihost:app@{PLATFORM_VERSION}; \
                 rebuild against that version of the SDK"
            ),
            Finding::UnknownImport { import } => {
                write!(f, "imports `{import}`, which the platform does not provide")
            }
        }
    }
}

/// An import name split as `namespace:package/interface@version`.
struct ImportName<'a> {
    namespace: &'a str,
    package: &'a str,
    interface: Option<&'a str>,
    version: Option<&'a str>,
}

fn split(import: &str) -> Option<ImportName<'_>> {
    let (without_version, version) = match import.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (import, None),
    };
    let (namespace, rest) = without_version.split_once(':')?;
    let (package, interface) = match rest.split_once('/') {
        Some((package, interface)) => (package, Some(interface)),
        None => (rest, None),
    };
    Some(ImportName {
        namespace,
        package,
        interface,
        version,
    })
}

/// Checks a component's imported interface names against its manifest. An empty result means
/// the imports are acceptable; otherwise there is one finding per offending import, in the
/// order given.
pub fn check_imports<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    manifest: &Manifest,
) -> Vec<Finding> {
    imports
        .into_iter()
        .filter_map(|import| check_one(import, manifest))
        .collect()
}

fn check_one(import: &str, manifest: &Manifest) -> Option<Finding> {
    let owned = || import.to_owned();
    let Some(name) = split(import) else {
        return Some(Finding::UnknownImport { import: owned() });
    };
    match (name.namespace, name.package) {
        ("minihost", "app") => {
            let interface = name.interface.unwrap_or("");
            if name.version != Some(PLATFORM_VERSION) {
                Some(Finding::UnsupportedVersion { import: owned() })
            } else if FREE_PLATFORM_INTERFACES.contains(&interface) {
                None
            } else if let Some(scope) = Scope::for_interface(interface) {
                let covered = Scope::covering(interface).any(|s| manifest.declares(s));
                (!covered).then(|| Finding::UndeclaredScope {
                    import: owned(),
                    scope,
                })
            } else {
                Some(Finding::UnknownPlatformInterface { import: owned() })
            }
        }
        ("minihost", _) => Some(Finding::UnknownPlatformInterface { import: owned() }),
        ("wasi", package) if FORBIDDEN_WASI_PACKAGES.contains(&package) => {
            Some(Finding::ForbiddenWasi { import: owned() })
        }
        ("wasi", package) if HARMLESS_WASI_PACKAGES.contains(&package) => None,
        _ => Some(Finding::UnknownImport { import: owned() }),
    }
}
