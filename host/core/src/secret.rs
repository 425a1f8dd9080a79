//! Password and payment-PIN hashing with argon2id: the one place these secrets are hashed and
//! checked, for the API and the admin CLI alike. Synchronous and CPU-bound (no IO): async
//! callers run these off their executor threads (`tokio::task::spawn_blocking`), a bounded
//! number at once (the API's hash slots).
//!
//! Parameters, stated here rather than taken from the crate's defaults so that an upgrade of
//! `argon2` cannot change them silently: passwords use argon2id v1.3 with [`PASSWORD_MEMORY_KIB`]
//! (19 MiB), [`PASSWORD_PASSES`] (2) and one lane: OWASP's first recommended argon2id setting,
//! tens of milliseconds per hash. Each hash running holds its 19 MiB, which is why the API caps
//! how many run at once. PINs use [`PIN_MEMORY_KIB`] (1 MiB) and one pass (see [`hash_pin`]).
//! A stored PHC string carries its own parameters, so hashes made with other parameters keep
//! verifying.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Why a secret could not be hashed or checked (never "it does not match": that is `Ok(false)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The salt could not be encoded.
    #[error("salt: {0}")]
    Salt(String),
    /// Hashing failed.
    #[error("hash: {0}")]
    Hash(String),
    /// A stored hash is not a PHC string argon2 reads (a bug or tampering, never user input).
    #[error("stored hash: {0}")]
    StoredHash(String),
    /// The argon2 parameters were refused.
    #[error("hash parameters: {0}")]
    Params(String),
}

/// A hash of a password nobody has, verified when the username is unknown so that sign-in takes
/// as long for unknown users as for wrong passwords.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Zb5bU2bS3vX8yqL0pYQZ7cU1yR8t8dX2oVpXh3yQ5nE";

fn salt() -> Result<SaltString, SecretError> {
    SaltString::encode_b64(&crate::ids::random_bytes(16))
        .map_err(|e| SecretError::Salt(e.to_string()))
}

/// Memory of one password hash, in KiB (19 MiB).
pub const PASSWORD_MEMORY_KIB: u32 = 19 * 1024;
/// Passes over that memory per password hash.
pub const PASSWORD_PASSES: u32 = 2;
/// Memory of one PIN hash, in KiB (1 MiB).
pub const PIN_MEMORY_KIB: u32 = 1024;

/// argon2id v1.3 with `memory_kib`, `passes` and one lane.
fn hasher(memory_kib: u32, passes: u32) -> Result<Argon2<'static>, SecretError> {
    let params = argon2::Params::new(memory_kib, passes, 1, None)
        .map_err(|e| SecretError::Params(e.to_string()))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// The password hasher: [`PASSWORD_MEMORY_KIB`], [`PASSWORD_PASSES`], one lane.
fn password_hasher() -> Result<Argon2<'static>, SecretError> {
    hasher(PASSWORD_MEMORY_KIB, PASSWORD_PASSES)
}

/// An argon2id PHC string for `password` (19 MiB, two passes, one lane).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    password_hasher()?
        .hash_password(password.as_bytes(), &salt()?)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. With `hash` `None` (no such user) the dummy hash is
/// verified anyway, so the answer takes as long, and is `false`.
pub fn verify_password(password: &str, hash: Option<&str>) -> Result<bool, SecretError> {
    let known = hash.is_some();
    let parsed = PasswordHash::new(hash.unwrap_or(DUMMY_HASH))
        .map_err(|e| SecretError::StoredHash(e.to_string()))?;
    let ok = password_hasher()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(known && ok)
}

/// argon2id parameters for payment PINs: 1 MiB and one pass (about a millisecond), not the
/// password defaults (19 MiB, two passes). A six-digit PIN has a million values whatever the
/// hash costs, so what protects it is the lockout after five wrong tries (in the store) and the
/// database's confidentiality; a cheap hash keeps confirming a payment fast.
fn pin_hasher() -> Result<Argon2<'static>, SecretError> {
    hasher(PIN_MEMORY_KIB, 1)
}

/// An argon2id PHC string for a payment PIN.
pub fn hash_pin(pin: &str) -> Result<String, SecretError> {
    pin_hasher()?
        .hash_password(pin.as_bytes(), &salt()?)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `pin` matches the stored PIN hash (whose PHC string carries its parameters).
pub fn verify_pin(pin: &str, hash: &str) -> Result<bool, SecretError> {
    let parsed = PasswordHash::new(hash).map_err(|e| SecretError::StoredHash(e.to_string()))?;
    Ok(pin_hasher()?
        .verify_password(pin.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", Some(&hash)).unwrap());
        assert!(!verify_password("wrong horse", Some(&hash)).unwrap());
        // An unknown user: the dummy hash is checked, and the answer is no.
        assert!(!verify_password("correct horse", None).unwrap());
        assert!(matches!(
            verify_password("x", Some("not a hash")),
            Err(SecretError::StoredHash(_))
        ));
    }

    #[test]
    fn pins_use_the_cheap_parameters() {
        let hash = hash_pin("246810").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert!(verify_pin("246810", &hash).unwrap());
        assert!(!verify_pin("246811", &hash).unwrap());
        assert_ne!(hash, hash_pin("246810").unwrap(), "a fresh salt each time");
    }
}
