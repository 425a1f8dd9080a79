//! Paths of the guest components (examples and test guests), built for wasm32-wasip2 by this
//! crate's build script on every `cargo test`, so tests run real components from a fresh clone.
//!
//! ```no_run
//! let wasm = std::fs::read(minihost_guest_artifacts::ECHO).unwrap();
//! ```

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Reads a guest component's bytes.
pub fn read(path: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}
