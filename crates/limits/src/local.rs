//! The in-process limiter: counters per identity session in a sharded map, bounded in size,
//! idle sessions swept. No global lock: a request locks one of 64 shards for a few hundred
//! nanoseconds.
//!
//! When a shard is full, a new session takes the place of one of a few sessions sampled at
//! random: a session at rest (no rate debt, no running quota period) if the sample has one,
//! else the least recently seen — which forgets its counters, so a full map can reset a
//! quota. Each eviction is O(1) and counted ([`LimiterObserver`]); size `max_sessions` so
//! that it does not happen.

use crate::observer::{IgnoreEvictions, LimiterObserver};
use crate::quota::QuotaState;
use crate::{Decision, LimitStatus, Limiter, LimiterError, Limits, Verdict, gcra, quota};
use parking_lot::Mutex;
use portico_core::SessionId;
use portico_core::config::SessionSettings;
use portico_core::policy::Quota;
use portico_core::prehashed::Prehashed;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: usize = 64;
/// Sessions sampled to choose one to evict.
const EVICTION_SAMPLE: usize = 8;

/// One shard: sessions in a vector (for O(1) random sampling and removal) and an index by id.
#[derive(Default)]
struct Shard {
    /// Session ids are already uniformly distributed hashes.
    index: HashMap<u128, u32, Prehashed>,
    entries: Vec<(u128, SessionCounters)>,
    /// xorshift state for sampling.
    rng: u64,
}

