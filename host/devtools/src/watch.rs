//! The app folder as `minihost app dev` sees it: whether a folder is an app at all
//! ([`app_dir`]), and the files an app is built from (its manifest, its package file and
//! everything under `src/`), watched by polling their modification times and sizes
//! ([`Sources`]), so no file-notification dependency is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The manifest every app has.
pub const MANIFEST: &str = "miniapp.toml";

/// Most files looked at in one pass (a `src/` larger than this is not an app's source).
const MAX_FILES: usize = 10_000;

/// Files beside the manifest that a build reads.
const PACKAGE_FILES: [&str; 3] = ["Cargo.toml", "package.json", "build.mjs"];

/// Why a folder is not a mini-app.
#[derive(Debug, thiserror::Error)]
pub enum NotAnApp {
    /// The folder does not exist (or is not a folder).
    #[error("{0} is not a folder")]
    NoFolder(PathBuf),
    /// No `miniapp.toml` in it.
    #[error(
        "{0} is not a mini-app: it has no {MANIFEST} (create an app with `minihost app new NAME`, \
         or give the app's folder)"
    )]
    NoManifest(PathBuf),
    /// A manifest, but nothing to build.
    #[error(
        "{0} has a {MANIFEST} but neither Cargo.toml (a Rust app) nor package.json (a JavaScript or \
         TypeScript app)"
    )]
    NothingToBuild(PathBuf),
}

/// Checks that `dir` holds an app: a folder with `miniapp.toml` and `Cargo.toml` or
/// `package.json`.
pub fn app_dir(dir: &Path) -> Result<(), NotAnApp> {
    if !dir.is_dir() {
        return Err(NotAnApp::NoFolder(dir.to_path_buf()));
    }
    if !dir.join(MANIFEST).is_file() {
        return Err(NotAnApp::NoManifest(dir.to_path_buf()));
    }
    if !dir.join("Cargo.toml").is_file() && !dir.join("package.json").is_file() {
        return Err(NotAnApp::NothingToBuild(dir.to_path_buf()));
    }
    Ok(())
}

/// What was seen of each file: its modification time and size.
type Fingerprint = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

/// The source files of an app, polled for changes.
#[derive(Debug)]
pub struct Sources {
    dir: PathBuf,
    last: Fingerprint,
}

impl Sources {
    /// Starts watching the app in `dir`, taking the files as they are now as seen.
    pub fn new(dir: &Path) -> Self {
        Sources {
            dir: dir.to_path_buf(),
            last: fingerprint(dir),
        }
    }

    /// Whether a source file was written, added or removed since the last call (or [`new`]).
    ///
    /// [`new`]: Sources::new
    pub fn changed(&mut self) -> bool {
        let now = fingerprint(&self.dir);
        if now == self.last {
            return false;
        }
        self.last = now;
        true
    }
}

/// The manifest, the package files and every file under `src/` (symbolic links followed,
/// unreadable entries skipped).
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut seen = Fingerprint::new();
    for file in std::iter::once(MANIFEST).chain(PACKAGE_FILES) {
        look(&dir.join(file), &mut seen);
    }
    let mut folders = vec![dir.join("src")];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            if seen.len() >= MAX_FILES {
                return seen;
            }
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                look(&path, &mut seen);
            }
        }
    }
    seen
}

fn look(path: &Path, seen: &mut Fingerprint) {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.is_file()
    {
        seen.insert(path.to_path_buf(), (meta.modified().ok(), meta.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(path: &Path, text: &str, age: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + age);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn a_folder_without_a_manifest_or_a_package_is_not_an_app() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let e = app_dir(&dir.join("nope")).unwrap_err();
        assert!(matches!(e, NotAnApp::NoFolder(_)), "{e}");
        let e = app_dir(dir).unwrap_err();
        assert!(e.to_string().contains("has no miniapp.toml"), "{e}");
        write(&dir.join(MANIFEST), "id = \"x\"", 0);
        let e = app_dir(dir).unwrap_err();
        assert!(e.to_string().contains("neither Cargo.toml"), "{e}");
        write(&dir.join("package.json"), "{}", 0);
        app_dir(dir).unwrap();
    }

    #[test]
    fn a_write_an_addition_or_a_removal_under_src_or_of_the_manifest_is_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(&dir.join(MANIFEST), "id = \"x\"", 0);
        write(&dir.join("src/lib.rs"), "fn a() {}", 0);
        let mut sources = Sources::new(dir);
        assert!(!sources.changed());

        // The same size, a later time: an editor's save.
        write(&dir.join("src/lib.rs"), "fn b() {}", 1);
        assert!(sources.changed());
        assert!(!sources.changed(), "seen once");

        write(&dir.join("src/deep/mod.rs"), "", 1);
        assert!(sources.changed());
        std::fs::remove_file(dir.join("src/deep/mod.rs")).unwrap();
        assert!(sources.changed());

        write(&dir.join(MANIFEST), "id = \"y\"", 2);
        assert!(sources.changed());

        // Build output and other folders are not sources.
        write(&dir.join("target/app.wasm"), "\0asm", 3);
        write(&dir.join("README.md"), "# x", 3);
        assert!(!sources.changed());
    }
}
