//! [`SessionLimiter`]: the one limiter type the gateway holds, built from the `limits:`
//! settings — the in-process backend or the Redis one — with static dispatch (the
//! [`Limiter`] trait returns `impl Future`, so it cannot be a trait object).

use crate::local::spawn_sweeper_of;
use crate::observer::LimiterObserver;
use crate::redis::{RedisKv, RedisLimiter, RedisSetupError};
use crate::{Decision, Limiter, LimiterError, Limits, LocalLimiter};
use portico_core::SessionId;
use portico_core::config::{LimiterBackend, LimiterSettings, SessionSettings};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub enum SessionLimiter {
    Local(LocalLimiter),
    Redis(Box<RedisLimiter>),
}

impl SessionLimiter {
    pub fn from_settings(
        limits: &LimiterSettings,
        sessions: SessionSettings,
        observer: Arc<dyn LimiterObserver>,
    ) -> Result<Self, RedisSetupError> {
        Ok(match limits.backend {
            LimiterBackend::Local => Self::Local(LocalLimiter::with_observer(sessions, observer)),
            LimiterBackend::Redis => {
                Self::Redis(Box::new(RedisLimiter::new(limits, sessions, observer)?))
            }
        })
    }

    /// The in-process counters: all of them (local), or the fallback's (Redis).
    pub fn local(&self) -> &LocalLimiter {
        match self {
            Self::Local(local) => local,
            Self::Redis(redis) => redis.fallback(),
        }
    }

    /// With the Redis backend, plain values in the same Redis (see [`RedisKv`]); nothing with
    /// the in-process one.
    pub fn shared_kv(&self) -> Option<RedisKv> {
        match self {
            Self::Local(_) => None,
            Self::Redis(redis) => Some(redis.shared_kv()),
        }
    }

    // The Redis futures are boxed here and in `check`: inline, their size (≈ 2.7 KB) would
    // grow every request's future, which hyper moves once per request.

    /// What `session` has left under `limits` now, counting nothing.
    pub async fn peek(
        &self,
        session: SessionId,
        limits: &Limits,
    ) -> Result<Decision, LimiterError> {
        match self {
            Self::Local(local) => Ok(local.peek(session, limits)),
            Self::Redis(redis) => Box::pin(redis.peek(session, limits)).await,
        }
    }

    /// Of `candidates` (counter keys), those `session` has counters under.
    pub async fn counted_under(
        &self,
        session: SessionId,
        candidates: &[u64],
    ) -> Result<Vec<u64>, LimiterError> {
        match self {
            Self::Local(local) => Ok(local.counted_under(session, candidates)),
            Self::Redis(redis) => Box::pin(redis.counted_under(session, candidates)).await,
        }
    }

    /// Forgets the counters of `session` (with Redis: those under `counter_keys`, for every
    /// node).
    pub async fn reset(
        &self,
        session: SessionId,
        counter_keys: &[u64],
    ) -> Result<(), LimiterError> {
        match self {
            Self::Local(local) => {
                local.reset(session);
                Ok(())
            }
            Self::Redis(redis) => Box::pin(redis.reset(session, counter_keys)).await,
        }
    }

    /// Sweeps the in-process counters every `every` until the limiter is dropped.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        spawn_sweeper_of(self, every, |limiter| limiter.local().sweep());
    }
}

impl Limiter for SessionLimiter {
    async fn check(&self, session: SessionId, limits: &Limits) -> Result<Decision, LimiterError> {
        match self {
            // Synchronous and allocation-free, as before this type existed.
            Self::Local(local) => Ok(local.decide(session, limits)),
            Self::Redis(redis) => Box::pin(redis.decide(session, limits)).await,
        }
    }
}
