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
    // Live events reach the session once it has resumed: wait for that, so a run's first
    // sends are not sent before every reader listens.
    let resumed = async {
        while let Some(frame) = ws.next().await {
            if let Message::Text(t) = frame.context("reading the WebSocket before `resumed`")?
                && t.as_str().contains(r#""type":"resumed""#)
            {
                return Ok(());
            }
        }
        anyhow::bail!("the server closed the WebSocket before `resumed`")
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), resumed)
        .await
        .context("no `resumed` within 30 s")??;
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
    #[serde(borrow, default)]
    sender: Option<PushedSender<'a>>,
}

#[derive(Deserialize)]
struct PushedSender<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
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
    /// App replies to this reader's own commands (an app-command run), in total.
    pub replies: u64,
    /// Of those, replies to commands sent inside the measured window.
    pub replies_measured: u64,
    /// When the last measured reply arrived, in [`Clock`] microseconds.
    pub last_reply_us: u64,
    /// From a command's send to its reply arriving here.
    pub reply_latency: Histogram,
    pub seen: Vec<Seen>,
    pub violations: u64,
    /// The first few violations, described.
    pub violation_samples: Vec<String>,
    /// Frames that were not message pushes we could read.
    pub other_frames: u64,
    /// The first of those (cut short), to show what the server said.
    pub other_sample: Option<String>,
    /// `app_error` frames (an app that could not answer this reader's command: busy, ...).
    pub app_errors: u64,
    /// Of those, the platform's immediate `busy` refusals (the app's admission queue was full).
    pub app_busy: u64,
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

    /// Accounts one pushed message of `conversation`: its latency if it is a bench message
    /// (an app's reply to this reader's own command apart), and its place in the seq order.
    fn on_push(
        &mut self,
        r: &ReaderSetup,
        conversation: &str,
        seq: u64,
        text: Option<&str>,
        from_app: bool,
    ) {
        let now = r.clock.now_us();
        self.delivered += 1;
        let Some(st) = text.and_then(text::stamp) else {
            return self.order(&r.user, conversation, seq);
        };
        if from_app && !st.command {
            // An app's reply: timed where its command was sent, not counted as a delivery.
            if st.user == r.user_index {
                self.replies += 1;
                r.replies.fetch_add(1, Ordering::Release);
                r.answered.notify_one();
                if st.sent_us >= r.measure_from_us {
                    self.replies_measured += 1;
                    self.last_reply_us = now;
                    self.reply_latency.record(now.saturating_sub(st.sent_us));
                }
            }
        } else if st.sent_us >= r.measure_from_us {
            self.measured += 1;
            self.last_measured_us = now;
            self.latency.record(now.saturating_sub(st.sent_us));
        }
        self.order(&r.user, conversation, seq);
    }

    /// Checks that `seq` follows the last one seen of `conversation`.
    fn order(&mut self, user: &str, conversation: &str, seq: u64) {
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
    /// This reader's user index (replies to its commands name it).
    pub user_index: usize,
    /// Counts replies to (and app errors about) this reader's commands, for the run to wait on.
    pub replies: Arc<AtomicU64>,
    /// Told of each reply to (or app error about) this reader's commands: its sender waits
    /// for it before the next command.
    pub answered: Arc<tokio::sync::Notify>,
}

/// The frames every session starts with.
fn is_greeting(frame: &str) -> bool {
    [r#""type":"ready""#, r#""type":"resumed""#]
        .iter()
        .any(|t| frame.contains(t))
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
                let (content, sender) = message.map_or((None, None), |m| (m.content, m.sender));
                let text = content.and_then(|c| c.text);
                let from_app = sender.and_then(|s| s.kind).is_some_and(|k| k == "app");
                stats.on_push(&r, &conv, seq, text.as_deref(), from_app);
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
            // Its `message` is a sentence, not a message: it does not parse as a push.
            _ if bytes.as_str().contains(r#""type":"app_error""#) => {
                stats.app_errors += 1;
                if bytes.as_str().contains(r#""kind":"busy""#) {
                    stats.app_busy += 1;
                }
                r.replies.fetch_add(1, Ordering::Release);
                r.answered.notify_one();
                if stats.other_sample.is_none() {
                    stats.other_sample = Some(bytes.as_str().chars().take(300).collect());
                }
            }
            _ => {
                stats.other_frames += 1;
                if stats.other_sample.is_none() && !is_greeting(bytes.as_str()) {
                    stats.other_sample = Some(bytes.as_str().chars().take(300).collect());
                }
            }
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

    fn setup(user_index: usize) -> ReaderSetup {
        ReaderSetup {
            user: "u".into(),
            watched: "c".into(),
            progress: Arc::new(AtomicU64::new(0)),
            clock: Clock::start(),
            measure_from_us: 0,
            ack_every: 0,
            user_index,
            replies: Arc::new(AtomicU64::new(0)),
            answered: Arc::new(tokio::sync::Notify::new()),
        }
    }

    #[test]
    fn seq_checks() {
        let r = setup(0);
        let mut s = ReaderStats::default();
        for seq in [1, 2, 3, 5, 5, 4] {
            s.on_push(&r, "c", seq, None, false);
        }
        assert_eq!(s.violations, 3);
        assert_eq!(s.seen[0].count, 6);
        assert_eq!((s.seen[0].first, s.seen[0].last), (1, 5));
    }

    #[test]
    fn replies_to_own_commands_are_timed_apart() {
        let r = setup(3);
        let mut s = ReaderStats::default();
        s.on_push(&r, "c", 1, Some("/echo bench 0 3"), false);
        s.on_push(&r, "c", 2, Some("bench 0 3"), true);
        s.on_push(&r, "c", 3, Some("/echo bench 0 4"), false);
        s.on_push(&r, "c", 4, Some("bench 0 4"), true);
        // A user typing the reply's text is not the app.
        s.on_push(&r, "c", 5, Some("bench 0 3"), false);
        assert_eq!((s.delivered, s.measured), (5, 3));
        assert_eq!((s.replies, s.replies_measured), (1, 1));
        assert_eq!(r.replies.load(Ordering::Acquire), 1);
        assert_eq!(s.violations, 0);
    }

    #[test]
    fn push_names_an_app_sender() {
        let raw = r#"{"type":"message","conversation":"c1","seq":8,"message":{"content":{"type":"text","text":"bench 1 2"},"sender":{"type":"app","app":"echo"}}}"#;
        let p: Push<'_> = serde_json::from_str(raw).unwrap();
        let kind = p.message.unwrap().sender.unwrap().kind.unwrap();
        assert_eq!(kind, "app");
    }

    #[test]
    fn encodes_tokens() {
        assert_eq!(percent_encode("abc-_.~09"), "abc-_.~09");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
