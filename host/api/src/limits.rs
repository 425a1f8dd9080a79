//! The abuse limits of the API, each a field with its default: throttles on guessable secrets
//! (sign-in, sign-up, payment PIN), the cap on password hashes running at once, and the bounds
//! on connections and requests. Part of [`crate::ApiConfig`].

use std::net::IpAddr;
use std::time::Duration;

/// Throttles on attempts to guess a secret, and the cap on argon2 hashes running at once.
///
/// Each throttle is a token bucket per key: `burst` attempts at once, then one more every
/// `refill`. A refused attempt is answered `429` (`rate_limited`) with `Retry-After` (seconds).
/// A sign-in or PIN check that succeeds gives its tokens back, so only failures count against
/// an account or an address; a sign-up always counts. The client address is the TCP peer's: a
/// reverse proxy in front of the server is one address for everyone behind it (list it in
/// `exempt` only if it throttles by itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failed sign-ins one account may take in a burst. Default 10.
    pub sign_in_account_burst: u32,
    /// Time for one more failed sign-in per account. Default 30 s (two a minute).
    pub sign_in_account_refill: Duration,
    /// Failed sign-ins one client address may make in a burst. Default 30.
    pub sign_in_address_burst: u32,
    /// Time for one more failed sign-in per client address. Default 2 s.
    pub sign_in_address_refill: Duration,
    /// Sign-ups one client address may make in a burst. Default 20.
    pub sign_up_address_burst: u32,
    /// Time for one more sign-up per client address. Default 10 s.
    pub sign_up_address_refill: Duration,
    /// Wrong payment PINs (and password checks of `PUT /me/payment-pin`, `POST /me/password`)
    /// one user may make in a burst, before the store's lockout (5 wrong PINs in a row lock
    /// payments for 15 minutes) is even reached. Default 10.
    pub secret_check_user_burst: u32,
    /// Time for one more such attempt per user. Default 30 s.
    pub secret_check_user_refill: Duration,
    /// Wrong PINs and password checks one client address may make in a burst. Default 30.
    pub secret_check_address_burst: u32,
    /// Time for one more per client address. Default 2 s.
    pub secret_check_address_refill: Duration,
    /// Keys (accounts, addresses, users) each throttle remembers. Buckets that have refilled
    /// are forgotten first; beyond this, attempts with new keys are refused (fail closed).
    /// Default 100 000.
    pub max_tracked_keys: usize,
    /// Client addresses never throttled (a load generator on loopback). Default none.
    pub exempt: Vec<IpAddr>,
    /// argon2 hashes (passwords and PINs) running at once; each password hash holds 19 MiB.
    /// Default: the number of cores, at least 2.
    pub max_concurrent_hashes: usize,
    /// Requests waiting for a hash slot; beyond it they are answered `503` (`busy`) at once.
    /// Default 256.
    pub max_waiting_hashes: usize,
    /// The longest wait for a hash slot, then `503` (`busy`) with `Retry-After`. Default 5 s.
    pub hash_wait: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            sign_in_account_burst: 10,
            sign_in_account_refill: Duration::from_secs(30),
            sign_in_address_burst: 30,
            sign_in_address_refill: Duration::from_secs(2),
            sign_up_address_burst: 20,
            sign_up_address_refill: Duration::from_secs(10),
            secret_check_user_burst: 10,
            secret_check_user_refill: Duration::from_secs(30),
            secret_check_address_burst: 30,
            secret_check_address_refill: Duration::from_secs(2),
            max_tracked_keys: 100_000,
            exempt: Vec::new(),
            max_concurrent_hashes: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
            max_waiting_hashes: 256,
            hash_wait: Duration::from_secs(5),
        }
    }
}

/// Bounds on connections and requests, so that slow or silent clients cannot hold the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to send a request's headers, counted from when the
    /// server starts waiting for them: a new connection that sends nothing, a slow-loris
    /// dribbling header bytes, and an idle keep-alive connection between requests are all
    /// closed after it. Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a request may take from its headers to its answer, reading its body included;
    /// beyond it the answer is `408` (`request_timeout`). WebSocket sessions, once upgraded,
    /// are not requests and are not bounded by it. Default 120 s: an upload may wait for a
    /// compile slot and compile (each bounded by the compile timeout, 60 s by default).
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}
