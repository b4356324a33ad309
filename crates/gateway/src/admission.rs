//! What a verified token means for one API — identity, session, policies, the header values
//! the upstream gets — and the bounded cache that keeps it, so a token seen again costs a
//! SHA-256 and a map lookup instead of a signature check.
//!
//! Entries never outlive the token's `exp` (plus its skew) nor `token_cache.max_ttl_secs`,
//! nor the JWKS key that verified the token: an entry whose key has left its key set is
//! dropped when next found, and the token is verified again (and fails with `unknown_kid`).
//! The cache belongs to one pipeline: a reload (new keys, edited policies) starts a fresh one.
//! Keys are hashes of (API, token); the token itself is not kept.

use aws_lc_rs::digest;
use http::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use portico_auth::sources::KeyLiveness;
use portico_core::config::TokenCacheSettings;
use portico_core::prehashed::Prehashed;
use portico_core::revocation::TokenFacts;
use portico_core::{Policy, SessionId};
use std::collections::HashMap;
use std::sync::Arc;

const SHARDS: usize = 16;
/// Entries looked at to make room in a full shard.
const EVICTION_SAMPLE: usize = 8;

/// A token admitted to one API.
#[derive(Debug)]
pub struct Admission {
    pub session: SessionId,
    pub identity: HeaderValue,
    pub session_hex: HeaderValue,
    /// The identity as text (for the upstream JWT; any UTF-8).
    pub identity_text: String,
    /// The issuer of the token, for the upstream (`None`: unknown).
    pub issuer: Option<HeaderValue>,
    /// The token's `client_id` and `scope` claims, for the upstream JWT (and revocations).
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// What revocations are matched against besides `client_id` and `identity_text`: the
    /// token's `jti`, its issuer (the entry's configured one, else the token's `iss`) and its
    /// `iat` (seconds since the epoch).
    pub jti: Option<String>,
    pub token_issuer: Option<String>,
    pub issued_at: Option<u64>,
    /// The client's key for the usage counts (`None`: the token names no client).
    pub usage_key: Option<u64>,
    /// The policies the token brings (empty for authentication-only APIs).
    pub policies: Vec<Arc<Policy>>,
    /// Mapped claims, ready to send upstream.
    pub claim_headers: Vec<(HeaderName, HeaderValue)>,
    /// Seconds since the epoch after which this must not be used.
    pub valid_until: u64,
    /// The JWKS key that verified the token (`None`: a configured key); once it is no longer
    /// live this must not be used.
    pub key: Option<KeyLiveness>,
}

impl Admission {
    /// What a revocation is matched against.
    pub fn facts(&self) -> TokenFacts<'_> {
        TokenFacts {
            client_id: self.client_id.as_deref(),
            jti: self.jti.as_deref(),
            identity: &self.identity_text,
            issuer: self.token_issuer.as_deref(),
            issued_at: self.issued_at,
        }
    }

    /// Usable at `now_secs`: not expired, and its key (if remote) still published. One atomic
    /// load in the common case.
    #[inline]
    fn is_usable(&self, now_secs: u64) -> bool {
        self.valid_until > now_secs && self.key.as_ref().is_none_or(KeyLiveness::is_live)
    }
}

pub type CacheKey = [u8; 32];
/// Keys are SHA-256 digests already.
type Shard = Mutex<HashMap<CacheKey, Arc<Admission>, Prehashed>>;

pub struct AdmissionCache {
    shards: Box<[Shard]>,
    per_shard_capacity: usize,
    settings: TokenCacheSettings,
}

impl std::fmt::Debug for AdmissionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionCache")
            .field("settings", &self.settings)
            .finish()
    }
}

