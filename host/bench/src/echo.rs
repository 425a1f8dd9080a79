//! The baseline: a bare axum server whose `POST /echo` parses the same JSON body a message
//! send carries and answers it back with 201, and nothing else. Its rate is the limit of the
//! HTTP stack on this machine, which the messenger's rate is reported against.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The body of a message send, as the server parses it.
#[derive(Deserialize, Serialize)]
pub struct SendBody {
    content: Content,
}

#[derive(Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Content {
    Text { text: String },
}

async fn echo(Json(body): Json<SendBody>) -> (StatusCode, Json<SendBody>) {
    (StatusCode::CREATED, Json(body))
}

pub fn router() -> Router {
    Router::new()
        .route("/echo", post(echo))
        .route("/healthz", get(|| async { "ok" }))
}

/// Serves until SIGTERM or Ctrl-C, printing `echo listening on http://ADDR` once bound.
pub async fn serve(addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    println!("echo listening on http://{bound}");
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
    };
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Conn;

    #[tokio::test]
    async fn echoes_the_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router()).await });
        let mut c = Conn::connect(addr).await.unwrap();
        let body = br#"{"content":{"type":"text","text":"bench 1 2"}}"#;
        let r = c.request("POST", "/echo", None, Some(body)).await.unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, body);
        let r = c.request("POST", "/echo", None, Some(b"{")).await.unwrap();
        assert_eq!(r.status, 400);
    }
}
