//! The raw `miniapp.toml` schema exactly as written by a developer: strict serde structs with
//! spans, documented field by field with their TOML form. Validation turns them into
//! [`crate::Manifest`].

use serde::Deserialize;
use toml::Spanned;

/// The top level of `miniapp.toml`.
///
/// ```toml
/// id = "polls"
/// name = "Polls"
/// version = "1.0.0"
/// description = "Quick polls for group chats."
/// homepage = "https://example.com/polls"   # optional
/// webhook = "https://example.com/hook"      # optional
///
/// [[scopes]]
/// name = "messages.send"
/// reason = "Posts the poll card in the conversation."
///
/// [[commands]]
/// name = "poll"
/// help = "/poll Question? | option | option"
///
/// [limits]            # optional
/// memory_mib = 32
/// timeout_ms = 500
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    /// `id = "polls"`: the app id, 3-40 characters of lowercase letters, digits and `-`,
    /// starting with a letter. Unique on the platform; never changes between versions.
    pub id: Spanned<String>,
    /// `name = "Polls"`: the name users see, 1-50 characters, stored in NFC; no bidirectional
    /// controls, invisible characters or look-alike script mixes (`Pоlls` with a Cyrillic `о`).
    pub name: Spanned<String>,
    /// `version = "1.2.0"`: the version of this upload, semantic versioning (`MAJOR.MINOR.PATCH`).
    pub version: Spanned<String>,
    /// `description = "..."`: what the app does, shown to users, 1-500 characters.
    pub description: Spanned<String>,
    /// `homepage = "https://..."`: optional, developer-facing page; must be an https URL.
    #[serde(default)]
    pub homepage: Option<Spanned<String>>,
    /// `[[scopes]]`: each capability the app asks for, with the reason shown to the user.
    #[serde(default)]
    pub scopes: Vec<Spanned<RawScope>>,
    /// `[[commands]]`: the slash commands the app answers to.
    #[serde(default)]
    pub commands: Vec<Spanned<RawCommand>>,
    /// `[limits]`: optional, the resources one invocation may use, within the platform's caps.
    #[serde(default)]
    pub limits: Option<Spanned<RawLimits>>,
    /// `webhook = "https://..."`: optional, where the app's backend receives signed payment
    /// events; must be an https URL, or an http URL to loopback (`http://127.0.0.1:PORT/...`,
    /// `http://localhost:PORT/...`), which servers accept only in development mode.
    #[serde(default)]
    pub webhook: Option<Spanned<String>>,
}

/// One `[[scopes]]` entry.
///
/// ```toml
/// [[scopes]]
/// name = "profile.read"
/// reason = "Shows who voted."
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// `name = "messages.send"`: one of `messages.send`, `profile.read`, `payments.request`,
    /// `storage`, `auth.login`. Each scope may be declared once.
    pub name: Spanned<String>,
    /// `reason = "..."`: why the app needs it, shown to the user in the consent request,
    /// 1-200 characters.
    pub reason: Spanned<String>,
}

/// One `[[commands]]` entry.
///
/// ```toml
/// [[commands]]
/// name = "poll"
/// help = "/poll Question? | option | option"
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    /// `name = "poll"`: the command without its slash: 1-32 characters of lowercase letters,
    /// digits, `-` and `_`, starting with a letter. Each command may be declared once.
    pub name: Spanned<String>,
    /// `help = "..."`: one line of usage shown in the command list, 1-200 characters.
    pub help: Spanned<String>,
}

/// The optional `[limits]` table.
///
/// ```toml
/// [limits]
/// memory_mib = 32   # default 64, at most the platform cap (256)
/// timeout_ms = 500  # default 1000, at most the platform cap (10000)
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// `memory_mib = 32`: linear memory of one instance, in MiB.
    #[serde(default)]
    pub memory_mib: Option<Spanned<i64>>,
    /// `timeout_ms = 500`: wall-clock budget of one invocation, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<Spanned<i64>>,
}
