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
    /// The first of those, cut short.
    pub other_sample: Option<String>,
    /// An app-command phase: the app's replies to the senders' own commands.
    pub replies: Option<Replies>,
}

/// The echo app's replies in an app-command phase, seen on the WebSocket of each command's
/// sender.
#[derive(Debug, Clone, Serialize)]
pub struct Replies {
    /// Commands the server accepted (warm-up included): one reply each is awaited.
    pub expected: u64,
    pub received: u64,
    /// `app_error` frames instead of a reply (the app busy, failed or timed out).
    pub app_errors: u64,
    /// Of those, immediate `busy` refusals (the app's admission queue was full): an answer by
    /// design, not a lost command.
    pub busy: u64,
    /// Replies to commands sent inside the measured window.
    pub measured: u64,
    pub window_s: f64,
    pub per_s: f64,
    /// From the command's send to the reply on its sender's WebSocket.
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessagesReport {
    pub machine: Machine,
    pub command: String,
    pub db: String,
    /// Server nodes (`--nodes`): more than one share PostgreSQL and NATS.
    pub nodes: usize,
    pub echo: Option<Sends>,
    pub server: Option<Sends>,
    pub deliveries: Option<Deliveries>,
    /// Messenger accepted/s over echo requests/s (both are HTTP requests answered 201).
    pub ratio_to_echo: Option<f64>,
    /// Messenger delivered/s (pushes, one per recipient) over echo requests/s.
    pub delivered_ratio_to_echo: Option<f64>,
    /// The app-command phase (`--commands`).
    pub commands: Option<CommandsPhase>,
    pub ok: bool,
}

/// The app-command phase beside the plain one of the same run.
#[derive(Debug, Clone, Serialize)]
pub struct CommandsPhase {
    pub sends: Sends,
    pub deliveries: Deliveries,
    /// Commands accepted/s over plain messages accepted/s.
    pub accepted_ratio_to_plain: Option<f64>,
    /// The reply's p99 (command sent -> reply on the sender's WebSocket) over the plain
    /// delivery p99 (message sent -> pushed to a member).
    pub reply_p99_ratio_to_plain: Option<f64>,
}

impl CommandsPhase {
    pub fn compare(
        sends: Sends,
        deliveries: Deliveries,
        plain: Option<&Sends>,
        plain_deliveries: Option<&Deliveries>,
    ) -> CommandsPhase {
        let accepted_ratio_to_plain = plain
            .filter(|p| p.accepted_per_s > 0.0)
            .map(|p| sends.accepted_per_s / p.accepted_per_s);
        let reply_p99_ratio_to_plain = match (&deliveries.replies, plain_deliveries) {
            (Some(r), Some(d)) if d.latency.p99_ms > 0.0 => {
                Some(r.latency.p99_ms / d.latency.p99_ms)
            }
            _ => None,
        };
        CommandsPhase {
            sends,
            deliveries,
            accepted_ratio_to_plain,
            reply_p99_ratio_to_plain,
        }
    }

    /// Every command accepted and answered once (a reply, or an immediate `busy` refusal:
    /// the admission bound at work; any other app error fails the run), and every seq
    /// delivered in order.
    pub fn ok(&self) -> bool {
        let d = &self.deliveries;
        self.sends.errors.is_empty()
            && d.violations == 0
            && d.problems.is_empty()
            && d.replies
                .as_ref()
                .is_some_and(|r| r.received + r.busy == r.expected)
    }
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

/// The well-behaved app's answers during one phase of `hostile`.
#[derive(Debug, Clone, Serialize)]
pub struct EchoProbe {
    /// `/echo` asks sent after warm-up.
    pub asked: u64,
    /// Of those, answered by the app.
    pub answered: u64,
    /// From the ask's scheduled time to the app's reply on the asker's WebSocket.
    pub latency: Latency,
    /// `app_error` kinds the app's invocations ended with (warm-up included).
    pub failures: Vec<(String, u64)>,
    /// Asks the server did not accept.
    pub ask_errors: u64,
}

/// One chat phase of `hostile`.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub sends: Sends,
    pub deliveries: Deliveries,
    pub echo: EchoProbe,
    /// Cores the server's guest threads used over the phase (WebSocket setup and drain
    /// included).
    pub guest_cpu_cores: Option<f64>,
}

/// The looping apps' storm, from what was posted and their invocation logs.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    pub apps: usize,
    pub commands_per_burst: usize,
    pub bursts: u64,
    pub loops_posted: u64,
    pub post_errors: u64,
    pub first_post_error: Option<String>,
    /// One per app per `/loop` posted.
    pub invocations_expected: u64,
    pub invocations_logged: u64,
    /// More than the log endpoint shows per app (500): the counts cover the newest 500.
    pub log_truncated: bool,
    pub timeouts: u64,
    pub busy: u64,
    /// Any other outcome, by error kind (or `ok`).
    pub other: Vec<(String, u64)>,
    /// The operator's cap on app time budgets.
    pub cap_ms: f64,
    /// Shortest and longest run of a timed-out invocation (`duration_us`).
    pub min_timeout_run_ms: f64,
    pub max_timeout_run_ms: f64,
    /// Longest run past the cap.
    pub max_overrun_ms: f64,
    /// The runtime's documented slack past a deadline.
    pub slack_ms: f64,
    /// Longest wait for a slot of an invocation that then ran (`queued_us`).
    pub max_start_delay_ms: f64,
    /// Longest wait before an invocation was refused as busy.
    pub max_busy_wait_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    pub machine: Machine,
    pub command: String,
    pub db: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) before and after the run.
    pub load_average_before: String,
    pub load_average_after: String,
    /// What the bench added to `minihost serve`.
    pub server_args: Vec<String>,
    /// Open-loop chat messages/s, both phases.
    pub chat_rate: f64,
    pub quiet: Phase,
    pub stormy: Phase,
    pub storm: Storm,
    /// Chat send round trip p99, storm over quiet.
    pub send_p99_ratio: f64,
    /// Chat delivery latency p99, storm over quiet.
    pub delivery_p99_ratio: f64,
    /// `send_p99_ratio <= 2`.
    pub within_2x: bool,
    pub ok: bool,
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "?".into(), |c| format!("{c:.2}"))
}

