//! The Redis limiter: every gateway node pointed at one Redis shares one exact counter per
//! identity session and policy. Each request is one atomic Lua script (`redis/decide.lua`,
//! called by EVALSHA, loaded once per connection and again on NOSCRIPT) on Redis's own clock,
//! so node clocks do not matter.
//!
//! Every Redis call has a timeout. While Redis is unreachable, slow or answers nonsense, the
//! configured rule decides ([`RedisFailureRule`]): `fail_open_local` decides in this process
//! with each limit divided by the node count ([`node_share`]), `fail_closed` returns
//! [`LimiterError::Unavailable`]. Redis is then skipped for a back-off and probed by one
//! request at a time ([`health`]); both transitions are logged once and reported to the
//! [`LimiterObserver`].
//!
//! The connection (`redis/connection.rs`) is shared with [`RedisKv`] (`shared_kv`), the plain
//! values other node-shared caches keep in the same Redis.

mod connection;
mod health;
mod kv;
mod node_share;
mod script;

pub use kv::{KvError, RedisKv};
pub use node_share::node_share;

use crate::observer::LimiterObserver;
use crate::{Decision, Limiter, LimiterError, Limits, LocalLimiter, Verdict};
use connection::{Connected, RedisConnection, RedisFailure};
use health::{BackendHealth, Route};
use portico_core::SessionId;
use portico_core::config::{LimiterSettings, RedisFailureRule, SessionSettings};
use script::Mode;
use std::fmt;
use std::sync::Arc;
use tokio::time::timeout;

/// The limiter could not be built from its settings.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RedisSetupError(String);

/// Counters in Redis, shared by every node; see the module docs.
pub struct RedisLimiter {
    /// Shared with [`RedisLimiter::shared_kv`].
    redis: Arc<RedisConnection>,
    rule: RedisFailureRule,
    nodes: u32,
    /// Decides while Redis is away under `fail_open_local`.
    fallback: LocalLimiter,
    health: BackendHealth,
    observer: Arc<dyn LimiterObserver>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("url", &self.redis.shown_url)
            .field("up", &self.health.is_up())
            .finish()
    }
}

impl RedisLimiter {
    /// Connects lazily: the first request opens the connection. `sessions` bounds the
    /// in-process fallback.
    pub fn new(
        settings: &LimiterSettings,
        sessions: SessionSettings,
        observer: Arc<dyn LimiterObserver>,
    ) -> Result<Self, RedisSetupError> {
        Ok(Self {
            redis: Arc::new(RedisConnection::new(settings, script::decide_script())?),
            rule: settings.on_redis_failure,
            nodes: settings.nodes.max(1),
            fallback: LocalLimiter::with_observer(sessions, observer.clone()),
            health: BackendHealth::new(),
            observer,
        })
    }

    /// Plain values in the same Redis, over the same connection, for caches the nodes share
    /// (with a health of their own: a cache failing does not move the limiter to its rule).
    pub fn shared_kv(&self) -> RedisKv {
        RedisKv::new(self.redis.clone())
    }

    /// Whether requests are decided in Redis right now.
    pub fn is_up(&self) -> bool {
        self.health.is_up()
    }

    /// The in-process limiter used while Redis is away (sweep it like any local limiter).
    pub fn fallback(&self) -> &LocalLimiter {
        &self.fallback
    }

    /// Decides one request: in Redis when it is up, else by the configured rule.
    pub async fn decide(
        &self,
        session: SessionId,
        limits: &Limits,
    ) -> Result<Decision, LimiterError> {
        if limits.is_empty() {
            // Nothing to count: the same answer the in-process limiter gives, without a trip.
            return Ok(Decision {
                verdict: Verdict::Allowed,
                rate: None,
                quota: None,
            });
        }
        match self.health.route() {
            Route::Redis => match self.decide_in_redis(session, limits, Mode::Count).await {
                Ok(decision) => return Ok(decision),
                Err(failure) => {
                    if self.health.failed() {
                        self.report_lost(&failure);
                    }
                }
            },
            Route::Probe(probe) => match self.decide_in_redis(session, limits, Mode::Count).await {
                Ok(decision) => {
                    probe.answered();
                    tracing::info!(redis = %self.redis.shown_url, "Redis limiter is back: counters are shared again");
                    self.observer.backend_changed(true);
                    return Ok(decision);
                }
                Err(failure) => {
                    tracing::debug!(redis = %self.redis.shown_url, error = %failure, "Redis limiter probe failed");
                    drop(probe);
                }
            },
            Route::WithoutRedis => {}
        }
        self.decide_without_redis(session, limits)
    }

