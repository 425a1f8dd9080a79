//! `{"type":"resume","cursors":{"<conversation id>": <last seq seen>},"device":"laptop"}`: send
//! everything after each cursor, then `{"type":"resumed"}`. `device` (optional, 1 to 32
//! printable ASCII characters, no space at either end) names the client's device: its acks
//! then move that device's delivery cursors, and every conversation `cursors` does not name
//! resumes from the device's own cursor, if it has one. A session's device is named once.
//!
//! The user's memberships (with each conversation's last seq) come from one query, whatever the
//! number of cursors; only conversations with something newer than their cursor are read.
//! Cursors for conversations the user is not in are ignored and reported once in `resumed`:
//! their count in `unknown_count`, the first few in `unknown`.

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
/// Longest device name, in characters.
const MAX_DEVICE: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Resume {
    cursors: BTreeMap<String, i64>,
    #[serde(default)]
    device: Option<String>,
}

/// Whether `name` is a device name: 1 to [`MAX_DEVICE`] printable ASCII characters, no space
/// at either end.
fn valid_device(name: &str) -> bool {
    (1..=MAX_DEVICE).contains(&name.len())
        && name.bytes().all(|b| (b' '..=b'~').contains(&b))
        && name.trim() == name
}

impl Resume {
    pub(super) async fn run(self, s: &mut Session, _sub: &Subscriber) -> Result<(), SessionError> {
        if self.cursors.len() > MAX_CURSORS {
            return s.error("invalid", "too many cursors").await;
        }
        let mut cursors = self.cursors;
        if let Some(device) = self.device {
            if !valid_device(&device) {
                return s
                    .error(
                        "invalid",
                        "device: 1 to 32 printable ASCII characters, no space at either end",
                    )
                    .await;
            }
            if s.device.as_ref().is_some_and(|named| *named != device) {
                return s
                    .error("invalid", "this session already named another device")
                    .await;
            }
            for (conv, seq) in s.state.store.delivery_cursors(&s.user.id, &device).await? {
                cursors.entry(conv.as_str().to_owned()).or_insert(seq);
            }
            s.device = Some(device);
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
        for (conv, cursor) in cursors {
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

#[cfg(test)]
mod tests {
    use super::valid_device;

    #[test]
    fn device_names_are_short_and_printable() {
        for ok in ["laptop", "Bob's phone 2", "a", &"x".repeat(32)] {
            assert!(valid_device(ok), "{ok:?}");
        }
        for bad in [
            "",
            " laptop",
            "laptop ",
            "lap\ttop",
            "lap\ntop",
            "téléphone",
            &"x".repeat(33),
        ] {
            assert!(!valid_device(bad), "{bad:?}");
        }
    }
}
