//! Throttles on guessable secrets and the cap on argon2 hashes running at once
//! ([`Guards`], one per node, configured by [`ThrottleLimits`]). A [`Throttle`] is a token
//! bucket per key (an account, a user, a client address) in a bounded map, or, when nodes share
//! a database ([`Guards::shared`]), in the store, so that attempts spread over several nodes
//! count as one; [`HashSlots`] is a
//! semaphore with a bounded, time-limited wait. Refusals are `429 rate_limited` and
//! `503 busy`, both with `Retry-After`.

use crate::error::ApiError;
use crate::limits::ThrottleLimits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Longest key kept (an over-long username is throttled by its first bytes).
const MAX_KEY_BYTES: usize = 64;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key: `burst` at once, one more every `refill`; in this node's memory, or
/// (nodes sharing a database) in the store, shared by every node.
pub struct Throttle {
    burst: f64,
    refill: Duration,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
    shared: Option<Shared>,
}

/// Where a shared throttle keeps its buckets.
struct Shared {
    store: minihost_store::Store,
    /// The throttle's name among the store's buckets.
    scope: &'static str,
    /// Takes since the last prune of the scope's full buckets.
    takes: AtomicUsize,
}

/// Takes between two prunes of a shared throttle's full buckets.
const PRUNE_EVERY: usize = 1024;

impl Throttle {
    /// A throttle of `burst` attempts, one more every `refill`, remembering `max_keys` keys.
    pub fn new(burst: u32, refill: Duration, max_keys: usize) -> Self {
        Throttle {
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// The same throttle with its buckets in `store` under `scope`, shared by every node.
    fn shared(mut self, store: minihost_store::Store, scope: &'static str) -> Self {
        self.shared = Some(Shared {
            store,
            scope,
            takes: AtomicUsize::new(0),
        });
        self
    }

    fn shape(&self) -> minihost_store::BucketShape {
        minihost_store::BucketShape {
            burst: self.burst,
            refill_ms: self.refill.as_secs_f64() * 1000.0,
        }
    }

    /// Takes a token for `key`, or answers how long until one is there. A shared throttle
    /// whose database fails falls back to this node's buckets.
    pub async fn take(&self, key: &str) -> Result<(), Duration> {
        let Some(shared) = &self.shared else {
            return self.take_here(key);
        };
        let key = truncate(key);
        let now = minihost_core::now_millis();
        if shared.takes.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            let full_after = self.refill.mul_f64(self.burst).as_millis();
            let before = now.saturating_sub(i64::try_from(full_after).unwrap_or(i64::MAX));
            if let Err(e) = shared.store.throttle_prune(shared.scope, before).await {
                tracing::warn!(error = %e, "could not prune throttle buckets");
            }
        }
        match shared
            .store
            .throttle_take(shared.scope, key, self.shape(), now)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(wait_ms)) => Err(Duration::from_millis(wait_ms.unsigned_abs())),
            Err(e) => {
                tracing::warn!(error = %e, "shared throttle unavailable; using this node's");
                self.take_here(key)
            }
        }
    }

    /// Gives back a token taken for `key` (the attempt succeeded, or never ran).
    pub async fn give_back(&self, key: &str) {
        let Some(shared) = &self.shared else {
            return self.give_back_here(key);
        };
        let key = truncate(key);
        let now = minihost_core::now_millis();
        if let Err(e) = shared
            .store
            .throttle_give_back(shared.scope, key, self.shape(), now)
            .await
        {
            tracing::warn!(error = %e, "could not give a throttle token back");
            self.give_back_here(key);
        }
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let gained = now.duration_since(b.at).as_secs_f64() / self.refill.as_secs_f64();
        (b.tokens + gained).min(self.burst)
    }

    /// Takes a token for `key` from this node's buckets.
    fn take_here(&self, key: &str) -> Result<(), Duration> {
        let key = truncate(key);
        let now = Instant::now();
        let Ok(mut map) = self.buckets.lock() else {
            return Err(self.refill);
        };
        if !map.contains_key(key) && map.len() >= self.max_keys {
            // Forget the buckets that are full again: they mean the same as no bucket.
            map.retain(|_, b| {
                let gained = now.duration_since(b.at).as_secs_f64() / self.refill.as_secs_f64();
                b.tokens + gained < self.burst
            });
            if map.len() >= self.max_keys {
                tracing::warn!(keys = map.len(), "throttle full; refusing new keys");
                return Err(self.refill);
            }
        }
        let bucket = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(bucket, now);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            Err(self.refill.mul_f64(1.0 - tokens))
        }
    }

    /// Gives back a token taken for `key` to this node's buckets.
    fn give_back_here(&self, key: &str) {
        let key = truncate(key);
        let now = Instant::now();
        if let Ok(mut map) = self.buckets.lock()
            && let Some(b) = map.get_mut(key)
        {
            b.tokens = (self.refilled(b, now) + 1.0).min(self.burst);
            b.at = now;
        }
    }
}

