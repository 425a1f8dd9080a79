//! The scopes a mini-app can ask for: defined once in `minihost-core`, re-exported here.

pub use minihost_core::scope::{Scope, UnknownScope};
