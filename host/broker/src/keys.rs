//! The signing keyring: Ed25519 keys with `kid`s and states (active signs; retiring only
//! verifies; retired does neither), rotation, the PKCS#8 PEM form they are stored in, and the
//! public JWKS document.

use crate::ids::{Kid, UnixTime};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens and verifies. At most one key is active.
    Active,
    /// Replaced by a newer key: verifies the tokens it signed until they have expired.
    Retiring,
    /// Neither signs nor verifies; kept only as a record.
    Retired,
}

/// Keyring errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A stored private key could not be read.
    #[error("stored key `{kid}` is not a valid Ed25519 PKCS#8 PEM key: {reason}")]
    InvalidStoredKey {
        /// The key.
        kid: Kid,
        /// The decoder's complaint.
        reason: String,
    },
    /// A key could not be encoded for storage.
    #[error("key `{0}` could not be encoded: {1}")]
    Encoding(Kid, String),
    /// Two stored keys share a kid.
    #[error("duplicate kid `{0}`")]
    DuplicateKid(Kid),
    /// More than one stored key is active.
    #[error("more than one active key")]
    MoreThanOneActive,
    /// No key has this kid.
    #[error("no key with kid `{0}`")]
    UnknownKid(Kid),
}

/// One key of the keyring.
pub struct KeyEntry {
    kid: Kid,
    state: KeyState,
    created_at: UnixTime,
    retiring_since: Option<UnixTime>,
    signing: SigningKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl KeyEntry {
    fn new(
        kid: Kid,
        signing: SigningKey,
        state: KeyState,
        created_at: UnixTime,
        retiring_since: Option<UnixTime>,
    ) -> Result<KeyEntry, KeyError> {
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::Encoding(kid.clone(), e.to_string()))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let decoding = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        Ok(KeyEntry {
            kid,
            state,
            created_at,
            retiring_since,
            signing,
            encoding,
            decoding,
        })
    }

    /// The key's id.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The key's state.
    pub fn state(&self) -> KeyState {
        self.state
    }

    /// When the key was created.
    pub fn created_at(&self) -> UnixTime {
        self.created_at
    }

    /// When the key stopped signing, if it has.
    pub fn retiring_since(&self) -> Option<UnixTime> {
        self.retiring_since
    }

    /// The public key, raw (32 bytes).
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    fn stored(&self) -> Result<StoredKey, KeyError> {
        let pem = self
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encoding(self.kid.clone(), e.to_string()))?;
        Ok(StoredKey {
            kid: self.kid.clone(),
            state: self.state,
            created_at: self.created_at,
            retiring_since: self.retiring_since,
            private_key_pem: pem.as_str().to_owned(),
        })
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retiring_since", &self.retiring_since)
            .finish_non_exhaustive()
    }
}

/// A key as persisted: every field is text or a number, the private key a PKCS#8 PEM
/// (`-----BEGIN PRIVATE KEY-----`). The store keeps one row per key; the PEM is a secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// The key's id.
    pub kid: Kid,
    /// Its state.
    pub state: KeyState,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it stopped signing.
    pub retiring_since: Option<UnixTime>,
    /// The private key, PKCS#8 PEM.
    pub private_key_pem: String,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retiring_since", &self.retiring_since)
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

/// The platform's signing keys. Invariants: kids are unique, at most one key is active.
#[derive(Debug, Default)]
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

impl Keyring {
    /// An empty keyring (it cannot sign until [`Keyring::rotate`] adds a key).
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds a new active key and returns its kid; the previously active key, if any, becomes
    /// retiring: it keeps verifying the tokens it signed, so nobody is logged out. Persist the
    /// whole keyring ([`Keyring::to_stored`]) afterwards.
    pub fn rotate(&mut self, now: UnixTime) -> Result<Kid, KeyError> {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&minihost_core::ids::random_bytes(32));
        let mut kid = Kid::generate();
        while self.get(&kid).is_some() {
            kid = Kid::generate();
        }
        let entry = KeyEntry::new(
            kid.clone(),
            SigningKey::from_bytes(&seed),
            KeyState::Active,
            now,
            None,
        )?;
        for key in &mut self.keys {
            if key.state == KeyState::Active {
                key.state = KeyState::Retiring;
                key.retiring_since = Some(now);
            }
        }
        self.keys.push(entry);
        Ok(kid)
    }

    /// Retires a key at once: tokens it signed stop verifying. Used once its tokens have
    /// expired, or immediately if the key leaked (retiring the active key leaves the keyring
    /// unable to sign until the next rotation).
    pub fn retire(&mut self, kid: &Kid) -> Result<(), KeyError> {
        let key = self
            .keys
            .iter_mut()
            .find(|k| &k.kid == kid)
            .ok_or_else(|| KeyError::UnknownKid(kid.clone()))?;
        key.state = KeyState::Retired;
        Ok(())
    }

    /// Retires every retiring key that stopped signing at least `max_token_lifetime_secs`
    /// before `now` (pass the longest token lifetime plus the verification leeway): no valid
    /// token can still carry its kid. Returns the kids retired.
    pub fn retire_expired(&mut self, now: UnixTime, max_token_lifetime_secs: u64) -> Vec<Kid> {
        let mut retired = Vec::new();
        for key in &mut self.keys {
            if key.state == KeyState::Retiring
                && key
                    .retiring_since
                    .is_none_or(|since| since.plus(max_token_lifetime_secs) <= now)
            {
                key.state = KeyState::Retired;
                retired.push(key.kid.clone());
            }
        }
        retired
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.state == KeyState::Active)
    }

    /// Any key by kid, whatever its state.
    pub fn get(&self, kid: &Kid) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| &k.kid == kid)
    }

    /// The key that may verify a token carrying `kid`: active or retiring, never retired.
    pub(crate) fn verifying(&self, kid: &Kid) -> Option<&KeyEntry> {
        self.get(kid).filter(|k| k.state != KeyState::Retired)
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = &KeyEntry> {
        self.keys.iter()
    }

    /// The keyring as persisted.
    pub fn to_stored(&self) -> Result<Vec<StoredKey>, KeyError> {
        self.keys.iter().map(KeyEntry::stored).collect()
    }

    /// Reads a persisted keyring back, checking its invariants.
    pub fn from_stored(stored: Vec<StoredKey>) -> Result<Keyring, KeyError> {
        let mut keyring = Keyring::new();
        for s in stored {
            if keyring.get(&s.kid).is_some() {
                return Err(KeyError::DuplicateKid(s.kid));
            }
            if s.state == KeyState::Active && keyring.active().is_some() {
                return Err(KeyError::MoreThanOneActive);
            }
            let signing = SigningKey::from_pkcs8_pem(&s.private_key_pem).map_err(|e| {
                KeyError::InvalidStoredKey {
                    kid: s.kid.clone(),
                    reason: e.to_string(),
                }
            })?;
            keyring.keys.push(KeyEntry::new(
                s.kid,
                signing,
                s.state,
                s.created_at,
                s.retiring_since,
            )?);
        }
        Ok(keyring)
    }

    /// The public keys that verify (active and retiring), as served at
    /// `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .filter(|k| k.state != KeyState::Retired)
                .map(|k| Jwk {
                    kty: "OKP".to_owned(),
                    crv: "Ed25519".to_owned(),
                    kid: k.kid.as_str().to_owned(),
                    x: URL_SAFE_NO_PAD.encode(k.public_key()),
                    alg: "EdDSA".to_owned(),
                    key_use: "sig".to_owned(),
                })
                .collect(),
        }
    }
}

