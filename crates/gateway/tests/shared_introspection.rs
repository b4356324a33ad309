//! Two gateways sharing one Redis (the limiter's) and one real IdP share their introspection
//! answers: what one asked, the other serves without asking. A value changed or forged in
//! Redis is not trusted, and with Redis down both keep serving from their own caches and the
//! IdP.

use ::redis::AsyncCommands;
use portico_core::IdentitySpec;
use portico_core::RedisUrl;
use portico_core::api::PolicySource;
use portico_core::config::{GatewayConfig, LimiterBackend, LimiterSettings};
use portico_core::introspection::{
    ClientAuth, IntrospectionCache, IntrospectionSpec, JwtValidation,
};
use portico_core::jwt::{IssuerTrust, KeySourceSpec, Secret};
use portico_gateway::Gateway;
use portico_testkit::idp::{CLIENT_ID, CLIENT_SECRET, Idp};
use portico_testkit::redis::RedisServer;
use portico_testkit::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// An API `orders` whose tokens the IdP introspects (endpoint from discovery), `orders:read`
/// → policy `reader`, limits in `redis`.
fn shared_config(idp: &Idp, upstream: &str, redis: &RedisServer) -> GatewayConfig {
    let mut trust = IssuerTrust::new(Some(idp.issuer.clone()), KeySourceSpec::None);
    trust.introspection = Some(IntrospectionSpec {
        endpoint: None,
        client_id: CLIENT_ID.into(),
        client_auth: ClientAuth::ClientSecretBasic(Secret::new(CLIENT_SECRET.as_bytes().to_vec())),
        cache: IntrospectionCache::default(),
        timeout_ms: 2_000,
        grace_secs: 0,
        jwt_validation: JwtValidation::Local,
    });
    let mut orders = api("orders", "/orders", upstream, vec![trust]);
    orders.identity = IdentitySpec::sub_then_client_id();
    orders.policies = PolicySource {
        scope_map: HashMap::from([("orders:read".to_string(), vec!["reader".into()])]),
        ..Default::default()
    };
    let mut c = config(
        vec![orders],
        vec![policy("reader", &["orders"], None, None)],
    );
    c.settings.limits = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        ..LimiterSettings::default()
    };
    c
}

const SHARED: &str = "portico_introspection_cached_total{outcome=\"shared\"}";
const REJECTED: &str = "portico_introspection_shared_rejected_total";

async fn status(gw: &RunningGateway, token: &str) -> u16 {
    get(&gw.url("/orders/list"), Some(token))
        .await
        .status()
        .as_u16()
}

fn cache_keys(redis: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = redis
        .cli(&["KEYS", "portico:introspection:*"])
        .lines()
        .map(str::to_string)
        .filter(|k| !k.is_empty())
        .collect();
    keys.sort();
    keys
}

/// The keys in `after` that are not in `before` (exactly one expected).
fn new_key(before: &[String], after: &[String]) -> String {
    let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(new.len(), 1, "one new entry: {new:?}");
    new[0].clone()
}

