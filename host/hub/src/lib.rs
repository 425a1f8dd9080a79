//! Live fan-out. Events are published to [`Topic`]s (a conversation, or a user's private
//! channel); connected clients hold a [`Subscriber`] on the [`LocalHub`] of their node and
//! subscribe it to topics. Publishing goes through the [`Fanout`] trait so that a multi-node
//! deployment can put a broker (NATS) between publishers and every node's local hub.
//!
//! Delivery is best-effort by design: the database is the source of truth. A subscriber that
//! falls too far behind is cut off (its queue closes) and its client resumes from its cursors;
//! when a node may have missed events from other nodes, every subscriber gets [`Event::Resync`]
//! and re-reads what it follows from the database.
//!
//! Per-node caches are kept right through the same seam: [`Fanout::invalidate`] tells every
//! node's listeners (registered with [`LocalHub::on_invalidate`]) what changed.

use bytes::Bytes;
use minihost_core::{ConversationId, Message, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// Where an event is published.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everyone connected who is a member of the conversation.
    Conversation(ConversationId),
    /// Every connection of one user.
    User(UserId),
}

/// Something pushed to connected clients.
#[derive(Debug, Clone)]
pub enum Event {
    /// A new message; `frame` is its WebSocket frame, serialised once for every recipient.
    Message {
        /// The message.
        message: Arc<Message>,
        /// `{"type":"message","conversation":..,"seq":..,"message":{..}}`.
        frame: Bytes,
    },
    /// The user was added to a conversation: subscribe to it.
    Joined(ConversationId),
    /// The user left or was removed from a conversation: unsubscribe.
    Left(ConversationId),
    /// Any other typed event, already serialised as a JSON object with a `type` field.
    Json(Bytes),
    /// Sessions of the user ended, or the account changed: the connections it names close.
    Revoked(Revocation),
    /// Events may have been lost on the way to this node (its broker connection dropped, it
    /// fell behind the broker, or a publisher lost some): re-read from the database whatever
    /// is followed. Never sent to clients as such; broadcast with [`LocalHub::broadcast`].
    Resync,
}

/// What a [`Event::Revoked`] ends (published to [`Topic::User`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// The session with this public id was signed out or revoked.
    Session {
        /// Its public id (`ses_…`).
        id: String,
    },
    /// Every session of the user but `keep` was revoked (a password change keeps the session
    /// that made it; a disabled account keeps none).
    AllSessions {
        /// The session that stays, if any.
        keep: Option<String>,
    },
    /// The account changed (its role): every connection closes, and may reconnect with the same
    /// token to act under the new role.
    AccountChanged,
}

impl Revocation {
    /// Whether this ends the session with public id `session` (rather than asking it to
    /// reconnect).
    pub fn ends(&self, session: &str) -> bool {
        match self {
            Revocation::Session { id } => id == session,
            Revocation::AllSessions { keep } => keep.as_deref() != Some(session),
            Revocation::AccountChanged => false,
        }
    }
}

impl Event {
    /// A message event with its frame.
    pub fn message(message: Message) -> Self {
        #[derive(serde::Serialize)]
        struct Frame<'a> {
            r#type: &'static str,
            conversation: &'a ConversationId,
            seq: i64,
            message: &'a Message,
        }
        let frame = serde_json::to_vec(&Frame {
            r#type: "message",
            conversation: &message.conversation,
            seq: message.seq,
            message: &message,
        })
        .unwrap_or_default();
        Event::Message {
            message: Arc::new(message),
            frame: Bytes::from(frame),
        }
    }

    /// A typed JSON event (`value` must be an object with a `type` field).
    pub fn json(value: &serde_json::Value) -> Self {
        Event::Json(Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
    }
}

/// Something a node may hold in a cache that changed: every node's listeners drop what it
/// names. The database is the truth; this only shortens how long a cache may lag it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invalidation {
    /// A user's sessions ended, or the account changed (see [`Revocation`]).
    Sessions {
        /// Whose.
        user: UserId,
        /// Which.
        what: Revocation,
    },
    /// `user` left or was removed from `conversation`.
    Member {
        /// The conversation.
        conversation: ConversationId,
        /// The former member.
        user: UserId,
    },
    /// An app was suspended: what waits for it (consent requests) is dropped.
    AppSuspended {
        /// The app id.
        app: String,
    },
    /// An app's versions, release or suspension changed (a version stored or replaced, a
    /// release, a rollback, a lifted suspension): what a node remembers of its versions and
    /// installs is dropped.
    AppChanged {
        /// The app id.
        app: String,
    },
    /// The apps installed in `conversation` changed (an install, an uninstall, a trial).
    Installs {
        /// The conversation.
        conversation: ConversationId,
    },
    /// `user`'s grant to `app` changed without a consent answer (a revocation).
    Grant {
        /// Whose.
        user: UserId,
        /// The app id.
        app: String,
    },
    /// `user` answered the consent request of `app` (the grant is stored): the node holding
    /// the events that waited for the answer runs them.
    ConsentAnswered {
        /// Who answered.
        user: UserId,
        /// The app id.
        app: String,
    },
    /// This node may have missed invalidations (its broker connection dropped): drop every
    /// cache. Local only; never published.
    Everything,
}

