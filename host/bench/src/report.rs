//! What a run reports, as JSON (`--json`) and as a human-readable summary.

use serde::Serialize;

use crate::hist::Histogram;
use crate::sys::Machine;

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl From<&Histogram> for Latency {
    fn from(h: &Histogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.count(),
            p50_ms: ms(h.quantile(0.50)),
            p90_ms: ms(h.quantile(0.90)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// The HTTP side of a load run (shared by the echo baseline and the messenger).
#[derive(Debug, Clone, Serialize)]
pub struct Sends {
    pub target: String,
    pub senders: usize,
    /// Seconds from the end of warm-up to the last measured response.
    pub window_s: f64,
    pub attempted: u64,
    pub accepted: u64,
    /// Accepted sends started after warm-up.
    pub measured: u64,
    pub accepted_per_s: f64,
    pub round_trip: Latency,
    pub errors: Vec<(String, u64)>,
    pub error_sample: Option<String>,
    /// Cores used during the measured window (CPU seconds per second).
    pub server_cpu_cores: Option<f64>,
    pub bench_cpu_cores: Option<f64>,
    /// PostgreSQL's processes (whatever else they served meanwhile).
    pub postgres_cpu_cores: f64,
    /// The whole machine, so `machine - server - bench - postgres` is what others took.
    pub machine_cpu_cores: Option<f64>,
}

/// The WebSocket side of a messenger run.
#[derive(Debug, Clone, Serialize)]
pub struct Deliveries {
    pub clients: usize,
    pub conversations: usize,
    /// Pushes received over all clients (each message counts once per member).
    pub delivered: u64,
    /// Deliveries the accepted sends imply (accepted per conversation × members).
    pub expected: u64,
    pub measured: u64,
    pub window_s: f64,
    pub delivered_per_s: f64,
    /// From send start (client clock) to the push arriving at each member.
    pub latency: Latency,
    /// Seconds waited after the last send for every client to catch up.
    pub drain_s: f64,
    /// Seq order violations and missed messages.
    pub violations: u64,
    pub violation_samples: Vec<String>,
    /// WebSockets that ended early.
    pub problems: Vec<String>,
    /// Frames that were not message pushes (other typed events): counted, not checked.
    pub other_frames: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessagesReport {
    pub machine: Machine,
    pub command: String,
    pub db: String,
    pub echo: Option<Sends>,
    pub server: Option<Sends>,
    pub deliveries: Option<Deliveries>,
    /// Messenger accepted/s over echo requests/s (both are HTTP requests answered 201).
    pub ratio_to_echo: Option<f64>,
    /// Messenger delivered/s (pushes, one per recipient) over echo requests/s.
    pub delivered_ratio_to_echo: Option<f64>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub machine: Machine,
    pub command: String,
    pub target: String,
    pub users: usize,
    pub connections: usize,
    pub opened: usize,
    pub closed_early: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_connection: f64,
    pub nofile_limit: u64,
    pub ephemeral_ports: Option<(u32, u32)>,
    pub source_addresses: usize,
    pub ok: bool,
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "?".into(), |c| format!("{c:.2}"))
}

fn print_sends(title: &str, s: &Sends) {
    println!("{title}: {}", s.target);
    println!(
        "  accepted     {:>10.0} /s   ({} measured in {:.2} s, {} senders, {} attempted in total)",
        s.accepted_per_s, s.measured, s.window_s, s.senders, s.attempted
    );
    println!("  round trip   {}", s.round_trip);
    let others = match (s.machine_cpu_cores, s.server_cpu_cores, s.bench_cpu_cores) {
        (Some(m), Some(a), Some(b)) => Some((m - a - b - s.postgres_cpu_cores).max(0.0)),
        _ => None,
    };
    println!(
        "  cpu          server {} cores, bench {}, postgres {:.2}, everything else {}",
        cores(s.server_cpu_cores),
        cores(s.bench_cpu_cores),
        s.postgres_cpu_cores,
        cores(others)
    );
    for (what, n) in &s.errors {
        println!("  error        {n} x {what}");
    }
    if let Some(sample) = &s.error_sample {
        println!("  first error  {sample}");
    }
}

pub fn print_messages(r: &MessagesReport) {
    let m = &r.machine;
    println!(
        "machine: {} cores, {}, {} MiB, Linux {}",
        m.nproc, m.cpu_model, m.mem_total_mib, m.kernel
    );
    println!("command: {}", r.command);
    if let Some(e) = &r.echo {
        print_sends("echo baseline", e);
    }
    if let Some(s) = &r.server {
        print_sends(&format!("messenger ({})", r.db), s);
    }
    if let Some(d) = &r.deliveries {
        println!(
            "  delivered    {:>10.0} /s   ({} measured in {:.2} s; {} of {} expected in total; {} clients in {} conversations)",
            d.delivered_per_s,
            d.measured,
            d.window_s,
            d.delivered,
            d.expected,
            d.clients,
            d.conversations
        );
        println!(
            "  latency      {}  (send start -> WebSocket push, per recipient)",
            d.latency
        );
        println!("  drain        {:.2} s after the last send", d.drain_s);
        println!("  seq checks   {} violations", d.violations);
        for v in &d.violation_samples {
            println!("    {v}");
        }
        if d.other_frames > 0 {
            println!("  other frames {} (not message pushes)", d.other_frames);
        }
        for p in &d.problems {
            println!("  problem      {p}");
        }
    }
    if let Some(ratio) = r.ratio_to_echo {
        println!(
            "ratio: messenger accepted/s = {:.1}% of the bare echo's requests/s",
            ratio * 100.0
        );
    }
    if let Some(ratio) = r.delivered_ratio_to_echo {
        println!(
            "       messenger delivered/s = {:.1}% of the bare echo's requests/s",
            ratio * 100.0
        );
    }
    println!("result: {}", if r.ok { "OK" } else { "FAILED (see above)" });
}

pub fn print_idle(r: &IdleReport) {
    let m = &r.machine;
    println!(
        "machine: {} cores, {}, {} MiB, Linux {}",
        m.nproc, m.cpu_model, m.mem_total_mib, m.kernel
    );
    println!("command: {}", r.command);
    println!("target:  {}", r.target);
    println!(
        "idle WebSockets: {} opened of {} asked ({} users, {} source addresses), {} closed early",
        r.opened, r.connections, r.users, r.source_addresses, r.closed_early
    );
    println!(
        "server RSS: {} KiB before, {} KiB after",
        r.rss_before_kib, r.rss_after_kib
    );
    println!("per connection: {:.1} KiB", r.kib_per_connection);
    println!(
        "open-file limit {}, ephemeral ports {:?}",
        r.nofile_limit, r.ephemeral_ports
    );
    println!("result: {}", if r.ok { "OK" } else { "FAILED" });
}
