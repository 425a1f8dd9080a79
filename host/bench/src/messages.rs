//! `minihost-bench messages`: the bare echo baseline, then the messenger: N users with one
//! WebSocket each in M group conversations, senders posting over HTTP, every push counted,
//! timed and checked for seq order; the run fails if any client missed or repeated a seq.
//! With `--commands`, a second phase on the same server and population sends `/echo`
//! commands to an approved, released echo app installed in every group, and times each reply
//! on its sender's WebSocket beside the plain figures of the first phase.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::sync::{Notify, watch};

use crate::api;
use crate::clock::Clock;
use crate::commands;
use crate::load::{self, Outcome};
use crate::report::{self, CommandsPhase, Deliveries, MessagesReport};
use crate::send::{Accepted, Shared, Slot};
use crate::setup::{self, Population};
use crate::sys::{self, Machine};
use crate::target::{Launch, Target, TargetOpts};
use crate::verify;
use crate::ws::{self, ReaderSetup, ReaderStats};

#[derive(Debug, Clone, Args)]
pub struct MessagesOpts {
    #[command(flatten)]
    pub target: TargetOpts,
    #[command(flatten)]
    pub chat: ChatOpts,
    /// Open-loop target rate in messages/s over all senders (default: as fast as accepted).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Skip the bare echo baseline.
    #[arg(long)]
    pub no_echo: bool,
    /// Only the bare echo baseline.
    #[arg(long, conflicts_with = "no_echo")]
    pub echo_only: bool,
    /// After the plain phase, a phase of `/echo` commands to an installed, approved app (same
    /// server, population, senders and duration), timing each reply on its sender's WebSocket.
    #[arg(long, conflicts_with = "echo_only")]
    pub commands: bool,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// The chat population and its load (shared by `messages` and `hostile`).
#[derive(Debug, Clone, Args)]
pub struct ChatOpts {
    /// Users, each with one WebSocket.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Group conversations; user i is in conversation i % M.
    #[arg(long, default_value_t = 20)]
    pub conversations: usize,
    /// Concurrent HTTP senders (each one keep-alive connection, one request in flight).
    #[arg(long, default_value_t = 32)]
    pub senders: usize,
    /// Stop after this many sends (warm-up included).
    #[arg(long, default_value_t = 5_000_000)]
    pub messages: u64,
    /// Measured seconds of sending (after warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of sending before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Longest wait for deliveries after the last send, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub drain_timeout: f64,
    /// Each client acknowledges every this many pushes (0: never; acks are cheap in-memory
    /// bookkeeping on the server).
    #[arg(long, default_value_t = 0)]
    pub ack_every: u64,
    /// Concurrent sign-ups during setup.
    #[arg(long, default_value_t = 4)]
    pub setup_workers: usize,
    /// Every send carries a unique `Idempotency-Key` header, as a client that retries safely
    /// sends (the server then checks each key before storing)
    #[arg(long)]
    pub idempotency_keys: bool,
}

impl ChatOpts {
    pub fn check(&self) -> Result<()> {
        if self.senders == 0 || self.clients == 0 || self.conversations == 0 {
            bail!("--senders, --clients and --conversations must be positive");
        }
        let want = (self.clients as u64) * 2 + self.senders as u64 * 2 + 1024;
        let limit = sys::raise_nofile(want);
        if limit < want {
            eprintln!("warning: open-file limit {limit} is below the {want} this run may need");
        }
        Ok(())
    }
}

/// A fake token as long as a real one, so the echo request is the same size.
const ECHO_AUTH: &str = "Bearer xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn secs_us(s: f64) -> u64 {
    (s.max(0.0) * 1e6) as u64
}

fn shared(
    addrs: &[SocketAddr],
    o: &ChatOpts,
    rate: Option<f64>,
    senders: usize,
    parse_seq: bool,
    answers: Option<Vec<Arc<Notify>>>,
) -> Arc<Shared> {
    let clock = Clock::start();
    let measure_from_us = secs_us(o.warmup);
    Arc::new(Shared {
        addrs: addrs.to_vec(),
        clock,
        expect_status: 201,
        parse_seq,
        measure_from_us,
        deadline_us: measure_from_us + secs_us(o.duration),
        max_messages: o.messages,
        claimed: AtomicU64::new(0),
        rate,
        senders,
        commands: answers.is_some(),
        idempotency_keys: o.idempotency_keys.then(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("k{nanos:x}")
        }),
        answers: answers.unwrap_or_default(),
    })
}

async fn echo_phase(o: &ChatOpts, rate: Option<f64>) -> Result<report::Sends> {
    let target = Target::echo().await?;
    api::wait_healthy(target.addr, Duration::from_secs(10)).await?;
    let slots = (0..o.senders)
        .map(|_| {
            vec![Slot {
                path: "/echo".into(),
                auth: ECHO_AUTH.into(),
                conv: 0,
                user: 0,
            }]
        })
        .collect();
    let shared = shared(&target.addrs, o, rate, o.senders, false, None);
    let out = load::drive(target.label.clone(), shared, slots, 1, target.pids.clone()).await;
    target.close().await?;
    Ok(out?.sends)
}

