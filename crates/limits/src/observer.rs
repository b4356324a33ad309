//! [`LimiterObserver`]: what a limiter tells its owner (the gateway's metrics) about events
//! that are not decisions: sessions evicted from a full map, the shared store lost and back,
//! requests decided without it.

use portico_core::config::RedisFailureRule;

/// Told about limiter events; the gateway counts them in its metrics. Every method has an
/// empty default, so an observer implements only what it cares about.
pub trait LimiterObserver: Send + Sync + 'static {
    /// A session was dropped to make room. `at_rest`: it had no running counters, so nothing
    /// was lost.
    fn evicted(&self, _at_rest: bool) {}

    /// The shared store (Redis) became unusable (`up == false`) or answers again (`true`).
    /// Called once per transition.
    fn backend_changed(&self, _up: bool) {}

    /// A request was decided without the shared store, by `rule`: in this process
    /// (`FailOpenLocal`) or refused (`FailClosed`).
    fn decided_without_backend(&self, _rule: RedisFailureRule) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct IgnoreEvictions;

impl LimiterObserver for IgnoreEvictions {}
