//! The second-level cache the gateway nodes share: answers one node got from the issuer, read
//! by the others before they ask it themselves. The store behind it ([`SharedAnswers`]) is
//! Redis in production; anyone who can write there must not be able to make a token active,
//! so every value is sealed here and opened only if authentic.
//!
//! - **Key**: `portico:introspection:` + hex SHA-256 over the introspector's sharing identity
//!   (endpoint, client id, credentials fingerprint) and the token. No raw token; introspectors
//!   with another endpoint, client or credentials never meet each other's entries.
//! - **Value**: `version (2) ‖ nonce (12) ‖ AES-256-GCM(answered_at ‖ fresh_until (u64 BE each)
//!   ‖ answer JSON)`,
//!   the Redis key (with the version) as associated data. AES-GCM both authenticates (a value
//!   changed, moved to another key, or sealed without the credentials does not open) and hides
//!   the claims from whoever reads Redis. Nonces are random (96 bits, one key per
//!   introspector: far below the 2^32 seals after which a collision gets likely).
//! - **Sealing key**: PBKDF2-HMAC-SHA256 (100,000 rounds, once per introspector) over the
//!   client's secret (`client_secret`, or the `private_key_jwt` PEM), salted with the sharing
//!   identity: only nodes holding the credentials can seal, and reading Redis gives no cheap
//!   offline test of a weak client secret.
//! - **Expiry**: `fresh_until` inside the value is checked on every read (the Redis TTL is only
//!   housekeeping); the reader then applies its own cache rules from `answered_at` (when the
//!   issuer answered), so an entry never lives past `exp`, nor longer after the issuer's
//!   answer than the reader's own settings allow.

use super::Answer;
use super::client::read_answer;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::{digest, pbkdf2};
use std::fmt::Write as _;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An answer read from the shared store.
#[derive(Debug, Clone)]
pub struct SharedEntry {
    pub answer: Answer,
    /// When the issuer gave it (seconds since the epoch).
    pub answered_at: u64,
    /// Until when its writer called it fresh.
    pub fresh_until: u64,
}

/// What a [`SharedAnswers`] call returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store of sealed answers shared by the gateway nodes (values are opaque bytes to it).
///
/// Implementations bound every call with a timeout of their own and never fail a request: a
/// store that does not answer is a miss (`None`) or a write that did not happen, logged at
/// `debug` by the implementation.
pub trait SharedAnswers: Send + Sync + 'static {
    /// The value at `key`, if there is one of at most `max_bytes`.
    fn get<'a>(&'a self, key: &'a str, max_bytes: usize) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Keeps `value` at `key` for `ttl_ms` milliseconds, then forgets it.
    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl_ms: u64) -> StoreFuture<'a, ()>;
}

/// Values larger than this are not written (nor read).
pub const MAX_SHARED_VALUE_BYTES: usize = 64 * 1024;

const KEY_PREFIX: &str = "portico:introspection:";
const VERSION: u8 = 2;
/// `answered_at` and `fresh_until`.
const TIMES_LEN: usize = 16;
/// What a key's digest starts with, so that it means nothing else.
const KEY_LABEL: &[u8] = b"portico introspection cache key v1\0";
const SALT_LABEL: &[u8] = b"portico introspection cache seal v1\0";
const PBKDF2_ROUNDS: NonZeroU32 = NonZeroU32::new(100_000).expect("not zero");
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// While values keep failing to open, a warning at most this often.
const REJECTION_WARN_EVERY_SECS: u64 = 60;

/// Why a value read from the store is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Sealed by someone without the credentials, changed, moved from another key, or of
    /// another format version.
    Unauthentic,
    /// Authentic, but its freshness is over.
    Expired,
}

/// The shared cache of one introspector: its store, key scope and sealing key.
pub struct SharedCache {
    store: Arc<dyn SharedAnswers>,
    /// SHA-256 of the sharing identity; every key's digest starts from it.
    identity: [u8; 32],
    sealing: RandomizedNonceKey,
    rejections: RejectionLog,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache").finish_non_exhaustive()
    }
}

