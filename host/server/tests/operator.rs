//! What the real binary tells the person running it: which database `admin` and `serve` open
//! (so a command run from another folder cannot quietly use a fresh one), log lines without
//! colour codes when stderr is not a terminal, and a busy address refused before anything is
//! written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use minihost_store::StoreConfig;
use minihost_store::testing::TestDb;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `minihost ARGS` run in `dir`, with nothing of the caller's environment choosing the
/// database, the log level or the colours.
fn minihost(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minihost"));
    cmd.current_dir(dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("MINIHOST_DATA_DIR")
        .env_remove("MINIHOST_ADDR")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    cmd
}

/// Points a command at the test database: a `--data-dir` relative to `dir`, or `DATABASE_URL`.
fn on(cmd: &mut Command, config: &StoreConfig, dir: &Path) {
    match config {
        StoreConfig::Sqlite { data_dir } => {
            let relative = data_dir.strip_prefix(dir).unwrap();
            cmd.arg("--data-dir").arg(relative);
        }
        StoreConfig::Url(url) => {
            cmd.env("DATABASE_URL", url);
        }
    }
}

fn stderr_of(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}:\n{stderr}", out.status);
    stderr
}

/// The `database: ...` line a command prints for this configuration.
fn database_line(config: &StoreConfig, new: bool) -> String {
    match config {
        StoreConfig::Sqlite { data_dir } => format!(
            "database: {} (SQLite{})",
            data_dir.join("minihost.db").display(),
            if new { ", new file" } else { "" }
        ),
        StoreConfig::Url(url) => format!("database: {url} (PostgreSQL)"),
    }
}

#[test]
fn admin_and_serve_name_the_database_they_open_and_log_without_colour_codes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for db in rt.block_on(TestDb::all()).unwrap() {
        let (dir, new) = match &db.config {
            StoreConfig::Sqlite { data_dir } => (data_dir.parent().unwrap().to_owned(), true),
            StoreConfig::Url(_) => (std::env::temp_dir(), false),
        };

        let mut create = minihost(
            &dir,
            &[
                "admin",
                "create-user",
                "--username",
                "root",
                "--role",
                "admin",
            ],
        );
        create.env("MINIHOST_PASSWORD", "password-root");
        on(&mut create, &db.config, &dir);
        let stderr = stderr_of(&create.output().unwrap());
        assert!(
            stderr.contains(&database_line(&db.config, new)),
            "{}: {stderr}",
            db.name
        );
        assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");

        let mut set_role = minihost(&dir, &["admin", "set-role", "root", "developer"]);
        on(&mut set_role, &db.config, &dir);
        let stderr = stderr_of(&set_role.output().unwrap());
        assert!(
            stderr.contains(&database_line(&db.config, false)),
            "{}: {stderr}",
            db.name
        );

        let mut serve = minihost(&dir, &["serve", "--addr", "127.0.0.1:0"]);
        on(&mut serve, &db.config, &dir);
        let mut child = serve
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("minihost listening on "), "{line:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            stderr.contains(&database_line(&db.config, false)),
            "{}: {stderr}",
            db.name
        );
        assert!(stderr.contains("listening"), "no log lines in {stderr:?}");
        assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
        rt.block_on(db.cleanup()).unwrap();
    }
}

#[test]
fn a_command_run_from_another_folder_says_it_opens_a_new_database_there() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let mut create = minihost(
        &elsewhere,
        &[
            "admin",
            "create-user",
            "--username",
            "root",
            "--role",
            "admin",
        ],
    );
    create.env("MINIHOST_PASSWORD", "password-root");
    let stderr = stderr_of(&create.output().unwrap());
    let expected = format!(
        "database: {} (SQLite, new file)",
        elsewhere.join("minihost-data/minihost.db").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(elsewhere.join("minihost-data/minihost.db").is_file());
}

#[test]
fn a_busy_address_is_refused_before_the_database_is_created() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = minihost(
        tmp.path(),
        &["serve", "--addr", &addr, "--data-dir", "data"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "the data directory was created before the address was checked"
    );
    drop(busy);
}

/// `minihost config show` prints what `serve` would run with: the file's values, the
/// environment's over them, the flags over both, the database URL without its password; a
/// file with an unknown key is refused naming it, and `serve` refuses it too before starting.
#[test]
fn config_show_prints_the_effective_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("minihost.toml");
    std::fs::write(
        &file,
        "[sandbox]\nmax_app_timeout_ms = 1500\nmax_queued = 99\n[webhooks]\nbackoff_base_ms = 250\n",
    )
    .unwrap();
    let out = minihost(
        dir.path(),
        &[
            "config",
            "show",
            "--config",
            "minihost.toml",
            "--guest-slots",
            "3",
        ],
    )
    .env("MINIHOST_SANDBOX_MAX_QUEUED", "77")
    .env("DATABASE_URL", "postgres://mh:s3cret@db.internal/minihost")
    .output()
    .unwrap();
    stderr_of(&out);
    let shown = String::from_utf8_lossy(&out.stdout);
    for line in [
        "max_app_timeout_ms = 1500",
        "max_queued = 77",
        "guest_slots = 3",
        "backoff_base_ms = 250",
        "ws_frame_burst = 60",
        "postgres://mh:***@db.internal/minihost",
    ] {
        assert!(shown.contains(line), "no {line:?} in:\n{shown}");
    }
    assert!(!shown.contains("s3cret"), "{shown}");

    std::fs::write(&file, "[sandbox]\nmax_app_timeot_ms = 1\n").unwrap();
    for args in [
        &["config", "show", "--config", "minihost.toml"][..],
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            "minihost.toml",
        ][..],
    ] {
        let out = minihost(dir.path(), args).output().unwrap();
        assert!(!out.status.success(), "{args:?} accepted an unknown key");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("max_app_timeot_ms"), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("minihost-data").exists(),
        "serve created a database"
    );
}
