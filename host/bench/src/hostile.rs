//! `minihost-bench hostile` (issue 8): ordinary chat measured twice against one real server in
//! one run, quiet and then beside one developer's storm of looping apps, while another
//! developer's well-behaved app is asked to `/echo` in both phases; afterwards the looping apps'
//! invocation logs say how the storm was contained (timed out, refused as busy, overrun, wait).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::api::{self, Invocation};
use crate::clock::Clock;
use crate::hist::Histogram;
use crate::http::Conn;
use crate::messages::{self, ChatOpts};
use crate::report::{self, EchoProbe, HostileReport, Latency, Phase, Storm};
use crate::setup::{self, Population};
use crate::sys::{self, Machine};
use crate::target::{Launch, Target, TargetOpts};
use crate::text;
use crate::ws;

#[derive(Debug, Clone, Args)]
pub struct HostileOpts {
    #[command(flatten)]
    pub target: TargetOpts,
    #[command(flatten)]
    pub chat: ChatOpts,
    /// Open-loop chat rate in messages/s over all senders, the same in both phases.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Looping apps the developer sideloads into a group (each asks for `timeout_ms = 2000`).
    #[arg(long, default_value_t = 8)]
    pub apps: usize,
    /// `/loop` commands per burst; each one runs every looping app.
    #[arg(long, default_value_t = 16)]
    pub commands: usize,
    /// Seconds between bursts.
    #[arg(long, default_value_t = 1.0)]
    pub burst_every: f64,
    /// The operator's cap on app time budgets (`serve --max-app-timeout-ms`).
    #[arg(long, default_value_t = 2000)]
    pub max_app_timeout_ms: u64,
    /// `serve --guest-threads` (default: the server's own, half the cores).
    #[arg(long)]
    pub guest_threads: Option<usize>,
    /// Seconds between `/echo` asks of the well-behaved app (its replies must stay within an
    /// app's send budget: 60 a minute per conversation, bursts of 20).
    #[arg(long, default_value_t = 1.0)]
    pub echo_every: f64,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

const PASSWORD: &str = "bench-password-0";
const ECHO_MANIFEST: &str = include_str!("../../../examples/echo/miniapp.toml");
/// The runtime's documented slack past a deadline: five epoch ticks of 10 ms.
const SLACK_MS: f64 = 50.0;
/// The storm runs this long before the stormy chat phase starts, so it is measured in full swing.
const STORM_LEAD: Duration = Duration::from_secs(2);
/// Longest wait for the looping apps' logs to account for every invocation.
const SETTLE: Duration = Duration::from_secs(120);
/// Longest wait for the echo app's outstanding answers after a phase.
const ECHO_GRACE: Duration = Duration::from_secs(10);
/// The name of the server's guest threads (`host/runtime/src/executor.rs`).
const GUEST_THREAD: &str = "minihost-guest";
/// Entries the log endpoint returns at most per app (newest first).
const LOG_LIMIT: u32 = 500;

fn loop_app(i: usize) -> String {
    format!("loop-{i}")
}

/// A looping app: the FAULTS guest's `/loop` spins until stopped; the scopes are the ones its
/// component imports, and it asks for the manifest's maximum time budget.
fn loop_manifest(i: usize) -> String {
    format!(
        r#"id = "{id}"
name = "Loop {i}"
version = "0.1.0"
description = "Spins until stopped."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "profile.read"
reason = "To greet you."

[[scopes]]
name = "auth.login"
reason = "To sign you in."

[[scopes]]
name = "storage"
reason = "To remember things."

[[commands]]
name = "loop"
help = "/loop"

[limits]
timeout_ms = 2000
"#,
        id = loop_app(i)
    )
}

/// `minihost admin create-user` arguments for a developer account.
fn create_developer(name: &str) -> Vec<String> {
    [
        "admin",
        "create-user",
        "--username",
        name,
        "--password",
        PASSWORD,
        "--role",
        "developer",
    ]
    .map(String::from)
    .to_vec()
}

/// A developer, signed in, with a group of their own to install apps into.
struct Developer {
    token: String,
    group: String,
}

async fn developer(addr: SocketAddr, name: &str) -> Result<Developer> {
    let mut conn = Conn::connect(addr).await?;
    let token = api::sign_in(&mut conn, name, PASSWORD).await?;
    let group = api::create_group(&mut conn, &token, &[], &format!("{name} apps")).await?;
    Ok(Developer { token, group })
}

async fn post(conn: &mut Conn, dev: &Developer, text: &str) -> Result<()> {
    let (status, body) = api::post_text(conn, &dev.token, &dev.group, text).await?;
    if status != 201 {
        bail!(
            "posting {text:?}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Every entry of the looping apps' logs not in `skip`, once they hold `per_app` new entries
/// each (or at most what the endpoint shows), or whatever is there after `within`.
async fn logged(
    conn: &mut Conn,
    dev: &Developer,
    apps: usize,
    per_app: u64,
    skip: &HashSet<String>,
    within: Duration,
) -> Result<Vec<Invocation>> {
    let want = per_app.min(u64::from(LOG_LIMIT)) * apps as u64;
    let start = Instant::now();
    loop {
        let mut fresh = Vec::new();
        for i in 0..apps {
            let log = api::invocations(conn, &dev.token, &loop_app(i), LOG_LIMIT).await?;
            fresh.extend(log.into_iter().filter(|r| !skip.contains(&r.id)));
        }
        if fresh.len() as u64 >= want || start.elapsed() >= within {
            return Ok(fresh);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sideloads the looping apps and the echo app, then grants the looping apps' consent: the
/// first `/loop` parks a request per app, answering it runs that event once, and this waits
/// until those runs are logged, so the quiet phase is quiet. Returns their log ids.
async fn install(
    addr: SocketAddr,
    apps: usize,
    looper: &Developer,
    helper: &Developer,
) -> Result<HashSet<String>> {
    let faults = minihost_guest_artifacts::read(minihost_guest_artifacts::FAULTS)
        .context("reading the FAULTS guest (built by host/guest-artifacts)")?;
    let echo = minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO)
        .context("reading the ECHO guest (built by host/guest-artifacts)")?;
    let mut conn = Conn::connect(addr).await?;
    for i in 0..apps {
        api::sideload(
            &mut conn,
            &looper.token,
            &looper.group,
            &loop_manifest(i),
            &faults,
        )
        .await?;
    }
    api::sideload(
        &mut conn,
        &helper.token,
        &helper.group,
        ECHO_MANIFEST,
        &echo,
    )
    .await?;
    post(&mut conn, looper, "/loop").await?;
    for i in 0..apps {
        let app = loop_app(i);
        let asked = Instant::now();
        // An empty grant would ask again: grant one scope.
        while !api::grant(&mut conn, &looper.token, &app, &["messages.send"]).await? {
            if asked.elapsed() > Duration::from_secs(30) {
                bail!("{app}: no consent request to answer after the first /loop");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let first = logged(&mut conn, looper, apps, 1, &HashSet::new(), SETTLE).await?;
    if first.len() < apps {
        bail!(
            "only {} of the {apps} consented /loop runs were logged",
            first.len()
        );
    }
    Ok(first.into_iter().map(|r| r.id).collect())
}

/// What the storm posted.
#[derive(Debug, Default)]
struct Posted {
    bursts: u64,
    loops: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Posts `commands` `/loop` into the looping apps' group every `every` until `stop`.
async fn storm(
    addr: SocketAddr,
    looper: Arc<Developer>,
    commands: usize,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Posted {
    let mut posted = Posted::default();
    let mut conn: Option<Conn> = None;
    let start = tokio::time::Instant::now();
    while !*stop.borrow() {
        for _ in 0..commands {
            let sent = match conn.as_mut() {
                Some(c) => post(c, &looper, "/loop").await,
                None => match Conn::connect(addr).await {
                    Ok(c) => post(conn.insert(c), &looper, "/loop").await,
                    Err(e) => Err(e),
                },
            };
            match sent {
                Ok(()) => posted.loops += 1,
                Err(e) => {
                    posted.errors += 1;
                    posted.first_error.get_or_insert_with(|| format!("{e:#}"));
                    conn = None;
                }
            }
        }
        posted.bursts += 1;
        let next = start + every.mul_f64(posted.bursts as f64);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => break,
        }
    }
    posted
}

/// What the echo probe's WebSocket saw.
#[derive(Default)]
struct Answers {
    /// Answers and failures, to know when none are outstanding.
    settled: Arc<AtomicU64>,
    answered: u64,
    latency: Histogram,
    failures: Vec<(String, u64)>,
}

/// Reads the echo developer's WebSocket: app replies carry their ask's send time (the text is
/// `bench <µs> <n>`), failures arrive as `app_error` frames of the app.
async fn read_answers(
    mut ws: ws::Ws,
    clock: Clock,
    measure_from_us: u64,
    settled: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Answers {
    let mut a = Answers {
        settled,
        ..Answers::default()
    };
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = stop.changed() => break,
        };
        let t = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            _ => break,
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
            continue;
        };
        match v["type"].as_str() {
            Some("message") if v["message"]["sender"]["type"] == "app" => {
                let Some(sent) = v["message"]["content"]["text"]
                    .as_str()
                    .and_then(text::stamp)
                    .map(|s| s.sent_us)
                else {
                    continue;
                };
                a.settled.fetch_add(1, Ordering::Release);
                if sent >= measure_from_us {
                    a.answered += 1;
                    a.latency.record(clock.now_us().saturating_sub(sent));
                }
            }
            Some("app_error") if v["app"] == "echo" => {
                a.settled.fetch_add(1, Ordering::Release);
                let kind = v["kind"].as_str().unwrap_or("unknown").to_owned();
                match a.failures.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, n)) => *n += 1,
                    None => a.failures.push((kind, 1)),
                }
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    a
}

/// Asks the echo app `/echo` every `every` until `stop`, and times each answer on the
/// developer's WebSocket from the ask's scheduled time; asks in the first `warmup` are not
/// measured.
async fn probe_echo(
    addr: SocketAddr,
    helper: Arc<Developer>,
    every: Duration,
    warmup: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<EchoProbe> {
    let ws = ws::connect(addr, &helper.token, None).await?;
    let mut conn = Conn::connect(addr).await?;
    let clock = Clock::start();
    let measure_from_us = u64::try_from(warmup.as_micros()).unwrap_or(u64::MAX);
    let settled = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = watch::channel(false);
    let reader = tokio::spawn(read_answers(
        ws,
        clock,
        measure_from_us,
        settled.clone(),
        done_rx,
    ));
    let (mut asks, mut asked, mut ask_errors) = (0u64, 0u64, 0u64);
    while !*stop.borrow() {
        let at = u64::try_from(every.mul_f64(asks as f64).as_micros()).unwrap_or(u64::MAX);
        tokio::select! {
            _ = tokio::time::sleep_until(clock.at(at).into()) => {}
            _ = stop.changed() => break,
        }
        asks += 1;
        match post(&mut conn, &helper, &format!("/echo bench {at} {asks}")).await {
            Ok(()) if at >= measure_from_us => asked += 1,
            Ok(()) => {}
            Err(_) => {
                ask_errors += 1;
                conn = Conn::connect(addr).await?;
            }
        }
    }
    let waited = Instant::now();
    while settled.load(Ordering::Acquire) + ask_errors < asks && waited.elapsed() < ECHO_GRACE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = done_tx.send(true);
    let a = reader.await.context("the echo reader panicked")?;
    Ok(EchoProbe {
        asked,
        answered: a.answered,
        latency: Latency::from(&a.latency),
        failures: a.failures,
        ask_errors,
    })
}

/// One chat phase with the echo probe beside it.
async fn phase(
    o: &HostileOpts,
    target: &Target,
    pop: &Population,
    helper: &Arc<Developer>,
) -> Result<Phase> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let probe = tokio::spawn(probe_echo(
        target.addr,
        helper.clone(),
        Duration::from_secs_f64(o.echo_every),
        Duration::from_secs_f64(o.chat.warmup.max(0.0)),
        stop_rx,
    ));
    let guest_cpu = || {
        let pid = target.pid?;
        Some((
            Instant::now(),
            sys::threads_cpu_seconds(pid, GUEST_THREAD).ok()?,
        ))
    };
    let before = guest_cpu();
    let chat = messages::chat_phase(&o.chat, Some(o.rate), target, pop, false).await;
    let after = guest_cpu();
    let _ = stop_tx.send(true);
    let echo = probe.await.context("the echo probe panicked")??;
    let (sends, deliveries) = chat?;
    let guest_cpu_cores = match (before, after) {
        (Some((t0, c0)), Some((t1, c1))) => Some((c1 - c0) / (t1 - t0).as_secs_f64().max(1e-9)),
        _ => None,
    };
    Ok(Phase {
        sends,
        deliveries,
        echo,
        guest_cpu_cores,
    })
}

/// The storm's figures from what it posted and what the apps' logs say.
fn storm_report(o: &HostileOpts, posted: Posted, records: &[Invocation]) -> Storm {
    let ms = |us: u64| us as f64 / 1000.0;
    let cap_us = o.max_app_timeout_ms * 1000;
    let count = |kind: &str| {
        records
            .iter()
            .filter(|r| r.error_kind.as_deref() == Some(kind))
            .count() as u64
    };
    let mut other: Vec<(String, u64)> = Vec::new();
    for r in records {
        let kind = match (&r.error_kind, r.outcome.as_str()) {
            (Some(k), _) if k == "timeout" || k == "busy" => continue,
            (Some(k), _) => k.clone(),
            (None, outcome) => outcome.to_owned(),
        };
        match other.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => other.push((kind, 1)),
        }
    }
    let ran = || {
        records
            .iter()
            .filter(|r| r.error_kind.as_deref() != Some("busy"))
    };
    let timed_out = || {
        records
            .iter()
            .filter(|r| r.error_kind.as_deref() == Some("timeout"))
    };
    let refused = || {
        records
            .iter()
            .filter(|r| r.error_kind.as_deref() == Some("busy"))
    };
    let max_ran = timed_out().map(|r| r.duration_us).max().unwrap_or(0);
    let expected = posted.loops * o.apps as u64;
    Storm {
        apps: o.apps,
        commands_per_burst: o.commands,
        bursts: posted.bursts,
        loops_posted: posted.loops,
        post_errors: posted.errors,
        first_post_error: posted.first_error,
        invocations_expected: expected,
        invocations_logged: records.len() as u64,
        log_truncated: posted.loops > u64::from(LOG_LIMIT),
        timeouts: count("timeout"),
        busy: count("busy"),
        other,
        cap_ms: o.max_app_timeout_ms as f64,
        min_timeout_run_ms: ms(timed_out().map(|r| r.duration_us).min().unwrap_or(0)),
        max_timeout_run_ms: ms(max_ran),
        max_overrun_ms: ms(max_ran.saturating_sub(cap_us)),
        slack_ms: SLACK_MS,
        max_start_delay_ms: ms(ran().map(|r| r.queued_us).max().unwrap_or(0)),
        max_busy_wait_ms: ms(refused().map(|r| r.queued_us).max().unwrap_or(0)),
    }
}

/// Setup, the quiet phase, the storm phase and the storm's accounting, on a started server.
async fn measure(
    o: &HostileOpts,
    target: &Target,
    looper_name: &str,
    helper_name: &str,
) -> Result<(Phase, Phase, Storm)> {
    let addr = target.addr;
    let pop = messages::populate(&o.chat, target).await?;
    let looper = Arc::new(developer(addr, looper_name).await?);
    let helper = Arc::new(developer(addr, helper_name).await?);
    eprintln!(
        "setup: sideloading {} looping apps and the echo app; consent for the looping apps",
        o.apps
    );
    let before_storm = install(addr, o.apps, &looper, &helper).await?;

    eprintln!(
        "quiet: chat at {} msg/s, /echo every {} s",
        o.rate, o.echo_every
    );
    let quiet = phase(o, target, &pop, &helper).await?;

    eprintln!(
        "storm: {} x /loop every {} s ({} apps each), starting {} s before the chat phase",
        o.commands,
        o.burst_every,
        o.apps,
        STORM_LEAD.as_secs()
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let storm_task = tokio::spawn(storm(
        addr,
        looper.clone(),
        o.commands,
        Duration::from_secs_f64(o.burst_every),
        stop_rx,
    ));
    tokio::time::sleep(STORM_LEAD).await;
    let stormy = phase(o, target, &pop, &helper).await;
    let _ = stop_tx.send(true);
    let posted = storm_task.await.context("the storm task panicked")?;
    let stormy = stormy?;

    eprintln!(
        "storm: stopped after {} /loop; waiting for the apps' logs to account for {} invocations",
        posted.loops,
        posted.loops * o.apps as u64
    );
    let mut conn = Conn::connect(addr).await?;
    let records = logged(
        &mut conn,
        &looper,
        o.apps,
        posted.loops,
        &before_storm,
        SETTLE,
    )
    .await?;
    Ok((quiet, stormy, storm_report(o, posted, &records)))
}

fn ratio(storm: f64, quiet: f64) -> f64 {
    if quiet > 0.0 { storm / quiet } else { 0.0 }
}

pub async fn run(o: HostileOpts, command: String) -> Result<bool> {
    o.chat.check()?;
    let positive = [o.rate, o.burst_every, o.echo_every];
    if o.apps == 0 || o.commands == 0 || positive.iter().any(|x| !x.is_finite() || *x <= 0.0) {
        bail!("--apps, --commands, --rate, --burst-every and --echo-every must be positive");
    }
    let load_before = sys::load_average();
    let prefix = setup::run_prefix();
    let (looper_name, helper_name) = (format!("{prefix}loops"), format!("{prefix}shop"));
    let mut serve_args = vec![
        "--max-app-timeout-ms".to_owned(),
        o.max_app_timeout_ms.to_string(),
    ];
    if let Some(n) = o.guest_threads {
        serve_args.extend(["--guest-threads".to_owned(), n.to_string()]);
    }
    let launch = Launch {
        serve_args: serve_args.clone(),
        before: vec![
            create_developer(&looper_name),
            create_developer(&helper_name),
        ],
        ..Launch::default()
    };
    o.target.one_node("hostile")?;
    let target = Target::open_with(&o.target, &launch).await?;
    let log = target.log();
    let result = measure(&o, &target, &looper_name, &helper_name).await;
    let closed = target.close().await;
    let (quiet, stormy, storm) = result.with_context(|| match &log {
        Some(l) => format!("server log: {}", l.display()),
        None => "hostile run".into(),
    })?;
    closed?;

    let send_p99_ratio = ratio(
        stormy.sends.round_trip.p99_ms,
        quiet.sends.round_trip.p99_ms,
    );
    let chat_ok = |p: &Phase| {
        p.sends.errors.is_empty()
            && p.deliveries.violations == 0
            && p.deliveries.problems.is_empty()
    };
    let accounted = storm.invocations_logged
        >= storm
            .invocations_expected
            .min(u64::from(LOG_LIMIT) * o.apps as u64);
    let ok = chat_ok(&quiet) && chat_ok(&stormy) && storm.post_errors == 0 && accounted;
    let report = HostileReport {
        machine: Machine::describe(),
        command,
        db: format!("{:?}", o.target.db).to_lowercase(),
        load_average_before: load_before,
        load_average_after: sys::load_average(),
        server_args: serve_args,
        chat_rate: o.rate,
        send_p99_ratio,
        delivery_p99_ratio: ratio(
            stormy.deliveries.latency.p99_ms,
            quiet.deliveries.latency.p99_ms,
        ),
        within_2x: send_p99_ratio <= 2.0,
        quiet,
        stormy,
        storm,
        ok,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::print_hostile(&report);
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_manifest_names_the_app() {
        let m = loop_manifest(3);
        assert!(m.starts_with("id = \"loop-3\"\n"));
        assert!(m.contains("timeout_ms = 2000"));
    }

    fn record(kind: Option<&str>, duration_us: u64, queued_us: u64) -> Invocation {
        Invocation {
            id: format!("inv_{duration_us}_{queued_us}"),
            outcome: if kind.is_some() { "error" } else { "ok" }.into(),
            error_kind: kind.map(str::to_owned),
            duration_us,
            queued_us,
        }
    }

    #[test]
    fn storm_figures_from_the_logs() {
        let o = HostileOpts {
            target: TargetOpts {
                server_bin: None,
                url: None,
                server_pid: None,
                db: crate::target::Db::Sqlite,
                pg_admin_url: String::new(),
                nodes: 1,
                nats_url: String::new(),
            },
            chat: ChatOpts {
                clients: 2,
                conversations: 1,
                senders: 1,
                messages: 1,
                duration: 1.0,
                warmup: 0.0,
                drain_timeout: 1.0,
                ack_every: 0,
                setup_workers: 1,
                idempotency_keys: false,
            },
            rate: 1.0,
            apps: 2,
            commands: 1,
            burst_every: 1.0,
            max_app_timeout_ms: 300,
            guest_threads: None,
            echo_every: 1.0,
            json: false,
        };
        let posted = Posted {
            bursts: 2,
            loops: 2,
            ..Posted::default()
        };
        let records = [
            record(Some("timeout"), 310_000, 1_000),
            record(Some("timeout"), 342_000, 700_000),
            record(Some("busy"), 0, 2_000_000),
            record(Some("trap"), 5, 0),
        ];
        let s = storm_report(&o, posted, &records);
        assert_eq!((s.invocations_expected, s.invocations_logged), (4, 4));
        assert_eq!((s.timeouts, s.busy), (2, 1));
        assert_eq!(s.other, vec![("trap".to_owned(), 1)]);
        assert_eq!((s.min_timeout_run_ms, s.max_timeout_run_ms), (310.0, 342.0));
        assert_eq!(s.max_overrun_ms, 42.0);
        // Refused invocations never started: their wait is reported apart.
        assert_eq!((s.max_start_delay_ms, s.max_busy_wait_ms), (700.0, 2000.0));
    }
}