/// Publishes events to every node's subscribers.
pub trait Fanout: Send + Sync + 'static {
    /// Delivers `event` to the subscribers of `topic`, on this node and any other.
    fn publish(&self, topic: Topic, event: Event);

    /// Tells the invalidation listeners of this node (at once, before returning) and of every
    /// other node that `what` changed.
    fn invalidate(&self, what: Invalidation);
}

/// A function told of every [`Invalidation`] that reaches this node.
pub type InvalidationListener = Arc<dyn Fn(&Invalidation) + Send + Sync>;

/// Events one subscriber may have queued before it is cut off as too slow.
pub const QUEUE_PER_SUBSCRIBER: usize = 1024;

struct Entry {
    tx: mpsc::Sender<Event>,
    topics: Vec<Topic>,
}

#[derive(Default)]
struct Inner {
    topics: HashMap<Topic, Vec<(u64, mpsc::Sender<Event>)>>,
    subs: HashMap<u64, Entry>,
}

/// The in-process hub: subscriptions of this node's connections, and its invalidation
/// listeners.
#[derive(Default)]
pub struct LocalHub {
    inner: RwLock<Inner>,
    next: AtomicU64,
    listeners: RwLock<Vec<InvalidationListener>>,
}

impl LocalHub {
    /// A new, empty hub.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A new subscriber with no topics yet.
    pub fn subscriber(self: &Arc<Self>) -> Subscriber {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_PER_SUBSCRIBER);
        if let Ok(mut inner) = self.inner.write() {
            inner.subs.insert(
                id,
                Entry {
                    tx,
                    topics: Vec::new(),
                },
            );
        }
        Subscriber {
            id,
            rx,
            hub: self.clone(),
        }
    }

    /// Number of live subscribers (for metrics and tests).
    pub fn subscribers(&self) -> usize {
        self.inner.read().map(|i| i.subs.len()).unwrap_or(0)
    }

    /// Delivers to this node's subscribers only (what a broker bridge calls on receipt).
    pub fn deliver(&self, topic: &Topic, event: Event) {
        let mut too_slow = Vec::new();
        if let Ok(inner) = self.inner.read()
            && let Some(list) = inner.topics.get(topic)
        {
            for (id, tx) in list {
                if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(event.clone()) {
                    too_slow.push(*id);
                }
            }
        }
        for id in too_slow {
            tracing::info!(subscriber = id, "subscriber too slow; cutting it off");
            self.remove(id);
        }
    }

    /// Delivers `event` to every subscriber of this node (what [`Event::Resync`] needs).
    pub fn broadcast(&self, event: &Event) {
        let mut too_slow = Vec::new();
        if let Ok(inner) = self.inner.read() {
            for (id, entry) in &inner.subs {
                if let Err(mpsc::error::TrySendError::Full(_)) = entry.tx.try_send(event.clone()) {
                    too_slow.push(*id);
                }
            }
        }
        for id in too_slow {
            tracing::info!(subscriber = id, "subscriber too slow; cutting it off");
            self.remove(id);
        }
    }

    /// Registers `listener` for every invalidation that reaches this node.
    pub fn on_invalidate(&self, listener: impl Fn(&Invalidation) + Send + Sync + 'static) {
        if let Ok(mut list) = self.listeners.write() {
            list.push(Arc::new(listener));
        }
    }

    /// Tells this node's invalidation listeners (what a broker bridge calls on receipt).
    pub fn invalidate_here(&self, what: &Invalidation) {
        let list = self.listeners.read().map(|l| l.clone()).unwrap_or_default();
        for listener in list {
            listener(what);
        }
    }

    fn subscribe(&self, id: u64, topic: Topic) {
        if let Ok(mut inner) = self.inner.write() {
            let Inner { topics, subs } = &mut *inner;
            let Some(entry) = subs.get_mut(&id) else {
                return;
            };
            if entry.topics.contains(&topic) {
                return;
            }
            entry.topics.push(topic.clone());
            topics
                .entry(topic)
                .or_default()
                .push((id, entry.tx.clone()));
        }
    }

    fn unsubscribe(&self, id: u64, topic: &Topic) {
        if let Ok(mut inner) = self.inner.write() {
            if let Some(entry) = inner.subs.get_mut(&id) {
                entry.topics.retain(|t| t != topic);
            }
            remove_from_topic(&mut inner.topics, topic, id);
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut inner) = self.inner.write()
            && let Some(entry) = inner.subs.remove(&id)
        {
            for topic in &entry.topics {
                remove_from_topic(&mut inner.topics, topic, id);
            }
        }
    }
}

