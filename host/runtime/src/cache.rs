//! The on-disk cache of compiled components: one file per (component sha256, engine), holding
//! a checksum and wasmtime's serialized artefact. A missing, stale or corrupt file is a miss
//! (the component is recompiled and the file rewritten), never an error.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"MHCWASM1";
const HEADER: usize = MAGIC.len() + 32;

/// The sha256 of a component's bytes: its identity in the cache.
pub(crate) fn content_hash(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_tag: String,
}

impl DiskCache {
    /// A cache in `dir` (created if needed) for artefacts of `engine`.
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<DiskCache> {
        std::fs::create_dir_all(dir)?;
        // Artefacts are only valid for the same wasmtime build and engine configuration.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_tag = format!("{:016x}", h.finish());
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            engine_tag,
        })
    }

    /// Where the artefact of the component with this hash lives.
    pub(crate) fn path(&self, hash: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex::encode(hash), self.engine_tag))
    }

    /// The cached component, if a valid artefact is on disk.
    pub(crate) fn load(&self, engine: &Engine, hash: &[u8; 32]) -> Option<Component> {
        let path = self.path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable cache file; recompiling");
                return None;
            }
        };
        let payload = match verify(&bytes) {
            Some(p) => p,
            None => {
                tracing::warn!(path = %path.display(), "corrupt cache file; recompiling");
                return None;
            }
        };
        // SAFETY: `Component::deserialize` trusts its input to be an artefact produced by a
        // compatible wasmtime. The payload is exactly what `store` wrote (its sha256 matches
        // the one in the header) into a cache directory the host owns, and wasmtime itself
        // checks the engine compatibility recorded in the artefact.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, payload) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "stale cache file; recompiling");
                None
            }
        }
    }

    /// Writes the artefact of `component` atomically (temp file + rename).
    pub(crate) fn store(&self, hash: &[u8; 32], component: &Component) -> std::io::Result<()> {
        let payload = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = self.path(hash);
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(&payload))?;
            f.write_all(&payload)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)
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
}
