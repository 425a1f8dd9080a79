//! Several nodes as one deployment: [`Cluster`] connects a node to NATS and gives it a
//! [`Fanout`] that delivers to this node's [`LocalHub`] at once and publishes every event to
//! its topic's subject for the other nodes, and every [`Invalidation`] to theirs.
//!
//! Core NATS delivers at most once. Nothing here is the truth: sequence numbers are the
//! database's, and a node that may have missed something (its connection to NATS dropped, it
//! fell behind NATS, or its own outgoing queue overflowed) broadcasts [`Event::Resync`] to its
//! WebSocket sessions, which re-read from the database after the last seq each one sent, drops
//! its caches, and asks every other node to do the same. A node also asks for a resync when it
//! joins (its predecessor may have died between a commit and its publish), and each WebSocket
//! session of a clustered node resyncs at its periodic session check, which bounds how long
//! anything can stay missed when no such signal comes.

mod fanout;
pub mod subject;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use fanout::NatsFanout;
pub use subject::Subjects;

use futures_util::StreamExt;
use minihost_hub::{Event, Fanout, Invalidation, LocalHub};
use minihost_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use subject::Parsed;

/// How a node reaches NATS.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://host:port` (several, comma-separated, for a NATS cluster).
    pub url: String,
    /// What every subject of this deployment starts with (`minihost` by default); deployments
    /// sharing one NATS differ by it.
    pub prefix: String,
}

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The subject prefix is not a valid subject.
    #[error(transparent)]
    Prefix(#[from] subject::BadPrefix),
    /// NATS could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// What failed.
        source: async_nats::ConnectError,
    },
    /// The subscription was refused.
    #[error("cannot subscribe to {subject} on NATS: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What failed.
        source: async_nats::SubscribeError,
    },
}

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    fanout: Arc<NatsFanout>,
}

/// How long the first connection may take before the node refuses to start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages a node may have received from NATS and not yet handed to its hub; beyond it NATS
/// reports a slow consumer, and the node resyncs.
const RECEIVE_CAPACITY: usize = 64 * 1024;

impl Cluster {
    /// Connects to NATS and starts the tasks that publish this node's events and deliver the
    /// other nodes' to `hub`, counting what they do in `metrics`.
    pub async fn connect(
        options: &NatsOptions,
        hub: Arc<LocalHub>,
        metrics: Arc<Metrics>,
    ) -> Result<Cluster, ClusterError> {
        let subjects = Subjects::new(&options.prefix)?;
        let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name("minihost")
            // A node delivers its own events to its own hub; NATS must not echo them back.
            .no_echo()
            .connection_timeout(CONNECT_TIMEOUT)
            .subscription_capacity(RECEIVE_CAPACITY)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(u64::try_from(attempts).unwrap_or(u64::MAX).min(10) * 100)
            })
            .event_callback(move |event| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.send(event);
                }
            })
            .connect(options.url.as_str())
            .await
            .map_err(|source| ClusterError::Connect {
                url: redacted(&options.url),
                source,
            })?;
        let all = subjects.all();
        let incoming =
            client
                .subscribe(all.clone())
                .await
                .map_err(|source| ClusterError::Subscribe {
                    subject: all,
                    source,
                })?;
        let fanout = Arc::new(NatsFanout::start(
            client.clone(),
            subjects.clone(),
            hub.clone(),
            metrics.clone(),
        ));
        tokio::spawn(receive(incoming, subjects, hub.clone(), metrics.clone()));
        tokio::spawn(watch(events, hub, fanout.clone(), metrics));
        // A node that died (SIGKILL) between a commit and its publish leaves messages the
        // others never heard of: whoever starts next asks every node to look.
        fanout.ask_resync();
        tracing::info!(
            url = %redacted(&options.url),
            prefix = %options.prefix,
            "joined the cluster through NATS"
        );
        Ok(Cluster { client, fanout })
    }

    /// The fan-out to give everything that publishes.
    pub fn fanout(&self) -> Arc<dyn Fanout> {
        self.fanout.clone()
    }

    /// Whether the connection to NATS is up (for readiness).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Sends what is queued for NATS (on shutdown), waiting at most `within`.
    pub async fn flush(&self, within: Duration) {
        self.fanout.drained(within).await;
        if tokio::time::timeout(within, self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!("NATS flush timed out on shutdown");
        }
    }
}

