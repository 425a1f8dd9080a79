//! Verifying Minihost's signed webhooks in an app's backend (native targets only). Every
//! delivery carries `Minihost-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the HMAC of
//! `"<t>.<body>"` under the app's signing secret (`POST /api/v1/apps/{app}/webhook-secret`).
//! [`verify`] checks it in constant time and refuses a timestamp outside the tolerance, so a
//! captured delivery cannot be replayed later.
//!
//! ```
//! use minihost_sdk::webhook;
//!
//! let secret = "whsec_0123";
//! let body = br#"{"id":"pe_1","type":"payment.paid"}"#;
//! let now = 1_700_000_000;
//! let header = webhook::sign(secret, now, body); // what the server sends
//! assert_eq!(webhook::verify(secret, &header, body, now, webhook::DEFAULT_TOLERANCE), Ok(()));
//! assert!(webhook::verify(secret, &header, b"{}", now, webhook::DEFAULT_TOLERANCE).is_err());
//! ```
//!
//! Verify the raw body bytes as received, before parsing them; deduplicate on the body's `id`
//! (a delivery may arrive more than once).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header that carries the signature.
pub const HEADER: &str = "Minihost-Signature";

/// How far a delivery's timestamp may be from the receiver's clock: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The header is not `t=<unix seconds>,v1=<64 hex digits>[,...]`; says what is wrong.
    Malformed(&'static str),
    /// No `v1` signature matches the body under this secret: forged, altered, or signed with
    /// another secret.
    Mismatch,
    /// The timestamp is older than the tolerance (a replay, or a very late retry).
    Stale,
    /// The timestamp is further in the future than the tolerance.
    Future,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "malformed {HEADER} header: {why}"),
            VerifyError::Mismatch => f.write_str("the webhook signature does not match the body"),
            VerifyError::Stale => f.write_str("the webhook timestamp is too old"),
            VerifyError::Future => f.write_str("the webhook timestamp is in the future"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn mac(secret: &str, t: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never takes the fallback.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value Minihost sends for `body` at time `t` (unix seconds): for tests of a
/// receiver.
pub fn sign(secret: &str, t: u64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(mac(secret, t, body).finalize().into_bytes())
    )
}

/// Checks that `header` (the `Minihost-Signature` value) signs `body` under `secret`, with a
/// timestamp within `tolerance` of `now` (unix seconds). Any `v1` entry may match (several are
/// allowed); entries with other names are ignored.
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let mut t: Option<u64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(VerifyError::Malformed("an entry is not key=value"))?;
        match key {
            "t" => {
                if t.is_some() {
                    return Err(VerifyError::Malformed("more than one timestamp"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VerifyError::Malformed("the timestamp is not unix seconds"));
                }
                t = Some(
                    value
                        .parse()
                        .map_err(|_| VerifyError::Malformed("the timestamp is out of range"))?,
                );
            }
            "v1" => {
                let sig = hex::decode(value)
                    .map_err(|_| VerifyError::Malformed("a v1 signature is not hex"))?;
                if sig.len() != 32 {
                    return Err(VerifyError::Malformed("a v1 signature is not 32 bytes"));
                }
                signatures.push(sig);
            }
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed("no timestamp (t=)"))?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed("no v1 signature"));
    }
    let tolerance = tolerance.as_secs();
    if t.saturating_add(tolerance) < now {
        return Err(VerifyError::Stale);
    }
    if t > now.saturating_add(tolerance) {
        return Err(VerifyError::Future);
    }
    let expected = mac(secret, t, body);
    // verify_slice compares in constant time.
    if signatures
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// [`verify`] against this machine's clock with the [`DEFAULT_TOLERANCE`].
pub fn verify_now(secret: &str, header: &str, body: &[u8]) -> Result<(), VerifyError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    verify(secret, header, body, now, DEFAULT_TOLERANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"id":"pe_1"}"#;
    const NOW: u64 = 1_700_000_000;

    fn check(header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        verify(SECRET, header, body, now, DEFAULT_TOLERANCE)
    }

    #[test]
    fn a_genuine_delivery_is_accepted() {
        // The vector comes from Python's hmac module, as does the server's test.
        let header =
            "t=1700000000,v1=d399da7659c99d4da65c1d765c634ab1e5b62644cab48697449f70c39deeb431";
        assert_eq!(sign(SECRET, NOW, BODY), header);
        assert_eq!(check(header, BODY, NOW), Ok(()));
        // Within the tolerance either way, other entries ignored, any v1 may match.
        assert_eq!(check(header, BODY, NOW + 300), Ok(()));
        assert_eq!(check(header, BODY, NOW - 300), Ok(()));
        let two = format!("t={NOW},v0=abc,v1={},{}", "00".repeat(32), &header[13..]);
        assert_eq!(check(&two, BODY, NOW), Ok(()));
        assert_eq!(verify_now(SECRET, &sign(SECRET, now(), BODY), BODY), Ok(()));
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    #[test]
    fn a_forged_signature_is_refused() {
        let forged = sign("whsec_guess", NOW, BODY);
        assert_eq!(check(&forged, BODY, NOW), Err(VerifyError::Mismatch));
        let zeros = format!("t={NOW},v1={}", "00".repeat(32));
        assert_eq!(check(&zeros, BODY, NOW), Err(VerifyError::Mismatch));
    }

    #[test]
    fn an_altered_body_is_refused() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(
            check(&header, br#"{"id":"pe_2"}"#, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(check(&header, b"", NOW), Err(VerifyError::Mismatch));
        // Moving the timestamp breaks the signature too.
        let moved = header.replacen("t=1700000000", "t=1700000001", 1);
        assert_eq!(check(&moved, BODY, NOW), Err(VerifyError::Mismatch));
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(check(&header, BODY, NOW + 301), Err(VerifyError::Stale));
        assert_eq!(check(&header, BODY, NOW - 301), Err(VerifyError::Future));
        let tight = verify(SECRET, &header, BODY, NOW + 2, Duration::from_secs(1));
        assert_eq!(tight, Err(VerifyError::Stale));
        let huge = format!("t={},v1={}", u64::MAX, "00".repeat(32));
        assert_eq!(check(&huge, BODY, NOW), Err(VerifyError::Future));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let sig = "d399da7659c99d4da65c1d765c634ab1e5b62644cab48697449f70c39deeb431";
        for bad in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={sig}"),
            format!("t={NOW}"),
            format!("t=,v1={sig}"),
            format!("t=-5,v1={sig}"),
            format!("t=1e9,v1={sig}"),
            format!("t=99999999999999999999999,v1={sig}"),
            format!("t={NOW},t={NOW},v1={sig}"),
            format!("t={NOW},v1=zz"),
            format!("t={NOW},v1={}", &sig[..62]),
            format!("t={NOW},v1={sig}00"),
            format!("t={NOW};v1={sig}"),
        ] {
            assert!(
                matches!(check(&bad, BODY, NOW), Err(VerifyError::Malformed(_))),
                "{bad:?}: {:?}",
                check(&bad, BODY, NOW)
            );
        }
    }
}
