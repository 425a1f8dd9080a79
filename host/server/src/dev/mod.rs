//! `minihost app dev [DIR]`: the developer loop. It starts a throwaway local server
//! ([`local`]) or uses one given by `--server`, makes a test user and a group to chat with the
//! app in ([`session`]), builds and uploads the app at start and again after every save of its
//! sources (polled: [`minihost_devtools::watch`]), and prints each invocation of the app as it
//! happens ([`stream`]). Ctrl-C (or SIGTERM) ends it, stopping the server it started.

mod local;
mod session;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use minihost_devtools::watch::{MANIFEST, Sources};
use tokio::sync::watch;

use local::{Credentials, LocalServer};
use session::{Account, DevSession};

/// How often the sources and the invocation log are looked at.
const POLL: Duration = Duration::from_millis(300);
/// How long the sources must stay unchanged before a build (an editor's save may be several
/// writes).
const SETTLE: Duration = Duration::from_millis(250);

/// `minihost app dev`.
#[derive(clap::Args)]
pub struct DevArgs {
    /// The app's folder (holding miniapp.toml, and Cargo.toml or package.json).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Use this running server instead of starting one: its base URL. You must have signed in
    /// to it as a developer with `minihost login --server URL`; a test user and a group are
    /// made there, and each upload is withdrawn from review when the next replaces it (the last
    /// one when this ends).
    #[arg(long)]
    server: Option<String>,
    /// Build Rust apps with the dev profile (quicker builds, larger and slower components).
    #[arg(long)]
    debug: bool,
}

/// Where the server is.
enum Server {
    /// Started here, stopped at the end.
    Local(Box<LocalServer>),
    /// Someone else's.
    Remote(String),
}

impl Server {
    fn url(&self) -> &str {
        match self {
            Server::Local(l) => &l.url,
            Server::Remote(url) => url,
        }
    }
}

/// A flag that turns true on Ctrl-C or SIGTERM.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            () = term => {},
        }
        let _ = tx.send(true);
    });
    rx
}

/// Waits until `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `minihost app dev`: until Ctrl-C or SIGTERM; an error when the folder is not an app, the
/// server cannot be started or reached, or the session cannot be set up.
pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    minihost_devtools::watch::app_dir(&args.dir)?;
    let manifest_path = args.dir.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = minihost_manifest::parse(&text)
        .map_err(|e| anyhow!("{} is not valid: {e}", manifest_path.display()))?;
    let mut stop = stop_signal();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("making an HTTP client")?;

    let (server, developer) = tokio::select! {
        () = stopped(&mut stop) => return Ok(ExitCode::SUCCESS),
        r = connect(&http, args.server.as_deref()) => r?,
    };
    let tester = match server {
        Server::Local(_) => "tester".to_owned(),
        Server::Remote(_) => format!("tester_{}", minihost_core::ids::random_hex(3)),
    };
    let opened = tokio::select! {
        () = stopped(&mut stop) => None,
        r = DevSession::open(http, server.url(), developer, &tester, &manifest) => Some(r),
    };
    let result = match opened {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok(mut session)) => {
            banner(&server, &session, &manifest, &args);
            let looped = dev_loop(&args, &mut session, &mut stop).await;
            if let (Server::Remote(_), Some(version)) = (&server, &session.current) {
                session.withdraw(version).await;
            }
            looped
        }
    };
    if let Server::Local(local) = server {
        println!("stopping the server");
        local.stop().await?;
    }
    result?;
    println!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts a local server with a developer account, or signs in to `server` with the session
/// `minihost login` kept for it.
async fn connect(
    http: &reqwest::Client,
    server: Option<&str>,
) -> anyhow::Result<(Server, Account)> {
    match server {
        None => {
            let developer = Credentials {
                username: "developer".to_owned(),
                password: minihost_core::ids::random_hex(8),
            };
            println!("starting a local server...");
            let local = LocalServer::start(&developer).await?;
            let token =
                match session::sign_in(http, &local.url, &developer.username, &developer.password)
                    .await
                {
                    Ok(token) => token,
                    Err(e) => {
                        local.stop().await?;
                        return Err(e);
                    }
                };
            Ok((
                Server::Local(Box::new(local)),
                Account {
                    username: developer.username,
                    password: Some(developer.password),
                    token,
                },
            ))
        }
        Some(url) => {
            let url = url.trim_end_matches('/').to_owned();
            let kept = crate::remote::load_session()?;
            if kept.server.trim_end_matches('/') != url {
                bail!(
                    "your session is for {}, not {url}: run `minihost login --server {url} \
                     --username NAME` first",
                    kept.server
                );
            }
            Ok((
                Server::Remote(url),
                Account {
                    username: kept.username,
                    password: None,
                    token: kept.token,
                },
            ))
        }
    }
}

