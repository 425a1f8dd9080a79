//! The developer CLI, `minihost app ...`: scaffold a mini-app crate ([`AppCommand::New`]),
//! build and validate it ([`AppCommand::Build`]), and run it locally ([`AppCommand::Run`]).
//!
//! This crate owns the command line and what the developer reads; it does not run apps itself.
//! Checking an upload and running an event go through a [`Simulator`], which the server crate
//! implements with a node of its own (the same store, app services, capabilities, limits and
//! dispatch code as `minihost serve`, on a throwaway SQLite database), so that what passes
//! locally passes on a server and what fails there fails here, in the same way.
//!
//! The server binary wires it in with one line: a `#[command(subcommand)] App(AppCommand)`
//! variant whose handler calls [`run`] with its simulator.

mod compile;
mod new;
mod render;
mod run;
mod simulator;

use std::path::PathBuf;
use std::process::ExitCode;

pub use run::RunArgs;
pub use simulator::{BoxFuture, Checked, SimMessage, SimPayment, SimRequest, SimResult, Simulator};

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
    /// Build the app for wasm32-wasip2 and check it as an upload is checked: the manifest is
    /// valid, the component links against the platform's world, and miniapp.toml's scopes cover
    /// its imports.
    Build {
        /// The app's directory (holding Cargo.toml and miniapp.toml).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Build with the dev profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Run an app component locally for one event, as a server would run it (its miniapp.toml's
    /// scopes, commands and limits; the platform's budgets and storage quotas), printing the
    /// reply, each capability call and the messages it sent. Exits 1 with the error kind when
    /// the app fails, 2 when a server would refuse the upload or the flags.
    Run(Box<RunArgs>),
}

pub use compile::build_component;

/// Runs one `minihost app` subcommand (`new`, `build`, `run`) with `simulator` as the server's
/// stand-in.
pub async fn run(cmd: AppCommand, simulator: &dyn Simulator) -> anyhow::Result<ExitCode> {
    match cmd {
        AppCommand::New { name, path, sdk } => new::run(&name, path, sdk),
        AppCommand::Build { dir, debug } => compile::run(&dir, !debug, simulator).await,
        AppCommand::Run(args) => run::run(*args, simulator).await,
    }
}
