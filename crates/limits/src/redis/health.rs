//! Whether Redis is usable, and when to try it again. While it is away, requests do not pay a
//! timeout each: after a failure Redis is skipped for a back-off (1 s, doubling to 10 s), then
//! one request probes it; a probe that answers brings every request back to Redis.
//!
//! Lock-free: a request reads one atomic while Redis is up, three while it is down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::time::Instant;

/// Redis is skipped this long after it failed…
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// …doubling with each failed probe, up to this.
pub const MAX_BACKOFF_MS: u64 = 10_000;

/// Where one request goes.
pub enum Route<'a> {
    /// Redis is up: ask it.
    Redis,
    /// Redis is down and its back-off is over: this request asks it, on behalf of all.
    Probe(ProbeGuard<'a>),
    /// Redis is down: decide without it.
    WithoutRedis,
}

pub struct BackendHealth {
    up: AtomicBool,
    probing: AtomicBool,
    /// Milliseconds since `epoch` from which a probe may run (while down).
    retry_at_ms: AtomicU64,
    backoff_ms: AtomicU64,
    epoch: Instant,
}

impl BackendHealth {
    /// Starts up: the first request connects.
    pub fn new() -> Self {
        Self {
            up: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            backoff_ms: AtomicU64::new(FIRST_BACKOFF_MS),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn route(&self) -> Route<'_> {
        if self.is_up() {
            return Route::Redis;
        }
        if self.now_ms() < self.retry_at_ms.load(Ordering::Acquire) {
            return Route::WithoutRedis;
        }
        match self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Route::Probe(ProbeGuard {
                health: self,
                answered: false,
            }),
            Err(_) => Route::WithoutRedis,
        }
    }

    /// A request on [`Route::Redis`] failed. True when this turned Redis from up to down (the
    /// caller then logs and reports it, once).
    pub fn failed(&self) -> bool {
        if !self.is_up() {
            return false;
        }
        // Published before `up` turns false, so nobody sees "down" without its back-off.
        self.backoff_ms.store(FIRST_BACKOFF_MS, Ordering::Release);
        self.retry_at_ms
            .store(self.now_ms() + FIRST_BACKOFF_MS, Ordering::Release);
        self.up
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The one probe in flight. Dropped without [`ProbeGuard::answered`] (a failure, or the request
/// cancelled), it doubles the back-off and lets a later request probe again.
pub struct ProbeGuard<'a> {
    health: &'a BackendHealth,
    answered: bool,
}

impl ProbeGuard<'_> {
    /// Redis answered: every request goes back to it.
    pub fn answered(mut self) {
        self.answered = true;
        let health = self.health;
        health.backoff_ms.store(FIRST_BACKOFF_MS, Ordering::Release);
        health.up.store(true, Ordering::Release);
        health.probing.store(false, Ordering::Release);
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let health = self.health;
        let backoff = health
            .backoff_ms
            .load(Ordering::Acquire)
            .saturating_mul(2)
            .min(MAX_BACKOFF_MS);
        health.backoff_ms.store(backoff, Ordering::Release);
        health
            .retry_at_ms
            .store(health.now_ms() + backoff, Ordering::Release);
        health.probing.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn is_probe(route: &Route<'_>) -> bool {
        matches!(route, Route::Probe(_))
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_skips_redis_for_the_backoff_then_one_request_probes() {
        let health = BackendHealth::new();
        assert!(matches!(health.route(), Route::Redis));
        assert!(health.failed(), "up -> down is reported");
        assert!(!health.failed(), "and only once");
        assert!(matches!(health.route(), Route::WithoutRedis));
        tokio::time::advance(Duration::from_millis(FIRST_BACKOFF_MS - 1)).await;
        assert!(matches!(health.route(), Route::WithoutRedis));
        tokio::time::advance(Duration::from_millis(1)).await;
        let probe = health.route();
        assert!(is_probe(&probe));
        assert!(
            matches!(health.route(), Route::WithoutRedis),
            "one probe at a time"
        );
        drop(probe);
        // The failed probe doubled the back-off.
        tokio::time::advance(Duration::from_millis(2 * FIRST_BACKOFF_MS - 1)).await;
        assert!(matches!(health.route(), Route::WithoutRedis));
        tokio::time::advance(Duration::from_millis(1)).await;
        let Route::Probe(probe) = health.route() else {
            panic!("a probe after the doubled back-off");
        };
        probe.answered();
        assert!(health.is_up());
        assert!(matches!(health.route(), Route::Redis));
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_stops_doubling_at_its_cap_and_resets_after_recovery() {
        let health = BackendHealth::new();
        health.failed();
        let mut waited = Vec::new();
        for _ in 0..6 {
            let mut ms = 0;
            while !is_probe(&health.route()) {
                tokio::time::advance(Duration::from_millis(100)).await;
                ms += 100;
            }
            // That probe failed (dropped at the end of the `while` condition).
            waited.push(ms);
        }
        assert_eq!(waited, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        tokio::time::advance(Duration::from_millis(MAX_BACKOFF_MS)).await;
        let Route::Probe(probe) = health.route() else {
            panic!("a probe");
        };
        probe.answered();
        assert!(health.failed());
        tokio::time::advance(Duration::from_millis(FIRST_BACKOFF_MS)).await;
        assert!(
            is_probe(&health.route()),
            "the back-off starts at 1 s again"
        );
    }
}
