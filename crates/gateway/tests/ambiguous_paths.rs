//! What is checked is what is forwarded: paths an upstream could normalise into another path
//! are refused before routing and access rules see them.

use portico_core::api::ApiAuth;
use portico_testkit::*;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The status line of a raw HTTP/1.1 request for `path` (sent byte for byte, unnormalised).
async fn status_of(gw: &RunningGateway, path: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn paths_an_upstream_could_read_differently_are_refused() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut root = api("root", "/", &up.url(), vec![]);
    root.auth = ApiAuth::Keyless;
    let mut public = api("public", "/api/public", &up.url(), vec![]);
    public.auth = ApiAuth::Keyless;
    let admin = api("admin", "/api/admin", &up.url(), vec![trust_pem(&key)]);
    let gw = start_gateway(&config(vec![root, public, admin], vec![])).await;
    for path in [
        "/api/public/..;/admin",
        "/api/public/%2e%2e;/admin",
        "/api/public%2F..%2Fadmin",
        "/api%2Fadmin",
        "/api%2fadmin/x",
        "/api/public/..%5Cadmin",
        "/api/public/%252e%252e/admin",
        "/api/public//x",
        "/api/public/../admin",
        "/api/public/x%00",
        "/%61pi/admin",
        "/api/public/..%3B/admin",
    ] {
        let status = status_of(&gw, path).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{path}: {status}");
    }
    // A raw backslash is refused too, by the gateway or by the HTTP parser before it.
    let status = status_of(&gw, "/api/public/..\\admin").await;
    assert!(status.starts_with("HTTP/1.1 400"), "backslash: {status}");
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    assert!(
        status_of(&gw, "/api/public/items/a.b")
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn path_parameters_only_where_an_api_opts_in() {
    let up = Upstream::start().await;
    let mut strict = api("strict", "/strict", &up.url(), vec![]);
    strict.auth = ApiAuth::Keyless;
    let mut matrix = api("matrix", "/matrix", &up.url(), vec![]);
    matrix.auth = ApiAuth::Keyless;
    matrix.allow_path_parameters = true;
    let gw = start_gateway(&config(vec![strict, matrix], vec![])).await;
    assert!(
        status_of(&gw, "/strict/cars;color=red")
            .await
            .starts_with("HTTP/1.1 400")
    );
    assert!(
        status_of(&gw, "/matrix/cars;color=red")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        status_of(&gw, "/matrix/..;/strict")
            .await
            .starts_with("HTTP/1.1 400")
    );
}

#[tokio::test]
async fn endpoint_allow_and_block_lists_apply_to_every_caller() {
    use portico_core::policy::{AccessRule, EndpointRules};
    let up = Upstream::start().await;
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = ApiAuth::Keyless;
    open.endpoints = EndpointRules {
        allow: vec![AccessRule::try_new("/items", Some(vec!["GET".into()])).unwrap()],
        block: vec![AccessRule::try_new_anywhere("/items/secret", None).unwrap()],
    };
    let gw = start_gateway(&config(vec![open], vec![])).await;
    assert!(
        status_of(&gw, "/open/items/1")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        status_of(&gw, "/open/other")
            .await
            .starts_with("HTTP/1.1 403"),
        "not on the allow list"
    );
    assert!(
        status_of(&gw, "/open/items/secret")
            .await
            .starts_with("HTTP/1.1 403"),
        "blocked"
    );
    assert!(
        status_of(&gw, "/open/items/%73ecret")
            .await
            .starts_with("HTTP/1.1 400"),
        "encoded letters are refused before any rule"
    );
}
