//! The developer CLI, `minihost app ...`: scaffold a mini-app crate ([`AppCommand::New`]),
//! build and validate it ([`AppCommand::Build`]), and run it locally
//! ([`AppCommand::Run`]) on the real runtime, with the same limits as the server and simulated
//! capabilities that obey the grant the developer chooses.
//!
//! The server binary wires it in with one line: a `#[command(subcommand)] App(AppCommand)`
//! variant whose handler calls [`run`].

mod compile;
mod new;
mod render;
mod run;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

pub use run::RunArgs;

/// `minihost app ...`: develop mini-apps.
#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// Create a new mini-app crate in ./NAME (Cargo.toml, src/lib.rs, miniapp.toml, a test).
    New {
        /// The app's name: lowercase letters, digits and `-`, starting with a letter. It is
        /// also the app id, the crate name and its first command.
        name: String,
        /// Create it in this directory instead of ./NAME.
        #[arg(long)]
        path: Option<PathBuf>,
        /// The minihost-sdk crate to depend on (default: the SDK of this Minihost checkout).
        #[arg(long, env = "MINIHOST_SDK_PATH")]
        sdk: Option<PathBuf>,
    },
    /// Build the app for wasm32-wasip2 and validate it: the component must link against the
    /// platform's world, and its imports must be covered by miniapp.toml's scopes.
    Build {
        /// The app's directory (holding Cargo.toml and miniapp.toml).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Build with the dev profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Run an app component locally for one event, printing the reply and each capability call.
    /// Exits non-zero with the error kind when the app fails.
    Run(Box<RunArgs>),
}

/// Runs one `minihost app` subcommand.
pub async fn run(cmd: AppCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AppCommand::New { name, path, sdk } => new::run(&name, path, sdk),
        AppCommand::Build { dir, debug } => compile::run(&dir, !debug).await,
        AppCommand::Run(args) => run::run(*args).await,
    }
}