impl Shard {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get_or_insert(&mut self, id: u128, now_ns: u64) -> &mut SessionCounters {
        let i = match self.index.get(&id) {
            Some(&i) => i as usize,
            None => {
                self.index.insert(id, self.entries.len() as u32);
                self.entries.push((
                    id,
                    SessionCounters {
                        last_seen_ns: now_ns,
                        buckets: Vec::with_capacity(1),
                    },
                ));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    fn remove_at(&mut self, i: usize) {
        let (id, _) = self.entries.swap_remove(i);
        self.index.remove(&id);
        if let Some((moved, _)) = self.entries.get(i) {
            self.index.insert(*moved, i as u32);
        }
    }

    /// Removes the sessions `drop` picks; returns how many.
    fn remove_where(&mut self, drop: impl Fn(&SessionCounters) -> bool) -> usize {
        let before = self.len();
        let mut i = 0;
        while i < self.entries.len() {
            if drop(&self.entries[i].1) {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        before - self.len()
    }

    fn random_index(&mut self) -> usize {
        // xorshift64*: plenty for picking a sample.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.entries.len() as u64) as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    key: u64,
    tat_ns: u64,
    quota: QuotaState,
}

#[derive(Debug)]
struct SessionCounters {
    last_seen_ns: u64,
    buckets: Vec<Bucket>,
}

impl SessionCounters {
    fn bucket(&mut self, key: u64) -> usize {
        match self.buckets.iter().position(|b| b.key == key) {
            Some(i) => i,
            None => {
                self.buckets.push(Bucket {
                    key,
                    tat_ns: 0,
                    quota: QuotaState::default(),
                });
                self.buckets.len() - 1
            }
        }
    }

    fn at_rest(&self, now_ns: u64) -> bool {
        self.buckets
            .iter()
            .all(|b| gcra::at_rest(b.tat_ns, now_ns) && quota::at_rest(b.quota, now_ns))
    }
}

/// Counters held in this process.
pub struct LocalLimiter {
    shards: Box<[Mutex<Shard>]>,
    per_shard_capacity: usize,
    idle_ttl_ns: u64,
    epoch: Instant,
    observer: Arc<dyn LimiterObserver>,
}

impl std::fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("sessions", &self.len())
            .finish()
    }
}

impl LocalLimiter {
    pub fn new(settings: SessionSettings) -> Self {
        Self::with_observer(settings, Arc::new(IgnoreEvictions))
    }

    pub fn with_observer(settings: SessionSettings, observer: Arc<dyn LimiterObserver>) -> Self {
        let seed =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        Self {
            shards: (0..SHARDS as u64)
                .map(|i| {
                    Mutex::new(Shard {
                        rng: (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1,
                        ..Shard::default()
                    })
                })
                .collect(),
            per_shard_capacity: settings.max_sessions.div_ceil(SHARDS).max(1),
            idle_ttl_ns: settings.idle_ttl_secs.saturating_mul(1_000_000_000),
            epoch: Instant::now(),
            observer,
        }
    }

    /// Sessions currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_ns(&self) -> u64 {
        // Offset by one so that "TAT 0" and "no period yet" are always in the past.
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    fn shard(&self, id: u128) -> &Mutex<Shard> {
        &self.shards[(id >> 122) as usize % SHARDS]
    }

    /// Drops sessions idle longer than the TTL whose counters are all at rest.
    pub fn sweep(&self) -> usize {
        let now = self.now_ns();
        let ttl = self.idle_ttl_ns;
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .remove_where(|s| now.saturating_sub(s.last_seen_ns) >= ttl && s.at_rest(now))
            })
            .sum()
    }

    /// Makes room for one more session in a full shard, in O(1): of a random sample, the
    /// least recently seen session at rest, else the least recently seen.
    fn make_room(&self, shard: &mut Shard, now: u64) {
        let mut victim: Option<(usize, bool, u64)> = None;
        for _ in 0..EVICTION_SAMPLE.min(shard.len()) {
            let i = shard.random_index();
            let s = &shard.entries[i].1;
            let candidate = (i, s.at_rest(now), s.last_seen_ns);
            // At rest beats running; then the least recently seen.
            let better = victim.is_none_or(|(_, rest, seen)| {
                (candidate.1, std::cmp::Reverse(candidate.2)) > (rest, std::cmp::Reverse(seen))
            });
            if better {
                victim = Some(candidate);
            }
        }
        if let Some((i, at_rest, _)) = victim {
            shard.remove_at(i);
            self.observer.evicted(at_rest);
        }
    }

    /// Sweeps every `every` until the limiter is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        spawn_sweeper_of(self, every, Self::sweep);
    }

    pub(crate) fn decide(&self, session: SessionId, limits: &Limits) -> Decision {
        let now = self.now_ns();
        let id = session.as_u128();
        let mut shard = self.shard(id).lock();
        if !shard.index.contains_key(&id) && shard.len() >= self.per_shard_capacity {
            self.make_room(&mut shard, now);
        }
        let counters = shard.get_or_insert(id, now);
        counters.last_seen_ns = now;
        counters.decide(limits, now, true)
    }

    /// What `session` has left under `limits` now, counting nothing (the admin API's session
    /// view): `remaining` is what is left before the next request, not after it.
    pub fn peek(&self, session: SessionId, limits: &Limits) -> Decision {
        let now = self.now_ns();
        let id = session.as_u128();
        let shard = self.shard(id).lock();
        let mut counters = match shard.index.get(&id) {
            Some(&i) => SessionCounters {
                last_seen_ns: now,
                buckets: shard.entries[i as usize].1.buckets.clone(),
            },
            None => SessionCounters {
                last_seen_ns: now,
                buckets: Vec::new(),
            },
        };
        drop(shard);
        counters.decide(limits, now, false)
    }

    /// Of `candidates` (counter keys), those `session` has counters under here.
    pub fn counted_under(&self, session: SessionId, candidates: &[u64]) -> Vec<u64> {
        let id = session.as_u128();
        let shard = self.shard(id).lock();
        let Some(&i) = shard.index.get(&id) else {
            return Vec::new();
        };
        let buckets = &shard.entries[i as usize].1.buckets;
        candidates
            .iter()
            .copied()
            .filter(|key| buckets.iter().any(|b| b.key == *key))
            .collect()
    }

    /// Forgets every counter of `session`.
    pub fn reset(&self, session: SessionId) {
        let id = session.as_u128();
        let mut shard = self.shard(id).lock();
        if let Some(&i) = shard.index.get(&id) {
            shard.remove_at(i as usize);
        }
    }
}

impl SessionCounters {
    /// Decides one request on these counters; `count`: store what an allowed request uses
    /// (and report what is left after it), else only look (and report what is left now).
    fn decide(&mut self, limits: &Limits, now: u64, count: bool) -> Decision {
        let rate = limits.rate.map(|(key, limit)| {
            let i = self.bucket(key);
            (i, gcra::check(limit, self.buckets[i].tat_ns, now))
        });
        let quota = match limits.quota {
            Some((key, Quota::Limited { max, renewal_ms })) => {
                let i = self.bucket(key);
                Some((i, quota::check(max, renewal_ms, self.buckets[i].quota, now)))
            }
            _ => None,
        };
        let verdict = match (&rate, &quota) {
            (Some((_, r)), _) if !r.allowed => Verdict::RateLimited {
                retry_after_ms: r.retry_after_ns.div_ceil(1_000_000),
            },
            (_, Some((_, q))) if !q.allowed => Verdict::QuotaExceeded {
                retry_after_ms: q.retry_after_ns.div_ceil(1_000_000),
            },
            _ => Verdict::Allowed,
        };
        if count && verdict == Verdict::Allowed {
            if let Some((i, r)) = &rate {
                self.buckets[*i].tat_ns = r.new_tat_ns;
            }
            if let Some((i, q)) = &quota {
                self.buckets[*i].quota = q.next;
            }
        }
        if count {
            return Decision {
                verdict,
                rate: rate.map(|(_, r)| r.status),
                quota: quota.map(|(_, q)| q.status),
            };
        }
        // Only looking: what is there now, before the request that was not made.
        Decision {
            verdict,
            rate: limits
                .rate
                .zip(rate)
                .map(|((_, limit), (i, _))| gcra::status_now(limit, self.buckets[i].tat_ns, now)),
            quota: quota.map(|(_, q)| LimitStatus {
                remaining: if q.allowed {
                    (q.status.remaining + 1).min(q.status.limit)
                } else {
                    q.status.remaining
                },
                ..q.status
            }),
        }
    }
}

/// Calls `sweep` on `owner` every `every` until `owner` is dropped (for the local limiter
/// alone or inside another limiter).
pub(crate) fn spawn_sweeper_of<T: Send + Sync + 'static>(
    owner: &Arc<T>,
    every: Duration,
    sweep: fn(&T) -> usize,
) {
    let weak: Weak<T> = Arc::downgrade(owner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(owner) = weak.upgrade() else { break };
            let removed = sweep(&owner);
            if removed > 0 {
                tracing::debug!(removed, "swept idle identity sessions");
            }
        }
    });
}

