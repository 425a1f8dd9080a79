//! The sending half of the generator: a few tasks, each owning one keep-alive HTTP connection
//! with one request in flight (so in-flight is bounded by the number of senders), cycling over
//! the users it speaks for until the deadline or the message budget runs out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::hist::Histogram;
use crate::http::Conn;
use crate::text;

/// How long one request may take before the sender gives up on its connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A user a sender posts as: the request path and the Authorization value, prepared once.
pub struct Slot {
    pub path: String,
    pub auth: String,
    /// Conversation index (for the accepted-seq bookkeeping).
    pub conv: usize,
    /// The user's index, written into the text (a reply to a command names it).
    pub user: usize,
}

/// What every sender shares.
pub struct Shared {
    /// The server's nodes; sender `i` posts to node `i % len` (one node but with `--nodes`).
    pub addrs: Vec<SocketAddr>,
    pub clock: Clock,
    /// Status that counts as accepted (201 for messages, the echo answers 201 too).
    pub expect_status: u16,
    /// Read `seq` from accepted responses (messages), or not (echo).
    pub parse_seq: bool,
    /// Sends started at or after this (µs on `clock`) are measured; earlier ones are warm-up.
    pub measure_from_us: u64,
    /// No send starts at or after this (µs on `clock`).
    pub deadline_us: u64,
    pub max_messages: u64,
    pub claimed: AtomicU64,
    /// Open-loop pacing: total messages/s over all senders; `None` sends back to back.
    pub rate: Option<f64>,
    pub senders: usize,
    /// Send `/echo` commands instead of plain messages.
    pub commands: bool,
    /// Every send carries a unique `Idempotency-Key` (as a client that retries safely sends):
    /// this prefix (unique per phase), the sender and its attempt.
    pub idempotency_keys: Option<String>,
    /// Per user (commands only): told when the app answered the user's command; a closed-loop
    /// sender waits for it before its next send, as a person waits for the app.
    pub answers: Vec<Arc<Notify>>,
}

/// How long a closed-loop sender waits for an app's answer before it sends again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What the accepted responses said about one conversation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accepted {
    pub count: u64,
    pub min_seq: u64,
    pub max_seq: u64,
}

impl Accepted {
    pub fn add(&mut self, seq: u64) {
        self.min_seq = if self.count == 0 {
            seq
        } else {
            self.min_seq.min(seq)
        };
        self.max_seq = self.max_seq.max(seq);
        self.count += 1;
    }

    pub fn merge(&mut self, other: &Accepted) {
        if other.count == 0 {
            return;
        }
        self.min_seq = if self.count == 0 {
            other.min_seq
        } else {
            self.min_seq.min(other.min_seq)
        };
        self.max_seq = self.max_seq.max(other.max_seq);
        self.count += other.count;
    }
}

#[derive(Default)]
pub struct SenderStats {
    pub attempted: u64,
    pub accepted: u64,
    pub measured: u64,
    pub last_measured_us: u64,
    /// Request round trip (send start to response), measured sends only.
    pub round_trip: Histogram,
    pub errors: Vec<(String, u64)>,
    /// One error response body, to show what the server said.
    pub error_sample: Option<String>,
    pub per_conv: Vec<Accepted>,
}

impl SenderStats {
    fn error(&mut self, what: String) {
        match self.errors.iter_mut().find(|(k, _)| *k == what) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((what, 1)),
        }
    }
}

#[derive(Deserialize)]
struct SentMessage {
    seq: u64,
}

/// Sender number `index` of `shared.senders`, posting as each of `slots` in turn.
pub async fn run(
    index: usize,
    slots: Vec<Slot>,
    shared: Arc<Shared>,
    conversations: usize,
) -> SenderStats {
    let mut stats = SenderStats {
        per_conv: vec![Accepted::default(); conversations],
        ..Default::default()
    };
    let Some(&addr) = shared.addrs.get(index % shared.addrs.len().max(1)) else {
        stats.error("no server address".into());
        return stats;
    };
    let clock = shared.clock;
    let mut body = Vec::with_capacity(128);
    let mut conn: Option<Conn> = None;
    let period_us = shared
        .rate
        .map(|r| shared.senders as f64 * 1e6 / r.max(1e-3));
    let mut next_us = shared.measure_from_us.min(clock.now_us()) as f64
        + period_us.map_or(0.0, |p| p * index as f64 / shared.senders.max(1) as f64);
    let mut turn = 0usize;
    while !slots.is_empty() {
        let sent_us = match period_us {
            Some(p) => {
                let at = next_us as u64;
                next_us += p;
                if at >= shared.deadline_us {
                    break;
                }
                tokio::time::sleep_until(clock.at(at).into()).await;
                at
            }
            None => clock.now_us(),
        };
        if sent_us >= shared.deadline_us
            || shared.claimed.fetch_add(1, Ordering::Relaxed) >= shared.max_messages
        {
            break;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    stats.error(format!("connect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.get(turn % slots.len()) else {
            break;
        };
        turn += 1;
        stats.attempted += 1;
        text::write_body(&mut body, sent_us, slot.user, shared.commands);
        let key = shared
            .idempotency_keys
            .as_ref()
            .map(|prefix| format!("{prefix}-{index}-{}", stats.attempted));
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            c.request_keyed(
                "POST",
                &slot.path,
                Some(&slot.auth),
                Some(&body),
                key.as_deref(),
            ),
        )
        .await;
        let now = clock.now_us();
        match outcome {
            Ok(Ok(resp)) if resp.status == shared.expect_status => {
                stats.accepted += 1;
                if shared.parse_seq {
                    match serde_json::from_slice::<SentMessage>(resp.body) {
                        Ok(m) => {
                            if let Some(a) = stats.per_conv.get_mut(slot.conv) {
                                a.add(m.seq);
                            }
                        }
                        Err(_) => stats.error("201 without a seq".into()),
                    }
                }
                if sent_us >= shared.measure_from_us {
                    stats.measured += 1;
                    stats.last_measured_us = now;
                    stats.round_trip.record(now.saturating_sub(sent_us));
                }
                if let (None, Some(answered)) = (period_us, shared.answers.get(slot.user))
                    && tokio::time::timeout(ANSWER_TIMEOUT, answered.notified())
                        .await
                        .is_err()
                {
                    stats.error(format!("no answer from the app within {ANSWER_TIMEOUT:?}"));
                }
            }
            Ok(Ok(resp)) => {
                let status = resp.status;
                if stats.error_sample.is_none() {
                    stats.error_sample = Some(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(resp.body)
                    ));
                }
                stats.error(format!("HTTP {status}"));
            }
            Ok(Err(e)) => {
                stats.error(format!("{e:#}"));
                conn = None;
            }
            Err(_) => {
                stats.error(format!("no response within {REQUEST_TIMEOUT:?}"));
                conn = None;
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_merges() {
        let mut a = Accepted::default();
        a.add(5);
        a.add(3);
        let mut b = Accepted::default();
        b.add(9);
        a.merge(&b);
        a.merge(&Accepted::default());
        assert_eq!((a.count, a.min_seq, a.max_seq), (3, 3, 9));
    }
}