/// `url` fit to print: the user and password of each server (`nats://user:pass@host`) as `***`.
fn redacted(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &one[..scheme + 3], &one[at..])
            }
            (None, Some(at)) => format!("***{}", &one[at..]),
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Hands what other nodes published to this node's hub and listeners.
async fn receive(
    mut incoming: async_nats::Subscriber,
    subjects: Subjects,
    hub: Arc<LocalHub>,
    metrics: Arc<Metrics>,
) {
    while let Some(msg) = incoming.next().await {
        metrics.fanout_received.inc();
        match subjects.parse(msg.subject.as_str()) {
            Some(Parsed::Topic(topic)) => {
                let kind = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(wire::KIND))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                match wire::decode(&kind, msg.payload) {
                    Ok(event) => {
                        if let Event::Message { message, .. } = &event {
                            let lag = minihost_core::now_millis() - message.created_at_ms;
                            // Milliseconds to seconds: far below 2^52.
                            #[allow(clippy::cast_precision_loss)]
                            metrics.fanout_lag.observe(lag.max(0) as f64 / 1000.0);
                        }
                        hub.deliver(&topic, event);
                    }
                    Err(e) => {
                        tracing::warn!(subject = %msg.subject, error = %e, "dropped an event from NATS")
                    }
                }
            }
            Some(Parsed::Invalidation) => {
                match serde_json::from_slice::<Invalidation>(&msg.payload) {
                    Ok(what) => hub.invalidate_here(&what),
                    Err(e) => tracing::warn!(error = %e, "dropped an invalidation from NATS"),
                }
            }
            Some(Parsed::Resync) => {
                metrics.resyncs.inc();
                hub.broadcast(&Event::Resync);
            }
            None => {}
        }
    }
    tracing::warn!("the NATS subscription ended: this node no longer hears other nodes");
}

/// Follows the connection: after a disconnection or a slow-consumer report this node may have
/// missed events and invalidations, so its sessions resync, its caches drop, and (once
/// connected again) the other nodes are asked to resync too (what this node published while
/// disconnected may be lost).
async fn watch(
    mut events: tokio::sync::mpsc::UnboundedReceiver<async_nats::Event>,
    hub: Arc<LocalHub>,
    fanout: Arc<NatsFanout>,
    metrics: Arc<Metrics>,
) {
    let mut lost = false;
    while let Some(event) = events.recv().await {
        match event {
            async_nats::Event::Disconnected => {
                tracing::warn!("disconnected from NATS; reconnecting");
                lost = true;
            }
            async_nats::Event::Connected => {
                tracing::info!("connected to NATS");
                if std::mem::take(&mut lost) {
                    metrics.nats_reconnects.inc();
                    metrics.resyncs.inc();
                    hub.invalidate_here(&Invalidation::Everything);
                    hub.broadcast(&Event::Resync);
                    fanout.ask_resync();
                }
            }
            async_nats::Event::SlowConsumer(_) => {
                tracing::warn!("fell behind NATS: resyncing from the database");
                metrics.resyncs.inc();
                hub.invalidate_here(&Invalidation::Everything);
                hub.broadcast(&Event::Resync);
            }
            other => tracing::info!(event = %other, "NATS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn urls_are_printed_without_credentials() {
        assert_eq!(redacted("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redacted("nats://me:secret@nats.example:4222,nats://token@other:4222"),
            "nats://***@nats.example:4222,nats://***@other:4222"
        );
        assert_eq!(redacted("me:secret@host"), "***@host");
    }
}
