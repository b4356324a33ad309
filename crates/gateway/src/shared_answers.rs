//! [`RedisAnswers`]: the introspection answers the gateway nodes share, kept in the limiter's
//! Redis (one Redis, one connection, for counters and this cache). The auth crate seals and
//! opens the values ([`portico_auth::introspection::shared`]); this only moves bytes, and turns
//! every Redis failure into a miss or a skipped write, logged at `debug`.

use portico_auth::introspection::{SharedAnswers, StoreFuture};
use portico_limits::RedisKv;

/// [`SharedAnswers`] over [`RedisKv`]: `GETRANGE` (bounded) and `SET … PX`, each within the
/// limiter's `connect_timeout_ms + timeout_ms`.
#[derive(Debug, Clone)]
pub struct RedisAnswers(pub RedisKv);

impl SharedAnswers for RedisAnswers {
    fn get<'a>(&'a self, key: &'a str, max_bytes: usize) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.0.get(key, max_bytes).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "shared introspection cache: read skipped");
                None
            })
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl_ms: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.0.set_px(key, &value, ttl_ms).await {
                tracing::debug!(error = %e, "shared introspection cache: write skipped");
            }
        })
    }
}
