//! `miniapp.toml`: the strict schema ([`schema`]), its validation into a [`Manifest`] with errors
//! that name the field and its line and column, and the upload-time check of a component's
//! imports against the declared scopes ([`check_imports`]).

mod error;
mod imports;
mod model;
pub mod schema;
mod scope;
mod validate;

pub use error::{ManifestError, ManifestErrors};
pub use imports::{Finding, PLATFORM_VERSION, check_imports};
pub use model::{AppId, Command, Limits, Manifest, PlatformCaps, ScopeRequest};
pub use scope::{Scope, UnknownScope};
pub use validate::{MAX_COMMANDS, MAX_MANIFEST_BYTES, parse, parse_with_caps};
