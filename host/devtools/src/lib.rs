//! The developer CLI, `minihost app ...`: scaffold a mini-app in Rust, JavaScript or TypeScript
//! ([`AppCommand::New`]), build and validate it ([`AppCommand::Build`]), and run it locally
//! ([`AppCommand::Run`]); [`watch`] is what `minihost app dev` (in the server crate, as it talks
//! HTTP) knows of an app folder.
//!
//! This crate owns the command line and what the developer reads; it does not run apps itself.
//! Checking an upload and running an event go through a [`Simulator`], which the server crate
//! implements with a node of its own (the same store, app services, capabilities, limits and
//! dispatch code as `minihost serve`, on a throwaway SQLite database), so that what passes
//! locally passes on a server and what fails there fails here, in the same way.
//!
//! The server binary wires it in with one line: a `#[command(subcommand)] App(AppCommand)`
//! variant whose handler calls [`run`] with its simulator.

pub mod carried;
mod compile;
pub mod js;
mod new;
mod render;
mod run;
mod simulator;
pub mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

pub use new::{Lang, scaffold_js};
pub use run::RunArgs;
pub use simulator::{BoxFuture, Checked, SimMessage, SimPayment, SimRequest, SimResult, Simulator};

/// `minihost app ...`: develop mini-apps.
#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// Create a new mini-app in ./NAME: a Rust crate (Cargo.toml, src/lib.rs, miniapp.toml, a
    /// test), or with `--lang js|ts` an npm package (package.json with its lockfile,
    /// src/app.js or src/app.ts, the WIT and its types, miniapp.toml, a test).
    New {
        /// The app's name: lowercase letters, digits and `-`, starting with a letter. It is
        /// also the app id, the crate name and its first command.
        name: String,
        /// The language to write the app in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Create it in this directory instead of ./NAME.
        #[arg(long)]
        path: Option<PathBuf>,
        /// The minihost-sdk crate to depend on, for work on the SDK itself (default: the SDK
        /// this minihost was built with, written into the app's vendor/ folder). Rust apps only.
        #[arg(long, env = "MINIHOST_SDK_PATH")]
        sdk: Option<PathBuf>,
    },
    /// Build the app (Rust: for wasm32-wasip2; JS/TS: `npm ci` if needed, then `npm run build`
    /// into dist/app.wasm) and check it as an upload is checked: the manifest is valid, the
    /// component links against the platform's world, and miniapp.toml's scopes cover its imports.
    Build {
        /// The app's directory (holding Cargo.toml or package.json, and miniapp.toml).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Build with the dev profile instead of release (Rust apps).
        #[arg(long)]
        debug: bool,
    },
    /// Run an app component locally for one event, as a server would run it (its miniapp.toml's
    /// scopes, commands and limits; the platform's budgets and storage quotas), printing the
    /// reply, each capability call and the messages it sent. Exits 1 with the error kind when
    /// the app fails, 2 when a server would refuse the upload or the flags.
    Run(Box<RunArgs>),
    /// Print the platform's WIT this minihost speaks (`minihost:app@0.2.0`), for
    /// `wit/miniapp.wit` of a JS or TS app.
    Wit,
}

pub use compile::build_component;

/// Runs one `minihost app` subcommand (`new`, `build`, `run`) with `simulator` as the server's
/// stand-in.
pub async fn run(cmd: AppCommand, simulator: &dyn Simulator) -> anyhow::Result<ExitCode> {
    match cmd {
        AppCommand::New {
            name,
            lang,
            path,
            sdk,
        } => new::run(&name, lang, path, sdk),
        AppCommand::Build { dir, debug } => compile::run(&dir, !debug, simulator).await,
        AppCommand::Run(args) => run::run(*args, simulator).await,
        AppCommand::Wit => {
            print!("{}", carried::WIT);
            Ok(ExitCode::SUCCESS)
        }
    }
}
