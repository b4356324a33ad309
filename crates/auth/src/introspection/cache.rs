//! Introspection answers by token digest (SHA-256: a raw token is never a key, so a dump of
//! the cache holds no usable token), bounded, each entry with the moment it stops being fresh
//! and, for a positive answer within a grace period, the moment it stops being usable at all.

use super::Answer;
use aws_lc_rs::digest;
use parking_lot::Mutex;
use portico_core::prehashed::Prehashed;
use std::collections::HashMap;

const SHARDS: usize = 16;
/// Entries looked at to make room in a full shard.
const EVICTION_SAMPLE: usize = 8;

/// The SHA-256 digest of a token.
pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub answer: Answer,
    /// Served without asking until then (seconds since the epoch).
    pub fresh_until: u64,
    /// Past `fresh_until`, served only when asking fails, until then (the grace period, never
    /// past the token's `exp`); equal to `fresh_until` without grace.
    pub usable_until: u64,
}

/// What the cache holds for a token now.
#[derive(Debug)]
pub enum Lookup {
    Fresh(Entry),
    /// Past fresh, within grace: ask again, and serve this if asking fails.
    Stale(Entry),
    Miss,
}

type Shard = Mutex<HashMap<TokenKey, Entry, Prehashed>>;

pub struct AnswerCache {
    shards: Box<[Shard]>,
    per_shard_capacity: usize,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("entries", &self.len())
            .finish()
    }
}

impl AnswerCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            per_shard_capacity: max_entries.div_ceil(SHARDS),
        }
    }

    fn shard(&self, key: &TokenKey) -> &Shard {
        &self.shards[key[0] as usize % SHARDS]
    }

    pub fn get(&self, key: &TokenKey, now: u64) -> Lookup {
        let mut shard = self.shard(key).lock();
        match shard.get(key) {
            Some(entry) if now < entry.fresh_until => Lookup::Fresh(entry.clone()),
            Some(entry) if now < entry.usable_until => Lookup::Stale(entry.clone()),
            Some(_) => {
                shard.remove(key);
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    /// Keeps `entry` unless it is already unusable at `now` (or the cache holds nothing).
    pub fn insert(&self, key: TokenKey, entry: Entry, now: u64) {
        if self.per_shard_capacity == 0 || entry.usable_until <= now {
            self.shard(&key).lock().remove(&key);
            return;
        }
        let mut shard = self.shard(&key).lock();
        if shard.len() >= self.per_shard_capacity && !shard.contains_key(&key) {
            // O(1): of a few entries, the unusable ones go; if none is, the one that stops
            // being usable first. Keys are digests, so which entries come first is arbitrary.
            let sample: Vec<(TokenKey, u64)> = shard
                .iter()
                .take(EVICTION_SAMPLE)
                .map(|(k, e)| (*k, e.usable_until))
                .collect();
            let dead: Vec<TokenKey> = sample
                .iter()
                .filter(|(_, until)| *until <= now)
                .map(|(k, _)| *k)
                .collect();
            if dead.is_empty() {
                if let Some((victim, _)) = sample.iter().min_by_key(|(_, until)| *until) {
                    shard.remove(victim);
                }
            } else {
                for victim in dead {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(key, entry);
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

    fn entry(fresh_until: u64, usable_until: u64) -> Entry {
        Entry {
            answer: Answer::Inactive,
            fresh_until,
            usable_until,
        }
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let cache = AnswerCache::new(100);
        let key = token_key("t");
        cache.insert(key, entry(10, 20), 0);
        assert!(matches!(cache.get(&key, 9), Lookup::Fresh(_)));
        assert!(matches!(cache.get(&key, 10), Lookup::Stale(_)));
        assert!(matches!(cache.get(&key, 20), Lookup::Miss));
        assert!(cache.is_empty(), "an unusable entry is dropped when seen");
    }

    #[test]
    fn keys_are_digests_and_the_cache_is_bounded() {
        assert_ne!(token_key("a"), token_key("b"));
        assert_eq!(token_key("a").len(), 32);
        let cache = AnswerCache::new(32);
        for i in 0..1_000 {
            cache.insert(token_key(&i.to_string()), entry(100, 100), 0);
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let off = AnswerCache::new(0);
        off.insert(token_key("a"), entry(100, 100), 0);
        assert!(off.is_empty());
    }

    #[test]
    fn already_unusable_entries_are_not_kept() {
        let cache = AnswerCache::new(100);
        cache.insert(token_key("a"), entry(5, 5), 5);
        assert!(cache.is_empty());
    }
}
