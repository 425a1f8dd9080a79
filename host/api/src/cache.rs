//! A short-lived, per-node cache for the two reads every message send makes: session token →
//! (session id, user), and (conversation, user) → membership. Entries live [`TTL`]; this node
//! drops them at once when it revokes a session (sign-out, revocation by id, a password change,
//! a disabled account, a role change) or removes a member, and other nodes drop them when the
//! [`Invalidation`] reaches them (through NATS, milliseconds); should it not arrive, an entry is
//! still served no longer than [`TTL`], which is the bound. Only successful lookups are cached.

use minihost_core::{ConversationId, UserId};
use minihost_hub::{Invalidation, Revocation};
use minihost_store::{Conversation, User};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry may be served without asking the database again.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries per map before it is cleared (bounds memory under a flood of distinct keys).
const MAX_ENTRIES: usize = 100_000;

/// A cached session: its public id and its user.
type Session = (String, User);

/// The cache. One per node.
#[derive(Default)]
pub struct HotCache {
    sessions: Mutex<HashMap<String, (Session, Instant)>>,
    members: Mutex<HashMap<(ConversationId, UserId), (Conversation, Instant)>>,
}

fn get<K: std::hash::Hash + Eq, V: Clone>(
    map: &Mutex<HashMap<K, (V, Instant)>>,
    key: &K,
) -> Option<V> {
    let map = map.lock().ok()?;
    let (v, at) = map.get(key)?;
    (at.elapsed() < TTL).then(|| v.clone())
}

fn put<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, (V, Instant)>>, key: K, value: V) {
    if let Ok(mut map) = map.lock() {
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }
}

impl HotCache {
    /// The session id and user of a session token, if cached and fresh.
    pub fn session(&self, token: &str) -> Option<(String, User)> {
        get(&self.sessions, &token.to_owned())
    }

    /// Remembers a session token's id and user.
    pub fn put_session(&self, token: &str, id: String, user: User) {
        put(&self.sessions, token.to_owned(), (id, user));
    }

    /// Forgets the session with public id `id` (revoked by id).
    pub fn drop_session_id(&self, id: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, ((sid, _), _)| sid != id);
        }
    }

    /// Forgets every session of `user` (all revoked, or the account changed).
    pub fn drop_user(&self, user: &UserId) {
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, ((_, u), _)| &u.id != user);
        }
    }

    /// Drops what `what` makes stale (an invalidation made here or on another node).
    pub fn apply(&self, what: &Invalidation) {
        match what {
            Invalidation::Sessions {
                what: Revocation::Session { id },
                ..
            } => self.drop_session_id(id),
            Invalidation::Sessions { user, .. } => self.drop_user(user),
            Invalidation::Member { conversation, user } => self.drop_member(conversation, user),
            Invalidation::Everything => {
                if let Ok(mut map) = self.sessions.lock() {
                    map.clear();
                }
                if let Ok(mut map) = self.members.lock() {
                    map.clear();
                }
            }
            Invalidation::AppSuspended { .. }
            | Invalidation::AppChanged { .. }
            | Invalidation::ConsentAnswered { .. } => {}
        }
    }

    /// Forgets a session token (signed out).
    pub fn drop_session(&self, token: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(token);
        }
    }

    /// The conversation, if `user` was a member of it a moment ago.
    pub fn member(&self, conversation: &ConversationId, user: &UserId) -> Option<Conversation> {
        get(&self.members, &(conversation.clone(), user.clone()))
    }

    /// Remembers a membership.
    pub fn put_member(&self, user: &UserId, conversation: Conversation) {
        put(
            &self.members,
            (conversation.id.clone(), user.clone()),
            conversation,
        );
    }

    /// Forgets a membership (the user left or was removed).
    pub fn drop_member(&self, conversation: &ConversationId, user: &UserId) {
        if let Ok(mut map) = self.members.lock() {
            map.remove(&(conversation.clone(), user.clone()));
        }
    }
}
