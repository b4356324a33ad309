//! Rate limits and quotas for identity sessions.
//!
//! [`Limiter`] is the one interface the gateway uses. [`LocalLimiter`] keeps counters in this
//! process (bounded, expiring); [`RedisLimiter`] keeps them in Redis, shared by every gateway
//! node, with a configured rule for when Redis is away. [`SessionLimiter`] is either, built
//! from the settings; with Redis it also hands out [`RedisKv`], plain values in the same Redis
//! for other caches the nodes share. The math lives in [`gcra`] and [`quota`], free of storage
//! and clocks (the Redis script restates it; one scenario table tests both backends).

pub mod gcra;
mod local;
mod observer;
pub mod quota;
pub mod redis;
mod session_limiter;

pub use local::LocalLimiter;
pub use observer::{IgnoreEvictions, LimiterObserver};
pub use redis::{KvError, RedisKv, RedisLimiter, RedisSetupError};
pub use session_limiter::SessionLimiter;

use portico_core::SessionId;
use portico_core::policy::{Quota, RateLimit};

/// The limits one request is checked against, each with the key of the counter it uses
/// (a hash of the policy that supplied it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub rate: Option<(u64, RateLimit)>,
    pub quota: Option<(u64, Quota)>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && !matches!(self.quota, Some((_, Quota::Limited { .. })))
    }
}

/// Where one limit stands after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitStatus {
    /// Requests allowed per window.
    pub limit: u64,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Requests still allowed now.
    pub remaining: u64,
    /// Milliseconds until the allowance is full again (rate) or renews (quota).
    pub reset_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the rate limit: retry after this many milliseconds.
    RateLimited {
        retry_after_ms: u64,
    },
    /// Quota used up: it renews in this many milliseconds.
    QuotaExceeded {
        retry_after_ms: u64,
    },
}

/// The outcome of one check. A rejected request consumes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub rate: Option<LimitStatus>,
    pub quota: Option<LimitStatus>,
}

/// A limiter that could not decide. The in-process limiter never fails; the Redis one returns
/// this while Redis is away under `fail_closed` (the gateway answers 503 with `Retry-After`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimiterError {
    #[error("the limiter's store is unavailable: {0}")]
    Unavailable(String),
}

/// Checks and counts requests of identity sessions.
pub trait Limiter: Send + Sync {
    /// Decides one request of `session` under `limits`, counting it when allowed.
    fn check(
        &self,
        session: SessionId,
        limits: &Limits,
    ) -> impl Future<Output = Result<Decision, LimiterError>> + Send;
}

/// A stable key for a policy's counters.
pub fn counter_key(policy_id: &str) -> u64 {
    // FNV-1a: stable across processes and releases (needed once counters live in Redis).
    policy_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
