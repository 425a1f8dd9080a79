//! `minihost serve`: starts a node (one of several with `--nats-url`) and shuts it down
//! gracefully on Ctrl-C or SIGTERM (not ready any more, WebSockets told to reconnect elsewhere,
//! in-flight requests finish, queued messages commit).

use crate::settings::{GuestPriority, Settings};
use crate::{COMPILE_WORKER_ARG, DbArgs};
use anyhow::Context;
use minihost::{NodeOptions, start};
use minihost_runtime::{CompileConfig, CompileWorker};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `minihost serve` (and of `minihost config show`, which prints what they give).
/// The flags below override the settings file and its environment variables.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MINIHOST_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    db: DbArgs,
    /// The settings file (TOML): every limit, budget and default; see `minihost config show`
    /// and README's "Configuration". Every key is also read from `MINIHOST_<SECTION>_<KEY>`.
    #[arg(long, env = "MINIHOST_CONFIG")]
    config: Option<PathBuf>,
    /// Threads that run mini-apps (default: half the cores, at least one); the rest serve chat.
    #[arg(long, env = "MINIHOST_GUEST_THREADS")]
    guest_threads: Option<usize>,
    /// Mini-app invocations running at once (default: 2 per guest thread); more wait in a
    /// bounded queue, and beyond it are refused as busy.
    #[arg(long, env = "MINIHOST_GUEST_SLOTS")]
    guest_slots: Option<usize>,
    /// The longest time budget any mini-app gets, in milliseconds, whatever its manifest asks
    /// [default: 2000].
    #[arg(long, env = "MINIHOST_MAX_APP_TIMEOUT_MS")]
    max_app_timeout_ms: Option<u64>,
    /// How mini-app threads yield to chat: `idle` (Linux SCHED_IDLE: they run only on cores
    /// nothing else wants; under saturation their invocations time out) or `low` (nice 10
    /// only: they keep a small share under any load, and chat's tail latency grows beside
    /// them) [default: idle].
    #[arg(long, env = "MINIHOST_GUEST_PRIORITY", value_enum)]
    guest_priority: Option<GuestPriority>,
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
    /// NATS (`nats://host:4222`) to run as one of several nodes sharing one PostgreSQL
    /// database: live events and cache invalidations reach the other nodes through it.
    /// Refused with SQLite.
    #[arg(long, env = "MINIHOST_NATS_URL", hide_env_values = true)]
    nats_url: Option<String>,
    /// What every NATS subject of this deployment starts with (deployments sharing one NATS
    /// need different ones).
    #[arg(long, env = "MINIHOST_NATS_PREFIX", default_value = "minihost")]
    nats_prefix: String,
}

/// Bounds on compiling uploaded components and on their cache.
#[derive(clap::Args)]
struct CompileArgs {
    /// Most components compiled at once [default: one per two cores].
    #[arg(long, env = "MINIHOST_COMPILE_CONCURRENCY")]
    compile_concurrency: Option<usize>,
    /// Seconds one compile may take before its worker is killed (also its CPU-time limit, and
    /// the longest wait for a free compile slot) [default: 60].
    #[arg(long, env = "MINIHOST_COMPILE_TIMEOUT_SECS")]
    compile_timeout_secs: Option<u64>,
    /// Address space of a compile worker, in MiB [default: 2048].
    #[arg(long, env = "MINIHOST_COMPILE_MEMORY_MIB")]
    compile_memory_mib: Option<u64>,
    /// Compile in the server process (no time or memory bound; for debugging only).
    #[arg(long, env = "MINIHOST_COMPILE_IN_PROCESS")]
    compile_in_process: bool,
    /// Most MiB of compiled components kept in the data directory's component cache
    /// [default: 512].
    #[arg(long, env = "MINIHOST_COMPONENT_CACHE_MIB")]
    component_cache_mib: Option<u64>,
}

impl ServeArgs {
    /// The settings file and environment, with these flags over them.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = Settings::load(self.config.as_deref())?;
        let sandbox = &mut s.sandbox;
        set(&mut sandbox.guest_threads, self.guest_threads);
        set(&mut sandbox.guest_slots, self.guest_slots);
        set(&mut sandbox.max_app_timeout_ms, self.max_app_timeout_ms);
        set(&mut sandbox.guest_priority, self.guest_priority);
        let c = &self.compile;
        set(&mut s.compile.concurrency, c.compile_concurrency);
        set(&mut s.compile.timeout_secs, c.compile_timeout_secs);
        set(&mut s.compile.memory_mib, c.compile_memory_mib);
        set(&mut s.compile.cache_mib, c.component_cache_mib);
        s.compile.in_process |= c.compile_in_process;
        s.webhooks.dev |= self.dev_webhooks;
        s.webhooks.allow_private |= self.webhooks_allow_private;
        if !self.throttle_exempt.is_empty() {
            s.throttle.exempt.clone_from(&self.throttle_exempt);
        }
        Ok(s)
    }

    /// The node options these arguments give.
    fn node_options(&self, s: &Settings) -> anyhow::Result<NodeOptions> {
        Ok(NodeOptions {
            api: s.api_config(),
            cache_dir: Some(self.db.data_dir.join("component-cache")),
            cache_max_bytes: s.compile.cache_mib.saturating_mul(1 << 20),
            compile: compile_config(s)?,
            executor: Some(s.executor()),
            max_app_timeout: Duration::from_millis(s.sandbox.max_app_timeout_ms.max(1)),
            webhooks: s.webhooks(),
            invocation_limits: s.limits(),
            app_limits: s.app_limits(),
            retention: s.retention(),
            nats: self
                .nats_url
                .as_ref()
                .filter(|url| !url.is_empty())
                .map(|url| minihost::NatsOptions {
                    url: url.clone(),
                    prefix: self.nats_prefix.clone(),
                }),
            ..NodeOptions::new(self.addr, self.db.store_config())
        })
    }

    /// `minihost config show`: the effective settings as TOML, after the address and database
    /// (its password redacted) as comments.
    pub fn show(&self) -> anyhow::Result<String> {
        let s = self.settings()?;
        Ok(format!(
            "# listen: {}\n# database: {}\n# settings file: {}\n{}",
            self.addr,
            self.db.describe(),
            self.config
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
            s.to_toml()?
        ))
    }
}

/// `slot` set to `flag` when the flag was given.
fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *slot = v;
    }
}

fn compile_config(s: &Settings) -> anyhow::Result<CompileConfig> {
    let defaults = CompileConfig::default();
    let c = &s.compile;
    let worker = if c.in_process {
        None
    } else {
        Some(
            CompileWorker::current_exe([COMPILE_WORKER_ARG])
                .context("finding this executable to run compile workers")?,
        )
    };
    Ok(CompileConfig {
        max_concurrent: if c.concurrency > 0 {
            c.concurrency
        } else {
            defaults.max_concurrent
        },
        worker,
        timeout: Duration::from_secs(c.timeout_secs.max(1)),
        memory_bytes: c.memory_mib.saturating_mul(1 << 20),
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    args.db.announce();
    let node = start(args.node_options(&settings)?).await?;
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
