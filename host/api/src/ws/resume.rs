//! `{"type":"resume","cursors":{"<conversation id>": <last seq seen>}}`: send everything after
//! each cursor, then `{"type":"resumed"}`. The user's memberships (with each conversation's last
//! seq) come from one query, whatever the number of cursors; only conversations with something
//! newer than their cursor are read. Cursors for conversations the user is not in are ignored and
//! reported once in `resumed`: their count in `unknown_count`, the first few in `unknown`.

use super::{Session, SessionError};
use minihost_core::ConversationId;
use minihost_hub::Subscriber;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// Most conversations one resume may name.
const MAX_CURSORS: usize = 10_000;
/// Most unknown conversations named back in `resumed.unknown`.
const MAX_UNKNOWN_LISTED: usize = 20;

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
        let last_seqs: HashMap<ConversationId, i64> = s
            .state
            .store
            .last_seqs_of(&s.user.id)
            .await?
            .into_iter()
            .collect();
        let mut unknown = Vec::new();
        let mut unknown_count = 0usize;
        for (conv, cursor) in self.cursors {
            let conv = ConversationId::from_string(conv);
            let Some(&last) = last_seqs.get(&conv).filter(|_| cursor >= 0) else {
                unknown_count += 1;
                if unknown.len() < MAX_UNKNOWN_LISTED {
                    unknown.push(conv);
                }
                continue;
            };
            let start = s.sent.get(&conv).copied().unwrap_or(cursor).max(cursor);
            if last > start {
                s.backlog(conv, start, None).await?;
            } else {
                s.sent.insert(conv, start);
            }
        }
        s.send_json(&json!({
            "type": "resumed",
            "unknown": unknown,
            "unknown_count": unknown_count,
        }))
        .await
    }
}
