//! The `minihost-bench` binary: command line and dispatch. `messages` measures message
//! throughput and latency against a bare axum baseline, `hostile` measures chat beside a storm
//! of looping mini-apps, `payments` measures confirmed payments per second, `idle-ws` measures server memory per idle WebSocket, `echo-server` is
//! the baseline server itself (started as a child).

mod api;
mod child;
mod clock;
mod commands;
mod echo;
mod hist;
mod hostile;
mod http;
mod idle;
mod load;
mod messages;
mod payments;
mod report;
mod send;
mod setup;
mod sys;
mod target;
mod text;
mod verify;
mod ws;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "minihost-bench",
    about = "Load generator for the Minihost server (loopback only)"
)]
struct Cli {
    /// Worker threads of the load generator's runtime (it shares the machine with the server).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Messages/s accepted and delivered, latency and seq order, against the bare echo.
    Messages(messages::MessagesOpts),
    /// Chat latency quiet and beside a storm of looping mini-apps (one server, one run).
    Hostile(hostile::HostileOpts),
    /// Confirmed payments per second and the latency of a confirmation (32 payers).
    Payments(payments::PaymentsOpts),
    /// Server RSS per idle WebSocket connection.
    IdleWs(idle::IdleOpts),
    /// The bare axum JSON echo (`POST /echo`) the `messages` baseline starts.
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
}

fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build().context("building the tokio runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let result = match cli.cmd {
        Cmd::Messages(o) => {
            runtime(Some(cli.threads)).and_then(|rt| rt.block_on(messages::run(o, command)))
        }
        Cmd::Hostile(o) => {
            runtime(Some(cli.threads)).and_then(|rt| rt.block_on(hostile::run(o, command)))
        }
        Cmd::Payments(o) => {
            runtime(Some(cli.threads)).and_then(|rt| rt.block_on(payments::run(o, command)))
        }
        Cmd::IdleWs(o) => {
            runtime(Some(cli.threads)).and_then(|rt| rt.block_on(idle::run(o, command)))
        }
        // The baseline server gets a default runtime, as `minihost serve` does.
        Cmd::EchoServer { addr } => runtime(None).and_then(|rt| {
            if !addr.ip().is_loopback() {
                bail!("the echo server binds loopback addresses only");
            }
            rt.block_on(echo::serve(addr))?;
            Ok(true)
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
