//! Requests per OAuth client per minute, by outcome: what the portal's usage charts show.
//!
//! Counted in memory on the request path (one short lock on one of [`STRIPES`] maps, keyed by
//! a hash of the token's issuer and client id computed once per admission) and taken away in
//! batches by whoever keeps them (the binary writes them to the store every few seconds). A
//! client is only unique within its issuer: both are in the key. Bounded: beyond
//! [`MAX_ENTRIES`] client-minutes waiting, new ones are dropped and counted as dropped.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Client-minutes held at most between two batches.
pub const MAX_ENTRIES: usize = 50_000;
const STRIPES: usize = 16;

/// One client's requests in one minute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientMinute {
    pub issuer: String,
    pub client_id: String,
    /// Minutes since the epoch.
    pub minute: u64,
    /// Answered with a success (1xx–3xx).
    pub ok: u64,
    /// Refused at the gateway's door: 401, 403, 429.
    pub rejected: u64,
    /// Any other error (other 4xx, 5xx).
    pub failed: u64,
}

/// The key of one client (issuer and client id), hashed with a per-process secret seed.
pub fn client_key(issuer: &str, client_id: &str) -> u64 {
    static SEED: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = SEED.get_or_init(RandomState::new).build_hasher();
    issuer.hash(&mut hasher);
    client_id.hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Default)]
pub struct Usage {
    stripes: [Mutex<HashMap<(u64, u64), ClientMinute>>; STRIPES],
    entries: AtomicUsize,
    dropped: AtomicU64,
    /// Whether anyone takes the counts ([`Usage::keep`]); until then nothing is counted.
    kept: AtomicBool,
}

impl Usage {
    /// From now on, count: someone takes the counts away ([`Usage::take`]).
    pub fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }

    /// Counts one answer with `status` for the client `key` (from [`client_key`]).
    pub fn record(&self, key: u64, issuer: &str, client_id: &str, now_secs: u64, status: u16) {
        if !self.kept.load(Ordering::Relaxed) {
            return;
        }
        let minute = now_secs / 60;
        let mut stripe = self.stripes[(key as usize) % STRIPES]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let counts = match stripe.get_mut(&(key, minute)) {
            Some(counts) => counts,
            None => {
                if self.entries.fetch_add(1, Ordering::Relaxed) >= MAX_ENTRIES {
                    self.entries.fetch_sub(1, Ordering::Relaxed);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                stripe.entry((key, minute)).or_insert_with(|| ClientMinute {
                    issuer: issuer.to_string(),
                    client_id: client_id.to_string(),
                    minute,
                    ..ClientMinute::default()
                })
            }
        };
        match status {
            401 | 403 | 429 => counts.rejected += 1,
            400..=599 => counts.failed += 1,
            _ => counts.ok += 1,
        }
    }

    /// Everything counted since the last call.
    pub fn take(&self) -> Vec<ClientMinute> {
        let mut out = Vec::new();
        for stripe in &self.stripes {
            let taken = std::mem::take(&mut *stripe.lock().unwrap_or_else(|e| e.into_inner()));
            self.entries.fetch_sub(taken.len(), Ordering::Relaxed);
            out.extend(taken.into_values());
        }
        out
    }

    /// Gives back what could not be kept (the store was away), added to what came since;
    /// beyond the bound, the oldest are dropped.
    pub fn give_back(&self, rows: Vec<ClientMinute>) {
        for row in rows {
            let key = client_key(&row.issuer, &row.client_id);
            let mut stripe = self.stripes[(key as usize) % STRIPES]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match stripe.get_mut(&(key, row.minute)) {
                Some(counts) => {
                    counts.ok += row.ok;
                    counts.rejected += row.rejected;
                    counts.failed += row.failed;
                }
                None if self.entries.load(Ordering::Relaxed) < MAX_ENTRIES => {
                    self.entries.fetch_add(1, Ordering::Relaxed);
                    stripe.insert((key, row.minute), row);
                }
                None => {
                    self.dropped
                        .fetch_add(row.ok + row.rejected + row.failed, Ordering::Relaxed);
                }
            }
        }
    }

    /// Requests not counted because the bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_client_minute_and_outcome() {
        let usage = Usage::default();
        usage.record(1, "i", "c", 0, 200);
        assert!(
            usage.take().is_empty(),
            "nothing is counted that nobody keeps"
        );
        usage.keep();
        let a = client_key("https://idp-a", "app");
        let b = client_key("https://idp-b", "app");
        assert_ne!(
            a, b,
            "the same client id at another issuer is another client"
        );
        for status in [200, 204, 401, 403, 429, 404, 502] {
            usage.record(a, "https://idp-a", "app", 120, status);
        }
        usage.record(a, "https://idp-a", "app", 185, 200);
        usage.record(b, "https://idp-b", "app", 130, 200);
        let mut rows = usage.take();
        rows.sort_by(|x, y| (&x.issuer, x.minute).cmp(&(&y.issuer, y.minute)));
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].minute, rows[0].ok, rows[0].rejected, rows[0].failed),
            (2, 2, 3, 2)
        );
        assert_eq!((rows[1].minute, rows[1].ok), (3, 1));
        assert_eq!((rows[2].issuer.as_str(), rows[2].ok), ("https://idp-b", 1));
        assert!(usage.take().is_empty(), "taken once");

        usage.give_back(rows);
        usage.record(a, "https://idp-a", "app", 121, 200);
        let again = usage.take();
        let minute2 = again
            .iter()
            .find(|r| r.issuer == "https://idp-a" && r.minute == 2)
            .unwrap();
        assert_eq!(minute2.ok, 3, "given back and counted since, together");
    }

    #[test]
    fn bounded() {
        let usage = Usage::default();
        usage.keep();
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            let id = i.to_string();
            usage.record(client_key("i", &id), "i", &id, 0, 200);
        }
        assert_eq!(usage.dropped(), 10);
        assert_eq!(usage.take().len(), MAX_ENTRIES);
    }
}
