//! Shared by the tests that run the real `minihost` binary: start `serve` on a database and
//! read the address it listens on.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use minihost_store::StoreConfig;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `minihost serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// On PostgreSQL, the data directory of the server's component cache.
    _data: Option<tempfile::TempDir>,
}

impl Drop for Server {
    /// A test that fails half-way leaves no server running behind it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `minihost serve` on a free port of 127.0.0.1 with `config`'s database.
pub fn spawn(config: &StoreConfig) -> Server {
    spawn_with(config, &[])
}

/// [`spawn`] with more arguments for `serve`.
pub fn spawn_with(config: &StoreConfig, args: &[&str]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minihost"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match config {
        StoreConfig::Sqlite { data_dir } => {
            cmd.arg("--data-dir").arg(data_dir);
        }
        StoreConfig::Url(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
    // The component cache lives in the data directory on every backend: never the checkout's.
    let data = match config {
        StoreConfig::Sqlite { .. } => None,
        StoreConfig::Url(_) => {
            let dir = tempfile::tempdir().unwrap();
            cmd.arg("--data-dir").arg(dir.path());
            Some(dir)
        }
    };
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("minihost listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server {
        child,
        url,
        _data: data,
    }
}
