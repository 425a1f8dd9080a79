//! The app-command phase's setup: a developer publishes the echo example under an id unique to
//! the run, a reviewer claims and approves it, the developer releases it to everyone, and each
//! group's owner installs it from the directory, as people would, through the HTTP API. The
//! echo app declares no scope, so no consent stands between a command and its reply.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::api;
use crate::http::Conn;
use crate::setup::Population;

/// The password of the accounts `before` creates.
const PASSWORD: &str = "bench-password-0";

/// The echo app's version.
const VERSION: &str = "0.1.0";

/// Who publishes and who reviews, named for the run.
pub struct Accounts {
    pub developer: String,
    pub reviewer: String,
    pub app: String,
}

impl Accounts {
    pub fn for_run(prefix: &str) -> Accounts {
        Accounts {
            developer: format!("{prefix}dev"),
            reviewer: format!("{prefix}rev"),
            // App ids take `-`, not `_`.
            app: format!("{}-echo", prefix.trim_end_matches('_')),
        }
    }

    /// `minihost admin create-user` commands for both accounts, run before the server starts.
    pub fn create_commands(&self) -> Vec<Vec<String>> {
        [(&self.developer, "developer"), (&self.reviewer, "reviewer")]
            .into_iter()
            .map(|(name, role)| {
                [
                    "admin",
                    "create-user",
                    "--username",
                    name,
                    "--password",
                    PASSWORD,
                    "--role",
                    role,
                ]
                .map(String::from)
                .to_vec()
            })
            .collect()
    }
}

/// The server settings an app-command run needs: budgets high enough that the load measures
/// the path, not the (per user, per conversation) reply budget's refusals.
pub fn server_env() -> Vec<(String, String)> {
    [
        ("MINIHOST_APPS_REPLY_BURST", "100000000"),
        ("MINIHOST_APPS_REPLIES_PER_MINUTE", "100000000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

fn manifest(app: &str) -> String {
    format!(
        r#"id = "{app}"
name = "Bench echo"
version = "{VERSION}"
description = "Replies to /echo TEXT with TEXT."

[[commands]]
name = "echo"
help = "/echo TEXT - repeats TEXT"

[limits]
memory_mib = 16
timeout_ms = 200
"#
    )
}

async fn call(
    conn: &mut Conn,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, String)> {
    let auth = format!("Bearer {token}");
    let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        conn.request(method, path, Some(&auth), body.as_deref()),
    )
    .await
    .with_context(|| format!("{method} {path} timed out"))??;
    Ok((r.status, String::from_utf8_lossy(r.body).into_owned()))
}

async fn expect(
    conn: &mut Conn,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
    want: u16,
) -> Result<()> {
    let (status, text) = call(conn, method, path, token, body).await?;
    if status != want {
        bail!("{method} {path}: HTTP {status} (wanted {want}): {text}");
    }
    Ok(())
}

/// Publishes, approves and releases the echo app, and installs it in every conversation of
/// `pop` (as the conversation's creator, user `c` of conversation `c`).
pub async fn install_everywhere(addr: SocketAddr, who: &Accounts, pop: &Population) -> Result<()> {
    use base64::Engine as _;
    let wasm = minihost_guest_artifacts::read(minihost_guest_artifacts::ECHO)
        .context("reading the ECHO guest (built by host/guest-artifacts)")?;
    let mut conn = Conn::connect(addr).await?;
    let dev = api::sign_in(&mut conn, &who.developer, PASSWORD).await?;
    let rev = api::sign_in(&mut conn, &who.reviewer, PASSWORD).await?;
    let app = &who.app;
    let body = json!({
        "manifest": manifest(app),
        "component": base64::engine::general_purpose::STANDARD.encode(&wasm),
        "notes": "The load generator's echo app.",
    });
    let path = format!("/api/v1/apps/{app}/versions");
    let mut tries = 0;
    loop {
        // A server busy compiling or smoke-running answers 503: try again.
        let (status, text) = call(&mut conn, "POST", &path, &dev, Some(body.clone())).await?;
        match status {
            201 => break,
            503 if tries < 30 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            _ => bail!("publishing {app}: HTTP {status}: {text}"),
        }
    }
    let review = format!("/api/v1/review/{app}/{VERSION}");
    expect(
        &mut conn,
        "POST",
        &format!("{review}/claim"),
        &rev,
        None,
        204,
    )
    .await?;
    let decision = json!({"decision": "approve"});
    expect(&mut conn, "POST", &review, &rev, Some(decision), 200).await?;
    let release = json!({"version": VERSION, "percent": 100});
    let path = format!("/api/v1/apps/{app}/release");
    expect(&mut conn, "PUT", &path, &dev, Some(release), 200).await?;
    for (c, id) in pop.conversations.iter().enumerate() {
        let owner = pop
            .users
            .get(c)
            .context("a conversation without its creator")?;
        let path = format!("/api/v1/conversations/{id}/apps/{app}");
        expect(&mut conn, "PUT", &path, &owner.token, None, 201).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_rules() {
        let who = Accounts::for_run("b1a2b3c_");
        assert_eq!(who.app, "b1a2b3c-echo");
        assert!(manifest(&who.app).contains("id = \"b1a2b3c-echo\""));
        let cmds = who.create_commands();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[1].contains(&"reviewer".to_owned()));
    }
}
