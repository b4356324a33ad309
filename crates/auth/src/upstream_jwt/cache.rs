//! The upstream JWT cache: signed tokens by caller, in shards, bounded.

use bytes::Bytes;
use parking_lot::Mutex;
use portico_core::prehashed::Prehashed;
use std::collections::HashMap;

const SHARDS: usize = 64;

/// A SHA-256 digest, so already uniformly distributed.
pub(super) type CacheKey = [u8; 32];

#[derive(Debug, Clone)]
pub(super) struct CachedToken {
    pub(super) token: Bytes,
    /// When it was signed, in seconds since the Unix epoch.
    pub(super) iat: u64,
}

type Shard = HashMap<CacheKey, CachedToken, Prehashed>;

/// Holds at most `shards × per_shard_capacity` tokens, never more than the configured maximum.
pub(super) struct TokenCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard_capacity: usize,
    ttl_secs: u64,
}

impl TokenCache {
    /// A cache of at most `max_entries` (≥ 1) tokens that each live `ttl_secs`.
    pub(super) fn new(max_entries: usize, ttl_secs: u64) -> Self {
        let shards = max_entries.clamp(1, SHARDS);
        Self::with_shards(shards, max_entries / shards, ttl_secs)
    }

    fn with_shards(shards: usize, per_shard_capacity: usize, ttl_secs: u64) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard_capacity: per_shard_capacity.max(1),
            ttl_secs,
        }
    }

    /// At least half of the lifetime is left (`exp - now >= ttl / 2`, i.e.
    /// `now - iat <= ttl / 2`), and the token was not signed after `now` (a clock that went
    /// back gets a fresh token rather than one the upstream may see as issued in the future).
    fn is_reusable(&self, token: &CachedToken, now_secs: u64) -> bool {
        now_secs >= token.iat && now_secs - token.iat <= self.ttl_secs / 2
    }

    /// The shard comes from the key's first bytes; the map inside hashes its last ones.
    fn shard(&self, key: &CacheKey) -> &Mutex<Shard> {
        let head = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        &self.shards[(head % self.shards.len() as u64) as usize]
    }

    /// The cached token for `key` if it may still be handed out at `now_secs`.
    pub(super) fn reusable(&self, key: &CacheKey, now_secs: u64) -> Option<Bytes> {
        let shard = self.shard(key).lock();
        let cached = shard.get(key)?;
        self.is_reusable(cached, now_secs)
            .then(|| cached.token.clone())
    }

    /// Keeps `token` for `key`, replacing any older one, making room if the shard is full.
    pub(super) fn store(&self, key: CacheKey, token: CachedToken, now_secs: u64) {
        let mut shard = self.shard(&key).lock();
        if !shard.contains_key(&key) && shard.len() >= self.per_shard_capacity {
            self.make_room(&mut shard, now_secs);
        }
        shard.insert(key, token);
    }

    /// Drops every token past its reuse window (they would never be handed out again); if
    /// none is, the one signed longest ago, which would be the next to go stale.
    fn make_room(&self, shard: &mut Shard, now_secs: u64) {
        let before = shard.len();
        shard.retain(|_, t| self.is_reusable(t, now_secs));
        if shard.len() < before {
            return;
        }
        let oldest = shard.iter().min_by_key(|(_, t)| t.iat).map(|(k, _)| *k);
        if let Some(key) = oldest {
            shard.remove(&key);
        }
    }

    /// Tokens held; locks each shard in turn.
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> CacheKey {
        let mut key = [0u8; 32];
        key[28..].copy_from_slice(&n.to_be_bytes());
        key
    }

    fn token(iat: u64) -> CachedToken {
        CachedToken {
            token: Bytes::from(format!("token-{iat}")),
            iat,
        }
    }

    #[test]
    fn reuse_ends_when_half_the_lifetime_is_gone() {
        let cache = TokenCache::new(10, 61);
        cache.store(key(1), token(100), 100);
        assert!(cache.reusable(&key(1), 100).is_some());
        // 61 s lifetime: at +30 s 31 s remain (≥ 30.5), at +31 s only 30.
        assert!(cache.reusable(&key(1), 130).is_some());
        assert!(cache.reusable(&key(1), 131).is_none());
        // A clock that went back does not get a token issued in its future.
        assert!(cache.reusable(&key(1), 99).is_none());
        assert!(cache.reusable(&key(2), 100).is_none());
    }

    #[test]
    fn never_holds_more_than_the_maximum() {
        for max in [1, 10, 63, 64, 65, 1000] {
            let cache = TokenCache::new(max, 60);
            for n in 0..5_000 {
                let mut k = key(n);
                // Spread over the shards, as real SHA-256 keys are.
                k[..8].copy_from_slice(
                    &u64::from(n)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .to_be_bytes(),
                );
                cache.store(k, token(1_000), 1_000);
            }
            assert!(cache.len() <= max, "{} > {max}", cache.len());
            assert!(
                cache.len() >= max / 2,
                "{} tokens with room for {max}",
                cache.len()
            );
        }
    }

    #[test]
    fn a_full_shard_drops_stale_tokens_first() {
        let cache = TokenCache::with_shards(1, 3, 60);
        cache.store(key(1), token(0), 0);
        cache.store(key(2), token(0), 0);
        cache.store(key(3), token(20), 20);
        // At 40, the two tokens from 0 are past their reuse window; the one from 20 is not.
        cache.store(key(4), token(40), 40);
        assert_eq!(cache.len(), 2);
        assert!(cache.reusable(&key(3), 40).is_some());
        assert!(cache.reusable(&key(4), 40).is_some());
    }

    #[test]
    fn a_full_shard_of_fresh_tokens_drops_the_oldest() {
        let cache = TokenCache::with_shards(1, 3, 60);
        cache.store(key(1), token(12), 12);
        cache.store(key(2), token(10), 12);
        cache.store(key(3), token(11), 12);
        cache.store(key(4), token(12), 12);
        assert_eq!(cache.len(), 3);
        assert!(cache.reusable(&key(2), 12).is_none());
        for n in [1, 3, 4] {
            assert!(cache.reusable(&key(n), 12).is_some(), "key {n}");
        }
    }

    #[test]
    fn replacing_a_token_needs_no_room() {
        let cache = TokenCache::with_shards(1, 2, 60);
        cache.store(key(1), token(0), 0);
        cache.store(key(2), token(0), 0);
        cache.store(key(1), token(5), 5);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.reusable(&key(1), 5).unwrap(), "token-5");
        assert!(cache.reusable(&key(2), 5).is_some());
    }
}
