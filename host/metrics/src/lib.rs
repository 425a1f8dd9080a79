//! A node's metrics: one Prometheus [`Registry`] per node (so that several nodes in one process,
//! as in tests, do not mix their counts) and the handles the crates that observe something
//! update; [`Metrics::render`] is the text format `/metrics` serves. Labels are bounded: routes
//! are the router's patterns, never raw paths; apps are the registry's ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Why the metrics could not be set up (a name registered twice: a bug).
pub type Error = prometheus::Error;

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request durations by route pattern and method, in seconds.
    pub http_duration: HistogramVec,
    /// Open WebSocket sessions.
    pub ws_connections: IntGauge,
    /// Message frames sent on WebSockets (live and backlog).
    pub messages_delivered: IntCounter,
    /// Messages committed by this node's writer.
    pub messages_committed: IntCounter,
    /// Messages per committed group-commit batch.
    pub commit_batch: Histogram,
    /// Mini-app invocations by app and outcome (`ok`, `error`).
    pub invocations: IntCounterVec,
    /// Invocation durations by app, in seconds (in the sandbox, not counting the queue).
    pub invocation_duration: HistogramVec,
    /// Fuel burned per invocation, by app.
    pub invocation_fuel: HistogramVec,
    /// Capability calls by interface and outcome.
    pub capability_calls: IntCounterVec,
    /// Events this node published to NATS.
    pub fanout_published: IntCounter,
    /// Events this node received from other nodes through NATS.
    pub fanout_received: IntCounter,
    /// Events dropped on the way to NATS (a full queue or a failed publish).
    pub fanout_dropped: IntCounter,
    /// From a message's commit on another node to its receipt here, in seconds.
    pub fanout_lag: Histogram,
    /// Reconnections to NATS.
    pub nats_reconnects: IntCounter,
    /// Resyncs of this node's sessions from the database (NATS lost something, or a node asked).
    pub resyncs: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, Error> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> Result<HistogramVec, Error> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

/// Latency buckets from 0.5 ms to 10 s.
fn seconds() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Result<Metrics, Error> {
        let r = Registry::new_custom(Some("minihost".into()), None)?;
        Ok(Metrics {
            http_requests: counter_vec(
                &r,
                "http_requests_total",
                "HTTP requests by route pattern, method and status.",
                &["route", "method", "status"],
            )?,
            http_duration: histogram_vec(
                &r,
                "http_request_duration_seconds",
                "HTTP request durations by route pattern and method.",
                &["route", "method"],
                seconds(),
            )?,
            ws_connections: {
                let g = IntGauge::new("ws_connections", "Open WebSocket sessions.")?;
                r.register(Box::new(g.clone()))?;
                g
            },
            messages_delivered: counter(
                &r,
                "messages_delivered_total",
                "Message frames sent on WebSockets (live and backlog).",
            )?,
            messages_committed: counter(
                &r,
                "messages_committed_total",
                "Messages committed by this node's writer.",
            )?,
            commit_batch: histogram(
                &r,
                "commit_batch_messages",
                "Messages per committed group-commit batch.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
            )?,
            invocations: counter_vec(
                &r,
                "invocations_total",
                "Mini-app invocations by app and outcome.",
                &["app", "outcome"],
            )?,
            invocation_duration: histogram_vec(
                &r,
                "invocation_duration_seconds",
                "Mini-app invocation durations in the sandbox, by app.",
                &["app"],
                seconds(),
            )?,
            invocation_fuel: histogram_vec(
                &r,
                "invocation_fuel",
                "Fuel burned per mini-app invocation, by app.",
                &["app"],
                prometheus::exponential_buckets(10_000.0, 10.0, 7)?,
            )?,
            capability_calls: counter_vec(
                &r,
                "capability_calls_total",
                "Capability calls of mini-apps by interface and outcome.",
                &["interface", "outcome"],
            )?,
            fanout_published: counter(
                &r,
                "fanout_published_total",
                "Events this node published to NATS.",
            )?,
            fanout_received: counter(
                &r,
                "fanout_received_total",
                "Events this node received from other nodes through NATS.",
            )?,
            fanout_dropped: counter(
                &r,
                "fanout_dropped_total",
                "Events dropped on the way to NATS (a full queue or a failed publish).",
            )?,
            fanout_lag: histogram(
                &r,
                "fanout_lag_seconds",
                "From a message's commit on another node to its receipt here.",
                seconds(),
            )?,
            nats_reconnects: counter(&r, "nats_reconnects_total", "Reconnections to NATS.")?,
            resyncs: counter(
                &r,
                "resyncs_total",
                "Resyncs of this node's sessions from the database.",
            )?,
            registry: r,
        })
    }

    /// Every metric in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn renders_every_metric_under_the_prefix() {
        let m = Metrics::new().unwrap();
        m.http_requests
            .with_label_values(&["/api/v1/me", "GET", "200"])
            .inc();
        m.commit_batch.observe(3.0);
        m.ws_connections.inc();
        let text = m.render();
        assert!(
            text.contains(
                r#"minihost_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("minihost_commit_batch_messages_count 1"),
            "{text}"
        );
        assert!(text.contains("minihost_ws_connections 1"), "{text}");
        // A second node in the same process counts on its own.
        assert!(
            !Metrics::new()
                .unwrap()
                .render()
                .contains("minihost_ws_connections 1")
        );
    }
}