impl SharedCache {
    /// `identity`: the introspector's sharing identity ([`super::sharing_identity`]);
    /// `secret`: its client's secret material. Costs one PBKDF2 derivation (tens of ms).
    pub fn new(store: Arc<dyn SharedAnswers>, identity: [u8; 32], secret: &[u8]) -> Self {
        let mut salt = Vec::with_capacity(SALT_LABEL.len() + identity.len());
        salt.extend_from_slice(SALT_LABEL);
        salt.extend_from_slice(&identity);
        let mut key = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            PBKDF2_ROUNDS,
            &salt,
            secret,
            &mut key,
        );
        let sealing =
            RandomizedNonceKey::new(&AES_256_GCM, &key).expect("a 32-byte key suits AES-256-GCM");
        Self {
            store,
            identity,
            sealing,
            rejections: RejectionLog::default(),
        }
    }

    /// The store key for `token`.
    pub fn key(&self, token: &str) -> String {
        let mut digest = digest::Context::new(&digest::SHA256);
        digest.update(KEY_LABEL);
        digest.update(&self.identity);
        digest.update(token.as_bytes());
        let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
        key.push_str(KEY_PREFIX);
        for byte in digest.finish().as_ref() {
            let _ = write!(key, "{byte:02x}");
        }
        key
    }

    /// The value for `answer` under `key`, given by the issuer at `answered_at` and fresh
    /// until `fresh_until` (seconds since the epoch); `None` when it would be larger than
    /// [`MAX_SHARED_VALUE_BYTES`].
    pub fn seal(
        &self,
        key: &str,
        answer: &Answer,
        answered_at: u64,
        fresh_until: u64,
    ) -> Option<Vec<u8>> {
        let json = match answer {
            Answer::Active(claims) => serde_json::to_vec(&**claims).ok()?,
            Answer::Inactive => br#"{"active":false}"#.to_vec(),
        };
        if HEADER_LEN + TIMES_LEN + json.len() + TAG_LEN > MAX_SHARED_VALUE_BYTES {
            return None;
        }
        let mut sealed = Vec::with_capacity(TIMES_LEN + json.len() + TAG_LEN);
        sealed.extend_from_slice(&answered_at.to_be_bytes());
        sealed.extend_from_slice(&fresh_until.to_be_bytes());
        sealed.extend_from_slice(&json);
        let nonce = self
            .sealing
            .seal_in_place_append_tag(Aad::from(associated_data(key)), &mut sealed)
            .ok()?;
        let mut value = Vec::with_capacity(HEADER_LEN + sealed.len());
        value.push(VERSION);
        value.extend_from_slice(nonce.as_ref());
        value.extend_from_slice(&sealed);
        Some(value)
    }

    /// The answer in `value` (read at `key`), when the issuer gave it and until when it is
    /// fresh, if it is authentic and still fresh at `now`.
    pub fn open(&self, key: &str, value: &[u8], now: u64) -> Result<SharedEntry, Rejected> {
        if value.len() < HEADER_LEN + TIMES_LEN + TAG_LEN || value[0] != VERSION {
            return Err(Rejected::Unauthentic);
        }
        let nonce = Nonce::try_assume_unique_for_key(&value[1..HEADER_LEN])
            .map_err(|_| Rejected::Unauthentic)?;
        let mut sealed = value[HEADER_LEN..].to_vec();
        let plain = self
            .sealing
            .open_in_place(nonce, Aad::from(associated_data(key)), &mut sealed)
            .map_err(|_| Rejected::Unauthentic)?;
        let (times, json) = plain.split_at(TIMES_LEN);
        let answered_at = u64::from_be_bytes(times[..8].try_into().expect("8 bytes"));
        let fresh_until = u64::from_be_bytes(times[8..].try_into().expect("8 bytes"));
        if now >= fresh_until {
            return Err(Rejected::Expired);
        }
        // Sealed by a node with the credentials, so this cannot fail short of a bug there.
        let answer = read_answer(json).map_err(|_| Rejected::Unauthentic)?;
        Ok(SharedEntry {
            answer,
            answered_at,
            fresh_until,
        })
    }

    /// What the store holds for `key`: nothing (or nothing it could give in time), or the
    /// value, opened.
    pub async fn lookup(&self, key: &str, now: u64) -> Option<Result<SharedEntry, Rejected>> {
        let value = self.store.get(key, MAX_SHARED_VALUE_BYTES).await?;
        Some(self.open(key, &value, now))
    }

    /// Stores `answer`, given by the issuer at `answered_at`, under `key` until `fresh_until`;
    /// `ttl_ms` is what is left of that.
    pub async fn store(
        &self,
        key: &str,
        answer: &Answer,
        answered_at: u64,
        fresh_until: u64,
        ttl_ms: u64,
    ) {
        if ttl_ms == 0 {
            return;
        }
        if let Some(value) = self.seal(key, answer, answered_at, fresh_until) {
            self.store.put(key, value, ttl_ms).await;
        }
    }

    /// Notes a value that did not open at `now`; `Some(n)` when it is time to warn about the
    /// `n` seen since the last warning (at most once a minute, so that a forger cannot flood
    /// the log).
    pub fn note_rejected(&self, now: u64) -> Option<u64> {
        self.rejections.rejected(now)
    }
}