fn truncate(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// The cap on argon2 hashes running at once: at most `max` run, at most `max_waiting` wait, none
/// waits longer than `wait`.
pub struct HashSlots {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
}

impl HashSlots {
    /// Slots for `max` hashes at once.
    pub fn new(max: usize, max_waiting: usize, wait: Duration) -> Self {
        HashSlots {
            slots: Arc::new(Semaphore::new(max.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
        }
    }

    /// A slot, or `503 busy` when too many wait or the wait is too long.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let busy = ApiError::Busy {
            retry_after: self.wait.as_secs().max(1),
            message: "too many password checks at once; try again shortly",
        };
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy);
        }
        let got = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(busy),
        }
    }
}

/// Every throttle of a node, and its hash slots.
pub struct Guards {
    /// Failed sign-ins per account (username).
    pub sign_in_account: Throttle,
    /// Failed sign-ins per client address.
    pub sign_in_address: Throttle,
    /// Sign-ups per client address.
    pub sign_up_address: Throttle,
    /// Wrong PINs and password re-checks per signed-in user.
    pub secret_user: Throttle,
    /// Wrong PINs and password re-checks per client address.
    pub secret_address: Throttle,
    /// The argon2 hashes running at once.
    pub hashes: HashSlots,
    /// PINs verified lately, so a user's next confirmations skip argon2.
    pub pins: crate::pin_memory::PinMemory,
    exempt: Vec<IpAddr>,
}

impl Guards {
    /// Guards configured by `limits`.
    pub fn new(limits: &ThrottleLimits) -> Self {
        let keys = limits.max_tracked_keys;
        Guards {
            sign_in_account: Throttle::new(
                limits.sign_in_account_burst,
                limits.sign_in_account_refill,
                keys,
            ),
            sign_in_address: Throttle::new(
                limits.sign_in_address_burst,
                limits.sign_in_address_refill,
                keys,
            ),
            sign_up_address: Throttle::new(
                limits.sign_up_address_burst,
                limits.sign_up_address_refill,
                keys,
            ),
            secret_user: Throttle::new(
                limits.secret_check_user_burst,
                limits.secret_check_user_refill,
                keys,
            ),
            secret_address: Throttle::new(
                limits.secret_check_address_burst,
                limits.secret_check_address_refill,
                keys,
            ),
            hashes: HashSlots::new(
                limits.max_concurrent_hashes,
                limits.max_waiting_hashes,
                limits.hash_wait,
            ),
            pins: crate::pin_memory::PinMemory::default(),
            exempt: limits.exempt.clone(),
        }
    }

    /// Guards whose throttles keep their buckets in `store`, shared by every node on it (the
    /// hash slots and the PIN memory stay the node's).
    pub fn shared(limits: &ThrottleLimits, store: &minihost_store::Store) -> Self {
        let g = Guards::new(limits);
        Guards {
            sign_in_account: g.sign_in_account.shared(store.clone(), "sign_in_account"),
            sign_in_address: g.sign_in_address.shared(store.clone(), "sign_in_address"),
            sign_up_address: g.sign_up_address.shared(store.clone(), "sign_up_address"),
            secret_user: g.secret_user.shared(store.clone(), "secret_user"),
            secret_address: g.secret_address.shared(store.clone(), "secret_address"),
            ..g
        }
    }

