//! Child servers under test: the real `minihost serve`, or this binary's own `echo-server`.
//! Starts one, reads the address it bound from its stdout, sends its logs to a file, and stops
//! it with SIGTERM (SIGKILL if it does not exit in time; killed on drop as a last resort); and
//! runs the setup commands a server needs first (`minihost admin ...`) to completion.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::sys;

/// A running server process and where it listens.
pub struct Server {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

/// What to start: a program, its arguments and extra environment.
pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the child's stderr goes.
    pub log: PathBuf,
}

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Server {
    pub async fn start(spec: Spec<'_>) -> Result<Self> {
        let log = std::fs::File::create(&spec.log)
            .with_context(|| format!("creating {}", spec.log.display()))?;
        let mut cmd = Command::new(spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.program.display()))?;
        let pid = child.id().context("child has no pid")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();

        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = parse_listening(&line) {
                    return Ok(Some(addr));
                }
            }
            anyhow::Ok(None)
        })
        .await;
        let addr = match found {
            Ok(Ok(Some(addr))) => addr,
            Ok(Ok(None)) => bail!(
                "{} exited before printing its address; its log: {}",
                spec.program.display(),
                spec.log.display()
            ),
            Ok(Err(e)) => return Err(e.context("reading the child's stdout")),
            Err(_) => bail!(
                "{} printed no address within {START_TIMEOUT:?}",
                spec.program.display()
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            addr,
            log: spec.log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then wait up to `grace` for a clean exit, then SIGKILL.
    pub async fn stop(mut self, grace: Duration) -> Result<()> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Ok(());
        }
        sys::terminate(self.pid)?;
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("server {} ignored SIGTERM for {grace:?}; killed", self.pid)
            }
        }
    }
}

/// Runs `program ARGS --data-dir DATA_DIR` with `env` to completion (a setup command such as
/// `minihost admin create-user`); fails with its output if it fails.
pub async fn run_to_end(
    program: &Path,
    args: &[String],
    data_dir: &str,
    env: &[(String, String)],
) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .args(["--data-dir", data_dir])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("starting {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}{}",
            program.display(),
            args.first().map_or("", String::as_str),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Reads `... listening on http://HOST:PORT` (the line both servers print once bound).
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        assert_eq!(
            parse_listening("minihost listening on http://127.0.0.1:40123"),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        assert_eq!(
            parse_listening("echo listening on http://127.0.0.1:9/ "),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(parse_listening("starting"), None);
    }
}