    fn report_lost(&self, failure: &RedisFailure) {
        match self.rule {
            RedisFailureRule::FailOpenLocal => tracing::warn!(
                redis = %self.redis.shown_url,
                error = %failure,
                nodes = self.nodes,
                "Redis limiter lost: deciding in this process with each limit divided by the \
                 node count until Redis answers"
            ),
            RedisFailureRule::FailClosed => tracing::warn!(
                redis = %self.redis.shown_url,
                error = %failure,
                "Redis limiter lost: refusing limited requests (503) until Redis answers"
            ),
        }
        self.observer.backend_changed(false);
    }

    fn decide_without_redis(
        &self,
        session: SessionId,
        limits: &Limits,
    ) -> Result<Decision, LimiterError> {
        self.observer.decided_without_backend(self.rule);
        match self.rule {
            RedisFailureRule::FailOpenLocal => Ok(self
                .fallback
                .decide(session, &node_share(limits, self.nodes))),
            RedisFailureRule::FailClosed => Err(LimiterError::Unavailable(
                "Redis is unavailable and the rule is fail_closed".into(),
            )),
        }
    }

    /// What `session` has left under `limits` now, counting nothing (the admin API's session
    /// view). Read from Redis; while Redis is away this is an error, since the fallback's
    /// counters are not the shared ones.
    pub async fn peek(
        &self,
        session: SessionId,
        limits: &Limits,
    ) -> Result<Decision, LimiterError> {
        self.decide_in_redis(session, limits, Mode::Peek)
            .await
            .map_err(|failure| LimiterError::Unavailable(failure.to_string()))
    }

    /// Of `candidates` (counter keys), those `session` has counters under in Redis.
    pub async fn counted_under(
        &self,
        session: SessionId,
        candidates: &[u64],
    ) -> Result<Vec<u64>, LimiterError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for &key in candidates {
            pipe.cmd("EXISTS")
                .arg(script::counter_key(session, "rate", key))
                .arg(script::counter_key(session, "quota", key));
        }
        let found: Vec<i64> = self.query(&pipe, "EXISTS").await?;
        Ok(candidates
            .iter()
            .zip(found)
            .filter(|(_, n)| *n > 0)
            .map(|(&key, _)| key)
            .collect())
    }

    /// Forgets the counters of `session` under these counter keys, in Redis and in the
    /// fallback. An error when Redis does not answer (the fallback's are forgotten anyway).
    pub async fn reset(
        &self,
        session: SessionId,
        counter_keys: &[u64],
    ) -> Result<(), LimiterError> {
        self.fallback.reset(session);
        if counter_keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        // One slot (the session's hash tag), so one DEL may name them all, even on Cluster.
        pipe.cmd("DEL");
        for &key in counter_keys {
            pipe.arg(script::counter_key(session, "rate", key))
                .arg(script::counter_key(session, "quota", key));
        }
        self.query::<redis::Value>(&pipe, "DEL").await.map(drop)
    }

    /// Runs `pipe` on the shared connection, within `connect_timeout + timeout`.
    async fn query<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        what: &'static str,
    ) -> Result<T, LimiterError> {
        self.redis
            .query(pipe, what)
            .await
            .map_err(|failure| LimiterError::Unavailable(failure.to_string()))
    }

    /// At most `connect_timeout + timeout`, whatever happens inside.
    async fn decide_in_redis(
        &self,
        session: SessionId,
        limits: &Limits,
        mode: Mode,
    ) -> Result<Decision, RedisFailure> {
        timeout(
            self.redis.connect_timeout + self.redis.timeout,
            self.ask_redis(session, limits, mode),
        )
        .await
        .unwrap_or(Err(RedisFailure::Timeout("connect and decide")))
    }

    async fn ask_redis(
        &self,
        session: SessionId,
        limits: &Limits,
        mode: Mode,
    ) -> Result<Decision, RedisFailure> {
        let Connected {
            generation,
            mut connection,
        } = self.redis.connection().await?;
        let call = script::invocation(self.redis.script(), session, limits, mode);
        let reply = match timeout(
            self.redis.timeout,
            call.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.redis.forget(generation);
                return Err(RedisFailure::Command(e));
            }
            Err(_) => {
                self.redis.forget(generation);
                return Err(RedisFailure::Timeout("script"));
            }
        };
        script::decision(limits, &reply).map_err(|e| {
            self.redis.forget(generation);
            RedisFailure::Nonsense(e)
        })
    }
}

impl Limiter for RedisLimiter {
    async fn check(&self, session: SessionId, limits: &Limits) -> Result<Decision, LimiterError> {
        self.decide(session, limits).await
    }
}
