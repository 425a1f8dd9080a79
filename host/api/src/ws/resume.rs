//! `{"type":"resume","cursors":{"<conversation id>": <last seq seen>}}`: send everything after
//! each cursor, then `{"type":"resumed"}`. Unknown or foreign conversations are reported in
//! `resumed.unknown`, and nothing of them is sent.

use super::{Session, SessionError};
use minihost_core::ConversationId;
use minihost_hub::Subscriber;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Most conversations one resume may name.
const MAX_CURSORS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resume {
    cursors: BTreeMap<String, i64>,
}

impl Resume {
    pub(super) async fn run(self, s: &mut Session, _sub: &Subscriber) -> Result<(), SessionError> {
        if self.cursors.len() > MAX_CURSORS {
            return s.error("invalid", "too many cursors").await;
        }
        let mut unknown = Vec::new();
        for (conv, cursor) in self.cursors {
            let conv = ConversationId::from_string(conv);
            if cursor < 0 || !s.state.store.is_member(&conv, &s.user.id).await? {
                unknown.push(conv);
                continue;
            }
            let start = s.sent.get(&conv).copied().unwrap_or(cursor).max(cursor);
            s.backlog(conv, start, None).await?;
        }
        s.send_json(&json!({"type": "resumed", "unknown": unknown}))
            .await
    }
}
