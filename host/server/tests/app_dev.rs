//! `minihost app dev` through the real binary (here, beside the other app CLI tests, because
//! only this package's tests have the binary): on a scaffolded Rust app it starts a server,
//! prints where to chat and as whom; the printed test user's `/demo Ada` gets the app's reply,
//! the invocation shows on the dev process's stdout, an edit of the source is rebuilt and
//! uploaded and changes the reply; SIGINT stops it and the server it started. With `--server`
//! it works on a running server as the developer `minihost login` signed in, and leaves no dev
//! version waiting for review. On a folder that is not an app it names the missing manifest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A command with the environment of a developer's shell rather than of `cargo test` (no
/// CARGO_* variables of the outer build leak into the nested cargo).
fn shell(program: impl AsRef<std::ffi::OsStr>, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let outer = (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || k.starts_with("MINIHOST_")
            || matches!(
                k.as_ref(),
                "RUSTFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTDOCFLAGS"
            );
        if outer {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// A running `minihost app dev`: its output lines as they come, and SIGINT when dropped.
struct Dev {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(mut cmd: Command) -> Dev {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                println!("dev> {line}");
                lines.lock().unwrap().push(line);
            }
        });
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("dev! {line}");
            }
        });
        Dev { child, stdout }
    }

    /// Waits (up to `within`) for a stdout line that `wanted` accepts; returns it.
    fn line(&mut self, within: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(line) = self.stdout.lock().unwrap().iter().find(|l| wanted(l)) {
                return line.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                if let Some(line) = self.stdout.lock().unwrap().iter().find(|l| wanted(l)) {
                    return line.clone();
                }
                panic!(
                    "`minihost app dev` exited ({status}); stdout:\n{}",
                    self.stdout.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no such line within {within:?}; stdout so far:\n{}",
            self.stdout.lock().unwrap().join("\n")
        );
    }

    /// The first stdout line that starts, once trimmed, with `label`: what follows it.
    fn field(&mut self, label: &str) -> String {
        let line = self.line(Duration::from_secs(300), |l| l.trim().starts_with(label));
        line.trim()[label.len()..].trim().to_owned()
    }

    /// Interrupts it (a Ctrl-C) and waits up to `within` for its exit.
    fn stop(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        }
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && self.stop(Duration::from_secs(60)).is_none()
        {
            let _ = self.child.kill();
        }
    }
}

