//! `minihost app new NAME`: writes a mini-app from the templates in `template/`: a Rust crate, or
//! (`--lang js|ts`) a JavaScript or TypeScript package ([`crate::js`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::js::Flavour;

/// The toolchain of the checkout this binary was built from (with the wasm32-wasip2 target).
const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

const CARGO_TOML: &str = include_str!("../template/Cargo.toml.in");
const LIB_RS: &str = include_str!("../template/lib.rs.in");
const MINIAPP_TOML: &str = include_str!("../template/miniapp.toml.in");
const README: &str = include_str!("../template/README.md.in");
const GITIGNORE: &str = include_str!("../template/gitignore.in");

/// The language of a new app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the minihost-sdk.
    #[default]
    Rust,
    /// JavaScript (ES modules), built by ComponentizeJS.
    Js,
    /// TypeScript, compiled by tsc, then built by ComponentizeJS.
    Ts,
}

pub(crate) fn run(
    name: &str,
    lang: Lang,
    path: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    check_name(name)?;
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let flavour = match lang {
        Lang::Rust => None,
        Lang::Js => Some(Flavour::JavaScript),
        Lang::Ts => Some(Flavour::TypeScript),
    };
    if let Some(flavour) = flavour {
        scaffold_js(&dir, name, flavour)?;
        println!("created {} ({name}, {lang:?})", dir.display());
        println!("next: cd {} && minihost app build", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let sdk = match sdk {
        Some(sdk) => sdk
            .canonicalize()
            .with_context(|| format!("the SDK is not at {}", sdk.display()))?,
        None => {
            // The SDK this binary carries, vendored into the app.
            crate::carried::write_sdk(&dir)
                .with_context(|| format!("writing the SDK into {}", dir.display()))?;
            PathBuf::from(crate::carried::VENDORED_SDK)
        }
    };
    scaffold(&dir, name, &sdk)?;
    println!("created {} ({name})", dir.display());
    println!("next: cd {} && minihost app build", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// App names double as app ids, crate names and commands.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (3..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "invalid app name `{name}`: use 3-40 lowercase letters, digits and `-`, starting with a letter"
        );
    }
    Ok(())
}

fn scaffold(dir: &Path, name: &str, sdk: &Path) -> anyhow::Result<()> {
    let vars = [
        ("{{name}}", name.to_string()),
        ("{{crate}}", name.replace('-', "_")),
        ("{{type}}", type_name(name)),
        ("{{title}}", title(name)),
        ("{{sdk}}", sdk.display().to_string().replace('\\', "/")),
    ];
    let fill = |template: &str| {
        vars.iter()
            .fold(template.to_string(), |acc, (k, v)| acc.replace(k, v))
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(LIB_RS)),
        ("miniapp.toml", fill(MINIAPP_TOML)),
        ("README.md", fill(README)),
        (".gitignore", GITIGNORE.to_string()),
        ("rust-toolchain.toml", TOOLCHAIN.to_string()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // Pin dependencies to the versions the SDK was tested with (cargo prunes the rest).
    std::fs::write(dir.join("Cargo.lock"), crate::carried::CARGO_LOCK)
        .context("writing Cargo.lock")?;
    Ok(())
}

/// Writes a JavaScript or TypeScript app into `dir`.
pub fn scaffold_js(dir: &Path, name: &str, flavour: Flavour) -> anyhow::Result<()> {
    let (language, entry) = match flavour {
        Flavour::JavaScript => ("JavaScript", "app.js"),
        Flavour::TypeScript => ("TypeScript", "app.ts"),
    };
    let vars = [
        ("{{name}}", name.to_string()),
        ("{{title}}", title(name)),
        ("{{language}}", language.to_string()),
        ("{{entry}}", entry.to_string()),
    ];
    let fill = |template: &str| {
        vars.iter()
            .fold(template.to_string(), |acc, (k, v)| acc.replace(k, v))
    };
    let mut files = crate::js::files(flavour, &fill);
    files.push(("miniapp.toml".into(), fill(MINIAPP_TOML)));
    write_files(dir, &files)
}

/// Writes (path relative to `dir`, text) pairs, making folders as needed.
fn write_files(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `my-app` -> `MyApp`.
fn type_name(name: &str) -> String {
    name.split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `my-app` -> `My app`.
fn title(name: &str) -> String {
    let spaced = name.replace('-', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("demo").is_ok());
        assert!(check_name("my-app2").is_ok());
        for bad in ["ab", "Demo", "1app", "my_app", "app-", "a b c"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-app2"), "MyApp2");
        assert_eq!(title("my-app"), "My app");
    }

    #[test]
    fn scaffold_fills_every_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("hello-world");
        scaffold(&app, "hello-world", Path::new("/sdk")).unwrap();
        for file in ["Cargo.toml", "src/lib.rs", "miniapp.toml", "README.md"] {
            let text = std::fs::read_to_string(app.join(file)).unwrap();
            assert!(
                !text.contains("{{"),
                "{file} has a placeholder left:\n{text}"
            );
        }
        let cargo = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains("minihost-sdk = { path = \"/sdk\" }"),
            "{cargo}"
        );
        let lib = std::fs::read_to_string(app.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct HelloWorld;"));
        let manifest = std::fs::read_to_string(app.join("miniapp.toml")).unwrap();
        minihost_manifest::parse(&manifest).unwrap();
    }
}
