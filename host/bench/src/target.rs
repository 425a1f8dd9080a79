//! The server a command measures: either the real `minihost serve` started here on a fresh
//! data directory (SQLite) or a fresh PostgreSQL database, or a running server on a loopback
//! URL. Only loopback addresses are ever targeted. With `--nodes N` (PostgreSQL and NATS),
//! N servers on the one database form a cluster, as several nodes behind a load balancer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::child::{self, Server, Spec};
use minihost_store::testing::TestDb as Database;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Db {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Args)]
pub struct TargetOpts {
    /// The `minihost` binary to start (`PATH serve --addr 127.0.0.1:0 --data-dir <temp>`).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "url",
        required_unless_present = "url"
    )]
    pub server_bin: Option<PathBuf>,
    /// A running server instead, on a loopback address: http://127.0.0.1:PORT.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// With --url: the server's pid, to read its CPU time and RSS.
    #[arg(long, value_name = "PID", requires = "url")]
    pub server_pid: Option<u32>,
    /// Database of a started server.
    #[arg(long, value_enum, default_value_t = Db::Sqlite)]
    pub db: Db,
    /// Where to create (and drop) a fresh database for --db postgres.
    #[arg(
        long,
        value_name = "URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub pg_admin_url: String,
    /// Nodes to start on the one database (more than one needs `--db postgres`; they
    /// exchange events over NATS at --nats-url). Senders and WebSockets are spread over them.
    #[arg(long, default_value_t = 1, conflicts_with = "url")]
    pub nodes: usize,
    /// The NATS server of a several-node run.
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
}

impl TargetOpts {
    /// Refuses `--nodes` for a command that measures one node only.
    pub fn one_node(&self, command: &str) -> Result<()> {
        if self.nodes != 1 {
            bail!("`{command}` measures one node; --nodes is for `messages`");
        }
        Ok(())
    }
}

/// What a started server needs beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Appended to the arguments of `serve`.
    pub serve_args: Vec<String>,
    /// Commands of the same binary (e.g. `admin create-user ...`) run to completion, in order,
    /// before the server starts, on its database (`--data-dir` is appended, DATABASE_URL set).
    pub before: Vec<Vec<String>>,
    /// Environment of the server and of `before` (e.g. `MINIHOST_APPS_*` settings).
    pub env: Vec<(String, String)>,
}

/// A server under test and what must be cleaned up after it.
pub struct Target {
    /// The first (or only) node.
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    /// Every node (the first is `addr`), and their pids where known.
    pub addrs: Vec<SocketAddr>,
    pub pids: Vec<u32>,
    pub label: String,
    server: Option<Server>,
    /// The nodes after the first.
    others: Vec<Server>,
    db: Option<Database>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn open(opts: &TargetOpts) -> Result<Self> {
        Self::open_with(opts, &Launch::default()).await
    }

