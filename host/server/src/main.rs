//! The `minihost` binary: parses the command line and runs a subcommand (`serve`, `admin`,
//! `app`), or, as `minihost __compile`, is the compile worker `serve` starts for each component
//! (hidden: it reads a component on stdin and writes the compiled artefact on stdout).

mod admin;
mod serve;

use clap::{Parser, Subcommand};
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
    /// Data directory for the embedded SQLite database (ignored when DATABASE_URL is set).
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
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Administration: users and roles.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Developer tools: scaffold, build and run mini-apps locally.
    #[command(subcommand)]
    App(minihost_devtools::AppCommand),
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
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::App(cmd) => minihost_devtools::run(cmd).await,
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
