//! Identity sessions, policies, rate limits and quotas, and reloads, over real HTTP.

use portico_core::ClaimPath;
use portico_core::api::PolicySource;
use portico_core::policy::{AccessRule, ApiAccess};
use portico_testkit::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn scope_api(upstream: &str, key: &portico_auth::sign::SigningKey) -> portico_core::ApiSpec {
    let mut a = api("orders", "/orders", upstream, vec![trust_pem(key)]);
    a.policies = PolicySource {
        scope_map: HashMap::from([("orders:read".to_string(), vec!["reader".into()])]),
        ..Default::default()
    };
    a
}

fn scoped(sub: &str, scope: &str) -> serde_json::Map<String, serde_json::Value> {
    with(
        claims(sub),
        json!({"scope": scope, "jti": format!("{sub}-{scope}-{}", rand_suffix())}),
    )
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

#[tokio::test]
async fn one_identity_shares_its_counter_across_tokens_and_identities_do_not() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let gw = start_gateway(&config(
        vec![scope_api(&up.url(), &key)],
        vec![policy("reader", &["orders"], Some((3, 60_000)), None)],
    ))
    .await;
    let (alice1, alice2) = (
        sign(&key, &scoped("alice", "orders:read")),
        sign(&key, &scoped("alice", "orders:read")),
    );
    assert_ne!(alice1, alice2);
    let bob = sign(&key, &scoped("bob", "orders:read"));
    assert_eq!(get(&gw.url("/orders/1"), Some(&alice1)).await.status(), 200);
    assert_eq!(get(&gw.url("/orders/1"), Some(&alice2)).await.status(), 200);
    let third = get(&gw.url("/orders/1"), Some(&alice1)).await;
    assert_eq!(third.status(), 200);
    assert_eq!(third.headers()["x-ratelimit-remaining"], "0");
    let limited = get(&gw.url("/orders/1"), Some(&alice2)).await;
    assert_eq!(
        limited.status(),
        429,
        "alice's second token shares the first one's counter"
    );
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
            .starts_with("\"rate\";r=0;t=")
    );
    let ok = get(&gw.url("/orders/1"), Some(&bob)).await;
    assert_eq!(ok.status(), 200, "bob has his own counter");
    assert_eq!(ok.headers()["x-ratelimit-remaining"], "2");
    assert_eq!(ok.headers()["x-ratelimit-limit"], "3");
}

#[tokio::test]
async fn quota_is_enforced_per_identity() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let gw = start_gateway(&config(
        vec![scope_api(&up.url(), &key)],
        vec![policy("reader", &["orders"], None, Some((2, 3_600_000)))],
    ))
    .await;
    let t = sign(&key, &scoped("carol", "orders:read"));
    assert_eq!(get(&gw.url("/orders/1"), Some(&t)).await.status(), 200);
    assert_eq!(get(&gw.url("/orders/1"), Some(&t)).await.status(), 200);
    let r = get(&gw.url("/orders/1"), Some(&t)).await;
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 3500
    );
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["detail"],
        "quota exceeded"
    );
}

#[tokio::test]
async fn scopes_that_map_to_nothing_are_insufficient() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut a = scope_api(&up.url(), &key);
    a.policies
        .scope_map
        .insert("gold".into(), vec!["gold".into()]);
    let gw = start_gateway(&config(
        vec![a],
        vec![
            policy("reader", &["orders"], None, None),
            policy("gold", &["billing"], None, None),
        ],
    ))
    .await;
    for (scope, what) in [
        ("unmapped", "unmapped scope"),
        ("", "no scope"),
        ("gold", "policy for another API"),
    ] {
        let r = get(
            &gw.url("/orders/1"),
            Some(&sign(&key, &scoped("dave", scope))),
        )
        .await;
        assert_eq!(r.status(), 403, "{what}");
        assert!(
            www_authenticate(&r).starts_with("Bearer error=\"insufficient_scope\""),
            "{what}"
        );
    }
    assert_eq!(
        get(
            &gw.url("/orders/1"),
            Some(&sign(&key, &scoped("dave", "orders:read")))
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn policy_claim_and_default_policies() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut a = api("orders", "/orders", &up.url(), vec![trust_pem(&key)]);
    a.policies = PolicySource {
        policy_claim: Some(ClaimPath::try_new("pol").unwrap()),
        default_policies: vec!["basic".into()],
        ..Default::default()
    };
    let gw = start_gateway(&config(
        vec![a],
        vec![
            policy("basic", &["orders"], Some((1, 60_000)), None),
            policy("gold", &["orders"], Some((100, 60_000)), None),
        ],
    ))
    .await;
    let gold = sign(&key, &with(claims("erin"), json!({"pol": ["gold"]})));
    let r = get(&gw.url("/orders/1"), Some(&gold)).await;
    assert_eq!(r.headers()["x-ratelimit-limit"], "100");
    let plain = sign(&key, &claims("frank"));
    let r = get(&gw.url("/orders/1"), Some(&plain)).await;
    assert_eq!(
        r.headers()["x-ratelimit-limit"],
        "1",
        "default policy applies without a policy claim"
    );
}

#[tokio::test]
async fn authentication_only_api_has_no_limits() {
    let (_up, key, gw) = orders_gateway().await;
    let t = sign(&key, &claims("gina"));
    for _ in 0..20 {
        let r = get(&gw.url("/orders/1"), Some(&t)).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("ratelimit").is_none());
    }
}

