//! `{"type":"ack","conversation":"<id>","seq":N}`: the client has received everything up to N.
//! For a session whose `resume` named a device, it moves that device's delivery cursor (kept in
//! the store, coalesced, only forward), which a later `resume` of the same device starts from
//! and unread counts use. An ack for a conversation the user is not in is an error frame of code
//! `unknown_conversation`; acknowledging more than was sent is one of code `invalid`; neither is
//! stored.

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
        if !s.members.contains(&self.conversation) {
            return s
                .error(
                    "unknown_conversation",
                    "ack names a conversation you are not in",
                )
                .await;
        }
        let sent = s.sent.get(&self.conversation).copied().unwrap_or(0);
        if self.seq > sent || self.seq < 0 {
            return s
                .error("invalid", "ack names a seq that was not delivered")
                .await;
        }
        if let Some(device) = &s.device {
            s.state
                .store
                .ack_delivered(&s.user.id, device, &self.conversation, self.seq);
        }
        Ok(())
    }
}
