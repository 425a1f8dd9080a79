//! `minihost serve`: starts a node and shuts it down gracefully on Ctrl-C or SIGTERM (in-flight
//! requests finish, queued messages commit).

use crate::DbArgs;
use minihost::{NodeOptions, start};
use minihost_api::ApiConfig;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments of `minihost serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MINIHOST_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    args.db.announce();
    let node = start(NodeOptions {
        addr: args.addr,
        store: args.db.store_config(),
        api: ApiConfig::default(),
        cache_dir: Some(args.db.data_dir.join("component-cache")),
    })
    .await?;
    // Scripts and tests read this line to find the port.
    println!("minihost listening on {}", node.url());
    tracing::info!(addr = %node.addr, "listening");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests and committing queued messages");
    node.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