    /// Like [`Target::open`], with extra steps for a started server (a running one cannot
    /// take them: it is refused).
    pub async fn open_with(opts: &TargetOpts, launch: &Launch) -> Result<Self> {
        let extra = !launch.serve_args.is_empty() || !launch.before.is_empty();
        if opts.url.is_some() && (extra || !launch.env.is_empty()) {
            bail!("this command starts its own server: give --server-bin, not --url");
        }
        if let Some(url) = &opts.url {
            let addr = parse_loopback_url(url)?;
            return Ok(Self {
                addr,
                pid: opts.server_pid,
                addrs: vec![addr],
                pids: opts.server_pid.into_iter().collect(),
                label: format!("running server at {addr}"),
                server: None,
                others: Vec::new(),
                db: None,
                _dir: None,
            });
        }
        let program = opts
            .server_bin
            .as_deref()
            .context("--server-bin or --url is required")?;
        if opts.nodes == 0 || (opts.nodes > 1 && opts.db != Db::Postgres) {
            bail!(
                "--nodes {} needs at least one node, and --db postgres for more",
                opts.nodes
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("minihost-bench-")
            .tempdir()
            .context("temp dir")?;
        let data = dir.path().join("data");
        // The generator signs up and in from loopback faster than a person: exempt it from the
        // sign-in/sign-up throttles (an older server ignores the variable).
        let mut env = vec![(
            "MINIHOST_THROTTLE_EXEMPT".to_owned(),
            "127.0.0.1".to_owned(),
        )];
        env.extend(launch.env.iter().cloned());
        if opts.nodes > 1 {
            env.push(("MINIHOST_NATS_URL".to_owned(), opts.nats_url.clone()));
        }
        let db = match opts.db {
            Db::Sqlite => None,
            Db::Postgres => {
                check_loopback_db_url(&opts.pg_admin_url)?;
                let db = Database::postgres(&opts.pg_admin_url)
                    .await
                    .with_context(|| format!("creating a database on {}", opts.pg_admin_url))?;
                let url = db.url().unwrap_or_default().to_owned();
                env.push(("DATABASE_URL".to_owned(), url));
                Some(db)
            }
        };
        let data_dir = data.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.clone(),
        ];
        args.extend(launch.serve_args.iter().cloned());
        let spec = Spec {
            program,
            args,
            env,
            log: dir.path().join("server.log"),
        };
        let mut prepared = Ok(());
        for before in &launch.before {
            prepared = child::run_to_end(program, before, &data_dir, &spec.env).await;
            if prepared.is_err() {
                break;
            }
        }
        let started = match prepared {
            Ok(()) => start_nodes(spec, opts.nodes, &dir, &data).await,
            Err(e) => Err(e),
        };
        let mut servers = match started {
            Ok(s) => s,
            Err(e) => {
                if let Some(db) = db {
                    let _ = db.cleanup().await;
                }
                return Err(e);
            }
        };
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
        let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
        let server = servers.remove(0);
        let db_name = if db.is_some() { "PostgreSQL" } else { "SQLite" };
        let label = match opts.nodes {
            1 => format!("{} serve on {} ({db_name})", program.display(), server.addr),
            n => format!(
                "{} serve, {n} nodes on {addrs:?} ({db_name}, NATS)",
                program.display()
            ),
        };
        Ok(Self {
            addr: server.addr,
            pid: Some(server.pid()),
            addrs,
            pids,
            label,
            server: Some(server),
            others: servers,
            db,
            _dir: Some(dir),
        })
    }

    /// Starts this binary's echo server.
    pub async fn echo() -> Result<Self> {
        let exe = std::env::current_exe().context("locating this binary")?;
        let dir = tempfile::Builder::new()
            .prefix("minihost-bench-echo-")
            .tempdir()?;
        let spec = Spec {
            program: &exe,
            args: vec!["echo-server".into(), "--addr".into(), "127.0.0.1:0".into()],
            env: Vec::new(),
            log: dir.path().join("echo.log"),
        };
        let server = Server::start(spec).await?;
        Ok(Self {
            addr: server.addr,
            pid: Some(server.pid()),
            addrs: vec![server.addr],
            pids: vec![server.pid()],
            label: format!("bare axum echo on {}", server.addr),
            server: Some(server),
            others: Vec::new(),
            db: None,
            _dir: Some(dir),
        })
    }

    /// The server's log file, if this bench started it.
    pub fn log(&self) -> Option<PathBuf> {
        self.server.as_ref().map(|s| s.log.clone())
    }

    /// Stops a started server and drops its database; leaves a running one alone.
    pub async fn close(self) -> Result<()> {
        let mut stopped = match self.server {
            Some(s) => s.stop(Duration::from_secs(20)).await,
            None => Ok(()),
        };
        for s in self.others {
            let other = s.stop(Duration::from_secs(20)).await;
            stopped = stopped.and(other);
        }
        if let Some(db) = self.db {
            db.cleanup().await?;
        }
        stopped
    }
}

/// Starts `n` nodes of `spec`, each with its own data directory and log (node 0 keeps the
/// spec's), one after the other; stops those started if one fails.
async fn start_nodes(
    spec: Spec<'_>,
    n: usize,
    dir: &tempfile::TempDir,
    data: &std::path::Path,
) -> Result<Vec<Server>> {
    let mut servers = Vec::with_capacity(n);
    for i in 0..n {
        let mut node = Spec {
            program: spec.program,
            args: spec.args.clone(),
            env: spec.env.clone(),
            log: spec.log.clone(),
        };
        if i > 0 {
            let own = data.with_file_name(format!("data-{i}"));
            for (a, next) in node.args.clone().iter().zip(node.args.iter_mut().skip(1)) {
                if a == "--data-dir" {
                    *next = own.to_string_lossy().into_owned();
                }
            }
            node.log = dir.path().join(format!("server-{i}.log"));
        }
        match Server::start(node).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                for s in servers {
                    let _ = s.stop(Duration::from_secs(5)).await;
                }
                return Err(e.context(format!("starting node {i}")));
            }
        }
    }
    Ok(servers)
}

/// Accepts `http://HOST:PORT[/]` where HOST is a loopback IP or `localhost`.
pub fn parse_loopback_url(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let hostport = rest.trim_end_matches('/');
    let addr = match hostport.strip_prefix("localhost:") {
        Some(port) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port.parse().context("port")?,
        ),
        None => hostport
            .parse::<SocketAddr>()
            .with_context(|| format!("{url}: want http://IP:PORT"))?,
    };
    if !addr.ip().is_loopback() {
        bail!("{url}: the bench only targets loopback addresses");
    }
    Ok(addr)
}

fn check_loopback_db_url(url: &str) -> Result<()> {
    let after_at = url.rsplit_once('@').map_or(url, |(_, h)| h);
    let host = after_at
        .trim_start_matches("postgres://")
        .trim_start_matches("postgresql://");
    let host = host.split(['/', ':']).next().unwrap_or_default();
    if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        Ok(())
    } else {
        bail!("{url}: the bench only uses a PostgreSQL server on a loopback address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback() {
        assert_eq!(
            parse_loopback_url("http://127.0.0.1:8080/").unwrap().port(),
            8080
        );
        assert!(parse_loopback_url("http://localhost:1").is_ok());
        assert!(parse_loopback_url("http://[::1]:80").is_ok());
        assert!(parse_loopback_url("http://10.0.0.1:80").is_err());
        assert!(parse_loopback_url("https://127.0.0.1:80").is_err());
        assert!(check_loopback_db_url("postgres://postgres@127.0.0.1:5432/postgres").is_ok());
        assert!(check_loopback_db_url("postgres://u:p@localhost/x").is_ok());
        assert!(check_loopback_db_url("postgres://u@db.example.com:5432/x").is_err());
    }
}
