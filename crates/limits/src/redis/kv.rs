//! [`RedisKv`]: plain byte values in the limiter's Redis, over the limiter's connection, for
//! what the nodes share besides counters (the introspection cache). Knows nothing of what the
//! values mean; the caller authenticates them.
//!
//! Every call is bounded like a limiter call (`connect_timeout_ms + timeout_ms` at most). Its
//! health is its own ([`super::health`]): after a failure Redis is skipped for the back-off —
//! a call then fails at once, without waiting — and probed by one call at a time; losing and
//! getting back Redis are logged once each. A failing cache never moves the limiter to its
//! failure rule, nor the other way round.

use super::connection::{RedisConnection, RedisFailure};
use super::health::{BackendHealth, Route};
use std::sync::Arc;

/// Why a call did not happen or did not answer (for a debug log; the caller goes on without).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KvError(String);

/// A handle on the shared values (cheap to clone: all clones share one health).
#[derive(Clone)]
pub struct RedisKv {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Arc<RedisConnection>,
    health: BackendHealth,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("url", &self.inner.redis.shown_url)
            .field("up", &self.inner.health.is_up())
            .finish()
    }
}

impl RedisKv {
    pub(crate) fn new(redis: Arc<RedisConnection>) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                health: BackendHealth::new(),
            }),
        }
    }

    /// The value at `key`, if there is one of at most `max_bytes` (one `GETRANGE`, so that a
    /// huge value costs this node no more than `max_bytes + 1` bytes). A longer value, or one
    /// that is not a string, is an error.
    pub async fn get(&self, key: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, KvError> {
        let mut get = redis::cmd("GETRANGE");
        // Inclusive end: one byte more than allowed shows that the value is too long.
        get.arg(key).arg(0).arg(max_bytes);
        let value: Vec<u8> = self.run(&get, "GETRANGE").await?;
        if value.len() > max_bytes {
            return Err(KvError(format!(
                "the value is longer than {max_bytes} bytes"
            )));
        }
        // GETRANGE answers "" for a missing key; an empty value is never written.
        Ok((!value.is_empty()).then_some(value))
    }

    /// Sets `key` to `value` for `ttl_ms` milliseconds (`SET … PX`): Redis drops it then. An
    /// empty value or a zero lifetime writes nothing.
    pub async fn set_px(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<(), KvError> {
        if value.is_empty() || ttl_ms == 0 {
            return Ok(());
        }
        let mut set = redis::cmd("SET");
        set.arg(key).arg(value).arg("PX").arg(ttl_ms);
        self.run::<redis::Value>(&set, "SET").await.map(drop)
    }

    /// An error reply (a key of another type, a read-only replica) fails the call alone;
    /// anything else also skips Redis for the back-off.
    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        what: &'static str,
    ) -> Result<T, KvError> {
        let Inner { redis, health } = &*self.inner;
        match health.route() {
            Route::Redis => redis.query_cmd(cmd, what).await.map_err(|failure| {
                if !failure.is_error_reply() && health.failed() {
                    tracing::warn!(
                        redis = %redis.shown_url,
                        error = %failure,
                        "shared cache lost Redis: nodes keep their own caches until it answers"
                    );
                }
                failure_to_error(failure)
            }),
            Route::Probe(probe) => {
                let answered = redis.query_cmd(cmd, what).await;
                if answered
                    .as_ref()
                    .map_or_else(RedisFailure::is_error_reply, |_| true)
                {
                    probe.answered();
                    tracing::info!(redis = %redis.shown_url, "shared cache has Redis back");
                }
                answered.map_err(failure_to_error)
            }
            Route::WithoutRedis => Err(KvError("Redis is skipped after a failure".into())),
        }
    }
}

fn failure_to_error(failure: RedisFailure) -> KvError {
    KvError(failure.to_string())
}