fn connections_received(redis: &RedisServer) -> u64 {
    redis
        .cli(&["INFO", "stats"])
        .lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_gateway_asked_the_other_serves_without_asking_the_idp() {
    let idp = Idp::start();
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let config = shared_config(&idp, &up.url(), &redis);

    // Checking a configuration builds everything but connects nowhere (the `cli` call that
    // reads the count is the one connection between the two readings).
    let before = connections_received(&redis);
    Gateway::check(&config).unwrap();
    assert_eq!(connections_received(&redis), before + 1);

    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    let token = idp.opaque_token("orders:read").await;
    let calls = idp.introspection_calls().await;

    assert_eq!(status(&a, &token).await, 200);
    assert_eq!(idp.introspection_calls().await, calls + 1);
    let keys = cache_keys(&redis);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert!(!key.contains(&token), "the token is not in the key");
    let pttl: u64 = redis.cli(&["PTTL", key]).parse().unwrap();
    assert!(
        (1..=60_000).contains(&pttl),
        "no longer than the 60 s TTL: {pttl}"
    );
    let value = redis.cli(&["GET", key]);
    assert!(
        !value.contains(CLIENT_ID) && !value.contains("orders:read"),
        "the claims are sealed"
    );

    for _ in 0..5 {
        assert_eq!(status(&b, &token).await, 200);
    }
    assert_eq!(
        idp.introspection_calls().await,
        calls + 1,
        "B asked nobody but Redis"
    );
    assert_eq!(b.metric(SHARED).await, 1, "once from Redis, then locally");
    let seen: serde_json::Value = get(&b.url("/orders/list"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["headers"]["x-portico-identity"], CLIENT_ID,
        "the shared answer's claims feed the identity as the IdP's do"
    );

    // A negative answer is shared too (for its short lifetime).
    assert_eq!(status(&a, "not-a-token-the-idp-issued").await, 401);
    assert_eq!(status(&b, "not-a-token-the-idp-issued").await, 401);
    assert_eq!(idp.introspection_calls().await, calls + 2);
    assert_eq!(b.metric(SHARED).await, 2);
    assert_eq!(b.metric(REJECTED).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_changed_or_forged_in_redis_is_not_trusted() {
    let idp = Idp::start();
    let redis = RedisServer::start();
    let up = Upstream::start().await;
    let config = shared_config(&idp, &up.url(), &redis);
    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    let mut raw = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    // A real answer, one bit changed (its lifetime kept).
    let token = idp.opaque_token("orders:read").await;
    assert_eq!(status(&a, &token).await, 200);
    let key = cache_keys(&redis).pop().unwrap();
    let mut value: Vec<u8> = raw.get(&key).await.unwrap();
    let middle = value.len() / 2;
    value[middle] ^= 0x01;
    let _: () = ::redis::cmd("SET")
        .arg(&key)
        .arg(&value)
        .arg("KEEPTTL")
        .query_async(&mut raw)
        .await
        .unwrap();
    let calls = idp.introspection_calls().await;
    assert_eq!(
        status(&b, &token).await,
        200,
        "the IdP still vouches for it"
    );
    assert_eq!(
        idp.introspection_calls().await,
        calls + 1,
        "B asked the IdP itself"
    );
    assert_eq!(b.metric(REJECTED).await, 1);
    assert_eq!(b.metric(SHARED).await, 0);

    // The attack: the entry of a dead token rewritten as an active answer, as a Redis writer
    // without the client's credentials could write it.
    let before = cache_keys(&redis);
    assert_eq!(status(&a, "a-dead-token").await, 401);
    let dead = new_key(&before, &cache_keys(&redis));
    let forged = r#"{"active":true,"client_id":"mallory","scope":"orders:read","exp":4102444800}"#;
    let _: () = raw.set_ex(&dead, forged, 60).await.unwrap();
    let calls = idp.introspection_calls().await;
    assert_eq!(status(&b, "a-dead-token").await, 401, "no bypass");
    assert_eq!(idp.introspection_calls().await, calls + 1);
    assert_eq!(b.metric(REJECTED).await, 2);
    // B's own answer replaced the forgery.
    let now_there: Vec<u8> = raw.get(&dead).await.unwrap();
    assert_ne!(now_there, forged.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_both_gateways_serve_from_their_own_cache_and_the_idp() {
    let idp = Idp::start();
    let mut redis = RedisServer::start();
    let up = Upstream::start().await;
    let config = shared_config(&idp, &up.url(), &redis);
    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    assert_eq!(
        status(&a, &idp.opaque_token("orders:read").await).await,
        200
    );

    redis.stop();
    let token = idp.opaque_token("orders:read").await;
    let calls = idp.introspection_calls().await;
    for gw in [&a, &b, &a, &b] {
        let started = Instant::now();
        assert_eq!(status(gw, &token).await, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no hang: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        idp.introspection_calls().await,
        calls + 2,
        "one call per gateway, then each one's own cache"
    );
    assert_eq!(status(&b, "not-a-token-the-idp-issued").await, 401);

    // Redis back: sharing resumes by itself (after the back-off).
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let token = idp.opaque_token("orders:read").await;
        assert_eq!(status(&a, &token).await, 200);
        let calls = idp.introspection_calls().await;
        assert_eq!(status(&b, &token).await, 200);
        if idp.introspection_calls().await == calls {
            break;
        }
        assert!(Instant::now() < deadline, "sharing did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
