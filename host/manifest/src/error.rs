//! Manifest errors: each names the field (`scopes[1].reason`) and the line and column where it
//! is, computed from toml's byte spans.

use std::fmt;
use std::ops::Range;

/// One problem in a `miniapp.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The field, as a path: `id`, `scopes[1].reason`, `limits.memory_mib`.
    /// Indices count from 0 in the order the entries appear in the file.
    pub field: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl ManifestError {
    pub(crate) fn at(
        src: &str,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(src, span.start);
        ManifestError {
            field: field.into(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: `{}`: {}",
            self.line, self.column, self.field, self.message
        )
    }
}

/// Every problem found in one `miniapp.toml`, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl ManifestErrors {
    /// The problems, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &ManifestError> {
        self.0.iter()
    }
}

impl std::error::Error for ManifestErrors {}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "miniapp.toml: {error}")?;
        }
        Ok(())
    }
}

/// Turns a toml syntax or shape error into a [`ManifestError`], naming the field it is about.
pub(crate) fn from_toml(src: &str, error: &toml::de::Error) -> ManifestError {
    let message = error.message().trim().to_owned();
    let offset = error.span().map_or(0, |s| s.start).min(src.len());
    let (table, key) = field_at(src, offset);
    let join = |table: String, key: &str| match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    // "missing field `reason`" points at the table that lacks it: name the field itself.
    let mut field = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(missing) => join(table, missing),
        None => join(table, &key),
    };
    if field.is_empty() {
        field = "(document)".to_owned();
    }
    ManifestError::at(src, offset..offset, field, message)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset);
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = src[line_start..offset].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(src: &str, mut offset: usize) -> usize {
    offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The table path (`scopes[1]`, `limits`, or empty for the top level) and the key written at or
/// before `offset`: the enclosing `[table]` or `[[array]]` header (with the entry's index) and
/// the key of the line. The schema is flat
/// (top-level keys, `[[scopes]]`, `[[commands]]`, `[limits]`), so this line-based reading is
/// exact for manifests written in the documented form.
fn field_at(src: &str, offset: usize) -> (String, String) {
    let offset = floor_char_boundary(src, offset);
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut key = String::new();
    let mut start = 0;
    for line in src.split_inclusive('\n') {
        if start > offset {
            break;
        }
        start += line.len();
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("[[")
            .and_then(|r| r.split("]]").next())
        {
            let name = name.trim().to_owned();
            let index = match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    counts.push((name.clone(), 1));
                    0
                }
            };
            table = format!("{name}[{index}]");
            key.clear();
        } else if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_owned();
            key.clear();
        } else if let Some((k, _)) = trimmed.split_once('=')
            && !trimmed.starts_with('#')
        {
            key = k.trim().trim_matches('"').trim_matches('\'').to_owned();
        }
    }
    (table, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(src, 0), (1, 1));
        let x = src.find('"').unwrap_or(0);
        assert_eq!(line_column(src, x), (2, 6));
    }

    #[test]
    fn field_paths_follow_tables_and_array_entries() {
        let src = "id = \"x\"\n[[scopes]]\nname = \"a\"\n[[scopes]]\nreason = \"b\"\n[limits]\nmemory_mib = 1\n";
        let at = |needle: &str| field_at(src, src.find(needle).unwrap_or(0));
        let pair = |t: &str, k: &str| (t.to_owned(), k.to_owned());
        assert_eq!(field_at(src, 1), pair("", "id"));
        assert_eq!(at("name"), pair("scopes[0]", "name"));
        assert_eq!(at("[[scopes]]\nreason"), pair("scopes[1]", ""));
        assert_eq!(at("reason"), pair("scopes[1]", "reason"));
        assert_eq!(at("memory"), pair("limits", "memory_mib"));
    }
}
