//! Routing and proxying against a real loopback upstream.

use portico_core::api::UpstreamTimeouts;
use portico_testkit::*;
use serde_json::Value;

#[tokio::test]
async fn valid_token_reaches_upstream_with_identity_and_forwarding_headers() {
    let (up, key, gw) = orders_gateway().await;
    let token = sign(&key, &claims("alice"));
    let r = client()
        .get(gw.url("/orders/items/7?full=1"))
        .bearer_auth(&token)
        .header("x-portico-identity", "mallory")
        .header("x-forwarded-for", "10.0.0.1")
        .header("connection", "x-hop")
        .header("x-hop", "drop me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    assert!(
        r.headers().get("x-upstream-hop").is_none(),
        "hop-by-hop response headers are removed"
    );
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/items/7");
    assert_eq!(seen["query"], "full=1");
    let h = &seen["headers"];
    assert_eq!(
        h["x-portico-identity"], "alice",
        "client-sent identity header is replaced"
    );
    assert_eq!(h["x-portico-session"].as_str().unwrap().len(), 32);
    assert_eq!(
        h["x-forwarded-for"], "127.0.0.1",
        "an untrusted client's X-Forwarded-For is replaced"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], gw.addr.to_string());
    assert_eq!(h["host"], up.addr.to_string());
    assert!(
        h.get("x-hop").is_none(),
        "headers named in Connection are removed"
    );
    assert_eq!(h["authorization"], format!("Bearer {token}"));
}

#[tokio::test]
async fn longest_listen_path_wins_on_segment_boundaries() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut outer = api("outer", "/a", &up.url(), vec![trust_pem(&key)]);
    outer.strip_listen_path = false;
    let inner = api("inner", "/a/b", &up.url(), vec![trust_pem(&key)]);
    let gw = start_gateway(&config(vec![outer, inner], vec![])).await;
    let token = sign(&key, &claims("alice"));
    let path_of = |v: Value| v["path"].as_str().unwrap().to_string();
    assert_eq!(
        path_of(
            get(&gw.url("/a/b/c"), Some(&token))
                .await
                .json()
                .await
                .unwrap()
        ),
        "/c"
    );
    assert_eq!(
        path_of(
            get(&gw.url("/a/bc"), Some(&token))
                .await
                .json()
                .await
                .unwrap()
        ),
        "/a/bc"
    );
    assert_eq!(
        path_of(get(&gw.url("/a"), Some(&token)).await.json().await.unwrap()),
        "/a"
    );
    assert_eq!(get(&gw.url("/ab"), Some(&token)).await.status(), 404);
    assert_eq!(
        get(&gw.url("/a/../secret"), Some(&token)).await.status(),
        404
    );
    assert_eq!(
        get(&gw.url("/a/%2e%2e/secret"), Some(&token))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn authorization_can_be_withheld_from_the_upstream() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut a = api("orders", "/orders", &up.url(), vec![trust_pem(&key)]);
    a.upstream_headers.forward_authorization = false;
    a.upstream_headers.claims = vec![(
        portico_core::ClaimPath::try_new("scope").unwrap(),
        "X-Scopes".into(),
    )];
    let gw = start_gateway(&config(vec![a], vec![])).await;
    let token = sign(
        &key,
        &with(claims("alice"), serde_json::json!({"scope": "a b"})),
    );
    let seen: Value = get(&gw.url("/orders/x"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert!(seen["headers"].get("authorization").is_none());
    assert_eq!(seen["headers"]["x-scopes"], "a b");
}

#[tokio::test]
async fn refused_upstream_is_502_and_slow_upstream_is_504() {
    let key = rsa_key();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let up = Upstream::start().await;
    let mut slow = api("slow", "/slow", &up.url(), vec![trust_pem(&key)]);
    slow.strip_listen_path = false;
    slow.timeouts = UpstreamTimeouts {
        connect_ms: 1000,
        read_ms: 300,
        ..UpstreamTimeouts::default()
    };
    let gw = start_gateway(&config(
        vec![
            api(
                "down",
                "/down",
                &format!("http://{closed}"),
                vec![trust_pem(&key)],
            ),
            slow,
        ],
        vec![],
    ))
    .await;
    let token = sign(&key, &claims("alice"));
    let r = get(&gw.url("/down/x"), Some(&token)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let started = std::time::Instant::now();
    assert_eq!(get(&gw.url("/slow"), Some(&token)).await.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let (_up, key, gw) = orders_gateway().await;
    let token = sign(&key, &claims("alice"));
    // 8 MiB download, streamed chunk by chunk.
    let r = get(&gw.url("/orders/stream/128"), Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 128 * 64 * 1024);
    // 4 MiB upload, sent as a stream of chunks.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b'y'; 64 * 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let seen: Value = client()
        .post(gw.url("/orders/upload"))
        .bearer_auth(&token)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["body_len"], 64 * 64 * 1024);
    assert_eq!(seen["method"], "POST");
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let (_up, key, gw) = orders_gateway().await;
    let token = sign(&key, &claims("alice"));
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(gw.url("/orders/h2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-portico-identity"], "alice");
    assert_eq!(seen["headers"]["x-forwarded-host"], gw.addr.to_string());
}

#[tokio::test]
async fn keyless_api_needs_no_token() {
    let up = Upstream::start().await;
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = portico_core::api::ApiAuth::Keyless;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let seen: Value = get(&gw.url("/open/x"), None).await.json().await.unwrap();
    assert!(seen["headers"].get("x-portico-identity").is_none());
}

#[tokio::test]
async fn metrics_count_requests_and_auth_failures() {
    let (_up, key, gw) = orders_gateway().await;
    get(&gw.url("/orders/x"), Some(&sign(&key, &claims("a")))).await;
    get(&gw.url("/orders/x"), Some("garbage")).await;
    let text = gw.metrics().await;
    assert!(
        text.contains("portico_requests_total{api=\"orders\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portico_requests_total{api=\"orders\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portico_auth_failures_total{reason=\"malformed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portico_request_duration_seconds_count{api=\"orders\"} 2"),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "no token material in metrics");
}

#[tokio::test]
async fn forwarding_headers_of_trusted_proxies_are_kept_and_extended() {
    let up = Upstream::start().await;
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = portico_core::api::ApiAuth::Keyless;
    let mut cfg = config(vec![open], vec![]);
    cfg.settings.trusted_proxies = vec![portico_core::net::IpNet::try_new("127.0.0.0/8").unwrap()];
    let gw = start_gateway(&cfg).await;
    let r = client()
        .get(gw.url("/open/x"))
        .header("x-forwarded-for", "203.0.113.5")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "api.example")
        .header("x-real-ip", "203.0.113.5")
        .header("x-original-url", "/admin")
        .send()
        .await
        .unwrap();
    let h = &r.json::<Value>().await.unwrap()["headers"];
    assert_eq!(h["x-forwarded-for"], "203.0.113.5, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "api.example");
    assert_eq!(h["x-real-ip"], "203.0.113.5");
    assert!(
        h.get("x-original-url").is_none(),
        "rewrite-style headers are removed whoever sends them"
    );
}
