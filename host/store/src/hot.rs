//! The two reads every app event makes before it runs, answered from memory for a moment:
//! the apps installed in a conversation ([`Store::installs_hot`]) and a user's grant to an app
//! ([`Store::grant_hot`]). On SQLite each of them was a hand-off to sqlx's connection thread and
//! back; together they were 18 % of the server's samples in the app-command benchmark
//! (BENCHMARKS.md, "App commands off the read pool").
//!
//! Staleness is bounded three ways. An entry is served at most [`TTL`] after it was read. A
//! write through this store that changes what an entry holds (an install or uninstall, an
//! app's name, release or suspension, a grant) drops the affected entries before it returns,
//! and a read that raced with such a write is not kept (each map has a generation, bumped by
//! every such write; a read keeps its answer only if the generation did not move while it
//! ran). Writes made on another node arrive as invalidations, which the node applies with
//! [`Store::forget_installs`], [`Store::forget_grant`] and [`Store::forget_hot`].
//!
//! Only dispatch uses these. A capability call re-reads the grant from the database (the
//! sandbox's check is never served from here).

use crate::apps::Install;
use crate::grants::GrantRecord;
use crate::{Result, Store};
use minihost_core::{ConversationId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an entry may be served without reading the database again (the send path's bound,
/// ARCHITECTURE.md, "Invariants").
pub const TTL: Duration = Duration::from_secs(1);
/// Entries per map before it is cleared (bounds memory under a flood of distinct keys).
const MAX_ENTRIES: usize = 100_000;

/// Picks the entries a write made stale.
type Stale<'a, K, V> = &'a dyn Fn(&K, &V) -> bool;

/// A map of entries read at a generation, dropped whole when the generation moves.
struct Generational<K, V> {
    generation: AtomicU64,
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Generational<K, V> {
    fn new() -> Self {
        Generational {
            generation: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let map = self.map.lock().ok()?;
        let (value, at) = map.get(key)?;
        (at.elapsed() < TTL).then(|| value.clone())
    }

    /// The generation to pass to [`Self::put`] for a read that starts now.
    fn start(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `value`, read since generation `since`, unless something was written meanwhile.
    fn put(&self, since: u64, key: K, value: V) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        // Checked under the lock: `forget` bumps the generation before it takes the lock, so
        // a write that lands after this check clears the entry right after.
        if self.generation.load(Ordering::Acquire) != since {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    /// Drops the entries `stale` picks (all with `None`) and refuses reads in flight.
    fn forget(&self, stale: Option<Stale<'_, K, V>>) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.map.lock() {
            match stale {
                Some(stale) => map.retain(|k, (v, _)| !stale(k, v)),
                None => map.clear(),
            }
        }
    }
}

/// The store's hot reads. One per store, shared by its clones.
pub(crate) struct HotReads {
    installs: Generational<ConversationId, Arc<[Install]>>,
    grants: Generational<(UserId, String), Option<GrantRecord>>,
}

impl Default for HotReads {
    fn default() -> Self {
        HotReads {
            installs: Generational::new(),
            grants: Generational::new(),
        }
    }
}

impl Store {
    /// [`Store::installs`], served from memory if read less than [`TTL`] ago and nothing this
    /// node knows of changed it since.
    pub async fn installs_hot(&self, conversation: &ConversationId) -> Result<Arc<[Install]>> {
        let hot = &self.hot.installs;
        if let Some(found) = hot.get(conversation) {
            return Ok(found);
        }
        let since = hot.start();
        let read: Arc<[Install]> = self.installs(conversation).await?.into();
        hot.put(since, conversation.clone(), read.clone());
        Ok(read)
    }

    /// [`Store::grant`], served from memory if read less than [`TTL`] ago and nothing this
    /// node knows of changed it since. For dispatch only: capability checks read the database.
    pub async fn grant_hot(&self, user: &UserId, app: &str) -> Result<Option<GrantRecord>> {
        let hot = &self.hot.grants;
        let key = (user.clone(), app.to_owned());
        if let Some(found) = hot.get(&key) {
            return Ok(found);
        }
        let since = hot.start();
        let read = self.grant(user, app).await?;
        hot.put(since, key, read.clone());
        Ok(read)
    }

    /// Drops the remembered installs: of `conversation`, or of every conversation (an app's
    /// name, release or suspension changed: it may be installed anywhere).
    pub fn forget_installs(&self, conversation: Option<&ConversationId>) {
        match conversation {
            Some(c) => self.hot.installs.forget(Some(&|k, _| k == c)),
            None => self.hot.installs.forget(None),
        }
    }

    /// Drops the remembered grant of `user` to `app`.
    pub fn forget_grant(&self, user: &UserId, app: &str) {
        self.hot
            .grants
            .forget(Some(&|(u, a), _| u == user && a == app));
    }

    /// Drops everything remembered (this node may have missed invalidations).
    pub fn forget_hot(&self) {
        self.hot.installs.forget(None);
        self.hot.grants.forget(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_with_a_write_is_not_kept() {
        let g: Generational<u32, &str> = Generational::new();
        let since = g.start();
        g.forget(None); // a write lands while the read runs
        g.put(since, 1, "old");
        assert_eq!(g.get(&1), None);
        let since = g.start();
        g.put(since, 1, "new");
        assert_eq!(g.get(&1), Some("new"));
    }

    #[test]
    fn forget_drops_only_what_it_names() {
        let g: Generational<u32, &str> = Generational::new();
        g.put(g.start(), 1, "a");
        g.put(g.start(), 2, "b");
        g.forget(Some(&|k, _| *k == 1));
        assert_eq!(g.get(&1), None);
        assert_eq!(g.get(&2), Some("b"));
    }
}
