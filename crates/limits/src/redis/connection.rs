//! The one Redis connection a node keeps (multiplexed: every request shares it), opened on
//! first use, one attempt at a time, and forgotten when a call on it fails so that the next
//! call opens a new one. The limiter and the shared key-value store ([`super::RedisKv`]) use
//! the same connection.

use super::RedisSetupError;
use parking_lot::RwLock;
use portico_core::config::LimiterSettings;
use redis::aio::MultiplexedConnection;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::timeout;

/// Why one call to Redis failed (logged, never shown to clients).
#[derive(Debug)]
pub(crate) enum RedisFailure {
    Connect(String),
    Timeout(&'static str),
    Command(redis::RedisError),
    Nonsense(String),
}

impl RedisFailure {
    /// Redis answered, with an error reply about this call (`WRONGTYPE`, `READONLY`, …): the
    /// call failed, but Redis and the connection are fine.
    pub fn is_error_reply(&self) -> bool {
        matches!(self, RedisFailure::Command(e) if is_error_reply(e))
    }
}

fn is_error_reply(e: &redis::RedisError) -> bool {
    e.code().is_some()
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
pub(crate) struct Connected {
    pub generation: u64,
    pub connection: MultiplexedConnection,
}

pub(crate) struct RedisConnection {
    client: redis::Client,
    /// For log lines: the URL without its password.
    pub shown_url: String,
    current: RwLock<Option<Connected>>,
    /// One connection attempt at a time; the others wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    connect_failures: AtomicU64,
    generations: AtomicU64,
    /// Loaded (`SCRIPT LOAD`) on every new connection.
    script: redis::Script,
    /// Longest wait for each answer.
    pub timeout: Duration,
    /// Longest wait for a new connection.
    pub connect_timeout: Duration,
}

impl RedisConnection {
    /// Opens nothing yet.
    pub fn new(settings: &LimiterSettings, script: redis::Script) -> Result<Self, RedisSetupError> {
        let client = redis::Client::open(settings.redis_url.expose())
            .map_err(|e| RedisSetupError(format!("{}: {e}", settings.redis_url)))?;
        Ok(Self {
            client,
            shown_url: settings.redis_url.to_string(),
            current: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            connect_failures: AtomicU64::new(0),
            generations: AtomicU64::new(0),
            script,
            timeout: Duration::from_millis(settings.timeout_ms.max(1)),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms.max(1)),
        })
    }

    pub fn script(&self) -> &redis::Script {
        &self.script
    }

    /// Runs `pipe` on the shared connection, within `connect_timeout + timeout` in all.
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
        what: &'static str,
    ) -> Result<T, RedisFailure> {
        self.call(what, async |mut connection| {
            pipe.query_async::<T>(&mut connection).await
        })
        .await
    }

    /// Runs one command (whose error reply keeps its code, unlike a pipeline's), like
    /// [`RedisConnection::query`].
    pub async fn query_cmd<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &'static str,
    ) -> Result<T, RedisFailure> {
        self.call(what, async |mut connection| {
            cmd.query_async::<T>(&mut connection).await
        })
        .await
    }

    async fn call<T>(
        &self,
        what: &'static str,
        send: impl AsyncFnOnce(MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, RedisFailure> {
        let run = async {
            let Connected {
                generation,
                connection,
            } = self.connection().await?;
            match timeout(self.timeout, send(connection)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => {
                    if !is_error_reply(&e) {
                        self.forget(generation);
                    }
                    Err(RedisFailure::Command(e))
                }
                Err(_) => {
                    self.forget(generation);
                    Err(RedisFailure::Timeout(what))
                }
            }
        };
        timeout(self.connect_timeout + self.timeout, run)
            .await
            .unwrap_or(Err(RedisFailure::Timeout(what)))
    }

    /// The current connection, or a new one (with the script loaded).
    pub async fn connection(&self) -> Result<Connected, RedisFailure> {
        if let Some(current) = self.current.read().clone() {
            return Ok(current);
        }
        let failures_before = self.connect_failures.load(Ordering::Acquire);
        let _one_attempt_at_a_time = self.connecting.lock().await;
        if let Some(current) = self.current.read().clone() {
            return Ok(current);
        }
        if self.connect_failures.load(Ordering::Acquire) != failures_before {
            // The attempt this call waited for failed: do not pay for another one.
            return Err(RedisFailure::Connect("the attempt in flight failed".into()));
        }
        match self.connect().await {
            Ok(connection) => {
                let connected = Connected {
                    generation: self.generations.fetch_add(1, Ordering::AcqRel) + 1,
                    connection,
                };
                *self.current.write() = Some(connected.clone());
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

    /// Forgets the connection numbered `generation` (a call on it failed), if still current.
    pub fn forget(&self, generation: u64) {
        let mut current = self.current.write();
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
        }
    }
}
