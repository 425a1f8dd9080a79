//! [`NatsFanout`]: delivers to this node's hub at once and queues the event for NATS; one task
//! publishes the queue in order. A full queue drops the event and, once the queue drains, asks
//! every node to resync, so nothing is lost for good.

use crate::subject::Subjects;
use crate::wire;
use bytes::Bytes;
use minihost_hub::{Event, Fanout, Invalidation, LocalHub, Topic};
use minihost_metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events a node may have queued for NATS before it drops them (and resyncs the others).
const QUEUE: usize = 64 * 1024;

struct Outgoing {
    subject: String,
    /// The `Minihost-Kind` header; `None` for invalidations and resync requests, whose
    /// subject says what they are.
    kind: Option<&'static str>,
    payload: Bytes,
}

/// The fan-out of a node in a cluster.
pub struct NatsFanout {
    hub: Arc<LocalHub>,
    subjects: Subjects,
    out: mpsc::Sender<Outgoing>,
    /// Set when an event could not be queued: the publisher asks for a resync.
    dropped: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl NatsFanout {
    pub(crate) fn start(
        client: async_nats::Client,
        subjects: Subjects,
        hub: Arc<LocalHub>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (out, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicBool::new(false));
        tokio::spawn(publish(
            client,
            rx,
            subjects.resync(),
            dropped.clone(),
            metrics.clone(),
        ));
        NatsFanout {
            hub,
            subjects,
            out,
            dropped,
            metrics,
        }
    }

    fn send(&self, subject: String, kind: Option<&'static str>, payload: Bytes) {
        let queued = self.out.try_send(Outgoing {
            subject,
            kind,
            payload,
        });
        if queued.is_err() {
            self.metrics.fanout_dropped.inc();
            if !self.dropped.swap(true, Ordering::Relaxed) {
                tracing::warn!("the queue to NATS is full; other nodes will resync");
            }
        }
    }

    /// Asks every other node to re-read from the database.
    pub(crate) fn ask_resync(&self) {
        self.send(self.subjects.resync(), None, Bytes::new());
    }

    /// Waits (at most `within`) until everything queued was handed to the NATS client.
    pub(crate) async fn drained(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.out.capacity() < self.out.max_capacity()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Fanout for NatsFanout {
    fn publish(&self, topic: Topic, event: Event) {
        if let Some((kind, payload)) = wire::encode(&event) {
            self.send(self.subjects.topic(&topic), Some(kind), payload);
        }
        self.hub.deliver(&topic, event);
    }

    fn invalidate(&self, what: Invalidation) {
        self.hub.invalidate_here(&what);
        if what == Invalidation::Everything {
            return;
        }
        match serde_json::to_vec(&what) {
            Ok(json) => self.send(self.subjects.invalidation(), None, Bytes::from(json)),
            Err(e) => tracing::warn!(error = %e, "could not encode an invalidation"),
        }
    }
}

/// Publishes the queue in order.
async fn publish(
    client: async_nats::Client,
    mut rx: mpsc::Receiver<Outgoing>,
    resync: String,
    dropped: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    while let Some(item) = rx.recv().await {
        let sent = match item.kind {
            Some(kind) => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(wire::KIND, kind);
                client
                    .publish_with_headers(item.subject, headers, item.payload)
                    .await
            }
            None => client.publish(item.subject, item.payload).await,
        };
        match sent {
            Ok(()) => metrics.fanout_published.inc(),
            Err(e) => {
                tracing::warn!(error = %e, "publishing to NATS failed; other nodes will resync");
                metrics.fanout_dropped.inc();
                dropped.store(true, Ordering::Relaxed);
            }
        }
        if rx.is_empty() && dropped.swap(false, Ordering::Relaxed) {
            let _ = client.publish(resync.clone(), Bytes::new()).await;
        }
    }
}
