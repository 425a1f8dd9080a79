//! A short-lived, per-node cache for the two reads every message send makes: session token →
//! (session id, user), and (conversation, user) → membership. Entries live [`TTL`]; this node
//! drops them at once when it revokes a session (sign-out, revocation by id, a password change,
//! a disabled account, a role change) or removes a member, and other nodes drop them when the
//! [`Invalidation`] reaches them (through NATS, milliseconds); should it not arrive, an entry is
//! still served no longer than [`TTL`], which is the bound. Only successful lookups are cached.

use minihost_core::{ConversationId, UserId};
use minihost_hub::{Invalidation, Revocation};
use minihost_store::User;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry may be served without asking the database again.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries per map before it is cleared (bounds memory under a flood of distinct keys).
const MAX_ENTRIES: usize = 100_000;

/// A cached session: its public id and its user (shared with the requests it serves: a hit
/// copies no strings).
type Session = (String, Arc<User>);

/// The cache. One per node.
#[derive(Default)]
pub struct HotCache {
    /// By session token.
    sessions: Mutex<HashMap<String, (Session, Instant)>>,
    /// By user, then conversation: when the membership was read (a lookup borrows its keys).
    members: Mutex<HashMap<UserId, HashMap<ConversationId, Instant>>>,
}

/// Inserts into a map that is cleared first when full (bounds memory under a flood of keys).
fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

impl HotCache {
    /// The session id and user of a session token, if cached and fresh.
    pub fn session(&self, token: &str) -> Option<(String, Arc<User>)> {
        let map = self.sessions.lock().ok()?;
        let (session, at) = map.get(token)?;
        (at.elapsed() < TTL).then(|| session.clone())
    }

    /// Remembers a session token's id and user.
    pub fn put_session(&self, token: &str, id: String, user: Arc<User>) {
        if let Ok(mut map) = self.sessions.lock() {
            insert_bounded(&mut map, token.to_owned(), ((id, user), Instant::now()));
        }
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
            | Invalidation::Installs { .. }
            | Invalidation::Grant { .. }
            | Invalidation::ConsentAnswered { .. } => {}
        }
    }

    /// Forgets a session token (signed out).
    pub fn drop_session(&self, token: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.remove(token);
        }
    }

    /// Whether `user` was a member of `conversation` a moment ago.
    pub fn member(&self, conversation: &ConversationId, user: &UserId) -> bool {
        let Ok(map) = self.members.lock() else {
            return false;
        };
        map.get(user)
            .and_then(|convs| convs.get(conversation))
            .is_some_and(|at| at.elapsed() < TTL)
    }

    /// Remembers a membership.
    pub fn put_member(&self, user: &UserId, conversation: &ConversationId) {
        if let Ok(mut map) = self.members.lock() {
            match map.get_mut(user) {
                Some(convs) => insert_bounded(convs, conversation.clone(), Instant::now()),
                None => {
                    let convs = HashMap::from([(conversation.clone(), Instant::now())]);
                    insert_bounded(&mut map, user.clone(), convs);
                }
            }
        }
    }

    /// Forgets a membership (the user left or was removed).
    pub fn drop_member(&self, conversation: &ConversationId, user: &UserId) {
        if let Ok(mut map) = self.members.lock()
            && let Some(convs) = map.get_mut(user)
        {
            convs.remove(conversation);
            if convs.is_empty() {
                map.remove(user);
            }
        }
    }
}
