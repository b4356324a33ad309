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

mod health;
mod node_share;
mod script;

pub use node_share::node_share;

use crate::observer::LimiterObserver;
use crate::{Decision, Limiter, LimiterError, Limits, LocalLimiter, Verdict};
use health::{BackendHealth, Route};
use parking_lot::RwLock;
use portico_core::SessionId;
use portico_core::config::{LimiterSettings, RedisFailureRule, SessionSettings};
use redis::aio::MultiplexedConnection;
use script::Mode;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::timeout;

/// The limiter could not be built from its settings.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RedisSetupError(String);

/// Why one request could not be decided in Redis (logged, never shown to clients).
#[derive(Debug)]
enum RedisFailure {
    Connect(String),
    Timeout(&'static str),
    Command(redis::RedisError),
    Nonsense(String),
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisFailure::Connect(e) => write!(f, "cannot connect: {e}"),
            RedisFailure::Timeout(what) => write!(f, "no answer in time ({what})"),
            RedisFailure::Command(e) => write!(f, "error: {e}"),
            RedisFailure::Nonsense(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

/// One connection, numbered so that a failure forgets only the connection it happened on.
#[derive(Clone)]
struct Connected {
    generation: u64,
    connection: MultiplexedConnection,
}

/// Counters in Redis, shared by every node; see the module docs.
pub struct RedisLimiter {
    client: redis::Client,
    /// For log lines: the URL without its password.
    shown_url: String,
    connection: RwLock<Option<Connected>>,
    /// One connection attempt at a time; the others wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    connect_failures: AtomicU64,
    generations: AtomicU64,
    script: redis::Script,
    timeout: Duration,
    connect_timeout: Duration,
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
            .field("url", &self.shown_url)
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
        let client = redis::Client::open(settings.redis_url.expose())
            .map_err(|e| RedisSetupError(format!("{}: {e}", settings.redis_url)))?;
        Ok(Self {
            client,
            shown_url: settings.redis_url.to_string(),
            connection: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            connect_failures: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            script: script::decide_script(),
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms.max(1)),
            rule: settings.on_redis_failure,
            nodes: settings.nodes.max(1),
            fallback: LocalLimiter::with_observer(sessions, observer.clone()),
            health: BackendHealth::new(),
            observer,
        })
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
                    tracing::info!(redis = %self.shown_url, "Redis limiter is back: counters are shared again");
                    self.observer.backend_changed(true);
                    return Ok(decision);
                }
                Err(failure) => {
                    tracing::debug!(redis = %self.shown_url, error = %failure, "Redis limiter probe failed");
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
                redis = %self.shown_url,
                error = %failure,
                nodes = self.nodes,
                "Redis limiter lost: deciding in this process with each limit divided by the \
                 node count until Redis answers"
            ),
            RedisFailureRule::FailClosed => tracing::warn!(
                redis = %self.shown_url,
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
        let run = async {
            let Connected {
                generation,
                mut connection,
            } = self.connection().await?;
            match timeout(self.timeout, pipe.query_async::<T>(&mut connection)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => {
                    self.forget_connection(generation);
                    Err(RedisFailure::Command(e))
                }
                Err(_) => {
                    self.forget_connection(generation);
                    Err(RedisFailure::Timeout(what))
                }
            }
        };
        timeout(self.connect_timeout + self.timeout, run)
            .await
            .unwrap_or(Err(RedisFailure::Timeout(what)))
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
            self.connect_timeout + self.timeout,
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
        } = self.connection().await?;
        let call = script::invocation(&self.script, session, limits, mode);
        let reply =
            match timeout(self.timeout, call.invoke_async::<Vec<i64>>(&mut connection)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    self.forget_connection(generation);
                    return Err(RedisFailure::Command(e));
                }
                Err(_) => {
                    self.forget_connection(generation);
                    return Err(RedisFailure::Timeout("script"));
                }
            };
        script::decision(limits, &reply).map_err(|e| {
            self.forget_connection(generation);
            RedisFailure::Nonsense(e)
        })
    }

    /// The current connection, or a new one (with the script loaded).
    async fn connection(&self) -> Result<Connected, RedisFailure> {
        if let Some(current) = self.connection.read().clone() {
            return Ok(current);
        }
        let failures_before = self.connect_failures.load(Ordering::Acquire);
        let _one_attempt_at_a_time = self.connecting.lock().await;
        if let Some(current) = self.connection.read().clone() {
            return Ok(current);
        }
        if self.connect_failures.load(Ordering::Acquire) != failures_before {
            // The attempt this request waited for failed: do not pay for another one.
            return Err(RedisFailure::Connect("the attempt in flight failed".into()));
        }
        match self.connect().await {
            Ok(connection) => {
                let connected = Connected {
                    generation: self.generations.fetch_add(1, Ordering::AcqRel) + 1,
                    connection,
                };
                *self.connection.write() = Some(connected.clone());
                Ok(connected)
            }
            Err(failure) => {
                self.connect_failures.fetch_add(1, Ordering::AcqRel);
                Err(failure)
            }
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, RedisFailure> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.timeout));
        let mut connection = timeout(
            self.connect_timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| RedisFailure::Timeout("connect"))?
        .map_err(|e| RedisFailure::Connect(e.to_string()))?;
        timeout(self.timeout, self.script.load_async(&mut connection))
            .await
            .map_err(|_| RedisFailure::Timeout("SCRIPT LOAD"))?
            .map_err(RedisFailure::Command)?;
        Ok(connection)
    }

    fn forget_connection(&self, generation: u64) {
        let mut current = self.connection.write();
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
        }
    }
}

impl Limiter for RedisLimiter {
    async fn check(&self, session: SessionId, limits: &Limits) -> Result<Decision, LimiterError> {
        self.decide(session, limits).await
    }
}
