//! How hub events travel between nodes: the payload of a NATS message, and its kind in the
//! `Minihost-Kind` header. A message event travels as its WebSocket frame (serialised once, on
//! the node that committed it); other events as their JSON or their conversation id.

use bytes::Bytes;
use minihost_core::{ConversationId, Message};
use minihost_hub::{Event, Revocation};
use std::sync::Arc;

/// The header that names an event's kind.
pub const KIND: &str = "Minihost-Kind";

/// Why a received payload was dropped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// An unknown `Minihost-Kind` (a newer node?), or none.
    #[error("unknown event kind {0:?}")]
    Kind(String),
    /// The payload does not parse as its kind.
    #[error("malformed {kind} payload: {why}")]
    Payload {
        /// The kind.
        kind: &'static str,
        /// What failed.
        why: String,
    },
}

/// The kind and payload of `event`; `None` for an event that never leaves its node.
pub fn encode(event: &Event) -> Option<(&'static str, Bytes)> {
    Some(match event {
        Event::Message { frame, .. } => ("message", frame.clone()),
        Event::Json(bytes) => ("json", bytes.clone()),
        Event::Joined(c) => ("joined", Bytes::copy_from_slice(c.as_str().as_bytes())),
        Event::Left(c) => ("left", Bytes::copy_from_slice(c.as_str().as_bytes())),
        Event::Revoked(r) => ("revoked", Bytes::from(serde_json::to_vec(r).ok()?)),
        Event::Resync => return None,
    })
}

fn text(kind: &'static str, payload: &[u8]) -> Result<String, WireError> {
    String::from_utf8(payload.to_vec()).map_err(|e| WireError::Payload {
        kind,
        why: e.to_string(),
    })
}

/// The event a received `kind` and `payload` carry.
pub fn decode(kind: &str, payload: Bytes) -> Result<Event, WireError> {
    #[derive(serde::Deserialize)]
    struct Frame {
        message: Message,
    }
    Ok(match kind {
        "message" => {
            let frame: Frame =
                serde_json::from_slice(&payload).map_err(|e| WireError::Payload {
                    kind: "message",
                    why: e.to_string(),
                })?;
            Event::Message {
                message: Arc::new(frame.message),
                frame: payload,
            }
        }
        "json" => Event::Json(payload),
        "joined" => Event::Joined(ConversationId::from_string(text("joined", &payload)?)),
        "left" => Event::Left(ConversationId::from_string(text("left", &payload)?)),
        "revoked" => {
            Event::Revoked(serde_json::from_slice::<Revocation>(&payload).map_err(|e| {
                WireError::Payload {
                    kind: "revoked",
                    why: e.to_string(),
                }
            })?)
        }
        other => return Err(WireError::Kind(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: Event) -> Event {
        let (kind, payload) = encode(&event).unwrap();
        decode(kind, payload).unwrap()
    }

    #[test]
    fn events_round_trip() {
        let m = Event::message(Message {
            id: minihost_core::MessageId::generate(),
            conversation: ConversationId::from_string("c_1"),
            seq: 7,
            sender: minihost_core::Sender::App {
                id: "a".into(),
                name: "A".into(),
            },
            content: minihost_core::Content::text("hi"),
            created_at: "2026-01-01T00:00:00Z".into(),
            created_at_ms: 1,
        });
        let Event::Message { message, frame } = &m else {
            unreachable!()
        };
        match round_trip(m.clone()) {
            Event::Message {
                message: got,
                frame: got_frame,
            } => {
                assert_eq!(got, *message);
                assert_eq!(got_frame, *frame);
            }
            other => panic!("{other:?}"),
        }
        match round_trip(Event::Joined(ConversationId::from_string("c_2"))) {
            Event::Joined(c) => assert_eq!(c.as_str(), "c_2"),
            other => panic!("{other:?}"),
        }
        let r = Revocation::AllSessions {
            keep: Some("ses_1".into()),
        };
        match round_trip(Event::Revoked(r.clone())) {
            Event::Revoked(got) => assert_eq!(got, r),
            other => panic!("{other:?}"),
        }
        assert!(encode(&Event::Resync).is_none());
    }

    #[test]
    fn unknown_or_malformed_payloads_are_errors() {
        assert!(matches!(
            decode("telepathy", Bytes::new()),
            Err(WireError::Kind(_))
        ));
        assert!(matches!(
            decode("message", Bytes::from_static(b"{}")),
            Err(WireError::Payload { .. })
        ));
    }
}
