//! Throttles on guessable secrets and the cap on argon2 hashes running at once
//! ([`Guards`], one per node, configured by [`ThrottleLimits`]). A [`Throttle`] is a token
//! bucket per key (an account, a user, a client address) in a bounded map; [`HashSlots`] is a
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

/// Token buckets by key: `burst` at once, one more every `refill`.
pub struct Throttle {
    burst: f64,
    refill: Duration,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttle {
    /// A throttle of `burst` attempts, one more every `refill`, remembering `max_keys` keys.
    pub fn new(burst: u32, refill: Duration, max_keys: usize) -> Self {
        Throttle {
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let gained = now.duration_since(b.at).as_secs_f64() / self.refill.as_secs_f64();
        (b.tokens + gained).min(self.burst)
    }

    /// Takes a token for `key`, or answers how long until one is there.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
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

    /// Gives back a token taken for `key` (the attempt succeeded, or never ran).
    pub fn give_back(&self, key: &str) {
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

    /// Takes one token from each `(throttle, key)`; on a refusal gives back those taken and
    /// answers `429` with the longest wait. Exempt addresses take nothing.
    pub fn admit(&self, addr: IpAddr, checks: &[(&Throttle, &str)]) -> Result<Admitted, ApiError> {
        if self.exempt.contains(&addr) {
            return Ok(Admitted { taken: Vec::new() });
        }
        for (i, (throttle, key)) in checks.iter().enumerate() {
            if let Err(wait) = throttle.take(key) {
                for (t, k) in checks.iter().take(i) {
                    t.give_back(k);
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
    pub fn give_back(self, throttles: &[&Throttle]) {
        for (t, k) in throttles.iter().zip(&self.taken) {
            t.give_back(k);
        }
    }

    /// The outcome of a secret check made under these tokens: a right secret, or a check that
    /// never ran (no hash slot, a database error), gives them back; only a wrong one keeps them.
    pub fn settle(
        self,
        throttles: &[&Throttle],
        checked: Result<bool, ApiError>,
    ) -> Result<bool, ApiError> {
        if !matches!(checked, Ok(false)) {
            self.give_back(throttles);
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
        assert!(t.take("a").is_ok());
        assert!(t.take("a").is_ok());
        let wait = t.take("a").unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(t.take("b").is_ok(), "keys are apart");
        t.give_back("a");
        assert!(t.take("a").is_ok());
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
        assert!(t.take("a").is_ok());
        assert!(t.take("b").is_ok());
        assert!(t.take("c").is_err(), "full of live buckets: fail closed");
        t.give_back("a");
        assert!(
            t.take("c").is_ok(),
            "a's bucket was full again and forgotten"
        );
    }
}
