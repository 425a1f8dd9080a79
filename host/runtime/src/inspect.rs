//! Reading a component without compiling it: its top-level imports and exports and its sizes,
//! from one linear pass of `wasmparser` over the bytes. Upload checks run on this, so a
//! component that would be refused costs the host a parse, never a Cranelift compile.

use wasmparser::{ComponentTypeRef, Encoding, Parser, Payload};

/// What [`inspect`] read from a component's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Size of the component, in bytes.
    pub bytes: usize,
    /// The names of the component's top-level imports, in order (e.g.
    /// `minihost:app/messaging@0.2.0`, `wasi:cli/stdout@0.2.6`): the same names
    /// [`LoadedApp::imports`](crate::LoadedApp::imports) lists after compiling.
    pub imports: Vec<String>,
    /// The names of the component's top-level exports (`handle` for a mini-app).
    pub exports: Vec<String>,
    /// Core modules embedded anywhere in the component.
    pub core_modules: usize,
    /// Functions with a body over all core modules: what Cranelift would compile.
    pub functions: u64,
    /// Bytes of code sections over all core modules.
    pub code_bytes: u64,
}

/// Why [`inspect`] could not read a component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The bytes are a core WebAssembly module, not a component.
    #[error("this is a core WebAssembly module, not a component (build for wasm32-wasip2)")]
    CoreModule,
    /// The bytes do not parse as a WebAssembly component.
    #[error("not a WebAssembly component: {0}")]
    Malformed(String),
}

/// Reads a component's imports, exports and sizes without compiling it.
///
/// Only the binary structure is read (no validation of function bodies, which compiling does):
/// a component that passes here may still fail to compile, but everything a static check needs
/// is known without the cost of compiling.
pub fn inspect(wasm: &[u8]) -> Result<ComponentInfo, InspectError> {
    let mut info = ComponentInfo {
        bytes: wasm.len(),
        imports: Vec::new(),
        exports: Vec::new(),
        core_modules: 0,
        functions: 0,
        code_bytes: 0,
    };
    // Depth of nesting: 0 is the outer component, whose imports and exports are the world's.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| InspectError::Malformed(e.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding == Encoding::Module {
                    return Err(InspectError::CoreModule);
                }
                if encoding == Encoding::Module {
                    info.core_modules += 1;
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    // A type import (a world's `use types.{context}`) names no item the host
                    // provides; wasmtime does not list them either.
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        info.imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| InspectError::Malformed(e.to_string()))?;
                    info.exports.push(export.name.name.to_owned());
                }
            }
            Payload::CodeSectionStart { count, size, .. } => {
                info.functions += u64::from(count);
                info.code_bytes += u64::from(size);
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_is_not_a_component() {
        // The smallest core module: magic and version 1.
        assert_eq!(inspect(b"\0asm\x01\0\0\0"), Err(InspectError::CoreModule));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            inspect(b"\0asm not really"),
            Err(InspectError::Malformed(_))
        ));
        assert!(matches!(inspect(b""), Err(InspectError::Malformed(_))));
    }
}
