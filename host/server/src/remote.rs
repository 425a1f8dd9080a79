//! Commands that talk to a running server over its HTTP API, for developers and reviewers:
//! `minihost login` keeps a session token in the user's config directory (or
//! `MINIHOST_SESSION_FILE`); `minihost app publish` builds the app in a folder and publishes it
//! for review; `minihost review ...` works the review queue, releases, rolls back and suspends.
//! A refusal prints the server's error and exits non-zero. `app dev` talks to its server through
//! the same [`request`].

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// `minihost login`.
#[derive(Args)]
pub struct LoginArgs {
    /// The server's base URL.
    #[arg(long, env = "MINIHOST_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Your username (the password is read from `MINIHOST_PASSWORD`, or one line of stdin).
    #[arg(long)]
    username: String,
}

/// `minihost app publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// The app's folder (holding Cargo.toml and miniapp.toml).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// A component already built (default: build the folder for wasm32-wasip2, release).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// What the reviewer should know about this version.
    #[arg(long, default_value = "")]
    notes: String,
}

/// `minihost review ...`: a reviewer's work (a session of a reviewer or admin).
#[derive(Subcommand)]
pub enum ReviewCommand {
    /// The versions waiting for a reviewer or in review, oldest first.
    Queue,
    /// One version: its findings (what changed against the release is marked), notes, status.
    Show { app: String, version: String },
    /// Take a version to review (one reviewer at a time).
    Claim { app: String, version: String },
    /// Approve a version you claimed.
    Approve { app: String, version: String },
    /// Reject a version you claimed, with the reason its developer will read.
    Reject {
        app: String,
        version: String,
        #[arg(long)]
        reason: String,
    },
    /// Release an approved version to a percentage of users (100: everyone).
    Release {
        app: String,
        version: String,
        #[arg(long, default_value_t = 100)]
        percent: i64,
    },
    /// One step back: stop a rollout, or return to the previous release.
    Rollback { app: String },
    /// Stop an app everywhere (the kill switch).
    Suspend {
        app: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a suspension.
    Unsuspend { app: String },
    /// Users' open reports, with each app's recent outcomes.
    Reports,
}

/// A signed-in session.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Session {
    pub server: String,
    pub username: String,
    pub token: String,
}

/// Where the session is kept.
fn session_file() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("MINIHOST_SESSION_FILE") {
        return Ok(PathBuf::from(p));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(config.join("minihost").join("session.json"))
}

pub(crate) fn load_session() -> anyhow::Result<Session> {
    let path = session_file()?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no session at {} (run `minihost login --username NAME` first)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
}

/// A server's answer: its status and JSON body (`Null` when empty, a string when not JSON).
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub body: Value,
}

impl Answer {
    /// The body of a success; the server's error message as the error otherwise.
    pub(crate) fn ok(self) -> anyhow::Result<Value> {
        if !self.status.is_success() {
            bail!("the server refused ({}): {}", self.status, self.message());
        }
        Ok(self.body)
    }

    /// The error message of a refusal (the whole body when it has none).
    pub(crate) fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_owned)
    }
}