/// A signed-in client of the dev server.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn sign_in(base: &str, username: &str, password: &str) -> Client {
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{base}api/v1/sessions"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = r["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned();
        Client {
            http,
            base: base.to_owned(),
            token,
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn say(&self, group: &str, text: &str) {
        let r = self
            .http
            .post(format!(
                "{}api/v1/conversations/{group}/messages",
                self.base
            ))
            .bearer_auth(&self.token)
            .json(&json!({"content": {"type": "text", "text": text}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }

    /// Waits for a message from an app whose text is `text`.
    async fn reply(&self, group: &str, text: &str) {
        for _ in 0..1200 {
            let page = self
                .get(&format!("api/v1/conversations/{group}/messages"))
                .await;
            let found = page["messages"].as_array().into_iter().flatten().any(|m| {
                m["sender"]["type"] == "app"
                    && m["content"] == json!({"type": "text", "text": text})
            });
            if found {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self
            .get(&format!("api/v1/conversations/{group}/messages"))
            .await;
        panic!("no app reply {text:?} in the group: {page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn app_dev_serves_the_app_streams_its_invocations_and_reloads_it_on_save() {
    let bin = env!("CARGO_BIN_EXE_minihost");
    let tmp = tempfile::tempdir().unwrap();
    let new = shell(bin, tmp.path(), &["app", "new", "demo"])
        .output()
        .unwrap();
    assert!(new.status.success(), "{new:?}");

    // The app's dependencies are built once for every run of this test.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("app-dev-target");
    let mut cmd = shell(bin, tmp.path(), &["app", "dev", "demo"]);
    cmd.env("CARGO_TARGET_DIR", &target);
    let mut dev = Dev::start(cmd);

    let web = dev.field("web:");
    assert!(web.starts_with("http://127.0.0.1:"), "{web}");
    let tester = dev.field("test user:");
    let (username, password) = tester.split_once(", password ").unwrap();
    // The first build of a fresh target folder compiles the SDK's dependencies.
    dev.line(Duration::from_secs(1200), |l| {
        l.starts_with("ready: demo@0.1.0-dev.1 ")
    });

    let tester = Client::sign_in(&web, username, password).await;
    let conversations = tester.get("api/v1/conversations").await;
    let group = conversations
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "group")
        .unwrap_or_else(|| panic!("the test user has no group: {conversations}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tester.say(&group, "/demo Ada").await;
    tester.reply(&group, "Hello, Ada!").await;
    let logged = dev.line(Duration::from_secs(60), |l| {
        l.contains("demo@0.1.0-dev.1 command: ok")
    });
    assert!(logged.contains("fuel "), "{logged}");

    // An edit is picked up: rebuilt, uploaded as the next version, and answering.
    let lib = tmp.path().join("demo/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let edited = source.replace("format!(\"Hello, {who}!\")", "format!(\"Howdy, {who}!\")");
    assert_ne!(edited, source);
    std::fs::write(&lib, edited).unwrap();
    dev.line(Duration::from_secs(600), |l| {
        l.starts_with("ready: demo@0.1.0-dev.2 ")
    });
    tester.say(&group, "/demo Ada").await;
    tester.reply(&group, "Howdy, Ada!").await;
    dev.line(Duration::from_secs(60), |l| {
        l.contains("demo@0.1.0-dev.2 command: ok")
    });

    // SIGINT (a Ctrl-C) stops it cleanly, and the server it started with it.
    let status = dev
        .stop(Duration::from_secs(120))
        .expect("`minihost app dev` stops within 120 s of SIGINT");
    assert!(status.success(), "{status:?}");
    dev.line(Duration::from_secs(5), |l| l == "stopped");
    let gone = reqwest::get(format!("{web}api/v1/me")).await;
    assert!(gone.is_err(), "the server still answers: {gone:?}");
}

/// A `minihost serve` of this test, on its own data folder, with a developer `dev`.
struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(bin: &str) -> Server {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().to_str().unwrap().to_owned();
        let made = shell(
            bin,
            data.path(),
            &[
                "admin",
                "create-user",
                "--username",
                "dev",
                "--role",
                "developer",
            ],
        )
        .args(["--data-dir", &dir])
        .env("MINIHOST_PASSWORD", "password-dev")
        .output()
        .unwrap();
        assert!(made.status.success(), "{made:?}");
        let mut child = shell(bin, data.path(), &["serve", "--addr", "127.0.0.1:0"])
            .args(["--data-dir", &dir])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines
            .find_map(|l| {
                l.ok()?
                    .strip_prefix("minihost listening on ")
                    .map(str::to_owned)
            })
            .expect("the server listens");
        Server {
            child,
            url,
            _data: data,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn app_dev_on_a_running_server_uses_the_signed_in_developer_and_withdraws_its_uploads() {
    let bin = env!("CARGO_BIN_EXE_minihost");
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(bin);
    let session = tmp.path().join("session.json");
    let login = shell(
        bin,
        tmp.path(),
        &["login", "--server", &server.url, "--username", "dev"],
    )
    .env("MINIHOST_SESSION_FILE", &session)
    .env("MINIHOST_PASSWORD", "password-dev")
    .output()
    .unwrap();
    assert!(login.status.success(), "{login:?}");
    let new = shell(bin, tmp.path(), &["app", "new", "remote-demo"])
        .output()
        .unwrap();
    assert!(new.status.success(), "{new:?}");

    // The session is for another server: refused before anything is made.
    let elsewhere = shell(
        bin,
        tmp.path(),
        &[
            "app",
            "dev",
            "remote-demo",
            "--server",
            "http://127.0.0.1:9",
        ],
    )
    .env("MINIHOST_SESSION_FILE", &session)
    .output()
    .unwrap();
    assert_eq!(elsewhere.status.code(), Some(1), "{elsewhere:?}");
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(
        stderr.contains("your session is for") && stderr.contains("minihost login --server"),
        "{stderr}"
    );

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("app-dev-target");
    let mut cmd = shell(
        bin,
        tmp.path(),
        &["app", "dev", "remote-demo", "--server", &server.url],
    );
    cmd.env("CARGO_TARGET_DIR", &target)
        .env("MINIHOST_SESSION_FILE", &session);
    let mut dev = Dev::start(cmd);
    let developer = dev.field("developer:");
    assert!(developer.starts_with("dev (your session"), "{developer}");
    let tester = dev.field("test user:");
    let (username, password) = tester.split_once(", password ").unwrap();
    assert!(username.starts_with("tester_"), "{username}");
    dev.line(Duration::from_secs(1200), |l| {
        l.starts_with("ready: remote-demo@0.1.0-dev.1 ")
    });
    let base = format!("{}/", server.url);
    let tester = Client::sign_in(&base, username, password).await;
    let group = tester.get("api/v1/conversations").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tester.say(&group, "/remote-demo Ada").await;
    tester.reply(&group, "Hello, Ada!").await;
    dev.line(Duration::from_secs(60), |l| {
        l.contains("remote-demo@0.1.0-dev.1 command: ok")
    });

    // A save (the same code): the next version replaces the first, which leaves the queue.
    let lib = tmp.path().join("remote-demo/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        format!(
            "{source}
// saved again
"
        ),
    )
    .unwrap();
    dev.line(Duration::from_secs(600), |l| {
        l.starts_with("ready: remote-demo@0.1.0-dev.2 ")
    });
    let status = dev
        .stop(Duration::from_secs(120))
        .expect("`minihost app dev` stops within 120 s of SIGINT");
    assert!(status.success(), "{status:?}");

    // The server runs on; nothing of the session waits for a reviewer.
    let developer = Client::sign_in(&base, "dev", "password-dev").await;
    let versions = developer.get("api/v1/apps/remote-demo/versions").await;
    let statuses: Vec<(&str, &str)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap(),
                v["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![("0.1.0-dev.2", "withdrawn"), ("0.1.0-dev.1", "withdrawn")],
        "{versions}"
    );
}

#[test]
fn app_dev_on_a_folder_that_is_not_an_app_names_the_missing_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not an app").unwrap();
    let out = shell(env!("CARGO_BIN_EXE_minihost"), tmp.path(), &["app", "dev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(". is not a mini-app: it has no miniapp.toml"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
