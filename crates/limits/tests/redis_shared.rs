//! Two gateway nodes (two `RedisLimiter`s) against one real Redis share one exact counter per
//! identity session and policy; every key they write expires with its window; a flushed
//! script cache is reloaded on NOSCRIPT without a failure.

use portico_core::config::{LimiterBackend, LimiterSettings, RedisFailureRule, SessionSettings};
use portico_core::policy::{Quota, RateLimit};
use portico_core::{RedisUrl, SessionId};
use portico_limits::{IgnoreEvictions, Limiter, Limits, RedisLimiter, Verdict};
use portico_testkit::redis::RedisServer;
use std::sync::Arc;
use std::time::Instant;

/// A node of its own; any Redis failure is an error (fail_closed), never a quiet local answer.
fn node(redis: &RedisServer) -> Arc<RedisLimiter> {
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        timeout_ms: 2_000,
        connect_timeout_ms: 2_000,
        on_redis_failure: RedisFailureRule::FailClosed,
        nodes: 2,
    };
    Arc::new(
        RedisLimiter::new(
            &settings,
            SessionSettings::default(),
            Arc::new(IgnoreEvictions),
        )
        .unwrap(),
    )
}

/// Sends `total` requests alternating between `nodes`, 10 at a time; returns how many passed.
async fn alternate(
    nodes: &[Arc<RedisLimiter>],
    session: SessionId,
    limits: Limits,
    total: usize,
) -> usize {
    let mut allowed = 0;
    for batch in (0..total).collect::<Vec<_>>().chunks(10) {
        let mut running = tokio::task::JoinSet::new();
        for &i in batch {
            let node = nodes[i % nodes.len()].clone();
            running.spawn(async move { node.check(session, &limits).await });
        }
        while let Some(decision) = running.join_next().await {
            if decision.unwrap().expect("Redis decides").verdict == Verdict::Allowed {
                allowed += 1;
            }
        }
    }
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_rate_counter_exactly() {
    let redis = RedisServer::start();
    let nodes = [node(&redis), node(&redis)];
    let limits = Limits {
        rate: Some((7, RateLimit::try_new(100, 60_000).unwrap())),
        quota: None,
    };
    let started = Instant::now();
    let allowed = alternate(&nodes, SessionId::from_label("shared-rate"), limits, 300).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // 100 per minute frees one slot every 600 ms: a run that slow may see one more per 600 ms.
    let refills = (elapsed_ms / 600) as usize;
    assert!(
        (100..=100 + refills).contains(&allowed),
        "{allowed} of 300 allowed in {elapsed_ms} ms; two unshared nodes would allow 200"
    );
    if refills == 0 {
        assert_eq!(allowed, 100);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_quota_exactly_and_its_keys_expire() {
    let redis = RedisServer::start();
    let nodes = [node(&redis), node(&redis)];
    let limits = Limits {
        rate: Some((8, RateLimit::try_new(1_000, 60_000).unwrap())),
        quota: Some((9, Quota::limited(100, 3_600_000).unwrap())),
    };
    let session = SessionId::from_label("shared-quota");
    assert_eq!(alternate(&nodes, session, limits, 300).await, 100);

    let ttl = |kind: &str, key: u64| -> i64 {
        redis
            .cli(&["PTTL", &format!("portico:{{{session}}}:{kind}:{key:016x}")])
            .parse()
            .unwrap()
    };
    let quota_ttl = ttl("quota", 9);
    assert!(
        (3_500_000..=3_600_000).contains(&quota_ttl),
        "the quota counter lives until its period ends: {quota_ttl} ms"
    );
    // 100 requests of 1 000 per minute: a debt of 100 x 60 ms, so the key lives about 6 s.
    let rate_ttl = ttl("rate", 8);
    assert!(
        (5_000..=6_000).contains(&rate_ttl),
        "the rate counter lives until its TAT, within its window: {rate_ttl} ms"
    );
    let keys = redis.cli(&["KEYS", "*"]);
    assert!(
        keys.lines()
            .all(|k| k.starts_with(&format!("portico:{{{session}}}:"))),
        "every key is the session's, under one hash tag: {keys}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_is_loaded_again_without_a_failure() {
    let redis = RedisServer::start();
    let limiter = node(&redis);
    let limits = Limits {
        rate: None,
        quota: Some((5, Quota::limited(3, 60_000).unwrap())),
    };
    let session = SessionId::from_label("noscript");
    let first = limiter.check(session, &limits).await.unwrap();
    assert_eq!(first.quota.unwrap().remaining, 2);
    assert_eq!(redis.cli(&["SCRIPT", "FLUSH"]), "OK");
    let second = limiter
        .check(session, &limits)
        .await
        .expect("EVALSHA falls back on NOSCRIPT");
    assert_eq!(
        second.quota.unwrap().remaining,
        1,
        "the counter survived; only the script was reloaded"
    );
    assert!(limiter.is_up());
}