    /// Takes one token from each `(throttle, key)`; on a refusal gives back those taken and
    /// answers `429` with the longest wait. Exempt addresses take nothing.
    pub async fn admit(
        &self,
        addr: IpAddr,
        checks: &[(&Throttle, &str)],
    ) -> Result<Admitted, ApiError> {
        if self.exempt.contains(&addr) {
            return Ok(Admitted { taken: Vec::new() });
        }
        for (i, (throttle, key)) in checks.iter().enumerate() {
            if let Err(wait) = throttle.take(key).await {
                for (t, k) in checks.iter().take(i) {
                    t.give_back(k).await;
                }
                return Err(ApiError::TooManyRequests {
                    retry_after: wait.as_secs().saturating_add(1),
                    message: "too many attempts; wait before trying again",
                });
            }
        }
        Ok(Admitted {
            taken: checks.iter().map(|(_, k)| (*k).to_owned()).collect(),
        })
    }
}

/// The tokens an attempt took (its keys, in the order of the checks), to give back if it
/// succeeds.
pub struct Admitted {
    taken: Vec<String>,
}

impl Admitted {
    /// Gives the tokens back to `throttles` (the same list, in the same order, as admitted).
    pub async fn give_back(self, throttles: &[&Throttle]) {
        for (t, k) in throttles.iter().zip(&self.taken) {
            t.give_back(k).await;
        }
    }

    /// The outcome of a secret check made under these tokens: a right secret, or a check that
    /// never ran (no hash slot, a database error), gives them back; only a wrong one keeps them.
    pub async fn settle(
        self,
        throttles: &[&Throttle],
        checked: Result<bool, ApiError>,
    ) -> Result<bool, ApiError> {
        if !matches!(checked, Ok(false)) {
            self.give_back(throttles).await;
        }
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_after_its_burst_and_a_success_gives_back() {
        let t = Throttle::new(2, Duration::from_secs(60), 10);
        assert!(t.take_here("a").is_ok());
        assert!(t.take_here("a").is_ok());
        let wait = t.take_here("a").unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(t.take_here("b").is_ok(), "keys are apart");
        t.give_back_here("a");
        assert!(t.take_here("a").is_ok());
    }

    #[tokio::test]
    async fn hash_slots_bound_the_running_the_waiting_and_the_wait() {
        // A wait long enough never to end by itself here.
        let slots = HashSlots::new(1, 1, Duration::from_secs(600));
        let held = slots.acquire().await.unwrap();
        let one_waits = slots.acquire();
        tokio::pin!(one_waits);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(one_waits.as_mut().poll(&mut cx).is_pending());
        // Beyond the waiting room: refused at once, with Retry-After.
        match slots.acquire().await {
            Err(ApiError::Busy { retry_after, .. }) => assert!(retry_after >= 1),
            other => panic!("{:?}", other.map(|_| ())),
        }
        // The one waiting gets the slot when it is freed.
        drop(held);
        let held = one_waits.await.unwrap();
        drop(held);

        // A wait that is over is refused.
        let short = HashSlots::new(1, 8, Duration::from_millis(1));
        let _held = short.acquire().await.unwrap();
        assert!(matches!(short.acquire().await, Err(ApiError::Busy { .. })));
    }

    #[test]
    fn a_full_map_forgets_refilled_buckets_then_refuses_new_keys() {
        let t = Throttle::new(1, Duration::from_secs(60), 2);
        assert!(t.take_here("a").is_ok());
        assert!(t.take_here("b").is_ok());
        assert!(
            t.take_here("c").is_err(),
            "full of live buckets: fail closed"
        );
        t.give_back_here("a");
        assert!(
            t.take_here("c").is_ok(),
            "a's bucket was full again and forgotten"
        );
    }
}