pub fn print_sends(title: &str, s: &Sends) {
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

fn print_deliveries(d: &Deliveries) {
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
        if let Some(sample) = &d.other_sample {
            println!("    first: {sample}");
        }
    }
    for p in &d.problems {
        println!("  problem      {p}");
    }
}

fn print_machine(m: &Machine) {
    println!(
        "machine: {} cores, {}, {} MiB, Linux {}",
        m.nproc, m.cpu_model, m.mem_total_mib, m.kernel
    );
}

pub fn print_messages(r: &MessagesReport) {
    print_machine(&r.machine);
    println!("command: {}", r.command);
    if let Some(e) = &r.echo {
        print_sends("echo baseline", e);
    }
    if let Some(s) = &r.server {
        let nodes = match r.nodes {
            1 => String::new(),
            n => format!(", {n} nodes"),
        };
        print_sends(&format!("messenger ({}{nodes})", r.db), s);
    }
    if let Some(d) = &r.deliveries {
        print_deliveries(d);
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
    if let Some(c) = &r.commands {
        print_commands(c);
    }
    println!("result: {}", if r.ok { "OK" } else { "FAILED (see above)" });
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "?".into(), |r| format!("{:.1}%", r * 100.0))
}

fn print_commands(c: &CommandsPhase) {
    print_sends("app commands (/echo to an installed app)", &c.sends);
    print_deliveries(&c.deliveries);
    if let Some(r) = &c.deliveries.replies {
        println!(
            "  replies      {:>10.0} /s   ({} measured in {:.2} s; {} of {} awaited in total, {} app errors, {} of them busy)",
            r.per_s, r.measured, r.window_s, r.received, r.expected, r.app_errors, r.busy
        );
        if let (true, Some(sample)) = (r.app_errors > 0, &c.deliveries.other_sample) {
            println!("    first app error: {sample}");
        }
        println!(
            "  reply        {}  (command send start -> app reply on the sender's WebSocket)",
            r.latency
        );
    }
    println!(
        "ratio: commands accepted/s = {} of plain messages/s; reply p99 = {} of the plain delivery p99",
        ratio(c.accepted_ratio_to_plain),
        ratio(c.reply_p99_ratio_to_plain)
    );
}

pub fn print_idle(r: &IdleReport) {
    print_machine(&r.machine);
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

fn print_phase(title: &str, p: &Phase) {
    print_sends(title, &p.sends);
    print_deliveries(&p.deliveries);
    println!(
        "  guest cpu    {} cores (the server's guest threads, included in its cpu above)",
        cores(p.guest_cpu_cores)
    );
    let e = &p.echo;
    println!(
        "  echo app     {} of {} asks answered; {}",
        e.answered, e.asked, e.latency
    );
    for (kind, n) in &e.failures {
        println!("  echo failed  {n} x {kind}");
    }
    if e.ask_errors > 0 {
        println!("  echo asks    {} not accepted", e.ask_errors);
    }
}

pub fn print_hostile(r: &HostileReport) {
    print_machine(&r.machine);
    println!("command: {}", r.command);
    println!(
        "load average: {} before, {} after (1/5/15 min)",
        r.load_average_before, r.load_average_after
    );
    println!("server args: {}", r.server_args.join(" "));
    print_phase(
        &format!("quiet chat ({}, {} msg/s)", r.db, r.chat_rate),
        &r.quiet,
    );
    print_phase(&format!("chat beside the storm ({})", r.db), &r.stormy);
    let s = &r.storm;
    println!(
        "storm: {} apps x {} /loop per burst, {} bursts: {} /loop posted ({} failed)",
        s.apps, s.commands_per_burst, s.bursts, s.loops_posted, s.post_errors
    );
    if let Some(e) = &s.first_post_error {
        println!("  first error  {e}");
    }
    println!(
        "  invocations  {} logged of {} expected{}: {} timed out, {} refused busy",
        s.invocations_logged,
        s.invocations_expected,
        if s.log_truncated {
            " (newest 500 per app)"
        } else {
            ""
        },
        s.timeouts,
        s.busy
    );
    for (kind, n) in &s.other {
        println!("               {n} x {kind}");
    }
    println!(
        "  deadline     timed-out runs took {:.1}-{:.1} ms against a cap of {:.0} ms: overrun at most {:.1} ms (slack {:.0} ms)",
        s.min_timeout_run_ms, s.max_timeout_run_ms, s.cap_ms, s.max_overrun_ms, s.slack_ms
    );
    println!(
        "  queue        ran after waiting at most {:.1} ms; refused after waiting at most {:.1} ms",
        s.max_start_delay_ms, s.max_busy_wait_ms
    );
    println!(
        "ratio: chat send p99 beside the storm / quiet = {:.2} ({:.2} / {:.2} ms): {}",
        r.send_p99_ratio,
        r.stormy.sends.round_trip.p99_ms,
        r.quiet.sends.round_trip.p99_ms,
        if r.within_2x {
            "within 2x"
        } else {
            "NOT within 2x"
        }
    );
    println!(
        "       chat delivery p99 beside the storm / quiet = {:.2}",
        r.delivery_p99_ratio
    );
    println!("result: {}", if r.ok { "OK" } else { "FAILED (see above)" });
}
