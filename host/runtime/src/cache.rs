//! The on-disk cache of compiled components: one file per (component sha256, engine), holding
//! a checksum and wasmtime's serialized artefact. A missing, stale or corrupt file is a miss
//! (the component is recompiled and the file rewritten), never an error.
//!
//! The directory is opened once as a `cap_std::fs::Dir` and every file operation goes through
//! that handle, so no name (all are derived from hashes) can reach outside it, and a symlink
//! planted inside is never followed out of it. The cache holds at most `max_bytes`: past it the
//! files used least recently, by the cache's own record (seeded from the files' modification
//! times at start, which each hit refreshes), are deleted.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"MHCWASM1";
const HEADER: usize = MAGIC.len() + 32;
/// Suffix of artefact files (any engine); anything else in the directory is not ours.
const SUFFIX: &str = ".cwasm";
/// Marker of a file being written (renamed into place when complete).
const TEMP_MARK: &str = ".cwasm.tmp";

/// The sha256 of a component's bytes: its identity in the cache.
pub(crate) fn content_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// A component hash from its 64-character lowercase hex form; `None` for anything else.
pub(crate) fn parse_hash(hex_hash: &str) -> Option<[u8; 32]> {
    if hex_hash.len() != 64
        || !hex_hash
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut hash).ok()?;
    Some(hash)
}

pub(crate) struct DiskCache {
    dir: Dir,
    path: PathBuf,
    engine_tag: String,
    max_bytes: u64,
    index: Mutex<Index>,
}

/// What the cache knows of its files: sizes and a logical clock of use.
#[derive(Default)]
struct Index {
    files: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    size: u64,
    used: u64,
}

impl Index {
    fn touch(&mut self, name: &str, size: u64) {
        self.clock += 1;
        let used = self.clock;
        if let Some(old) = self.files.insert(name.to_owned(), Entry { size, used }) {
            self.total -= old.size;
        }
        self.total += size;
    }

    fn forget(&mut self, name: &str) {
        if let Some(old) = self.files.remove(name) {
            self.total -= old.size;
        }
    }

    /// The least recently used file other than `keep`.
    fn oldest(&self, keep: &str) -> Option<String> {
        self.files
            .iter()
            .filter(|(name, _)| name.as_str() != keep)
            .min_by_key(|(_, e)| e.used)
            .map(|(name, _)| name.clone())
    }
}

impl DiskCache {
    /// A cache in `dir` (created if needed) for artefacts of `engine`, holding at most
    /// `max_bytes`. Files already there are indexed (oldest first), and the cache is brought
    /// under its bound.
    pub(crate) fn new(path: &Path, engine: &Engine, max_bytes: u64) -> std::io::Result<DiskCache> {
        // The one use of an ambient path: the operator's configured directory.
        std::fs::create_dir_all(path)?;
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        // Artefacts are only valid for the same wasmtime build and engine configuration.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_tag = format!("{:016x}", h.finish());
        let cache = DiskCache {
            dir,
            path: path.to_path_buf(),
            engine_tag,
            max_bytes,
            index: Mutex::new(Index::default()),
        };
        cache.scan()?;
        cache.evict_to_bound("");
        Ok(cache)
    }

    /// Indexes the artefact files present, oldest modification first; removes temp files
    /// that a crash left behind.
    fn scan(&self) -> std::io::Result<()> {
        let mut found = Vec::new();
        for entry in self.dir.entries()? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Not following symlinks: a link is never counted as one of our files.
            let Ok(meta) = self.dir.symlink_metadata(&name) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if name.contains(TEMP_MARK) {
                let _ = self.dir.remove_file(&name);
            } else if name.ends_with(SUFFIX) {
                let modified = meta
                    .modified()
                    .map(|t| t.into_std())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((modified, name, meta.len()));
            }
        }
        found.sort();
        let mut index = self.lock();
        for (_, name, size) in found {
            index.touch(&name, size);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn name(&self, hash: &[u8; 32]) -> String {
        format!("{}-{}{SUFFIX}", hex::encode(hash), self.engine_tag)
    }

    /// Where the artefact of the component with this hash lives (for display and tests).
    pub(crate) fn path(&self, hash: &[u8; 32]) -> PathBuf {
        self.path.join(self.name(hash))
    }

    /// Total bytes of the files the cache holds.
    pub(crate) fn size(&self) -> u64 {
        self.lock().total
    }

    /// Reads the file `name` inside the cache directory, never outside it.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let mut file = self.dir.open(name)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Record the use on disk too, so the order of use survives a restart.
        let _ = file.into_std().set_modified(SystemTime::now());
        Ok(bytes)
    }

