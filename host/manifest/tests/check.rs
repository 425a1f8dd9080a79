//! Golden tests of `miniapp.toml`: each folder under `tests/cases/` holds a `miniapp.toml`,
//! optionally an `imports.txt` (one imported interface per line, checked against the manifest),
//! and the `expected.txt` it must produce. `UPDATE_EXPECT=1 cargo test -p minihost-manifest`
//! rewrites the expected files; review the diff before committing it.

// Test helpers outside `#[test]` functions: a failed read is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// What a case produces: the verdict, then the normalized manifest or the errors, then the
/// import findings if the case lists imports.
fn run(dir: &Path) -> String {
    let src = fs::read_to_string(dir.join("miniapp.toml")).expect("miniapp.toml");
    let mut out = String::new();
    match minihost_manifest::parse(&src) {
        Ok(manifest) => {
            out.push_str("accepted\n");
            out.push_str(&manifest.dump());
            if let Ok(imports) = fs::read_to_string(dir.join("imports.txt")) {
                let imports: Vec<&str> = imports
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let findings = minihost_manifest::check_imports(imports.iter().copied(), &manifest);
                if findings.is_empty() {
                    out.push_str("findings: none\n");
                }
                for finding in findings {
                    writeln!(out, "finding: {finding}").unwrap();
                }
            }
        }
        Err(errors) => {
            assert!(
                !dir.join("imports.txt").exists(),
                "{}: imports.txt on a rejected manifest",
                dir.display()
            );
            out.push_str("rejected\n");
            writeln!(out, "{errors}").unwrap();
        }
    }
    out
}

/// Compares (or, with `UPDATE_EXPECT` set, rewrites) one case; returns a failure description.
fn check(dir: &Path) -> Option<String> {
    let actual = run(dir);
    let expected_path = dir.join("expected.txt");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(&expected_path, &actual).expect("write expected.txt");
        return None;
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "case {}:\n--- expected\n{expected}--- actual\n{actual}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        )
    })
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/cases")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let failures: Vec<String> = dirs.iter().filter_map(|d| check(d)).collect();
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ (UPDATE_EXPECT=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The suite must keep covering both outcomes.
    let verdicts: Vec<String> = dirs.iter().map(|d| run(d)).collect();
    let accepted = verdicts
        .iter()
        .filter(|v| v.starts_with("accepted"))
        .count();
    let rejected = verdicts
        .iter()
        .filter(|v| v.starts_with("rejected"))
        .count();
    assert!(
        accepted >= 5 && rejected >= 15,
        "accepted {accepted}, rejected {rejected}"
    );
}