fn associated_data(key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + key.len());
    aad.push(VERSION);
    aad.extend_from_slice(key.as_bytes());
    aad
}

#[derive(Debug, Default)]
struct RejectionLog {
    since_warning: AtomicU64,
    next_warning_at: AtomicU64,
}

impl RejectionLog {
    fn rejected(&self, now: u64) -> Option<u64> {
        self.since_warning.fetch_add(1, Ordering::Relaxed);
        let next = self.next_warning_at.load(Ordering::Acquire);
        if now < next {
            return None;
        }
        self.next_warning_at
            .compare_exchange(
                next,
                now.saturating_add(REJECTION_WARN_EVERY_SECS),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        Some(self.since_warning.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parking_lot::Mutex;
    use serde_json::{Map, Value, json};
    use std::collections::HashMap;

    /// A store in memory (lifetimes are not kept).
    #[derive(Default)]
    pub(crate) struct MemoryAnswers(pub Mutex<HashMap<String, Vec<u8>>>);

    impl SharedAnswers for MemoryAnswers {
        fn get<'a>(&'a self, key: &'a str, max: usize) -> StoreFuture<'a, Option<Vec<u8>>> {
            let found = self.0.lock().get(key).filter(|v| v.len() <= max).cloned();
            Box::pin(async move { found })
        }
        fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, _ttl_ms: u64) -> StoreFuture<'a, ()> {
            self.0.lock().insert(key.to_string(), value);
            Box::pin(async {})
        }
    }

    fn cache(identity: &str, secret: &[u8]) -> SharedCache {
        let id = digest::digest(&digest::SHA256, identity.as_bytes());
        SharedCache::new(
            Arc::new(MemoryAnswers::default()),
            id.as_ref().try_into().unwrap(),
            secret,
        )
    }

    fn active(extra: Value) -> Answer {
        let mut claims: Map<String, Value> =
            serde_json::from_value(json!({"active": true, "sub": "alice"})).unwrap();
        claims.extend(serde_json::from_value::<Map<String, Value>>(extra).unwrap());
        Answer::Active(Arc::new(claims))
    }

    fn sub(answer: &Answer) -> Option<&str> {
        match answer {
            Answer::Active(claims) => claims.get("sub").and_then(Value::as_str),
            Answer::Inactive => None,
        }
    }

    #[test]
    fn keys_hide_the_token_and_differ_between_introspectors() {
        let token = "2YotnFZFEjr1zCsicMWpAA";
        let a = cache("https://idp-a/introspect|gateway|basic:x", b"secret");
        let b = cache("https://idp-b/introspect|gateway|basic:x", b"secret");
        let key = a.key(token);
        assert!(key.starts_with(KEY_PREFIX), "{key}");
        assert_eq!(key.len(), KEY_PREFIX.len() + 64);
        assert!(!key.contains(token));
        assert_eq!(key, a.key(token), "stable");
        assert_ne!(key, a.key("another token"));
        assert_ne!(key, b.key(token), "another endpoint, another key");
        let plain_digest = digest::digest(&digest::SHA256, token.as_bytes());
        let plain_hex: String = plain_digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!key.contains(&plain_hex), "not the token's bare digest");
    }