    /// The cached component, if a valid artefact is on disk.
    pub(crate) fn load(&self, engine: &Engine, hash: &[u8; 32]) -> Option<Component> {
        let name = self.name(hash);
        let bytes = match self.read(&name) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.lock().forget(&name);
                return None;
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "unreadable cache file; recompiling");
                return None;
            }
        };
        let Some(payload) = verify(&bytes) else {
            tracing::warn!(file = %name, "corrupt cache file; recompiling");
            let _ = self.remove_named(&name);
            return None;
        };
        match deserialize(engine, payload) {
            Ok(c) => {
                self.lock().touch(&name, bytes.len() as u64);
                Some(c)
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "stale cache file; recompiling");
                let _ = self.remove_named(&name);
                None
            }
        }
    }

    /// Writes a serialized artefact atomically (temp file + rename), then evicts the least
    /// recently used files until the cache is under its bound. An artefact larger than the
    /// whole bound is not written.
    pub(crate) fn store(&self, hash: &[u8; 32], payload: &[u8]) -> std::io::Result<()> {
        let size = (HEADER + payload.len()) as u64;
        if size > self.max_bytes {
            tracing::info!(
                size,
                max = self.max_bytes,
                "artefact larger than the whole cache; not cached"
            );
            return Ok(());
        }
        let name = self.name(hash);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = format!("{name}.tmp{}-{unique}", std::process::id());
        let written = (|| {
            // `create_new`: never opens an existing name, so never writes through a link.
            let mut f = self
                .dir
                .open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(payload))?;
            f.write_all(payload)?;
            f.sync_all()?;
            // Renaming replaces whatever has the name (a link is replaced, not followed).
            self.dir.rename(&tmp, &self.dir, &name)
        })();
        if let Err(e) = written {
            let _ = self.dir.remove_file(&tmp);
            return Err(e);
        }
        self.lock().touch(&name, size);
        self.evict_to_bound(&name);
        Ok(())
    }

    /// Deletes the artefact of this component, if cached. `Ok(true)` when a file was removed.
    pub(crate) fn remove(&self, hash: &[u8; 32]) -> std::io::Result<bool> {
        self.remove_named(&self.name(hash))
    }

    fn remove_named(&self, name: &str) -> std::io::Result<bool> {
        self.lock().forget(name);
        match self.dir.remove_file(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes least recently used files (never `keep`) until the total is under the bound.
    fn evict_to_bound(&self, keep: &str) {
        loop {
            let victim = {
                let index = self.lock();
                if index.total <= self.max_bytes {
                    return;
                }
                match index.oldest(keep) {
                    Some(v) => v,
                    None => return,
                }
            };
            match self.remove_named(&victim) {
                Ok(_) => tracing::debug!(file = %victim, "evicted from the component cache"),
                Err(e) => tracing::warn!(file = %victim, error = %e, "could not evict"),
            }
        }
    }
}

/// Turns a serialized artefact back into a component.
pub(crate) fn deserialize(engine: &Engine, artefact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its input to be an artefact produced by a
    // compatible wasmtime. Artefacts come only from this runtime's own compiles: in this
    // process, from a compile worker running this same build (the parent's engine settings,
    // passed on its command line), or from a cache file whose sha256 matches its header, in a
    // directory the host owns and reaches only through its `Dir` handle. wasmtime itself
    // checks the engine compatibility recorded in the artefact.
    #[allow(unsafe_code)]
    unsafe {
        Component::deserialize(engine, artefact)
    }
}

/// The payload of a cache file whose header and checksum are intact.
fn verify(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (sum, payload) = bytes[MAGIC.len()..].split_at(32);
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn verify_rejects_damage() {
        let payload = b"compiled code";
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(payload));
        file.extend_from_slice(payload);
        assert_eq!(verify(&file), Some(&payload[..]));
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(verify(&flipped), None);
        assert_eq!(verify(&file[..HEADER - 1]), None);
        assert_eq!(
            verify(b"garbage garbage garbage garbage garbage garbage"),
            None
        );
    }

    #[test]
    fn hashes_parse_only_from_64_lowercase_hex_digits() {
        let hash = content_hash(b"x");
        assert_eq!(parse_hash(&hex::encode(hash)), Some(hash));
        for bad in [
            "../x",
            "/etc/passwd",
            "",
            &hex::encode(hash).to_uppercase(),
            &format!("{}/", &hex::encode(hash)[..63]),
            &format!("../{}", &hex::encode(hash)[3..]),
        ] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_cannot_reach_outside_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let cache_dir = root.path().join("cache");
        std::fs::write(root.path().join("x"), b"outside").unwrap();
        let cache = DiskCache::new(&cache_dir, &engine(), 1 << 20).unwrap();
        for name in [
            "../x".to_owned(),
            root.path().join("x").display().to_string(),
            "/etc/passwd".to_owned(),
        ] {
            assert!(cache.read(&name).is_err(), "{name} was read");
            assert!(cache.remove_named(&name).is_err(), "{name} was removed");
        }
        assert_eq!(std::fs::read(root.path().join("x")).unwrap(), b"outside");
    }

    #[test]
    fn a_symlink_in_the_cache_is_not_followed_out_of_it() {
        let root = tempfile::tempdir().unwrap();
        let cache_dir = root.path().join("cache");
        let outside = root.path().join("outside.cwasm");
        let payload = b"pretend artefact";
        let mut valid = MAGIC.to_vec();
        valid.extend_from_slice(&Sha256::digest(payload));
        valid.extend_from_slice(payload);
        std::fs::write(&outside, &valid).unwrap();

        let cache = DiskCache::new(&cache_dir, &engine(), 1 << 20).unwrap();
        let hash = content_hash(b"component");
        let name = cache.name(&hash);
        std::os::unix::fs::symlink(&outside, cache_dir.join(&name)).unwrap();
        // A link to a directory outside, used as a path prefix.
        std::os::unix::fs::symlink(root.path(), cache_dir.join("up")).unwrap();

        // Reading through the links is refused.
        assert!(cache.read(&name).is_err());
        assert!(cache.read("up/outside.cwasm").is_err());
        assert!(cache.load(&engine(), &hash).is_none());

        // Writing the name replaces the link inside the cache; the outside file is untouched.
        cache.store(&hash, b"new artefact").unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), valid);
        assert!(
            !std::fs::symlink_metadata(cache_dir.join(&name))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            cache
                .dir
                .open_with("up/new", OpenOptions::new().write(true).create_new(true))
                .is_err()
        );
        assert!(!root.path().join("new").exists());

        // A fresh cache does not count the link to a directory as one of its files.
        drop(cache);
        let again = DiskCache::new(&cache_dir, &engine(), 1 << 20).unwrap();
        assert_eq!(again.size(), (HEADER + b"new artefact".len()) as u64);
    }

    #[test]
    fn least_recently_used_files_are_evicted_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let payload = vec![7u8; 1000];
        let each = (HEADER + payload.len()) as u64;
        let cache = DiskCache::new(dir.path(), &engine(), 2 * each).unwrap();
        let [a, b, c] = [b"a", b"b", b"c"].map(|k| content_hash(k));
        cache.store(&a, &payload).unwrap();
        cache.store(&b, &payload).unwrap();
        // Using `a` makes `b` the least recently used.
        assert!(cache.read(&cache.name(&a)).is_ok());
        cache.lock().touch(&cache.name(&a), each);
        cache.store(&c, &payload).unwrap();
        assert!(cache.size() <= 2 * each);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.contains(&cache.name(&a)), "{names:?}");
        assert!(!names.contains(&cache.name(&b)), "{names:?}");
        assert!(names.contains(&cache.name(&c)), "{names:?}");

        // Too large for the whole cache: not written at all.
        cache.store(&b, &vec![0u8; 3 * each as usize]).unwrap();
        assert!(!dir.path().join(cache.name(&b)).exists());

        // Removal of a deleted version's artefact.
        assert!(cache.remove(&a).unwrap());
        assert!(!cache.remove(&a).unwrap());
        assert_eq!(cache.size(), each);

        // A restart sees the same files and the same bound.
        drop(cache);
        let small = DiskCache::new(dir.path(), &engine(), each - 1).unwrap();
        assert_eq!(small.size(), 0);
    }
}