fn remove_from_topic(
    topics: &mut HashMap<Topic, Vec<(u64, mpsc::Sender<Event>)>>,
    topic: &Topic,
    id: u64,
) {
    if let Some(list) = topics.get_mut(topic) {
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            topics.remove(topic);
        }
    }
}

impl Fanout for LocalHub {
    fn publish(&self, topic: Topic, event: Event) {
        self.deliver(&topic, event);
    }

    fn invalidate(&self, what: Invalidation) {
        self.invalidate_here(&what);
    }
}

/// One connection's queue of events. Dropping it unsubscribes from everything.
pub struct Subscriber {
    id: u64,
    rx: mpsc::Receiver<Event>,
    hub: Arc<LocalHub>,
}

impl Subscriber {
    /// Starts receiving events published to `topic`.
    pub fn subscribe(&self, topic: Topic) {
        self.hub.subscribe(self.id, topic);
    }

    /// Stops receiving events published to `topic`.
    pub fn unsubscribe(&self, topic: &Topic) {
        self.hub.unsubscribe(self.id, topic);
    }

    /// The next event; `None` once the hub cut this subscriber off for being too slow.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is queued now (a closed queue shows at the next [`Self::recv`]).
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: i64) -> Event {
        Event::message(Message {
            id: minihost_core::MessageId::generate(),
            conversation: ConversationId::from_string("c_1"),
            seq,
            sender: minihost_core::Sender::App {
                id: "a".into(),
                name: "A".into(),
            },
            content: minihost_core::Content::text("x"),
            created_at: String::new(),
            created_at_ms: 0,
        })
    }

    #[tokio::test]
    async fn delivers_to_subscribers_of_the_topic_only() {
        let hub = LocalHub::new();
        let conv = Topic::Conversation(ConversationId::from_string("c_1"));
        let mut a = hub.subscriber();
        let mut b = hub.subscriber();
        a.subscribe(conv.clone());
        hub.publish(conv.clone(), msg(1));
        match a.recv().await {
            Some(Event::Message { message, frame }) => {
                assert_eq!(message.seq, 1);
                let v: serde_json::Value = serde_json::from_slice(&frame).unwrap();
                assert_eq!(v["type"], "message");
                assert_eq!(v["seq"], 1);
                assert_eq!(v["conversation"], "c_1");
            }
            other => panic!("{other:?}"),
        }
        assert!(b.rx.try_recv().is_err());
        a.unsubscribe(&conv);
        hub.publish(conv, msg(2));
        assert!(a.rx.try_recv().is_err());
        drop(b);
        assert_eq!(hub.subscribers(), 1);
    }

    #[tokio::test]
    async fn broadcasts_reach_every_subscriber_and_invalidations_every_listener() {
        let hub = LocalHub::new();
        let mut a = hub.subscriber();
        let mut b = hub.subscriber();
        a.subscribe(Topic::User(UserId::from_string("u_1")));
        hub.broadcast(&Event::Resync);
        assert!(matches!(a.recv().await, Some(Event::Resync)));
        assert!(matches!(b.recv().await, Some(Event::Resync)));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        hub.on_invalidate(move |what| s.lock().unwrap().push(what.clone()));
        let what = Invalidation::AppChanged { app: "echo".into() };
        hub.invalidate(what.clone());
        assert_eq!(*seen.lock().unwrap(), vec![what]);
    }

    #[test]
    fn revocations_and_invalidations_cross_the_wire_as_json() {
        let what = Invalidation::Sessions {
            user: UserId::from_string("u_1"),
            what: Revocation::AllSessions { keep: None },
        };
        let text = serde_json::to_string(&what).unwrap();
        assert_eq!(
            serde_json::from_str::<Invalidation>(&text).unwrap(),
            what,
            "{text}"
        );
        let r = Revocation::Session { id: "ses_1".into() };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, r#"{"kind":"session","id":"ses_1"}"#);
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_cut_off() {
        let hub = LocalHub::new();
        let conv = Topic::Conversation(ConversationId::from_string("c_1"));
        let mut slow = hub.subscriber();
        slow.subscribe(conv.clone());
        for i in 0..=QUEUE_PER_SUBSCRIBER as i64 {
            hub.publish(conv.clone(), msg(i));
        }
        let mut n = 0;
        while slow.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(
            n, QUEUE_PER_SUBSCRIBER,
            "queued events drain, then the queue closes"
        );
        assert_eq!(hub.subscribers(), 0);
    }
}
