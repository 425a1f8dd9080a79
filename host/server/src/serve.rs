//! `minihost serve`: starts a node and shuts it down gracefully on Ctrl-C or SIGTERM (in-flight
//! requests finish, queued messages commit).

use crate::{COMPILE_WORKER_ARG, DbArgs};
use anyhow::Context;
use minihost::{NodeOptions, start};
use minihost_runtime::{CompileConfig, CompileWorker, ExecutorConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `minihost serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MINIHOST_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    /// Threads that run mini-apps (default: half the cores, at least one); the rest serve chat.
    #[arg(long, env = "MINIHOST_GUEST_THREADS")]
    guest_threads: Option<usize>,
    /// Mini-app invocations running at once (default: 2 per guest thread); more wait in a
    /// bounded queue, and beyond it are refused as busy.
    #[arg(long, env = "MINIHOST_GUEST_SLOTS")]
    guest_slots: Option<usize>,
    /// The longest time budget any mini-app gets, in milliseconds, whatever its manifest asks.
    #[arg(long, env = "MINIHOST_MAX_APP_TIMEOUT_MS", default_value_t = 2000)]
    max_app_timeout_ms: u64,
    /// How mini-app threads yield to chat: `idle` (Linux SCHED_IDLE: they run only on cores
    /// nothing else wants; under saturation their invocations time out) or `low` (nice 10
    /// only: they keep a small share under any load, and chat's tail latency grows beside
    /// them).
    #[arg(long, env = "MINIHOST_GUEST_PRIORITY", value_enum, default_value_t = GuestPriority::Idle)]
    guest_priority: GuestPriority,
    #[command(flatten)]
    compile: CompileArgs,
    /// Development mode for webhooks: apps may name plain http webhooks to this machine's
    /// loopback (`http://127.0.0.1:PORT/...`, `http://localhost:PORT/...`). Never in production.
    #[arg(long, env = "MINIHOST_DEV_WEBHOOKS")]
    dev_webhooks: bool,
    /// Let webhooks reach private, link-local, loopback and unspecified addresses (for app
    /// backends on the operator's own network). Off by default: a webhook that resolves there is
    /// refused, at upload and before every send.
    #[arg(long, env = "MINIHOST_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
    /// Client addresses the sign-in, sign-up and PIN throttles never limit (e.g. a load
    /// generator on 127.0.0.1); comma-separated in the environment. Never a reverse proxy's
    /// address unless it throttles by itself: everyone behind it would be unthrottled.
    #[arg(long, env = "MINIHOST_THROTTLE_EXEMPT", value_delimiter = ',')]
    throttle_exempt: Vec<std::net::IpAddr>,
}

/// How mini-app threads yield to the messenger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GuestPriority {
    /// SCHED_IDLE and nice 10.
    Idle,
    /// nice 10 only.
    Low,
}

/// The executor these arguments describe.
fn executor(args: &ServeArgs) -> ExecutorConfig {
    let mut c = ExecutorConfig {
        idle_class: args.guest_priority == GuestPriority::Idle,
        ..ExecutorConfig::default()
    };
    if let Some(t) = args.guest_threads {
        c.threads = t.max(1);
        c.max_running = c.threads * 2;
    }
    if let Some(slots) = args.guest_slots {
        c.max_running = slots.max(1);
    }
    c.max_running_per_app = (c.max_running / 2).max(1);
    c.max_running_per_owner = (c.max_running / 2).max(1);
    c
}

/// Bounds on compiling uploaded components and on their cache.
#[derive(clap::Args)]
struct CompileArgs {
    /// Most components compiled at once [default: one per two cores].
    #[arg(long, env = "MINIHOST_COMPILE_CONCURRENCY")]
    compile_concurrency: Option<usize>,
    /// Seconds one compile may take before its worker is killed (also its CPU-time limit, and
    /// the longest wait for a free compile slot).
    #[arg(long, env = "MINIHOST_COMPILE_TIMEOUT_SECS", default_value_t = 60)]
    compile_timeout_secs: u64,
    /// Address space of a compile worker, in MiB.
    #[arg(long, env = "MINIHOST_COMPILE_MEMORY_MIB", default_value_t = 2048)]
    compile_memory_mib: u64,
    /// Compile in the server process (no time or memory bound; for debugging only).
    #[arg(long, env = "MINIHOST_COMPILE_IN_PROCESS")]
    compile_in_process: bool,
    /// Most MiB of compiled components kept in the data directory's component cache.
    #[arg(long, env = "MINIHOST_COMPONENT_CACHE_MIB", default_value_t = 512)]
    component_cache_mib: u64,
}

impl CompileArgs {
    fn config(&self) -> anyhow::Result<CompileConfig> {
        let defaults = CompileConfig::default();
        let worker = if self.compile_in_process {
            None
        } else {
            Some(
                CompileWorker::current_exe([COMPILE_WORKER_ARG])
                    .context("finding this executable to run compile workers")?,
            )
        };
        Ok(CompileConfig {
            max_concurrent: self.compile_concurrency.unwrap_or(defaults.max_concurrent),
            worker,
            timeout: Duration::from_secs(self.compile_timeout_secs),
            memory_bytes: self.compile_memory_mib.saturating_mul(1 << 20),
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    args.db.announce();
    let node = start(NodeOptions {
        cache_dir: Some(args.db.data_dir.join("component-cache")),
        cache_max_bytes: args.compile.component_cache_mib.saturating_mul(1 << 20),
        compile: args.compile.config()?,
        executor: Some(executor(&args)),
        max_app_timeout: std::time::Duration::from_millis(args.max_app_timeout_ms.max(1)),
        webhooks: minihost::platform::WebhookOptions {
            dev: args.dev_webhooks,
            allow_private: args.webhooks_allow_private,
            ..minihost::platform::WebhookOptions::default()
        },
        api: minihost_api::ApiConfig {
            throttle: minihost_api::ThrottleLimits {
                exempt: args.throttle_exempt.clone(),
                ..minihost_api::ThrottleLimits::default()
            },
            ..minihost_api::ApiConfig::default()
        },
        ..NodeOptions::new(args.addr, args.db.store_config())
    })
    .await?;
    // The log line first: scripts and tests read the stdout line below to find the port, and
    // may stop the server at once.
    tracing::info!(addr = %node.addr, "listening");
    println!("minihost listening on {}", node.url());
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
