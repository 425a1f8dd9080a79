//! `minihost-bench idle-ws`: the server's resident memory per idle WebSocket. Reads the
//! server's VmRSS, opens N authenticated WebSockets that then stay silent, lets the server
//! settle, reads VmRSS again and reports (after - before) / N.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::sync::watch;

use crate::report::{self, IdleReport};
use crate::sys::{self, Machine};
use crate::target::{Target, TargetOpts};
use crate::{api, setup, ws};

#[derive(Debug, Clone, Args)]
pub struct IdleOpts {
    #[command(flatten)]
    pub target: TargetOpts,
    /// Idle WebSockets to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Users the connections are spread over.
    #[arg(long, default_value_t = 4)]
    pub users: usize,
    /// Seconds to wait after opening before reading the RSS.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Connections per local address: stays inside the default ephemeral port range.
const PER_SOURCE: usize = 20_000;

/// Reads VmRSS until two readings 500 ms apart differ by less than 0.5% (at most ~10 s).
async fn settled_rss(pid: u32) -> Result<u64> {
    let mut last = sys::rss_kib(pid)?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sys::rss_kib(pid)?;
        if now.abs_diff(last) * 200 < last.max(1) {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

pub async fn run(o: IdleOpts, command: String) -> Result<bool> {
    if o.users == 0 || o.connections == 0 {
        bail!("--users and --connections must be positive");
    }
    // Both ends of every connection live on this machine; the child inherits the raised limit.
    let want = o.connections as u64 + o.users as u64 + 256;
    let nofile = sys::raise_nofile(want);
    if nofile < want {
        bail!("open-file limit is {nofile}, below the {want} needed; lower --connections");
    }
    o.target.one_node("idle")?;
    let target = Target::open(&o.target).await?;
    let result = measure(&o, &target, nofile, command).await;
    let closed = target.close().await;
    let report = result?;
    closed?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::print_idle(&report);
    }
    Ok(report.ok)
}

async fn measure(
    o: &IdleOpts,
    target: &Target,
    nofile: u64,
    command: String,
) -> Result<IdleReport> {
    let pid = target
        .pid
        .context("RSS needs the server's pid: use --server-bin, or --url with --server-pid")?;
    api::wait_healthy(target.addr, Duration::from_secs(30)).await?;
    let pop = setup::populate(target.addr, o.users, 0, o.users.min(4)).await?;
    let tokens: Vec<&str> = pop.users.iter().map(|u| u.token.as_str()).collect();

    // One connection per user first, so one-time costs (per-user state, lazy init) are in the baseline.
    let (stop_tx, stop_rx) = watch::channel(false);
    let closed_early = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::new();
    for t in &tokens {
        let w = ws::connect(target.addr, t, None).await?;
        held.push(hold(w, stop_rx.clone(), closed_early.clone()));
    }
    let before = settled_rss(pid).await?;
    eprintln!(
        "idle-ws: server RSS {before} KiB; opening {} WebSockets ...",
        o.connections
    );

    let sources = o.connections.div_ceil(PER_SOURCE);
    let opened: Vec<Result<ws::Ws>> = stream::iter(0..o.connections)
        .map(|i| {
            let token = tokens.get(i % tokens.len()).copied().unwrap_or_default();
            let source = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                u8::try_from(1 + i / PER_SOURCE).unwrap_or(255),
            ));
            ws::connect(target.addr, token, (sources > 1).then_some(source))
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let mut failures = Vec::new();
    let mut count = 0;
    for w in opened {
        match w {
            Ok(w) => {
                count += 1;
                held.push(hold(w, stop_rx.clone(), closed_early.clone()));
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if let Some(first) = failures.first() {
        eprintln!(
            "idle-ws: {} connections failed; first: {first}",
            failures.len()
        );
    }
    tokio::time::sleep(Duration::from_secs_f64(o.settle.max(0.0))).await;
    let after = settled_rss(pid).await?;
    let _ = stop_tx.send(true);
    for h in held {
        let _ = h.await;
    }
    let closed = closed_early.load(Ordering::Relaxed);
    Ok(IdleReport {
        machine: Machine::describe(),
        command,
        target: target.label.clone(),
        users: o.users,
        connections: o.connections,
        opened: count,
        closed_early: closed,
        rss_before_kib: before,
        rss_after_kib: after,
        kib_per_connection: if count > 0 {
            after.saturating_sub(before) as f64 / count as f64
        } else {
            0.0
        },
        nofile_limit: nofile,
        ephemeral_ports: sys::ephemeral_ports(),
        source_addresses: sources,
        ok: failures.is_empty() && closed == 0,
    })
}

/// Keeps a WebSocket open and silent (answering pings) until `stop`.
fn hold(
    mut w: ws::Ws,
    mut stop: watch::Receiver<bool>,
    closed: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                frame = w.next() => match frame {
                    Some(Ok(_)) => {}
                    _ => {
                        closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                },
            }
        }
        let _ = w.close(None).await;
    })
}
