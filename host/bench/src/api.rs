//! The few Minihost API calls the bench makes outside the timed phase: sign up, sign in,
//! create a group conversation, health check (issue 2's contract); and for `hostile`, a
//! developer's sideload, consent answer, plain text post and invocation log.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;

use crate::http::{Conn, Response};

/// Setup calls hash passwords (argon2id) on the server: allow them time.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Session {
    token: String,
}

#[derive(Deserialize)]
struct Created {
    id: serde_json::Value,
}

async fn call(
    conn: &mut Conn,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &serde_json::Value,
) -> Result<(u16, Vec<u8>)> {
    let body = serde_json::to_vec(body)?;
    let r: Response<'_> =
        tokio::time::timeout(CALL_TIMEOUT, conn.request(method, path, auth, Some(&body)))
            .await
            .with_context(|| format!("{method} {path} timed out"))??;
    Ok((r.status, r.body.to_vec()))
}

fn expect(status: u16, want: u16, what: &str, body: &[u8]) -> Result<()> {
    if status != want {
        bail!(
            "{what}: HTTP {status} (wanted {want}): {}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

pub async fn sign_up(conn: &mut Conn, username: &str, password: &str) -> Result<()> {
    let body = json!({"username": username, "display_name": username, "password": password});
    let (status, resp) = call(conn, "POST", "/api/v1/accounts", None, &body).await?;
    expect(status, 201, &format!("sign up {username}"), &resp)
}

/// Returns the session token.
pub async fn sign_in(conn: &mut Conn, username: &str, password: &str) -> Result<String> {
    let body = json!({"username": username, "password": password});
    let (status, resp) = call(conn, "POST", "/api/v1/sessions", None, &body).await?;
    expect(status, 200, &format!("sign in {username}"), &resp)?;
    let s: Session = serde_json::from_slice(&resp).context("session response")?;
    Ok(s.token)
}

/// Creates a group of the caller and `members`; returns the conversation id.
pub async fn create_group(
    conn: &mut Conn,
    token: &str,
    members: &[String],
    title: &str,
) -> Result<String> {
    let body = json!({"kind": "group", "members": members, "title": title});
    let auth = format!("Bearer {token}");
    let (status, resp) = call(conn, "POST", "/api/v1/conversations", Some(&auth), &body).await?;
    expect(status, 201, &format!("create group {title}"), &resp)?;
    let c: Created = serde_json::from_slice(&resp).context("conversation response")?;
    Ok(match c.id {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Sideloads `component` with `manifest` into `conversation` (the caller must be a developer).
pub async fn sideload(
    conn: &mut Conn,
    token: &str,
    conversation: &str,
    manifest: &str,
    component: &[u8],
) -> Result<()> {
    use base64::Engine as _;
    let component = base64::engine::general_purpose::STANDARD.encode(component);
    let body = json!({"manifest": manifest, "component": component});
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/conversations/{conversation}/apps");
    // A server busy compiling or smoke-running other uploads answers 503 and asks the client
    // to try again: so does this, a few times.
    for _ in 0..SIDELOAD_TRIES {
        let (status, resp) = call(conn, "POST", &path, Some(&auth), &body).await?;
        if status != 503 {
            return expect(status, 201, &format!("sideload into {conversation}"), &resp);
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    anyhow::bail!("sideload into {conversation}: still busy after {SIDELOAD_TRIES} tries")
}

/// Uploads tried while the server answers busy.
const SIDELOAD_TRIES: u32 = 30;

/// Answers the consent request of `app` with `scopes`; false while there is none to answer.
pub async fn grant(conn: &mut Conn, token: &str, app: &str, scopes: &[&str]) -> Result<bool> {
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/me/grants/{app}");
    let (status, resp) = call(
        conn,
        "PUT",
        &path,
        Some(&auth),
        &json!({ "scopes": scopes }),
    )
    .await?;
    if status == 404 {
        return Ok(false);
    }
    expect(status, 200, &format!("grant {app}"), &resp)?;
    Ok(true)
}

/// Posts a text message; returns the HTTP status and body (the caller decides what is an error).
pub async fn post_text(
    conn: &mut Conn,
    token: &str,
    conversation: &str,
    text: &str,
) -> Result<(u16, Vec<u8>)> {
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/conversations/{conversation}/messages");
    let body = json!({"content": {"type": "text", "text": text}});
    call(conn, "POST", &path, Some(&auth), &body).await
}

/// One entry of an app's invocation log (the fields the bench reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Invocation {
    pub id: String,
    pub outcome: String,
    pub error_kind: Option<String>,
    pub duration_us: u64,
    pub queued_us: u64,
}

/// The newest `limit` (at most 500) entries of `app`'s invocation log, as its developer.
pub async fn invocations(
    conn: &mut Conn,
    token: &str,
    app: &str,
    limit: u32,
) -> Result<Vec<Invocation>> {
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/apps/{app}/invocations?limit={limit}");
    let r = tokio::time::timeout(CALL_TIMEOUT, conn.request("GET", &path, Some(&auth), None))
        .await
        .with_context(|| format!("GET {path} timed out"))??;
    expect(r.status, 200, &format!("invocation log of {app}"), r.body)?;
    serde_json::from_slice(r.body).context("invocation log")
}

/// Polls `GET /healthz` until it answers 200, for at most `within`.
pub async fn wait_healthy(addr: std::net::SocketAddr, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let ok = async {
            let mut c = Conn::connect(addr).await?;
            let r = c.request("GET", "/healthz", None, None).await?;
            anyhow::Ok(r.status == 200)
        };
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(2), ok).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{addr}/healthz did not answer 200 within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