/// One request, whatever its status; `Err` only when the server cannot be reached.
pub(crate) async fn request(
    http: &reqwest::Client,
    server: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut rb = http.request(method, &url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok(Answer { status, body })
}

/// One request; the JSON answer, or the server's error as the error.
async fn call(
    server: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    request(
        &reqwest::Client::new(),
        server,
        token,
        method,
        path,
        body.as_ref(),
    )
    .await?
    .ok()
}

/// `minihost login`: signs in and keeps the session.
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let password = match std::env::var("MINIHOST_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("password for {}: ", args.username);
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let answer = call(
        &args.server,
        None,
        reqwest::Method::POST,
        "/api/v1/sessions",
        Some(json!({"username": args.username, "password": password})),
    )
    .await?;
    let token = answer["token"]
        .as_str()
        .context("the server answered no token")?
        .to_owned();
    let session = Session {
        server: args.server,
        username: args.username,
        token,
    };
    let path = session_file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(&path, &serde_json::to_string_pretty(&session)?)?;
    println!(
        "signed in to {} as {}; session kept in {}",
        session.server,
        session.username,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` readable by its owner only (it holds a bearer token).
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// `minihost app publish`: builds (unless given a component), publishes, prints the findings.
pub async fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    let session = load_session()?;
    let manifest_path = args.dir.join("miniapp.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let id = manifest
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "id").then(|| v.trim().trim_matches('"').to_owned())
        })
        .context("miniapp.toml has no id")?;
    let wasm = match args.wasm {
        Some(w) => w,
        None => minihost_devtools::build_component(&args.dir, true).await?,
    };
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let answer = call(
        &session.server,
        Some(&session.token),
        reqwest::Method::POST,
        &format!("/api/v1/apps/{id}/versions"),
        Some(json!({
            "manifest": manifest,
            "component": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "notes": args.notes,
        })),
    )
    .await?;
    println!(
        "published {}@{} ({}), sha256 {}",
        answer["app"].as_str().unwrap_or(&id),
        answer["version"].as_str().unwrap_or("?"),
        answer["status"].as_str().unwrap_or("?"),
        answer["sha256"].as_str().unwrap_or("?")
    );
    for f in answer["findings"].as_array().into_iter().flatten() {
        println!(
            "  {:<8} {:<9} {}",
            f["result"].as_str().unwrap_or(""),
            f["check"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `minihost review ...`.
pub async fn review(cmd: ReviewCommand) -> anyhow::Result<ExitCode> {
    use reqwest::Method;
    let s = load_session()?;
    let go = |method: Method, path: String, body: Option<Value>| {
        let (server, token) = (s.server.clone(), s.token.clone());
        async move { call(&server, Some(&token), method, &path, body).await }
    };
    let (answer, done) = match cmd {
        ReviewCommand::Queue => {
            let queue = go(Method::GET, "/api/v1/review/queue".into(), None).await?;
            for v in queue.as_array().into_iter().flatten() {
                println!(
                    "{}@{}\t{}\t{}\t{}",
                    v["app"].as_str().unwrap_or(""),
                    v["version"].as_str().unwrap_or(""),
                    v["status"].as_str().unwrap_or(""),
                    v["reviewer"].as_str().unwrap_or("-"),
                    v["notes"].as_str().unwrap_or("")
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        ReviewCommand::Show { app, version } => (
            go(Method::GET, format!("/api/v1/review/{app}/{version}"), None).await?,
            None,
        ),
        ReviewCommand::Reports => (
            go(Method::GET, "/api/v1/review/reports".into(), None).await?,
            None,
        ),
        ReviewCommand::Claim { app, version } => {
            let path = format!("/api/v1/review/{app}/{version}/claim");
            go(Method::POST, path, Some(json!({}))).await?;
            (Value::Null, Some(format!("claimed {app}@{version}")))
        }
        ReviewCommand::Approve { app, version } => {
            let path = format!("/api/v1/review/{app}/{version}");
            go(Method::POST, path, Some(json!({"decision": "approve"}))).await?;
            (Value::Null, Some(format!("approved {app}@{version}")))
        }
        ReviewCommand::Reject {
            app,
            version,
            reason,
        } => {
            let path = format!("/api/v1/review/{app}/{version}");
            let body = json!({"decision": "reject", "reason": reason});
            go(Method::POST, path, Some(body)).await?;
            (Value::Null, Some(format!("rejected {app}@{version}")))
        }
        ReviewCommand::Release {
            app,
            version,
            percent,
        } => {
            let path = format!("/api/v1/apps/{app}/release");
            let body = json!({"version": version, "percent": percent});
            let r = go(Method::PUT, path, Some(body)).await?;
            (r, Some(format!("released {app}@{version} to {percent}%")))
        }
        ReviewCommand::Rollback { app } => {
            let path = format!("/api/v1/apps/{app}/rollback");
            let r = go(Method::POST, path, Some(json!({}))).await?;
            (r, Some(format!("rolled {app} back")))
        }
        ReviewCommand::Suspend { app, reason } => {
            let path = format!("/api/v1/apps/{app}/suspension");
            go(Method::PUT, path, Some(json!({"reason": reason}))).await?;
            (Value::Null, Some(format!("suspended {app}")))
        }
        ReviewCommand::Unsuspend { app } => {
            let path = format!("/api/v1/apps/{app}/suspension");
            go(Method::DELETE, path, None).await?;
            (Value::Null, Some(format!("lifted the suspension of {app}")))
        }
    };
    if let Some(line) = done {
        println!("{line}");
    }
    if !answer.is_null() {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(ExitCode::SUCCESS)
}
