//! The validated manifest: what the rest of the platform reads once `miniapp.toml` has passed
//! every rule, with newtypes for the app id and scopes, and a normalized text dump.

use crate::scope::Scope;
use std::fmt;
use std::fmt::Write as _;

/// The platform's hard caps on what a manifest may request in `[limits]`, and the defaults used
/// when it requests nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformCaps {
    /// Largest `memory_mib` an app may request.
    pub max_memory_mib: u32,
    /// Largest `timeout_ms` an app may request.
    pub max_timeout_ms: u32,
    /// `memory_mib` when the manifest says nothing.
    pub default_memory_mib: u32,
    /// `timeout_ms` when the manifest says nothing.
    pub default_timeout_ms: u32,
}

impl Default for PlatformCaps {
    fn default() -> Self {
        PlatformCaps {
            // The runtime's pool reserves 64 MiB per slot; its default bounds are 32 MiB, 200 ms.
            max_memory_mib: 64,
            max_timeout_ms: 2_000,
            default_memory_mib: 32,
            default_timeout_ms: 200,
        }
    }
}

/// An app id: 3-40 characters of lowercase ASCII letters, digits and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(String);

impl AppId {
    /// Checks the rule and wraps the id.
    pub fn parse(s: &str) -> Result<AppId, String> {
        let len = s.chars().count();
        if !(3..=40).contains(&len) {
            return Err(format!("app id must be 3-40 characters, got {len}"));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err("app id must start with a lowercase letter".to_owned());
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "app id may contain only lowercase letters, digits and `-`, found {bad:?}"
            ));
        }
        Ok(AppId(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A declared scope and the reason the user will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequest {
    /// The scope.
    pub scope: Scope,
    /// Shown to the user in the consent request.
    pub reason: String,
}

/// A slash command the app answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The name without its slash (`poll`).
    pub name: String,
    /// One line of usage.
    pub help: String,
}

/// Resources of one invocation, already within the platform caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, in MiB.
    pub memory_mib: u32,
    /// Time budget of one invocation, in milliseconds.
    pub timeout_ms: u32,
}

/// A `miniapp.toml` that passed validation. Build one with [`crate::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Manifest {
    /// `id`.
    pub id: AppId,
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: semver::Version,
    /// `description`.
    pub description: String,
    /// `homepage`, an https URL.
    pub homepage: Option<url::Url>,
    /// `[[scopes]]`, in file order, without duplicates.
    pub scopes: Vec<ScopeRequest>,
    /// `[[commands]]`, in file order, without duplicates.
    pub commands: Vec<Command>,
    /// `[limits]`, defaults filled in.
    pub limits: Limits,
    /// `webhook`, an https URL (or an http URL to loopback, for development servers).
    pub webhook: Option<url::Url>,
}

impl Manifest {
    /// Whether the manifest declares `scope`.
    pub fn declares(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| s.scope == scope)
    }

    /// A stable, normalized text form (one fact per line), used by golden tests and by
    /// reviewers to compare versions.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let none = || "-".to_owned();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "id: {}", self.id);
        let _ = writeln!(out, "name: {:?}", self.name);
        let _ = writeln!(out, "version: {}", self.version);
        let _ = writeln!(out, "description: {:?}", self.description);
        let _ = writeln!(
            out,
            "homepage: {}",
            self.homepage.as_ref().map_or_else(none, |u| u.to_string())
        );
        let _ = writeln!(
            out,
            "webhook: {}",
            self.webhook.as_ref().map_or_else(none, |u| u.to_string())
        );
        let _ = writeln!(
            out,
            "limits: memory_mib={} timeout_ms={}",
            self.limits.memory_mib, self.limits.timeout_ms
        );
        for s in &self.scopes {
            let _ = writeln!(
                out,
                "scope: {} (interface {}): {:?}",
                s.scope,
                s.scope.interface(),
                s.reason
            );
        }
        for c in &self.commands {
            let _ = writeln!(out, "command: /{}: {:?}", c.name, c.help);
        }
        out
    }
}