/// Users per sender: sender j posts as users j, j+S, j+2S, ...
fn sender_slots(pop: &Population, senders: usize) -> Vec<Vec<Slot>> {
    let senders = senders.clamp(1, pop.users.len().max(1));
    let mut slots: Vec<Vec<Slot>> = (0..senders).map(|_| Vec::new()).collect();
    for (i, u) in pop.users.iter().enumerate() {
        let (Some(conv), Some(list)) = (u.conv, slots.get_mut(i % senders)) else {
            continue;
        };
        let Some(id) = pop.conversations.get(conv) else {
            continue;
        };
        list.push(Slot {
            path: format!("/api/v1/conversations/{id}/messages"),
            auth: format!("Bearer {}", u.token),
            conv,
            user: i,
        });
    }
    slots
}

struct Reader {
    conv: usize,
    progress: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<ReaderStats>,
}

/// One WebSocket per user, in user order. With several nodes, user i (a member of
/// conversation i % M) connects to node (i / M) % N, so every conversation has members on every
/// node, while its senders post through node (i % senders) % N: most deliveries cross nodes.
async fn connect_all(addrs: &[SocketAddr], pop: &Population) -> Vec<Result<ws::Ws>> {
    let groups = pop.conversations.len().max(1);
    let nodes = addrs.len().max(1);
    stream::iter(pop.users.iter().enumerate())
        .map(|(i, u)| {
            let addr = addrs.get((i / groups) % nodes).copied();
            async move {
                match addr {
                    Some(addr) => ws::connect(addr, &u.token, None).await,
                    None => bail!("no server address"),
                }
            }
        })
        .buffered(64)
        .collect()
        .await
}

/// A reader per user, sharing the senders' clock, window and answer signals.
fn spawn_readers(
    conns: Vec<Result<ws::Ws>>,
    pop: &Population,
    shared: &Shared,
    ack_every: u64,
    stop: &watch::Receiver<bool>,
    replies: &Arc<AtomicU64>,
) -> Result<Vec<Reader>> {
    let mut readers = Vec::with_capacity(conns.len());
    for (i, (u, conn)) in pop.users.iter().zip(conns).enumerate() {
        let conn = conn.with_context(|| format!("opening the WebSocket of {}", u.name))?;
        let conv = u.conv.context("user without a conversation")?;
        let watched: Arc<str> = pop
            .conversations
            .get(conv)
            .map(|s| s.as_str())
            .unwrap_or_default()
            .into();
        let progress = Arc::new(AtomicU64::new(0));
        let setup = ReaderSetup {
            user: u.name.as_str().into(),
            watched,
            progress: progress.clone(),
            clock: shared.clock,
            measure_from_us: shared.measure_from_us,
            ack_every,
            user_index: i,
            replies: replies.clone(),
            answered: shared
                .answers
                .get(i)
                .cloned()
                .unwrap_or_else(|| Arc::new(Notify::new())),
        };
        let task = tokio::spawn(ws::read_until_stopped(conn, setup, stop.clone()));
        readers.push(Reader {
            conv,
            progress,
            task,
        });
    }
    Ok(readers)
}

