//! The node's memory of PINs it has verified: after an argon2id check succeeds, a keyed digest
//! of the PIN bound to the stored hash is kept for the user for [`PIN_MEMORY_TTL`], so the next
//! confirmations by the same user within that time cost an HMAC, not an argon2 run (argon2 with
//! the PIN parameters is about a millisecond of a core: at two cores it alone would cap a node
//! near 2,000 confirmations a second).
//!
//! What it does not change: every confirmation still needs the PIN; a wrong PIN never matches
//! the digest, so it goes to argon2 and is counted towards the lock; a changed PIN changes the
//! stored hash the digest is bound to, so the old PIN stops matching at once; the lock is
//! checked before. The digest's key is random per process and never leaves memory, so the
//! remembered digests are useless outside this process (and a process whose memory is read
//! has lost its sessions too). The memory holds at most [`MAX_REMEMBERED`] users.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a verified PIN is remembered for its user.
pub const PIN_MEMORY_TTL: Duration = Duration::from_secs(15 * 60);

/// Most users remembered at once; past it, expired entries are dropped, then new ones skipped.
pub const MAX_REMEMBERED: usize = 100_000;

type Digest = [u8; 32];

/// Verified PINs, per user, as keyed digests.
pub struct PinMemory {
    key: [u8; 32],
    ttl: Duration,
    entries: Mutex<HashMap<String, (Digest, Instant)>>,
}

impl Default for PinMemory {
    fn default() -> Self {
        Self::new(PIN_MEMORY_TTL)
    }
}

impl PinMemory {
    /// An empty memory whose entries last `ttl`, with a fresh random key.
    pub fn new(ttl: Duration) -> Self {
        let mut key = [0u8; 32];
        // Without randomness the key stays zero: digests are then only as secret as the
        // process's memory, which is where they live anyway.
        if getrandom::fill(&mut key).is_err() {
            tracing::warn!("no randomness for the PIN memory's key");
        }
        PinMemory {
            key,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, user: &str, stored_hash: &str, pin: &str) -> Digest {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        for part in [user, stored_hash, pin] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `pin` is the one verified for `user` against `stored_hash` within the TTL.
    pub fn recalls(&self, user: &str, stored_hash: &str, pin: &str) -> bool {
        let want = self.digest(user, stored_hash, pin);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries
            .get(user)
            .is_some_and(|(digest, at)| at.elapsed() < self.ttl && bool::from(digest.ct_eq(&want)))
    }

    /// Remembers that `pin` verified for `user` against `stored_hash` (argon2 said so).
    pub fn remember(&self, user: &str, stored_hash: &str, pin: &str) {
        let digest = self.digest(user, stored_hash, pin);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_REMEMBERED && !entries.contains_key(user) {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_REMEMBERED {
                return;
            }
        }
        entries.insert(user.to_owned(), (digest, Instant::now()));
    }

    /// Forgets `user`'s PIN (a wrong try, a PIN change).
    pub fn forget(&self, user: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recalls_only_the_verified_pin_for_the_same_hash_and_user() {
        let m = PinMemory::default();
        assert!(!m.recalls("u1", "hash-a", "246810"));
        m.remember("u1", "hash-a", "246810");
        assert!(m.recalls("u1", "hash-a", "246810"));
        assert!(!m.recalls("u1", "hash-a", "246811"), "another PIN");
        assert!(!m.recalls("u1", "hash-b", "246810"), "a changed PIN hash");
        assert!(!m.recalls("u2", "hash-a", "246810"), "another user");
        m.forget("u1");
        assert!(!m.recalls("u1", "hash-a", "246810"));
    }

    #[test]
    fn entries_expire() {
        let m = PinMemory::new(Duration::ZERO);
        m.remember("u1", "h", "1234");
        assert!(!m.recalls("u1", "h", "1234"));
    }

    #[test]
    fn digests_are_keyed_per_process() {
        let (a, b) = (PinMemory::default(), PinMemory::default());
        assert_ne!(a.digest("u", "h", "1234"), b.digest("u", "h", "1234"));
        // Length-prefixed parts: moving a boundary changes the digest.
        assert_ne!(a.digest("u", "h1", "234"), a.digest("u", "h", "1234"));
    }
}