    #[test]
    fn a_sealed_answer_opens_with_its_key_until_its_freshness_ends() {
        let c = cache("idp|gateway|basic:x", b"secret");
        let key = c.key("tok");
        let value = c.seal(&key, &active(json!({})), 0, 1_000).unwrap();
        assert!(
            !String::from_utf8_lossy(&value).contains("alice"),
            "the claims are not readable in the store"
        );
        let opened = c.open(&key, &value, 999).unwrap();
        assert_eq!(sub(&opened.answer), Some("alice"));
        assert_eq!((opened.answered_at, opened.fresh_until), (0, 1_000));
        assert_eq!(c.open(&key, &value, 1_000).unwrap_err(), Rejected::Expired);

        let inactive = c.seal(&key, &Answer::Inactive, 0, 1_000).unwrap();
        assert!(matches!(
            c.open(&key, &inactive, 10).unwrap(),
            SharedEntry {
                answer: Answer::Inactive,
                fresh_until: 1_000,
                ..
            }
        ));
    }

    #[test]
    fn tampered_moved_or_foreign_values_do_not_open() {
        let c = cache("idp|gateway|basic:x", b"secret");
        let key = c.key("tok");
        let value = c.seal(&key, &Answer::Inactive, 0, 1_000).unwrap();
        // Every single bit flipped, one at a time: none opens.
        for i in 0..value.len() {
            for bit in 0..8 {
                let mut changed = value.clone();
                changed[i] ^= 1 << bit;
                assert_eq!(
                    c.open(&key, &changed, 0).unwrap_err(),
                    Rejected::Unauthentic,
                    "byte {i} bit {bit}"
                );
            }
        }
        assert_eq!(
            c.open(&key, &value[..value.len() - 1], 0).unwrap_err(),
            Rejected::Unauthentic
        );
        assert_eq!(c.open(&key, b"", 0).unwrap_err(), Rejected::Unauthentic);
        // Another token's value, copied under this token's key.
        let other = c.key("other");
        let moved = c.seal(&other, &active(json!({})), 0, 1_000).unwrap();
        assert_eq!(c.open(&key, &moved, 0).unwrap_err(), Rejected::Unauthentic);
        // Sealed by a node without the credentials (same identity, another secret).
        let forger = cache("idp|gateway|basic:x", b"guessed");
        assert_eq!(forger.key("tok"), key);
        let forged = forger.seal(&key, &active(json!({})), 0, u64::MAX).unwrap();
        assert_eq!(c.open(&key, &forged, 0).unwrap_err(), Rejected::Unauthentic);
        // A plain answer, as someone might write it by hand.
        let plain = br#"{"active":true,"sub":"mallory"}"#;
        assert_eq!(c.open(&key, plain, 0).unwrap_err(), Rejected::Unauthentic);
    }

    #[test]
    fn answers_too_large_to_share_are_not_sealed() {
        let c = cache("idp|gateway|basic:x", b"secret");
        let key = c.key("tok");
        let big = active(json!({"blob": "x".repeat(MAX_SHARED_VALUE_BYTES)}));
        assert!(c.seal(&key, &big, 0, 1_000).is_none());
        let fits = active(json!({"blob": "x".repeat(MAX_SHARED_VALUE_BYTES - 200)}));
        assert!(c.seal(&key, &fits, 0, 1_000).unwrap().len() <= MAX_SHARED_VALUE_BYTES);
    }

    #[tokio::test]
    async fn lookups_open_what_the_store_holds_and_warnings_are_rare() {
        let store = Arc::new(MemoryAnswers::default());
        let c = SharedCache::new(store.clone(), [7u8; 32], b"secret");
        let key = c.key("tok");
        assert!(c.lookup(&key, 10).await.is_none(), "nothing stored");
        c.store(&key, &active(json!({})), 5, 100, 50_000).await;
        let found = c.lookup(&key, 10).await.unwrap().unwrap();
        assert_eq!(sub(&found.answer), Some("alice"));
        assert_eq!(found.answered_at, 5);
        assert!(matches!(
            c.lookup(&key, 100).await,
            Some(Err(Rejected::Expired))
        ));
        store.0.lock().get_mut(&key).unwrap()[20] ^= 1;
        assert!(matches!(
            c.lookup(&key, 10).await,
            Some(Err(Rejected::Unauthentic))
        ));
        c.store(&c.key("no-lifetime"), &Answer::Inactive, 5, 100, 0)
            .await;
        assert!(!store.0.lock().contains_key(&c.key("no-lifetime")));

        assert_eq!(c.note_rejected(1_000), Some(1), "the first one warns");
        assert_eq!(c.note_rejected(1_001), None);
        assert_eq!(c.note_rejected(1_059), None);
        assert_eq!(
            c.note_rejected(1_060),
            Some(3),
            "a minute later, with the count"
        );
    }
}
