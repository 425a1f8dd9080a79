//! WebSocket clients: connecting with a session token, and the reader each bench user runs,
//! which counts deliveries, measures send-to-delivery latency from the timestamp the sender
//! put in the text, and checks that every conversation's seq goes up by exactly one.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::clock::Clock;
use crate::hist::Histogram;
use crate::text;

pub type Ws = WebSocketStream<TcpStream>;

/// Small client buffers: the bench holds thousands of these.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// Opens `/api/v1/ws?token=...` on `addr`, from local address `from` if given.
pub async fn connect(addr: SocketAddr, token: &str, from: Option<IpAddr>) -> Result<Ws> {
    let stream = match from {
        None => TcpStream::connect(addr).await,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await
        }
    }
    .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{addr}/api/v1/ws?token={}", percent_encode(token));
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config()))
        .await
        .context("WebSocket handshake on /api/v1/ws")?;
    // A fresh client resumes from nothing: the server holds live events until the first frame.
    ws.send(Message::text(r#"{"type":"resume","cursors":{}}"#))
        .await
        .context("sending resume")?;
    Ok(ws)
}

fn percent_encode(s: &str) -> Cow<'_, str> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

#[derive(Deserialize)]
struct Push<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    conversation: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(borrow, default)]
    message: Option<PushedMessage<'a>>,
}

#[derive(Deserialize)]
struct PushedMessage<'a> {
    #[serde(borrow, default)]
    content: Option<PushedContent<'a>>,
}

#[derive(Deserialize)]
struct PushedContent<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// What one client saw of one conversation.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub conversation: String,
    pub first: u64,
    pub last: u64,
    pub count: u64,
}

/// What one reader measured.
#[derive(Default)]
pub struct ReaderStats {
    pub delivered: u64,
    /// Deliveries of messages sent inside the measured window.
    pub measured: u64,
    /// When the last measured delivery arrived, in [`Clock`] microseconds.
    pub last_measured_us: u64,
    pub latency: Histogram,
    pub seen: Vec<Seen>,
    pub violations: u64,
    /// The first few violations, described.
    pub violation_samples: Vec<String>,
    /// Frames that were not message pushes we could read.
    pub other_frames: u64,
    /// Why the stream ended before it was told to stop, if it did.
    pub ended: Option<String>,
}

const MAX_SAMPLES: usize = 5;

impl ReaderStats {
    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.violation_samples.len() < MAX_SAMPLES {
            self.violation_samples.push(what);
        }
    }

    /// Accounts one pushed message; returns the seq it carried.
    fn on_push(
        &mut self,
        user: &str,
        conversation: &str,
        seq: u64,
        text: Option<&str>,
        clock: &Clock,
        measure_from_us: u64,
    ) {
        let now = clock.now_us();
        self.delivered += 1;
        if let Some(sent) = text.and_then(text::sent_at)
            && sent >= measure_from_us
        {
            self.measured += 1;
            self.last_measured_us = now;
            self.latency.record(now.saturating_sub(sent));
        }
        let idx = match self
            .seen
            .iter()
            .position(|s| s.conversation == conversation)
        {
            Some(i) => i,
            None => {
                self.seen.push(Seen {
                    conversation: conversation.to_owned(),
                    first: seq,
                    last: seq,
                    count: 1,
                });
                return;
            }
        };
        let Some(s) = self.seen.get_mut(idx) else {
            return;
        };
        let last = s.last;
        s.count += 1;
        s.last = s.last.max(seq);
        if seq != last + 1 {
            let kind = if seq <= last {
                "duplicate or out of order"
            } else {
                "gap"
            };
            self.violation(format!(
                "{user}: conversation {conversation}: seq {seq} after {last} ({kind})"
            ));
        }
    }
}

/// Who a reader is and what it reports to.
pub struct ReaderSetup {
    pub user: Arc<str>,
    /// The conversation the run waits on; `progress` holds the last seq seen in it.
    pub watched: Arc<str>,
    pub progress: Arc<AtomicU64>,
    pub clock: Clock,
    /// Messages sent at or after this (µs on `clock`) are measured.
    pub measure_from_us: u64,
    /// Acknowledge every this many pushes of a conversation (0: never).
    pub ack_every: u64,
}

/// Reads pushes until `stop` turns true or the stream ends.
pub async fn read_until_stopped(
    mut ws: Ws,
    r: ReaderSetup,
    mut stop: watch::Receiver<bool>,
) -> ReaderStats {
    let mut stats = ReaderStats::default();
    loop {
        let frame = tokio::select! {
            biased;
            f = ws.next() => f,
            _ = stop.changed() => break,
        };
        let bytes = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => {
                stats.ended = Some("server closed the WebSocket".into());
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                stats.ended = Some(format!("WebSocket error: {e}"));
                break;
            }
        };
        match serde_json::from_str::<Push<'_>>(bytes.as_str()) {
            Ok(Push {
                kind,
                conversation: Some(conv),
                seq: Some(seq),
                message,
            }) if kind == "message" => {
                let text = message.and_then(|m| m.content).and_then(|c| c.text);
                stats.on_push(
                    &r.user,
                    &conv,
                    seq,
                    text.as_deref(),
                    &r.clock,
                    r.measure_from_us,
                );
                if *conv == *r.watched {
                    r.progress.store(seq, Ordering::Release);
                }
                if r.ack_every > 0 && stats.delivered % r.ack_every == 0 {
                    let ack = format!(r#"{{"type":"ack","conversation":"{conv}","seq":{seq}}}"#);
                    if let Err(e) = ws.send(Message::text(ack)).await {
                        stats.ended = Some(format!("sending ack: {e}"));
                        break;
                    }
                }
            }
            _ => stats.other_frames += 1,
        }
    }
    let _ = ws.close(None).await;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_parses_borrowed() {
        let raw = r#"{"type":"message","conversation":"c1","seq":7,"message":{"id":"m","seq":7,"content":{"type":"text","text":"bench 12 3"},"sender":{"username":"x"}}}"#;
        let p: Push<'_> = serde_json::from_str(raw).unwrap();
        assert_eq!(p.kind, "message");
        assert_eq!(p.seq, Some(7));
        assert_eq!(
            p.message.unwrap().content.unwrap().text.as_deref(),
            Some("bench 12 3")
        );
    }

    #[test]
    fn seq_checks() {
        let clock = Clock::start();
        let mut s = ReaderStats::default();
        for seq in [1, 2, 3, 5, 5, 4] {
            s.on_push("u", "c", seq, None, &clock, 0);
        }
        assert_eq!(s.violations, 3);
        assert_eq!(s.seen[0].count, 6);
        assert_eq!((s.seen[0].first, s.seen[0].last), (1, 5));
    }

    #[test]
    fn encodes_tokens() {
        assert_eq!(percent_encode("abc-_.~09"), "abc-_.~09");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
