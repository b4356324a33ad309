//! Rate limits through the Redis backend over real HTTP, against a real `redis-server`: 429s
//! with the same headers as the in-process limiter, one counter shared by two gateways, and
//! 503 with `Retry-After` under `fail_closed` while Redis is down.

use portico_core::RedisUrl;
use portico_core::api::PolicySource;
use portico_core::config::{GatewayConfig, LimiterBackend, LimiterSettings, RedisFailureRule};
use portico_testkit::redis::RedisServer;
use portico_testkit::*;
use std::time::{Duration, Instant};

/// One API whose callers all get the `reader` policy (3 requests per minute), counted in
/// `redis` under `rule`.
fn redis_config(
    upstream: &str,
    key: &portico_auth::sign::SigningKey,
    redis: &RedisServer,
    rule: RedisFailureRule,
) -> GatewayConfig {
    let mut orders = api("orders", "/orders", upstream, vec![trust_pem(key)]);
    orders.policies = PolicySource {
        default_policies: vec!["reader".into()],
        ..Default::default()
    };
    let mut c = config(
        vec![orders],
        vec![policy("reader", &["orders"], Some((3, 60_000)), None)],
    );
    c.settings.limits = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        on_redis_failure: rule,
        ..LimiterSettings::default()
    };
    c
}

fn metric_line<'a>(metrics: &'a str, prefix: &str) -> Option<&'a str> {
    metrics.lines().find(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn redis_limits_answer_429_with_rate_limit_headers_and_two_gateways_share_them() {
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let key = rsa_key();
    let config = redis_config(&up.url(), &key, &redis, RedisFailureRule::FailOpenLocal);
    let (gw1, gw2) = (start_gateway(&config).await, start_gateway(&config).await);
    let alice = sign(&key, &claims("alice"));

    let mut remaining = Vec::new();
    for gw in [&gw1, &gw2, &gw1] {
        let r = get(&gw.url("/orders/1"), Some(&alice)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        remaining.push(
            r.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        remaining,
        ["2", "1", "0"],
        "one counter across both gateways"
    );

    let limited = get(&gw2.url("/orders/1"), Some(&alice)).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.headers()["ratelimit-policy"], "\"rate\";q=3;w=60");
    assert!(
        limited.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"rate\";r=0;t="),
        "{:?}",
        limited.headers()["ratelimit"]
    );
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 3);

    let keys = redis.cli(&["KEYS", "portico:*"]);
    assert_eq!(
        keys.lines().count(),
        1,
        "alice's rate counter is in Redis: {keys}"
    );
    let metrics = gw1.metrics().await;
    assert_eq!(
        metric_line(&metrics, "portico_limiter_backend_up"),
        Some("portico_limiter_backend_up 1")
    );
    assert!(metric_line(&metrics, "portico_limiter_fallback_decisions_total").is_none());
}

#[tokio::test]
async fn fail_closed_answers_503_with_retry_after_while_redis_is_down_then_recovers() {
    let mut redis = RedisServer::start();
    let up = Upstream::start().await;
    let key = rsa_key();
    let gw = start_gateway(&redis_config(
        &up.url(),
        &key,
        &redis,
        RedisFailureRule::FailClosed,
    ))
    .await;
    let bob = sign(&key, &claims("bob"));
    assert_eq!(get(&gw.url("/orders/1"), Some(&bob)).await.status(), 200);

    redis.stop();
    for _ in 0..5 {
        let started = Instant::now();
        let r = get(&gw.url("/orders/1"), Some(&bob)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no hang: {:?}",
            started.elapsed()
        );
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "rate limits cannot be checked right now");
    }
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_line(&metrics, "portico_limiter_backend_up"),
        Some("portico_limiter_backend_up 0")
    );
    assert_eq!(
        metric_line(&metrics, "portico_limiter_fallback_decisions_total"),
        Some("portico_limiter_fallback_decisions_total{rule=\"fail_closed\"} 5")
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = get(&gw.url("/orders/1"), Some(&bob)).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "the gateway did not go back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric_line(&gw.metrics().await, "portico_limiter_backend_up"),
        Some("portico_limiter_backend_up 1")
    );
}