impl Limiter for LocalLimiter {
    async fn check(&self, session: SessionId, limits: &Limits) -> Result<Decision, LimiterError> {
        Ok(self.decide(session, limits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::policy::RateLimit;

    fn limits(rate: Option<(u64, u64)>, quota: Option<(u64, u64)>) -> Limits {
        Limits {
            rate: rate.map(|(n, per)| (1, RateLimit::try_new(n, per).unwrap())),
            quota: quota.map(|(max, ms)| (2, Quota::limited(max, ms).unwrap())),
        }
    }

    fn settings() -> SessionSettings {
        SessionSettings {
            max_sessions: 1000,
            idle_ttl_secs: 60,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identities_have_separate_counters() {
        let l = LocalLimiter::new(settings());
        let lim = limits(Some((2, 1000)), None);
        let alice = SessionId::from_label("alice");
        let bob = SessionId::from_label("bob");
        assert_eq!(
            l.check(alice, &lim).await.unwrap().verdict,
            Verdict::Allowed
        );
        assert_eq!(
            l.check(alice, &lim).await.unwrap().verdict,
            Verdict::Allowed
        );
        assert!(matches!(
            l.check(alice, &lim).await.unwrap().verdict,
            Verdict::RateLimited { .. }
        ));
        assert_eq!(l.check(bob, &lim).await.unwrap().verdict, Verdict::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_recovers_with_time_and_rejections_are_free() {
        let l = LocalLimiter::new(settings());
        let lim = limits(Some((1, 1000)), None);
        let s = SessionId::from_label("a");
        assert_eq!(l.check(s, &lim).await.unwrap().verdict, Verdict::Allowed);
        for _ in 0..50 {
            tokio::time::advance(Duration::from_millis(10)).await;
            let d = l.check(s, &lim).await.unwrap();
            assert!(matches!(d.verdict, Verdict::RateLimited { .. }));
        }
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(l.check(s, &lim).await.unwrap().verdict, Verdict::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn quota_renews_and_rate_rejection_does_not_spend_quota() {
        let l = LocalLimiter::new(settings());
        let lim = limits(Some((1, 1000)), Some((2, 60_000)));
        let s = SessionId::from_label("a");
        assert_eq!(l.check(s, &lim).await.unwrap().verdict, Verdict::Allowed);
        // Rate-limited: must not count against the quota.
        assert!(matches!(
            l.check(s, &lim).await.unwrap().verdict,
            Verdict::RateLimited { .. }
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        let second = l.check(s, &lim).await.unwrap();
        assert_eq!(second.verdict, Verdict::Allowed);
        assert_eq!(second.quota.unwrap().remaining, 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        let third = l.check(s, &lim).await.unwrap();
        assert_eq!(
            third.verdict,
            Verdict::QuotaExceeded {
                retry_after_ms: 58_000
            }
        );
        // Quota rejection must not spend rate allowance either.
        tokio::time::advance(Duration::from_secs(58)).await;
        assert_eq!(l.check(s, &lim).await.unwrap().verdict, Verdict::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_at_rest_are_swept_but_live_quotas_stay() {
        let l = LocalLimiter::new(settings());
        l.check(
            SessionId::from_label("rate-only"),
            &limits(Some((5, 1000)), None),
        )
        .await
        .unwrap();
        l.check(
            SessionId::from_label("daily"),
            &limits(None, Some((10, 86_400_000))),
        )
        .await
        .unwrap();
        assert_eq!(l.len(), 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(l.sweep(), 1);
        assert_eq!(l.len(), 1, "a session with a running quota period is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_is_bounded() {
        let l = LocalLimiter::new(SessionSettings {
            max_sessions: 64,
            idle_ttl_secs: 3600,
        });
        let lim = limits(Some((5, 1000)), None);
        for i in 0..1000 {
            l.check(SessionId::from_label(&i.to_string()), &lim)
                .await
                .unwrap();
        }
        assert!(l.len() <= 64, "held {}", l.len());
    }

    #[derive(Default)]
    struct Counted(
        std::sync::atomic::AtomicUsize,
        std::sync::atomic::AtomicUsize,
    );

    impl LimiterObserver for Counted {
        fn evicted(&self, at_rest: bool) {
            let n = if at_rest { &self.0 } else { &self.1 };
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_evicts_sessions_at_rest_before_running_quotas() {
        let counted = Arc::new(Counted::default());
        let l = LocalLimiter::with_observer(
            SessionSettings {
                max_sessions: 64 * 16,
                idle_ttl_secs: 3600,
            },
            counted.clone(),
        );
        let daily = limits(None, Some((5, 86_400_000)));
        let rate_only = limits(Some((100, 1000)), None);
        // Half the map has running daily quotas; the other half only a rate, soon at rest.
        let quota_users: Vec<SessionId> = (0..400)
            .map(|i| SessionId::from_label(&format!("q{i}")))
            .collect();
        for s in &quota_users {
            l.check(*s, &daily).await.unwrap();
        }
        for i in 0..400 {
            l.check(SessionId::from_label(&format!("r{i}")), &rate_only)
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        // A flood of new identities fills the map several times over.
        // (A one-off caller's rate debt is paid off 10 ms later: it is then at rest.)
        for i in 0..5000 {
            l.check(SessionId::from_label(&format!("new{i}")), &rate_only)
                .await
                .unwrap();
            if i % 10 == 0 {
                tokio::time::advance(Duration::from_millis(20)).await;
            }
        }
        assert!(l.len() <= 64 * 16);
        let kept = quota_users
            .iter()
            .filter(|s| {
                let id = s.as_u128();
                l.shard(id).lock().index.contains_key(&id)
            })
            .count();
        assert!(
            kept > 300,
            "most running quotas survive the flood: {kept} of 400"
        );
        let (at_rest, active) = (
            counted.0.load(std::sync::atomic::Ordering::Relaxed),
            counted.1.load(std::sync::atomic::Ordering::Relaxed),
        );
        assert!(
            at_rest > 4000,
            "evictions are counted: {at_rest} at rest, {active} active"
        );
    }
}
