//! `minihost-bench payments`: confirmed payments per second and the latency of a confirmation,
//! through a real server. Each payer is a developer with a group of their own where a small
//! app (the BENCH guest's `/pay`) asks them for money through the `payments` capability; the
//! setup posts `/pay` commands until every payer has its orders pending (the real request
//! path: message, invocation, capability, order, frame). The timed phase is only the users'
//! side: `--payers` concurrent payers confirm their pending orders with their PIN
//! (`POST /api/v1/me/payments/{id}/confirm`), each on its own keep-alive connection. After it,
//! every wallet must be empty and every merchant account hold exactly what its payer paid.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api;
use crate::hist::Histogram;
use crate::http::Conn;
use crate::sys::{self, CpuSample, Machine};
use crate::target::{Launch, Target, TargetOpts};

/// Options of `minihost-bench payments`.
#[derive(Debug, Clone, Args)]
pub struct PaymentsOpts {
    #[command(flatten)]
    pub target: TargetOpts,
    /// Concurrent payers, each a user with their own connection.
    #[arg(long, default_value_t = 32)]
    pub payers: usize,
    /// Orders each payer confirms (1 to 200: one page of pending requests).
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
    /// Amount of each order, in euro cents.
    #[arg(long, default_value_t = 100)]
    pub amount: u64,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

const PASSWORD: &str = "bench-password-0";
const PIN: &str = "024680";

fn app_manifest(i: usize) -> String {
    format!(
        r#"id = "pay-{i}"
name = "Pay {i}"
version = "0.1.0"
description = "Asks for money on /pay."

[[scopes]]
name = "messages.send"
reason = "To reply."

[[scopes]]
name = "payments.request"
reason = "To ask you to pay."

[[commands]]
name = "pay"
help = "/pay AMOUNT KEY"
"#
    )
}

/// One payer, set up.
struct Payer {
    name: String,
    token: String,
    orders: Vec<String>,
}

#[derive(Deserialize)]
struct Pending {
    id: String,
}

#[derive(Deserialize)]
struct AccountBody {
    currency: String,
    balance: i64,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    token: &str,
    path: &str,
) -> Result<T> {
    let auth = format!("Bearer {token}");
    let r = conn.request("GET", path, Some(&auth), None).await?;
    if r.status != 200 {
        bail!(
            "GET {path}: HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(r.body)
        );
    }
    serde_json::from_slice(r.body).with_context(|| format!("GET {path}"))
}

async fn send_json(
    conn: &mut Conn,
    method: &str,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<(u16, String)> {
    let auth = format!("Bearer {token}");
    let body = serde_json::to_vec(&body)?;
    let r = conn.request(method, path, Some(&auth), Some(&body)).await?;
    Ok((r.status, String::from_utf8_lossy(r.body).into_owned()))
}

/// Signs in payer `i`, installs its app, sets its PIN, answers consent and posts `/pay` until
/// `orders` requests are pending.
async fn set_up(addr: SocketAddr, i: usize, name: String, o: &PaymentsOpts) -> Result<Payer> {
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::BENCH)
        .context("reading the BENCH guest (built by host/guest-artifacts)")?;
    let mut conn = Conn::connect(addr).await?;
    let token = api::sign_in(&mut conn, &name, PASSWORD).await?;
    let group = api::create_group(&mut conn, &token, &[], &format!("{name} shop")).await?;
    api::sideload(&mut conn, &token, &group, &app_manifest(i), &wasm).await?;
    let (status, body) = send_json(
        &mut conn,
        "PUT",
        &token,
        "/api/v1/me/payment-pin",
        json!({"pin": PIN, "password": PASSWORD}),
    )
    .await?;
    if status != 204 {
        bail!("{name}: setting the PIN: HTTP {status}: {body}");
    }
    let app = format!("pay-{i}");
    let post = |n: usize| format!("/pay {} {name}-{n}", o.amount);
    let (status, body) = api::post_text(&mut conn, &token, &group, &post(0)).await?;
    if status != 201 {
        bail!(
            "{name}: /pay: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let asked = Instant::now();
    while !api::grant(
        &mut conn,
        &token,
        &app,
        &["messages.send", "payments.request"],
    )
    .await?
    {
        if asked.elapsed() > Duration::from_secs(60) {
            bail!("{app}: no consent request after the first /pay");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // In small bursts, waiting for each to land: the platform refuses (as busy) what one
    // app's admission queue cannot hold. A refused `/pay` leaves a hole; the next pass asks
    // again for every key (an existing key is the same order, not a new one).
    let waited = Instant::now();
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        for start in (0..o.orders).step_by(BURST) {
            let end = (start + BURST).min(o.orders);
            for n in start..end {
                let (status, body) = api::post_text(&mut conn, &token, &group, &post(n)).await?;
                if status != 201 {
                    bail!(
                        "{name}: /pay: HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
            let burst = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                pending = get_json(&mut conn, &token, "/api/v1/me/payments/pending").await?;
                if pending.len() >= end || burst.elapsed() > Duration::from_millis(200) {
                    break;
                }
            }
        }
        if pending.len() >= o.orders {
            break;
        }
        // A slow machine's setup takes minutes (190 s for 1,600 orders on SQLite here, more
        // on PostgreSQL, where 300 s was too few); give up after a quarter of an hour.
        if waited.elapsed() > SETUP_BOUND {
            bail!(
                "{app}: only {} of {} orders pending",
                pending.len(),
                o.orders
            );
        }
    }
    Ok(Payer {
        name,
        token,
        orders: pending.into_iter().map(|p| p.id).collect(),
    })
}

/// How long one payer's orders may take to become pending.
const SETUP_BOUND: Duration = Duration::from_secs(900);

/// `/pay` commands a payer posts before waiting for their orders to appear.
const BURST: usize = 4;

/// What one payer's confirmations came to.
#[derive(Default)]
struct Confirmed {
    latency: Histogram,
    paid: u64,
    errors: Vec<String>,
}

async fn confirm_all(addr: SocketAddr, payer: Arc<Payer>) -> Result<Confirmed> {
    let mut conn = Conn::connect(addr).await?;
    let mut out = Confirmed::default();
    let body = serde_json::to_vec(&json!({"pin": PIN}))?;
    let auth = format!("Bearer {}", payer.token);
    for id in &payer.orders {
        let path = format!("/api/v1/me/payments/{id}/confirm");
        let start = Instant::now();
        let r = conn
            .request("POST", &path, Some(&auth), Some(&body))
            .await?;
        out.latency
            .record(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
        if r.status == 200 {
            out.paid += 1;
        } else if out.errors.len() < 5 {
            out.errors.push(format!(
                "{}: {id}: HTTP {}: {}",
                payer.name,
                r.status,
                String::from_utf8_lossy(r.body)
            ));
        }
    }
    Ok(out)
}

/// The report.
#[derive(Debug, Serialize)]
pub struct PaymentsReport {
    pub machine: Machine,
    pub command: String,
    pub db: String,
    pub payers: usize,
    pub orders_per_payer: usize,
    pub setup_seconds: f64,
    pub confirmed: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_cores: Option<f64>,
    pub postgres_cores: f64,
    pub bench_cores: Option<f64>,
    pub errors: Vec<String>,
    pub books_ok: bool,
    pub load_average_before: String,
    pub load_average_after: String,
    pub ok: bool,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Runs the scenario; `Ok(false)` when a payment failed or the books do not add up.
pub async fn run(o: PaymentsOpts, command: String) -> Result<bool> {
    if o.payers == 0 || !(1..=200).contains(&o.orders) || o.amount == 0 {
        bail!("--payers must be positive, --orders 1 to 200, --amount positive");
    }
    let load_before = sys::load_average();
    let prefix = crate::setup::run_prefix();
    let names: Vec<String> = (0..o.payers).map(|i| format!("{prefix}payer{i}")).collect();
    let funds = (o.orders as u64 * o.amount).to_string();
    let mut before = Vec::new();
    for name in &names {
        before.push(
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
            .to_vec(),
        );
        before.push(
            ["admin", "top-up", name, &funds, "EUR"]
                .map(String::from)
                .to_vec(),
        );
    }
    let launch = Launch {
        serve_args: Vec::new(),
        before,
        ..Launch::default()
    };
    o.target.one_node("payments")?;
    let target = Target::open_with(&o.target, &launch).await?;
    let log = target.log();
    let result = measure(&o, &target, names).await;
    let closed = target.close().await;
    let report = result.with_context(|| match &log {
        Some(l) => format!("server log: {}", l.display()),
        None => "payments run".into(),
    })?;
    closed?;
    let report = PaymentsReport {
        command,
        db: format!("{:?}", o.target.db).to_lowercase(),
        load_average_before: load_before,
        load_average_after: sys::load_average(),
        ..report
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(report.ok)
}

async fn measure(o: &PaymentsOpts, target: &Target, names: Vec<String>) -> Result<PaymentsReport> {
    let addr = target.addr;
    let setup_start = Instant::now();
    let mut tasks = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let o = o.clone();
        tasks.push(tokio::spawn(async move { set_up(addr, i, name, &o).await }));
    }
    let mut payers = Vec::new();
    for t in tasks {
        payers.push(Arc::new(t.await.context("setup task")??));
    }
    let setup_seconds = setup_start.elapsed().as_secs_f64();

    let cpu_before = CpuSample::take(target.pid);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for payer in &payers {
        let payer = payer.clone();
        tasks.push(tokio::spawn(confirm_all(addr, payer)));
    }
    let mut all = Confirmed::default();
    for t in tasks {
        let c = t.await.context("payer task")??;
        all.latency.merge(&c.latency);
        all.paid += c.paid;
        all.errors.extend(c.errors);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cores = cpu_before.cores_until(&CpuSample::take(target.pid));

    // The books: every wallet empty, every merchant account holding what its payer paid.
    let mut books_ok = true;
    let mut conn = Conn::connect(addr).await?;
    let paid_each = i64::try_from(o.orders as u64 * o.amount).unwrap_or(i64::MAX);
    for (i, payer) in payers.iter().enumerate() {
        let wallet: Vec<AccountBody> =
            get_json(&mut conn, &payer.token, "/api/v1/me/wallet").await?;
        let merchant: Vec<AccountBody> = get_json(
            &mut conn,
            &payer.token,
            &format!("/api/v1/apps/pay-{i}/ledger"),
        )
        .await?;
        let eur = |a: &[AccountBody]| {
            a.iter()
                .find(|x| x.currency == "EUR")
                .map_or(0, |x| x.balance)
        };
        if eur(&wallet) != 0 || eur(&merchant) != paid_each {
            books_ok = false;
            all.errors.push(format!(
                "{}: wallet {} (want 0), merchant {} (want {paid_each})",
                payer.name,
                eur(&wallet),
                eur(&merchant)
            ));
        }
    }
    let expected = (o.payers * o.orders) as u64;
    let ok = all.paid == expected && books_ok && all.errors.is_empty();
    Ok(PaymentsReport {
        machine: Machine::describe(),
        command: String::new(),
        db: String::new(),
        payers: o.payers,
        orders_per_payer: o.orders,
        setup_seconds,
        confirmed: all.paid,
        seconds,
        per_second: all.paid as f64 / seconds.max(1e-9),
        p50_ms: ms(all.latency.quantile(0.50)),
        p90_ms: ms(all.latency.quantile(0.90)),
        p99_ms: ms(all.latency.quantile(0.99)),
        max_ms: ms(all.latency.max()),
        server_cores: cores.server,
        postgres_cores: cores.postgres,
        bench_cores: cores.bench,
        errors: all.errors,
        books_ok,
        load_average_before: String::new(),
        load_average_after: String::new(),
        ok,
    })
}

fn print(r: &PaymentsReport) {
    let m = &r.machine;
    println!(
        "machine: {} cores, {}, {} MiB, {}",
        m.nproc, m.cpu_model, m.mem_total_mib, m.kernel
    );
    println!("command: {}", r.command);
    println!(
        "load average: {} before, {} after (1/5/15 min)",
        r.load_average_before, r.load_average_after
    );
    println!(
        "setup ({}): {} payers x {} orders pending in {:.1} s (each asked through /pay)",
        r.db, r.payers, r.orders_per_payer, r.setup_seconds
    );
    println!(
        "confirmed     {:.0} payments/s   ({} of {} in {:.2} s, {} concurrent payers)",
        r.per_second,
        r.confirmed,
        r.payers * r.orders_per_payer,
        r.seconds,
        r.payers
    );
    println!(
        "confirmation  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    let f = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "cpu           server {} cores, postgres {:.2}, bench {}",
        f(r.server_cores),
        r.postgres_cores,
        f(r.bench_cores)
    );
    println!(
        "books         {}",
        if r.books_ok {
            "every wallet empty, every merchant account holds exactly what was paid"
        } else {
            "DO NOT ADD UP"
        }
    );
    for e in &r.errors {
        println!("error         {e}");
    }
    println!("result: {}", if r.ok { "OK" } else { "FAILED" });
}