#[tokio::test]
async fn policy_edits_apply_on_reload_without_new_tokens() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let read_only = |methods: Vec<&str>| {
        let mut p = policy("reader", &[], None, None);
        p.access.insert(
            "orders".into(),
            ApiAccess {
                rules: vec![
                    AccessRule::try_new("/", Some(methods.into_iter().map(String::from).collect()))
                        .unwrap(),
                ],
            },
        );
        p
    };
    let gw = start_gateway(&config(
        vec![scope_api(&up.url(), &key)],
        vec![read_only(vec!["GET"])],
    ))
    .await;
    let token = sign(&key, &scoped("hank", "orders:read"));
    let post = || async {
        client()
            .post(gw.url("/orders/1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(post().await, 403);
    gw.gateway
        .reload(&config(
            vec![scope_api(&up.url(), &key)],
            vec![read_only(vec!["GET", "POST"])],
        ))
        .unwrap();
    assert_eq!(
        post().await,
        200,
        "the same token is allowed after the policy edit"
    );
}

#[tokio::test]
async fn invalid_reload_keeps_the_running_config() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let gw = start_gateway(&config(
        vec![scope_api(&up.url(), &key)],
        vec![policy("reader", &["orders"], None, None)],
    ))
    .await;
    // The new config refers to policies that do not exist.
    let err = gw
        .gateway
        .reload(&config(vec![scope_api(&up.url(), &key)], vec![]))
        .unwrap_err();
    assert!(err.to_string().contains("unknown policy"), "{err}");
    assert_eq!(
        get(
            &gw.url("/orders/1"),
            Some(&sign(&key, &scoped("ivy", "orders:read")))
        )
        .await
        .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_drop_no_request() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let cfg = || {
        config(
            vec![scope_api(&up.url(), &key)],
            vec![policy("reader", &["orders"], Some((1_000_000, 1000)), None)],
        )
    };
    let gw = start_gateway(&cfg()).await;
    let token = sign(&key, &scoped("jack", "orders:read"));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, url, token) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            gw.url("/orders/1"),
            token.clone(),
        );
        workers.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::SeqCst) {
                match c.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    for _ in 0..50 {
        gw.gateway.reload(&cfg()).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(ok.load(Ordering::SeqCst) > 50);
}

#[tokio::test]
async fn cached_tokens_never_outlive_their_expiry() {
    let (_up, key, gw) = orders_gateway().await;
    // Two seconds, not one: `exp` has second granularity, and one second can end between
    // the first and second request on a loaded machine.
    let short = sign(&key, &with(claims("kate"), json!({"exp": now() + 2})));
    assert_eq!(get(&gw.url("/orders/1"), Some(&short)).await.status(), 200);
    assert_eq!(
        get(&gw.url("/orders/1"), Some(&short)).await.status(),
        200,
        "served from the cache"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = get(&gw.url("/orders/1"), Some(&short)).await;
    assert_eq!(r.status(), 401, "the cache entry ended with exp");
    assert!(www_authenticate(&r).contains("expired"));
}

#[tokio::test]
async fn token_cache_can_be_turned_off() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut cfg = config(
        vec![api("orders", "/orders", &up.url(), vec![trust_pem(&key)])],
        vec![],
    );
    cfg.settings.token_cache.max_entries = 0;
    let gw = start_gateway(&cfg).await;
    let t = sign(&key, &claims("liam"));
    for _ in 0..3 {
        assert_eq!(get(&gw.url("/orders/1"), Some(&t)).await.status(), 200);
    }
    assert!(
        gw.gateway
            .metrics()
            .render()
            .contains("portico_requests_total{api=\"orders\",status=\"200\"} 3")
    );
}