/// A JSON Web Key Set (RFC 7517) of Ed25519 public keys (RFC 8037).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One public key: `{"kty":"OKP","crv":"Ed25519","kid":..,"x":..,"alg":"EdDSA","use":"sig"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The key id tokens carry.
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_one_active_key_and_the_previous_one_retiring() {
        let mut ring = Keyring::new();
        assert!(ring.active().is_none());
        let first = ring.rotate(UnixTime::from_secs(100)).unwrap();
        let second = ring.rotate(UnixTime::from_secs(200)).unwrap();
        assert_ne!(first, second);
        assert_eq!(ring.active().map(KeyEntry::kid), Some(&second));
        assert_eq!(
            ring.get(&first).map(KeyEntry::state),
            Some(KeyState::Retiring)
        );
        assert_eq!(ring.jwks().keys.len(), 2);

        // Not yet: tokens signed just before the rotation may still be valid.
        assert!(
            ring.retire_expired(UnixTime::from_secs(200 + 600), 630)
                .is_empty()
        );
        assert_eq!(
            ring.retire_expired(UnixTime::from_secs(200 + 630), 630),
            vec![first.clone()]
        );
        assert_eq!(
            ring.get(&first).map(KeyEntry::state),
            Some(KeyState::Retired)
        );
        assert_eq!(
            ring.jwks()
                .keys
                .iter()
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>(),
            vec![second.as_str()]
        );
    }

    #[test]
    fn keyring_round_trips_through_storage() {
        let mut ring = Keyring::new();
        let old = ring.rotate(UnixTime::from_secs(1)).unwrap();
        ring.rotate(UnixTime::from_secs(2)).unwrap();
        let stored = ring.to_stored().unwrap();
        assert!(
            stored[0]
                .private_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            !format!("{stored:?}").contains("BEGIN PRIVATE KEY"),
            "Debug redacts the key"
        );
        let json = serde_json::to_string(&stored).unwrap();
        let back = Keyring::from_stored(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.jwks(), ring.jwks());
        assert_eq!(
            back.get(&old).and_then(KeyEntry::retiring_since),
            Some(UnixTime::from_secs(2))
        );
    }

    #[test]
    fn stored_keyrings_with_broken_invariants_are_refused() {
        let mut ring = Keyring::new();
        ring.rotate(UnixTime::from_secs(1)).unwrap();
        let stored = ring.to_stored().unwrap();
        let twice = vec![stored[0].clone(), stored[0].clone()];
        assert!(matches!(
            Keyring::from_stored(twice),
            Err(KeyError::DuplicateKid(_))
        ));

        let mut other = stored[0].clone();
        other.kid = Kid::parse("k-other").unwrap();
        assert_eq!(
            Keyring::from_stored(vec![stored[0].clone(), other.clone()]).err(),
            Some(KeyError::MoreThanOneActive)
        );

        other.private_key_pem =
            "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".into();
        other.state = KeyState::Retiring;
        assert!(matches!(
            Keyring::from_stored(vec![stored[0].clone(), other]),
            Err(KeyError::InvalidStoredKey { .. })
        ));
    }

    #[test]
    fn jwks_has_the_published_shape() {
        let mut ring = Keyring::new();
        let kid = ring.rotate(UnixTime::from_secs(1)).unwrap();
        let json = serde_json::to_value(ring.jwks()).unwrap();
        let key = &json["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], kid.as_str());
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
    }
}
