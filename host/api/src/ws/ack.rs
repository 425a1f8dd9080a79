//! `{"type":"ack","conversation":"<id>","seq":N}`: the client has received everything up to N.
//! Acknowledging more than was sent is an error frame; acks never move backward.

use super::{Session, SessionError};
use minihost_core::ConversationId;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ack {
    conversation: ConversationId,
    seq: i64,
}

impl Ack {
    pub(super) async fn run(self, s: &mut Session) -> Result<(), SessionError> {
        let sent = s.sent.get(&self.conversation).copied().unwrap_or(0);
        if self.seq > sent || self.seq < 0 {
            return s
                .error("invalid", "ack names a seq that was not delivered")
                .await;
        }
        let acked = s.acked.entry(self.conversation).or_insert(0);
        *acked = (*acked).max(self.seq);
        Ok(())
    }
}