impl AdmissionCache {
    pub fn new(settings: TokenCacheSettings) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard_capacity: settings.max_entries.div_ceil(SHARDS),
            settings,
        }
    }

    /// The cache key of `token` for the API at `api_index`; `None` when the cache is off, so
    /// that no hash is computed for nothing.
    pub fn key(&self, api_index: usize, token: &str) -> Option<CacheKey> {
        (self.settings.max_entries > 0).then(|| Self::digest(api_index, token))
    }

    fn digest(api_index: usize, token: &str) -> CacheKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&(api_index as u64).to_be_bytes());
        ctx.update(token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    fn shard(&self, key: &CacheKey) -> &Shard {
        &self.shards[key[0] as usize % SHARDS]
    }

    /// The admission for `key`, if cached, still valid at `now_secs` and its key still live;
    /// otherwise the entry is removed.
    pub fn get(&self, key: &CacheKey, now_secs: u64) -> Option<Arc<Admission>> {
        let mut shard = self.shard(key).lock();
        match shard.get(key) {
            Some(a) if a.is_usable(now_secs) => Some(a.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    /// The latest a new entry may live, given the token's own limit.
    pub fn valid_until(&self, token_valid_until: Option<u64>, now_secs: u64) -> u64 {
        let cap = now_secs.saturating_add(self.settings.max_ttl_secs);
        token_valid_until.map_or(cap, |t| t.min(cap))
    }

    pub fn insert(&self, key: CacheKey, admission: Arc<Admission>, now_secs: u64) {
        let mut shard = self.shard(&key).lock();
        if shard.len() >= self.per_shard_capacity && !shard.contains_key(&key) {
            // O(1): of a few entries, the unusable ones go; if none is, the first. Keys are
            // SHA-256 digests, so which entries come first is arbitrary, and a cache miss
            // costs one verification, nothing more.
            let sample: Vec<(CacheKey, bool)> = shard
                .iter()
                .take(EVICTION_SAMPLE)
                .map(|(k, a)| (*k, a.is_usable(now_secs)))
                .collect();
            let mut evicted = false;
            for (victim, usable) in &sample {
                if !usable {
                    shard.remove(victim);
                    evicted = true;
                }
            }
            if !evicted && let Some((victim, _)) = sample.first() {
                shard.remove(victim);
            }
        }
        shard.insert(key, admission);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(valid_until: u64) -> Arc<Admission> {
        Arc::new(Admission {
            session: SessionId::from_label("a"),
            identity: HeaderValue::from_static("a"),
            session_hex: HeaderValue::from_static("00"),
            identity_text: "a".into(),
            issuer: None,
            client_id: None,
            scope: None,
            jti: None,
            token_issuer: None,
            issued_at: None,
            usage_key: None,
            policies: Vec::new(),
            claim_headers: Vec::new(),
            valid_until,
            key: None,
        })
    }

    #[test]
    fn entries_expire_and_keys_are_per_api() {
        let cache = AdmissionCache::new(TokenCacheSettings::default());
        let key = cache.key(0, "t").unwrap();
        assert_ne!(key, cache.key(1, "t").unwrap());
        cache.insert(key, admission(100), 50);
        assert!(cache.get(&key, 99).is_some());
        assert!(cache.get(&key, 100).is_none());
        assert!(cache.is_empty(), "an expired entry is removed when found");
    }

    #[test]
    fn validity_is_capped_by_token_and_ttl() {
        let cache = AdmissionCache::new(TokenCacheSettings {
            max_entries: 10,
            max_ttl_secs: 300,
        });
        assert_eq!(cache.valid_until(Some(1_100), 1_000), 1_100);
        assert_eq!(cache.valid_until(Some(9_999), 1_000), 1_300);
        assert_eq!(cache.valid_until(None, 1_000), 1_300);
    }

    #[test]
    fn bounded_and_can_be_disabled() {
        let cache = AdmissionCache::new(TokenCacheSettings {
            max_entries: 32,
            max_ttl_secs: 300,
        });
        for i in 0..1000 {
            cache.insert(cache.key(0, &i.to_string()).unwrap(), admission(10_000), 1);
        }
        assert!(cache.len() <= 32);
        let off = AdmissionCache::new(TokenCacheSettings {
            max_entries: 0,
            max_ttl_secs: 300,
        });
        assert!(
            off.key(0, "t").is_none(),
            "no key, so nothing is hashed, stored or found"
        );
    }
}
