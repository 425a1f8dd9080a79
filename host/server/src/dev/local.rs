//! The throwaway server `minihost app dev` starts: `minihost serve` (this same executable) on a
//! fresh SQLite data directory in a temporary folder and a free port, after `minihost admin
//! create-user` made its developer account there (the operator's way to a first role; all else
//! goes through the HTTP API). Its log goes to a file; [`LocalServer::stop`] sends it SIGTERM
//! (a graceful shutdown), kills it if it has not exited after a grace period, and removes the
//! folder.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// How long the server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long it may take to shut down before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A username and password.
pub(super) struct Credentials {
    pub username: String,
    pub password: String,
}

/// A `minihost serve` this process started.
pub(super) struct LocalServer {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Where its log goes.
    pub log: PathBuf,
    /// The temporary folder of its data and log, removed when this is dropped (after the stop).
    pub folder: tempfile::TempDir,
}

/// A command of this executable with none of the developer's `MINIHOST_*` settings or
/// `DATABASE_URL`, which would point the throwaway server at their real data or settings.
fn this_executable(args: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("finding this executable to start a server")?;
    let mut cmd = Command::new(exe);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("MINIHOST_") || k == "DATABASE_URL" {
            cmd.env_remove(&key);
        }
    }
    cmd.args(args).stdin(Stdio::null());
    Ok(cmd)
}

impl LocalServer {
    /// Makes the data folder and `developer`'s account, starts the server and waits until it
    /// listens.
    pub async fn start(developer: &Credentials) -> anyhow::Result<LocalServer> {
        let folder = tempfile::Builder::new()
            .prefix("minihost-dev-")
            .tempdir()
            .context("making a temporary folder for the server's data")?;
        let data = folder.path().join("data");
        let created = this_executable(&[
            "admin",
            "create-user",
            "--username",
            &developer.username,
            "--display-name",
            "Developer",
            "--role",
            "developer",
        ])?
        .arg("--data-dir")
        .arg(&data)
        .env("MINIHOST_PASSWORD", &developer.password)
        .output()
        .await
        .context("running `minihost admin create-user`")?;
        if !created.status.success() {
            bail!(
                "making the developer account failed ({}): {}",
                created.status,
                String::from_utf8_lossy(&created.stderr).trim()
            );
        }

        let log = folder.path().join("server.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = this_executable(&["serve", "--addr", "127.0.0.1:0"])?
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("starting `minihost serve`")?;
        let stdout = child
            .stdout
            .take()
            .context("the server's output is not piped")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("minihost listening on ") {
                    return Ok(Some(url.trim().to_owned()));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let url = match listening {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) | Ok(Err(_)) => bail!(
                "the server stopped before it listened; its log: {}",
                tail(&log)
            ),
            Err(_) => bail!(
                "the server did not listen within {} s; its log: {}",
                START_TIMEOUT.as_secs(),
                tail(&log)
            ),
        };
        // Keep reading what it prints, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(LocalServer {
            child,
            url,
            log,
            folder,
        })
    }

    /// Stops the server gracefully (SIGTERM), killing it after [`STOP_GRACE`]; then removes its
    /// folder.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // It may have gone already (a Ctrl-C in the terminal reaches it too).
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for the server to stop")?;
            }
            Err(_) => {
                eprintln!(
                    "the server did not stop within {} s; killing it",
                    STOP_GRACE.as_secs()
                );
                self.child.kill().await.context("killing the server")?;
            }
        }
        self.folder
            .close()
            .context("removing the server's temporary folder")
    }
}

/// The last lines of the server's log, for an error message.
fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(10);
    format!("{}\n{}", log.display(), lines[start..].join("\n"))
}