/// Waits until every reader has seen its conversation's highest accepted seq, and the senders
/// have seen `replies.1` replies (0 when no reply is awaited).
async fn drain(
    readers: &[Reader],
    per_conv: &[Accepted],
    replies: (&AtomicU64, u64),
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let behind = readers.iter().any(|r| {
            let want = per_conv.get(r.conv).map_or(0, |a| a.max_seq);
            r.progress.load(Ordering::Acquire) < want
        });
        if !behind && replies.0.load(Ordering::Acquire) >= replies.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Signs up the chat population on a fresh server.
pub async fn populate(o: &ChatOpts, target: &Target) -> Result<Population> {
    api::wait_healthy(target.addr, Duration::from_secs(30)).await?;
    eprintln!(
        "setup: signing up {} users, {} conversations ...",
        o.clients, o.conversations
    );
    let t = Instant::now();
    let pop = setup::populate(target.addr, o.clients, o.conversations, o.setup_workers).await?;
    eprintln!("setup: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(pop)
}

/// One timed phase of chat: a WebSocket per user, senders at `rate` (or closed loop), every
/// push checked; the WebSockets are closed again at the end. With `commands`, the sends are
/// `/echo` commands and the phase also waits for, and times, each one's reply.
pub async fn chat_phase(
    o: &ChatOpts,
    rate: Option<f64>,
    target: &Target,
    pop: &Population,
    commands: bool,
) -> Result<(report::Sends, Deliveries)> {
    let slots = sender_slots(pop, o.senders);
    let (stop_tx, stop_rx) = watch::channel(false);
    eprintln!("load: opening {} WebSockets", pop.users.len());
    let conns = connect_all(&target.addrs, pop).await;
    // The clock starts when sending starts; readers share it.
    let answers = commands.then(|| {
        (0..pop.users.len())
            .map(|_| Arc::new(Notify::new()))
            .collect()
    });
    let shared = shared(&target.addrs, o, rate, slots.len(), true, answers);
    let replies = Arc::new(AtomicU64::new(0));
    let readers = spawn_readers(conns, pop, &shared, o.ack_every, &stop_rx, &replies)?;
    eprintln!(
        "load: {} senders for {:.1} s (+{:.1} s warm-up)",
        slots.len(),
        o.duration,
        o.warmup
    );
    let Outcome { sends, per_conv } = load::drive(
        target.label.clone(),
        shared.clone(),
        slots,
        pop.conversations.len(),
        target.pids.clone(),
    )
    .await?;
    let awaited = if commands { sends.accepted } else { 0 };
    let drain_time = drain(
        &readers,
        &per_conv,
        (&replies, awaited),
        Duration::from_secs_f64(o.drain_timeout.max(0.0)),
    )
    .await;
    let _ = stop_tx.send(true);

    let mut finished = Vec::with_capacity(readers.len());
    for (r, user) in readers.into_iter().zip(&pop.users) {
        let stats = r.task.await.context("a reader panicked")?;
        let conversation = pop.conversations.get(r.conv).cloned().unwrap_or_default();
        finished.push(verify::Finished {
            user: user.name.clone(),
            conv: r.conv,
            conversation,
            stats,
        });
    }
    let deliveries = verify::summarize(
        finished,
        &per_conv,
        pop.conversations.len(),
        shared.measure_from_us,
        drain_time,
        commands.then_some(sends.accepted),
    );
    Ok((sends, deliveries))
}

/// The plain phase's figures, and the command phase's if one ran.
struct Phases {
    plain: (report::Sends, Deliveries),
    commands: Option<(report::Sends, Deliveries)>,
}

async fn messenger_phase(
    o: &MessagesOpts,
    target: &Target,
    app: Option<&commands::Accounts>,
) -> Result<Phases> {
    let pop = populate(&o.chat, target).await?;
    if let Some(who) = app {
        eprintln!(
            "setup: publishing, approving, releasing and installing {}",
            who.app
        );
        commands::install_everywhere(target.addr, who, &pop).await?;
    }
    let plain = chat_phase(&o.chat, o.rate, target, &pop, false).await?;
    let commands = match app {
        Some(_) => {
            eprintln!("load: the same again with /echo commands");
            Some(chat_phase(&o.chat, o.rate, target, &pop, true).await?)
        }
        None => None,
    };
    Ok(Phases { plain, commands })
}

pub async fn run(o: MessagesOpts, command: String) -> Result<bool> {
    o.chat.check()?;
    let echo = if o.no_echo {
        None
    } else {
        eprintln!(
            "echo: bare axum baseline, {} senders for {:.1} s",
            o.chat.senders, o.chat.duration
        );
        Some(echo_phase(&o.chat, o.rate).await?)
    };
    let app = o
        .commands
        .then(|| commands::Accounts::for_run(&setup::run_prefix()));
    let (server, deliveries, command_phase) = if o.echo_only {
        (None, None, None)
    } else {
        let launch = match &app {
            Some(who) => Launch {
                before: who.create_commands(),
                env: commands::server_env(),
                ..Launch::default()
            },
            None => Launch::default(),
        };
        let target = Target::open_with(&o.target, &launch).await?;
        let log = target.log();
        let result = messenger_phase(&o, &target, app.as_ref()).await;
        let closed = target.close().await;
        let phases = result.with_context(|| match &log {
            Some(l) => format!("server log: {}", l.display()),
            None => "messenger phase".into(),
        })?;
        closed?;
        let (s, d) = phases.plain;
        (Some(s), Some(d), phases.commands)
    };
    let command_phase = command_phase.map(|(sends, replies)| {
        CommandsPhase::compare(sends, replies, server.as_ref(), deliveries.as_ref())
    });
    let ratio = match (&echo, &server) {
        (Some(e), Some(s)) if e.accepted_per_s > 0.0 => Some(s.accepted_per_s / e.accepted_per_s),
        _ => None,
    };
    let delivered_ratio = match (&echo, &deliveries) {
        (Some(e), Some(d)) if e.accepted_per_s > 0.0 => Some(d.delivered_per_s / e.accepted_per_s),
        _ => None,
    };
    let ok = deliveries
        .as_ref()
        .is_none_or(|d| d.violations == 0 && d.problems.is_empty())
        && server.as_ref().is_none_or(|s| s.errors.is_empty())
        && command_phase.as_ref().is_none_or(CommandsPhase::ok);
    let report = MessagesReport {
        machine: Machine::describe(),
        command,
        db: format!("{:?}", o.target.db).to_lowercase(),
        nodes: o.target.nodes,
        echo,
        server,
        deliveries,
        ratio_to_echo: ratio,
        delivered_ratio_to_echo: delivered_ratio,
        commands: command_phase,
        ok,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report::print_messages(&report);
    }
    Ok(ok)
}
