//! Nothing to link: this crate exists for its bench (`benches/extism.rs`) and for its build
//! script, which builds the Extism plugin (`plugin/`) and exports its path as `PLUGIN_WASM`.

/// Path of the Extism plugin built by `build.rs` (wasm32-unknown-unknown, release).
pub const PLUGIN_WASM: &str = env!("PLUGIN_WASM");
