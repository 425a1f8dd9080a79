//! The rules of `miniapp.toml`: turns the raw schema into a [`Manifest`], collecting every
//! violation with the field and its position.

use crate::error::{ManifestError, ManifestErrors};
use crate::model::{AppId, Command, Limits, Manifest, PlatformCaps, ScopeRequest};
use crate::schema::{RawLimits, RawManifest};
use crate::scope::Scope;
use std::ops::Range;
use toml::Spanned;

/// Parses and validates `miniapp.toml` text against the platform's default caps.
pub fn parse(src: &str) -> Result<Manifest, ManifestErrors> {
    parse_with_caps(src, &PlatformCaps::default())
}

/// The largest `miniapp.toml`, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024;
/// The most commands one app declares.
pub const MAX_COMMANDS: usize = 32;

/// Parses and validates `miniapp.toml` text against the given caps.
pub fn parse_with_caps(src: &str, caps: &PlatformCaps) -> Result<Manifest, ManifestErrors> {
    if src.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestErrors(vec![ManifestError {
            field: "(file)".into(),
            line: 1,
            column: 1,
            message: format!(
                "miniapp.toml is {} bytes; at most {MAX_MANIFEST_BYTES}",
                src.len()
            ),
        }]));
    }
    let raw: RawManifest =
        toml::from_str(src).map_err(|e| ManifestErrors(vec![crate::error::from_toml(src, &e)]))?;
    Validator {
        src,
        errors: Vec::new(),
    }
    .manifest(raw, caps)
}

