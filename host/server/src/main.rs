//! The `minihost` binary: parses the command line and runs a subcommand (`serve`, `admin`,
//! `app`, whose `app dev` loop is [`dev`]), or, as `minihost __compile`, is the compile worker
//! `serve` starts for each component (hidden: it reads a component on stdin and writes the
//! compiled artefact on stdout).

mod admin;
mod dev;
mod remote;
mod serve;
mod settings;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Minihost: a messenger whose mini-apps run in WebAssembly sandboxes.
#[derive(Parser)]
#[command(name = "minihost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the state lives; shared by every subcommand that opens the database.
#[derive(clap::Args, Clone)]
pub struct DbArgs {
    /// Data directory for the embedded SQLite database, relative to the current folder (ignored
    /// when DATABASE_URL is set).
    #[arg(long, env = "MINIHOST_DATA_DIR", default_value = "./minihost-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL (or sqlite://) URL; overrides the embedded database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
    /// The store configuration these arguments name.
    pub fn store_config(&self) -> minihost_store::StoreConfig {
        match &self.database_url {
            Some(url) if !url.is_empty() => minihost_store::StoreConfig::Url(url.clone()),
            _ => minihost_store::StoreConfig::Sqlite {
                data_dir: self.data_dir.clone(),
            },
        }
    }

    /// Tells the operator, on stderr, which database a command is about to open: the SQLite
    /// file as an absolute path (and whether it is new), or the URL without its password. A
    /// command run from another folder would otherwise quietly make a fresh `./minihost-data`.
    pub fn announce(&self) {
        eprintln!("database: {}", self.describe());
    }

    pub(crate) fn describe(&self) -> String {
        match self.store_config() {
            minihost_store::StoreConfig::Sqlite { data_dir } => {
                // The file name `Store::open` gives the embedded database.
                let file = data_dir.join("minihost.db");
                let file = std::path::absolute(&file).unwrap_or(file);
                let new = if file.exists() { "" } else { ", new file" };
                format!("{} (SQLite{new})", file.display())
            }
            minihost_store::StoreConfig::Url(url) => redacted(&url),
        }
    }
}

/// A database URL fit to print: the password, in the user part or a `password=` parameter,
/// replaced by `***`.
fn redacted(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "a database URL that does not parse (not shown: it may hold a password)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    let kind = if parsed.scheme().starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    format!("{parsed} ({kind})")
}

/// Whether log lines on stderr get ANSI colours: only on a terminal, and never when `NO_COLOR`
/// is set to anything but the empty string (<https://no-color.org>).
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// The server's settings.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Administration: users, roles, signing keys, test money and the ledger check.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Developer tools: scaffold, build and run mini-apps locally; publish one for review.
    #[command(subcommand)]
    App(AppCli),
    /// Sign in to a server and keep the session for `app publish` and `review`.
    Login(remote::LoginArgs),
    /// A reviewer's work on a server: the queue, decisions, releases, suspensions.
    #[command(subcommand)]
    Review(remote::ReviewCommand),
}

/// `minihost config ...`.
#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the settings `minihost serve` would run with, given the same flags, settings file
    /// and environment (as TOML; the database URL's password redacted).
    Show(serve::ServeArgs),
}

/// `minihost app ...`: the local tools, and publishing to a server.
#[derive(Subcommand)]
enum AppCli {
    #[command(flatten)]
    Local(minihost_devtools::AppCommand),
    /// Build the app in a folder and publish it to the signed-in server for review.
    Publish(remote::PublishArgs),
    /// Develop an app on a local server: start one (or use `--server`), make a test user and a
    /// group, try the app there, rebuild and upload it on every save, and print each
    /// invocation (outcome, duration, fuel, capability calls, logs) as it happens.
    Dev(dev::DevArgs),
}

/// The hidden argument that makes this process a compile worker.
pub const COMPILE_WORKER_ARG: &str = "__compile";

fn main() -> ExitCode {
    // A compile worker starts nothing else: no logging, no async runtime, no threads.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(COMPILE_WORKER_ARG)) {
        return minihost_runtime::compile_worker_main(args);
    }
    let cli = Cli::parse();
    // The developer CLI's simulator is a node too; its start-up lines are not news there.
    let default_filter = match cli.command {
        Command::App(_) => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Config(ConfigCommand::Show(args)) => {
                print!("{}", args.show()?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::App(AppCli::Local(cmd)) => {
                let simulator = minihost::simulate::NodeSimulator::for_user();
                minihost_devtools::run(cmd, &simulator).await
            }
            Command::App(AppCli::Publish(args)) => remote::publish(args).await,
            Command::App(AppCli::Dev(args)) => dev::run(args).await,
            Command::Login(args) => remote::login(args).await,
            Command::Review(cmd) => remote::review(cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn check_redacted(url: &str, expected: &str) {
        assert_eq!(redacted(url), expected, "{url}");
    }

    #[test]
    fn database_urls_are_printed_without_their_password() {
        check_redacted(
            "postgres://minihost:s3cret@db.internal:5432/minihost",
            "postgres://minihost:***@db.internal:5432/minihost (PostgreSQL)",
        );
        check_redacted(
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://postgres@127.0.0.1:5432/postgres (PostgreSQL)",
        );
        check_redacted(
            "postgresql://db/minihost?user=mh&password=s3cret&sslmode=require",
            "postgresql://db/minihost?user=mh&password=***&sslmode=require (PostgreSQL)",
        );
        check_redacted(
            "sqlite:///var/lib/mh.db",
            "sqlite:///var/lib/mh.db (SQLite)",
        );
        check_redacted(
            "not a url :s3cret@",
            "a database URL that does not parse (not shown: it may hold a password)",
        );
    }

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        for (terminal, no_color, expected) in [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ] {
            assert_eq!(
                colour(terminal, no_color.map(OsStr::new)),
                expected,
                "terminal {terminal}, NO_COLOR {no_color:?}"
            );
        }
    }
}
