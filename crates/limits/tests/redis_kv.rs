//! [`RedisKv`], the plain values other node-shared caches keep in the limiter's Redis, against
//! a real `redis-server`: values expire with their `PX`, reads are bounded, and while Redis is
//! away every call fails within the timeouts (then at once), without moving the limiter to its
//! failure rule, and the values come back by themselves with Redis.

use portico_core::RedisUrl;
use portico_core::config::{LimiterBackend, LimiterSettings, RedisFailureRule, SessionSettings};
use portico_limits::{IgnoreEvictions, RedisKv, RedisLimiter};
use portico_testkit::redis::RedisServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest any call may take: a connect and one answer, plus slack for a busy machine.
const BOUND: Duration = Duration::from_millis(200 + 50 + 500);

fn limiter(redis: &RedisServer) -> RedisLimiter {
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        timeout_ms: 50,
        connect_timeout_ms: 200,
        on_redis_failure: RedisFailureRule::FailClosed,
        nodes: 1,
    };
    RedisLimiter::new(
        &settings,
        SessionSettings::default(),
        Arc::new(IgnoreEvictions),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_set_with_their_lifetime_and_read_back_bounded() {
    let redis = RedisServer::start();
    let kv = limiter(&redis).shared_kv();
    assert_eq!(kv.get("portico:test:missing", 100).await.unwrap(), None);

    kv.set_px("portico:test:a", b"\x00bytes\xff", 60_000)
        .await
        .unwrap();
    assert_eq!(
        kv.get("portico:test:a", 100).await.unwrap().as_deref(),
        Some(&b"\x00bytes\xff"[..])
    );
    let pttl: u64 = redis.cli(&["PTTL", "portico:test:a"]).parse().unwrap();
    assert!((59_000..=60_000).contains(&pttl), "PTTL {pttl}");
    assert_eq!(
        kv.get("portico:test:a", 7).await.unwrap().as_deref(),
        Some(&b"\x00bytes\xff"[..]),
        "exactly the limit is allowed"
    );
    assert!(
        kv.get("portico:test:a", 6).await.is_err(),
        "longer than allowed"
    );

    redis.cli(&["RPUSH", "portico:test:list", "x"]);
    assert!(
        kv.get("portico:test:list", 100).await.is_err(),
        "not a string"
    );

    kv.set_px("portico:test:short", b"v", 100).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kv.get("portico:test:short", 100).await.unwrap(), None);

    kv.set_px("portico:test:empty", b"", 60_000).await.unwrap();
    kv.set_px("portico:test:never", b"v", 0).await.unwrap();
    assert_eq!(redis.cli(&["EXISTS", "portico:test:empty"]), "0");
    assert_eq!(redis.cli(&["EXISTS", "portico:test:never"]), "0");
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = call.await;
    let took = started.elapsed();
    assert!(took <= BOUND, "a call took {took:?}");
    (out, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_calls_fail_fast_apart_from_the_limiter_and_recover() {
    let mut redis = RedisServer::start();
    let limiter = limiter(&redis);
    let kv: RedisKv = limiter.shared_kv();
    kv.set_px("portico:test:k", b"v", 60_000).await.unwrap();

    redis.stop();
    let (first, _) = timed(kv.get("portico:test:k", 10)).await;
    assert!(first.is_err());
    // Within the back-off Redis is not even tried.
    let (skipped, took) = timed(kv.set_px("portico:test:k", b"w", 60_000)).await;
    assert!(skipped.is_err());
    assert!(took < Duration::from_millis(50), "skipped: {took:?}");
    assert!(
        limiter.is_up(),
        "the cache's failures are not the limiter's"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (written, _) = timed(kv.set_px("portico:test:k", b"back", 60_000)).await;
        if written.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shared values did not come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        kv.get("portico:test:k", 10).await.unwrap().as_deref(),
        Some(&b"back"[..])
    );
}