struct Validator<'a> {
    src: &'a str,
    errors: Vec<ManifestError>,
}

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        self.errors
            .push(ManifestError::at(self.src, span, field, message));
    }

    fn manifest(
        mut self,
        raw: RawManifest,
        caps: &PlatformCaps,
    ) -> Result<Manifest, ManifestErrors> {
        let id = match AppId::parse(raw.id.get_ref()) {
            Ok(id) => Some(id),
            Err(message) => {
                self.error(raw.id.span(), "id", message);
                None
            }
        };
        let name = self
            .text(&raw.name, "name", 50)
            .and_then(|name| self.shown_name(&raw.name, name));
        let version = match semver::Version::parse(raw.version.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    raw.version.span(),
                    "version",
                    format!("not a semantic version (MAJOR.MINOR.PATCH): {e}"),
                );
                None
            }
        };
        let description = self.text(&raw.description, "description", 500);
        let homepage = raw
            .homepage
            .as_ref()
            .and_then(|u| self.https_url(u, "homepage"));
        let webhook = raw.webhook.as_ref().and_then(|u| self.webhook_url(u));

        let mut scopes: Vec<(ScopeRequest, Range<usize>)> = Vec::new();
        for (i, entry) in raw.scopes.iter().enumerate() {
            let s = entry.get_ref();
            let field = format!("scopes[{i}].name");
            let scope = match s.name.get_ref().parse::<Scope>() {
                Ok(scope) => Some(scope),
                Err(e) => {
                    self.error(s.name.span(), field.clone(), e.to_string());
                    None
                }
            };
            let reason = self.text(&s.reason, &format!("scopes[{i}].reason"), 200);
            if let Some(scope) = scope {
                if let Some((_, first)) = scopes.iter().find(|(r, _)| r.scope == scope) {
                    let (line, _) = crate::error::line_column(self.src, first.start);
                    self.error(
                        s.name.span(),
                        field,
                        format!("duplicate scope `{scope}` (first declared on line {line})"),
                    );
                } else if let Some(reason) = reason {
                    scopes.push((ScopeRequest { scope, reason }, s.name.span()));
                }
            }
        }

        let mut commands: Vec<(Command, Range<usize>)> = Vec::new();
        if let Some(extra) = raw.commands.get(MAX_COMMANDS) {
            let c = extra.get_ref();
            self.error(
                c.name.span(),
                format!("commands[{MAX_COMMANDS}]"),
                format!(
                    "{} commands; an app declares at most {MAX_COMMANDS}",
                    raw.commands.len()
                ),
            );
        }
        for (i, entry) in raw.commands.iter().enumerate() {
            let c = entry.get_ref();
            let field = format!("commands[{i}].name");
            let name = c.name.get_ref();
            let name_ok = match command_name_problem(name) {
                Some(problem) => {
                    self.error(c.name.span(), field.clone(), problem);
                    false
                }
                None => true,
            };
            let help = self.text(&c.help, &format!("commands[{i}].help"), 200);
            if name_ok {
                if let Some((_, first)) = commands.iter().find(|(cmd, _)| cmd.name == *name) {
                    let (line, _) = crate::error::line_column(self.src, first.start);
                    self.error(
                        c.name.span(),
                        field,
                        format!("duplicate command `{name}` (first declared on line {line})"),
                    );
                } else if let Some(help) = help {
                    commands.push((
                        Command {
                            name: name.clone(),
                            help,
                        },
                        c.name.span(),
                    ));
                }
            }
        }

        let limits = self.limits(raw.limits.as_ref(), caps);

        match (id, name, version, description) {
            (Some(id), Some(name), Some(version), Some(description)) if self.errors.is_empty() => {
                Ok(Manifest {
                    id,
                    name,
                    version,
                    description,
                    homepage,
                    scopes: scopes.into_iter().map(|(s, _)| s).collect(),
                    commands: commands.into_iter().map(|(c, _)| c).collect(),
                    limits,
                    webhook,
                })
            }
            _ => {
                self.errors.sort_by_key(|e| (e.line, e.column));
                Err(ManifestErrors(self.errors))
            }
        }
    }

    /// A human-readable text: not blank, no control characters, at most `max` characters.
    fn text(&mut self, value: &Spanned<String>, field: &str, max: usize) -> Option<String> {
        let text = value.get_ref();
        let len = text.chars().count();
        let problem = if text.trim().is_empty() {
            Some("must not be empty".to_owned())
        } else if len > max {
            Some(format!("must be at most {max} characters, got {len}"))
        } else if text.chars().any(char::is_control) {
            Some("must be one line without control characters".to_owned())
        } else if text.trim() != text {
            Some("must not start or end with whitespace".to_owned())
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.error(value.span(), field, message);
                None
            }
            None => Some(text.clone()),
        }
    }

    /// A text that users read as the app's name: refused if it could pass for another (see
    /// `minihost_core::name`), otherwise kept in NFC.
    fn shown_name(&mut self, value: &Spanned<String>, text: String) -> Option<String> {
        match minihost_core::shown_name(&text) {
            Ok(name) => Some(name),
            Err(problem) => {
                self.error(value.span(), "name", problem.to_string());
                None
            }
        }
    }

    fn https_url(&mut self, value: &Spanned<String>, field: &str) -> Option<url::Url> {
        let problem = match url::Url::parse(value.get_ref()) {
            Err(e) => Err(format!("not a valid URL: {e}")),
            Ok(u) if u.scheme() != "https" => {
                Err(format!("must be an https URL, got scheme `{}`", u.scheme()))
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => Err("URL has no host".to_owned()),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                Err("URL must not carry credentials".to_owned())
            }
            Ok(u) => Ok(u),
        };
        match problem {
            Ok(u) => Some(u),
            Err(message) => {
                self.error(value.span(), field, message);
                None
            }
        }
    }

    /// The webhook: an https URL, or an http URL to this machine's loopback (`localhost`,
    /// `127.0.0.1`, `[::1]`), which a server accepts only in its development mode. Where the
    /// URL may point after DNS is the server's policy, checked again before every send.
    fn webhook_url(&mut self, value: &Spanned<String>) -> Option<url::Url> {
        let loopback_http = url::Url::parse(value.get_ref()).is_ok_and(|u| {
            u.scheme() == "http"
                && match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                }
        });
        if !loopback_http {
            return self.https_url(value, "webhook");
        }
        let u = url::Url::parse(value.get_ref()).ok()?;
        if !u.username().is_empty() || u.password().is_some() {
            self.error(value.span(), "webhook", "URL must not carry credentials");
            return None;
        }
        Some(u)
    }

    fn limits(&mut self, raw: Option<&Spanned<RawLimits>>, caps: &PlatformCaps) -> Limits {
        let raw = raw.map(Spanned::get_ref);
        let memory_mib = self.bounded(
            raw.and_then(|l| l.memory_mib.as_ref()),
            "limits.memory_mib",
            caps.max_memory_mib,
            caps.default_memory_mib,
        );
        let timeout_ms = self.bounded(
            raw.and_then(|l| l.timeout_ms.as_ref()),
            "limits.timeout_ms",
            caps.max_timeout_ms,
            caps.default_timeout_ms,
        );
        Limits {
            memory_mib,
            timeout_ms,
        }
    }

    fn bounded(
        &mut self,
        value: Option<&Spanned<i64>>,
        field: &str,
        max: u32,
        default: u32,
    ) -> u32 {
        let Some(value) = value else { return default };
        match u32::try_from(*value.get_ref()) {
            Ok(v) if (1..=max).contains(&v) => v,
            _ => {
                self.error(
                    value.span(),
                    field,
                    format!(
                        "must be between 1 and {max} (the platform cap), got {}",
                        value.get_ref()
                    ),
                );
                default
            }
        }
    }
}

fn command_name_problem(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return Some("write the command without its leading `/`".to_owned());
    }
    if name.contains('/') {
        return Some("a command name must not contain `/`".to_owned());
    }
    let len = name.chars().count();
    if !(1..=32).contains(&len) {
        return Some(format!("a command name must be 1-32 characters, got {len}"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("a command name must start with a lowercase letter".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Some(format!(
            "a command name may contain only lowercase letters, digits, `-` and `_`, found {bad:?}"
        ));
    }
    None
}
