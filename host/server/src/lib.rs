//! Wiring of a Minihost node: opens the store, connects the hub (and, with NATS, the cluster),
//! the mini-app platform (runtime plus one line per capability) and the API, and serves them on
//! a listener. The `minihost` binary and the black-box tests both start nodes through [`start`].

mod listen;
pub mod platform;
pub mod simulate;
pub mod web;

use anyhow::Context;
use minihost_api::{ApiConfig, AppParts, AppState, publish_hook};
pub use minihost_appsvc::AppLimits;
use minihost_appsvc::AppServices;
use minihost_broker::service::{Broker, BrokerConfig};
use minihost_cap_auth::AuthCapability;
use minihost_cap_log::LogCapability;
use minihost_cap_messaging::MessagingCapability;
use minihost_cap_payments::PaymentsCapability;
use minihost_cap_profile::ProfileCapability;
use minihost_cap_storage::StorageCapability;
use minihost_cap_timers::TimersCapability;
use minihost_cluster::Cluster;
pub use minihost_cluster::NatsOptions;
use minihost_hub::{Fanout, LocalHub};
use minihost_runtime::{CompileConfig, ExecutorConfig, Runtime, RuntimeBuilder, RuntimeConfig};
use minihost_store::{Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Address to listen on (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Which database.
    pub store: StoreConfig,
    /// API tunables.
    pub api: ApiConfig,
    /// Where compiled components are cached (`None`: no disk cache).
    pub cache_dir: Option<std::path::PathBuf>,
    /// How guest execution is isolated from the messenger and admitted (`None`: on the API's
    /// own threads, unqueued; only for tools).
    pub executor: Option<ExecutorConfig>,
    /// The operator's cap on any app's time budget, whatever its manifest asks.
    pub max_app_timeout: std::time::Duration,
    /// Most bytes the component cache may hold; the least recently used artefacts go first
    /// (`minihost_runtime::DEFAULT_CACHE_MAX_BYTES`, 512 MiB, by default).
    pub cache_max_bytes: u64,
    /// How components are compiled: concurrency, and whether in a bounded worker process
    /// (`minihost serve` turns it on; `CompileConfig::default()` compiles in this process).
    pub compile: CompileConfig,
    /// Webhooks: the URL policy (development mode, private addresses) and retry timing.
    pub webhooks: platform::WebhookOptions,
    /// Every invocation's bounds before its manifest's memory and time (capped by
    /// `max_app_timeout`); the fuel follows the time at this value's rate.
    pub invocation_limits: minihost_runtime::Limits,
    /// What apps may do: send budgets, storage quotas, timers (`AppLimits::default()`).
    pub app_limits: AppLimits,
    /// How long and how much of the invocation log and the privacy record is kept.
    pub retention: platform::RetentionOptions,
    /// NATS, to run as one of several nodes on one PostgreSQL database (`None`: a single node).
    pub nats: Option<NatsOptions>,
    /// How long a shutdown waits for WebSocket sessions to close after telling them to.
    pub drain_timeout: std::time::Duration,
}

impl NodeOptions {
    /// Options for a node on `addr` with `store`, and defaults for everything else.
    pub fn new(addr: SocketAddr, store: StoreConfig) -> NodeOptions {
        NodeOptions {
            addr,
            store,
            api: ApiConfig::default(),
            cache_dir: None,
            executor: Some(ExecutorConfig::default()),
            max_app_timeout: RuntimeConfig::default().max_deadline,
            cache_max_bytes: minihost_runtime::DEFAULT_CACHE_MAX_BYTES,
            compile: CompileConfig::default(),
            webhooks: platform::WebhookOptions::default(),
            invocation_limits: minihost_runtime::Limits::default(),
            app_limits: AppLimits::default(),
            retention: platform::RetentionOptions::default(),
            nats: None,
            drain_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// A running node.
pub struct Node {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its store (for tests that look under the hood).
    pub store: Store,
    /// Its token broker (for tests that mint login codes as the `auth` capability would).
    pub broker: Arc<Broker>,
    /// Its sandbox runtime (for tests that count compiles or look at the component cache).
    pub runtime: Runtime,
    hub: Arc<LocalHub>,
    cluster: Option<Cluster>,
    readiness: Arc<minihost_api::Readiness>,
    drain_timeout: std::time::Duration,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// The parts of a node, wired, before anything listens: what `minihost serve` serves and what
/// the simulator behind `minihost app run` drives directly.
pub(crate) struct Parts {
    pub metrics: Arc<minihost_metrics::Metrics>,
    pub hub: Arc<LocalHub>,
    pub fanout: Arc<dyn Fanout>,
    pub cluster: Option<Cluster>,
    pub store: Store,
    pub svc: AppServices,
    pub broker: Arc<Broker>,
    pub runtime: Runtime,
    pub platform: platform::Platform,
}

/// Opens the store and wires the hub, app services, broker, sandbox runtime (one line per
/// capability) and mini-app platform.
pub(crate) async fn assemble(options: &NodeOptions) -> anyhow::Result<Parts> {
    let metrics = Arc::new(minihost_metrics::Metrics::new().context("setting up metrics")?);
    let hub = LocalHub::new();
    let cluster = match &options.nats {
        None => None,
        Some(nats) => {
            if !shares_a_database(&options.store) {
                anyhow::bail!(
                    "NATS (MINIHOST_NATS_URL) joins nodes that share one PostgreSQL database; \
                     set DATABASE_URL=postgres://... (an SQLite file belongs to one node)"
                );
            }
            Some(
                Cluster::connect(nats, hub.clone(), metrics.clone())
                    .await
                    .context("joining the cluster")?,
            )
        }
    };
    let fanout: Arc<dyn Fanout> = match &cluster {
        Some(cluster) => cluster.fanout(),
        None => hub.clone(),
    };
    let store = Store::open(
        &options.store,
        Some(publish_hook(fanout.clone(), metrics.clone())),
    )
    .await
    .context("opening the database")?;
    tracing::info!(backend = ?store.backend(), "database ready");
    let svc = AppServices::new(store.clone(), fanout.clone(), options.app_limits.clone())
        .await
        .map_err(|e| anyhow::anyhow!("starting app services: {e}"))?;
    let broker = Arc::new(
        Broker::open(store.clone(), BrokerConfig::default())
            .await
            .context("starting the token broker")?,
    );
    let runtime = RuntimeBuilder::new(RuntimeConfig {
        cache_dir: options.cache_dir.clone(),
        // Sandboxes only run in an execution slot, so the pool needs no more than twice their
        // number; each idle pool slot keeps up to 7 MiB resident (4 MiB of linear memory, 1 MiB
        // of tables, 2 MiB of stack), which bounds what the pool holds after any burst.
        max_instances: options
            .executor
            .as_ref()
            .map_or(RuntimeConfig::default().max_instances, |e| {
                u32::try_from(e.max_running.saturating_mul(2).max(4)).unwrap_or(u32::MAX)
            }),
        executor: options.executor.clone(),
        max_deadline: options.max_app_timeout,
        cache_max_bytes: options.cache_max_bytes,
        compile: options.compile.clone(),
        limits: options.invocation_limits,
        ..RuntimeConfig::default()
    })
    .with(LogCapability::default())
    .with(MessagingCapability::new(svc.clone()))
    .with(ProfileCapability::new(svc.clone()))
    .with(StorageCapability::new(svc.clone()))
    .with(AuthCapability::new(svc.clone(), broker.clone()))
    .with(PaymentsCapability::new(svc.clone()))
    .with(TimersCapability::new(svc.clone()))
    .build()
    .map_err(|e| anyhow::anyhow!("starting the sandbox runtime: {e}"))?;
    let platform = platform::Platform::new(
        store.clone(),
        svc.clone(),
        fanout.clone(),
        runtime.clone(),
        options.webhooks.clone(),
        options.retention.clone(),
        metrics.clone(),
    );
    let listener = platform.clone();
    hub.on_invalidate(move |what| listener.invalidated(what));
    Ok(Parts {
        metrics,
        hub,
        fanout,
        cluster,
        store,
        svc,
        broker,
        runtime,
        platform,
    })
}

/// Binds the address, then opens the store and starts serving. Binding comes first so that a
/// busy address is reported before anything is written (database, keys, caches).
pub async fn start(options: NodeOptions) -> anyhow::Result<Node> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.addr))?;
    let parts = assemble(&options).await?;
    let connections = options.api.connections.clone();
    let cache = Arc::new(minihost_api::cache::HotCache::default());
    let listener_cache = cache.clone();
    parts
        .hub
        .on_invalidate(move |what| listener_cache.apply(what));
    let readiness = Arc::new(minihost_api::Readiness::new(parts.cluster.clone().map(
        |c| -> minihost_api::health::BrokerProbe { Arc::new(move || c.connected()) },
    )));
    let state = AppState::from(AppParts {
        store: parts.store.clone(),
        hub: parts.hub.clone(),
        fanout: parts.fanout,
        // Nodes of a cluster count attempts together; a single node in its memory.
        guards: Arc::new(if parts.cluster.is_some() {
            minihost_api::Guards::shared(&options.api.throttle, &parts.store)
        } else {
            minihost_api::Guards::new(&options.api.throttle)
        }),
        config: Arc::new(options.api),
        cache,
        readiness: readiness.clone(),
        metrics: parts.metrics.clone(),
        platform: Some(Arc::new(parts.platform)),
        broker: parts.broker.clone(),
        app_services: parts.svc,
    });
    let app = web::router().merge(minihost_api::router(state));
    let addr = listener.local_addr().context("reading the bound address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(listen::serve(listener, app, connections, async move {
        let _ = stopped.await;
    }));
    Ok(Node {
        addr,
        store: parts.store,
        broker: parts.broker,
        runtime: parts.runtime,
        hub: parts.hub,
        cluster: parts.cluster,
        readiness,
        drain_timeout: options.drain_timeout,
        stop: Some(stop),
        task,
    })
}

/// Whether `store` is a database other nodes can share (PostgreSQL).
fn shares_a_database(store: &StoreConfig) -> bool {
    match store {
        StoreConfig::Url(url) => url.starts_with("postgres://") || url.starts_with("postgresql://"),
        StoreConfig::Sqlite { .. } => false,
    }
}

impl Node {
    /// The node's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drains the node: `/readyz` answers 503, WebSocket sessions close with 1012 (reconnect)
    /// and are waited for (at most `drain_timeout`), then it stops accepting connections, lets
    /// in-flight requests finish, commits queued messages and sends what is queued for NATS.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.readiness.drain();
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        while self.hub.subscribers() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .context("server task")?
            .context("serving")?;
        self.store.close().await;
        if let Some(cluster) = &self.cluster {
            cluster.flush(self.drain_timeout).await;
        }
        Ok(())
    }
}
