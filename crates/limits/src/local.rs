//! The in-process limiter: counters per identity session in a sharded map, bounded in size,
//! idle sessions swept. No global lock: a request locks one of 64 shards for a few hundred
//! nanoseconds.

use crate::quota::QuotaState;
use crate::{Decision, Limiter, LimiterError, Limits, Verdict, gcra, quota};
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

/// Session ids are already uniformly distributed hashes.
type ShardMap = HashMap<u128, SessionCounters, Prehashed>;

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
    shards: Box<[Mutex<ShardMap>]>,
    per_shard_capacity: usize,
    idle_ttl_ns: u64,
    epoch: Instant,
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
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(ShardMap::default()))
                .collect(),
            per_shard_capacity: settings.max_sessions.div_ceil(SHARDS).max(1),
            idle_ttl_ns: settings.idle_ttl_secs.saturating_mul(1_000_000_000),
            epoch: Instant::now(),
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

    fn shard(&self, id: u128) -> &Mutex<ShardMap> {
        &self.shards[(id >> 122) as usize % SHARDS]
    }

    /// Drops sessions idle longer than the TTL whose counters are all at rest.
    pub fn sweep(&self) -> usize {
        let now = self.now_ns();
        self.shards
            .iter()
            .map(|shard| Self::sweep_shard(&mut shard.lock(), now, self.idle_ttl_ns))
            .sum()
    }

    fn sweep_shard(shard: &mut ShardMap, now: u64, idle_ttl_ns: u64) -> usize {
        let before = shard.len();
        shard.retain(|_, s| !(now.saturating_sub(s.last_seen_ns) >= idle_ttl_ns && s.at_rest(now)));
        before - shard.len()
    }

    /// Makes room for one more session in a full shard: sweep, then evict the least recently
    /// seen of a sample.
    fn make_room(&self, shard: &mut ShardMap, now: u64) {
        if Self::sweep_shard(shard, now, self.idle_ttl_ns) > 0
            && shard.len() < self.per_shard_capacity
        {
            return;
        }
        let oldest = shard
            .iter()
            .take(32)
            .min_by_key(|(_, s)| s.last_seen_ns)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            shard.remove(&id);
        }
    }

    /// Sweeps every `every` until the limiter is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(this) = weak.upgrade() else { break };
                let removed = this.sweep();
                if removed > 0 {
                    tracing::debug!(removed, "swept idle identity sessions");
                }
            }
        });
    }

    fn decide(&self, session: SessionId, limits: &Limits) -> Decision {
        let now = self.now_ns();
        let id = session.as_u128();
        let mut shard = self.shard(id).lock();
        if !shard.contains_key(&id) && shard.len() >= self.per_shard_capacity {
            self.make_room(&mut shard, now);
        }
        let counters = shard.entry(id).or_insert_with(|| SessionCounters {
            last_seen_ns: now,
            buckets: Vec::with_capacity(1),
        });
        counters.last_seen_ns = now;

        let rate = limits.rate.map(|(key, limit)| {
            let i = counters.bucket(key);
            (i, gcra::check(limit, counters.buckets[i].tat_ns, now))
        });
        let quota = match limits.quota {
            Some((key, Quota::Limited { max, renewal_ms })) => {
                let i = counters.bucket(key);
                Some((
                    i,
                    quota::check(max, renewal_ms, counters.buckets[i].quota, now),
                ))
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
        if verdict == Verdict::Allowed {
            if let Some((i, r)) = &rate {
                counters.buckets[*i].tat_ns = r.new_tat_ns;
            }
            if let Some((i, q)) = &quota {
                counters.buckets[*i].quota = q.next;
            }
        }
        Decision {
            verdict,
            rate: rate.map(|(_, r)| r.status),
            quota: quota.map(|(_, q)| q.status),
        }
    }
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
}