/// What to open and who to sign in as.
fn banner(
    server: &Server,
    session: &DevSession,
    manifest: &minihost_manifest::Manifest,
    args: &DevArgs,
) {
    let account = |a: &Account| match &a.password {
        Some(p) => format!("{}, password {p}", a.username),
        None => format!("{} (your session from `minihost login`)", a.username),
    };
    println!(
        "minihost app dev: {} ({})",
        manifest.name,
        manifest.id.as_str()
    );
    println!("  web:        {}/", server.url());
    println!("  test user:  {}", account(&session.tester));
    println!(
        "  group:      \"{}\" (the test user's; the app runs there in trial for them)",
        session.group_title
    );
    println!(
        "  developer:  {} (the developer console)",
        account(&session.developer)
    );
    if let Server::Local(local) = server {
        println!(
            "  server:     started here; data in {}, log in {}",
            local.folder.path().display(),
            local.log.display()
        );
    }
    if let Some(command) = manifest.commands.first() {
        println!(
            "  try:        sign in as the test user and send /{} in the group",
            command.name
        );
    }
    println!(
        "watching {} and {}; Ctrl-C stops",
        args.dir.join(MANIFEST).display(),
        args.dir.join("src").display()
    );
}

/// Builds and uploads at start and after each change, and prints the invocations, until
/// `stop`.
async fn dev_loop(
    args: &DevArgs,
    session: &mut DevSession,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut sources = Sources::new(&args.dir);
    let mut tail = stream::LogTail::default();
    let mut log_failing = false;
    // Build at once.
    let mut changed_at = Some(
        Instant::now()
            .checked_sub(SETTLE)
            .unwrap_or_else(Instant::now),
    );
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped(stop) => return Ok(()),
            _ = tick.tick() => {}
        }
        match session.invocations(stream::PAGE).await {
            Ok(page) => {
                log_failing = false;
                for entry in tail.take(page) {
                    println!("{}", stream::render(&entry));
                }
            }
            Err(e) if !log_failing => {
                log_failing = true;
                eprintln!("warning: cannot read the invocation log: {e:#}");
            }
            Err(_) => {}
        }
        if sources.changed() {
            changed_at = Some(Instant::now());
            continue;
        }
        if changed_at.is_some_and(|t| t.elapsed() >= SETTLE) {
            changed_at = None;
            tokio::select! {
                () = stopped(stop) => return Ok(()),
                () = build_and_upload(args, session) => {}
            }
            // What the build wrote into src/ (if anything) is not a change of the developer's.
            sources.changed();
        }
    }
}

/// One build and upload; failures are printed, and the loop waits for the next save.
async fn build_and_upload(args: &DevArgs, session: &mut DevSession) {
    println!("building...");
    let started = Instant::now();
    let wasm = match minihost_devtools::build_component(&args.dir, !args.debug).await {
        Ok(wasm) => wasm,
        Err(e) => {
            eprintln!("error: the build failed: {e:#}");
            println!("waiting for the next save");
            return;
        }
    };
    let uploaded = async {
        let component =
            std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
        let manifest_path = args.dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let done = session.upload(&text, &component).await?;
        Ok::<_, anyhow::Error>((done, component.len()))
    }
    .await;
    match uploaded {
        Ok((done, size)) => {
            for finding in &done.findings {
                println!("  {finding}");
            }
            println!(
                "ready: {}@{} ({} KiB, built and uploaded in {:.1} s) runs in trial in \"{}\"",
                session.app(),
                done.version,
                size.div_ceil(1024),
                started.elapsed().as_secs_f64(),
                session.group_title
            );
        }
        Err(e) => {
            eprintln!("error: the upload was refused: {e:#}");
            println!("waiting for the next save");
        }
    }
}
