//! What the upstream trusts cannot be forged, and an identity is scoped by its issuer.

use portico_core::ClaimPath;
use portico_core::api::{ApiAuth, PolicySource};
use portico_testkit::*;
use serde_json::{Value, json};
use std::collections::HashMap;

async fn seen_headers(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["headers"].clone()
}

#[tokio::test]
async fn identity_headers_cannot_be_forged_on_keyless_apis() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = ApiAuth::Keyless;
    let mut secured = api("secured", "/secured", &up.url(), vec![trust_pem(&key)]);
    secured.upstream_headers.claims =
        vec![(ClaimPath::try_new("email").unwrap(), "X-Email".into())];
    let gw = start_gateway(&config(vec![open, secured], vec![])).await;
    let h = seen_headers(
        client()
            .get(gw.url("/open/x"))
            .header("x-portico-identity", "alice")
            .header("x-portico-session", "0123")
            .header("x-portico-issuer", "https://idp")
            .header("x-email", "ceo@example.com")
            .header("x_portico_identity", "alice")
            .header("x_email", "ceo@example.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    for name in [
        "x-portico-identity",
        "x-portico-session",
        "x-portico-issuer",
        "x-email",
        "x_portico_identity",
        "x_email",
    ] {
        assert!(h.get(name).is_none(), "{name} reached the upstream: {h}");
    }
}

#[tokio::test]
async fn connection_tokens_cannot_remove_what_the_gateway_adds() {
    let (_up, key, gw) = orders_gateway().await;
    let token = sign(&key, &claims("alice"));
    let h = seen_headers(
        client()
            .get(gw.url("/orders/x"))
            .bearer_auth(&token)
            .header(
                "connection",
                "x-portico-identity, x-portico-session, x-request-id",
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(h["x-portico-identity"], "alice");
    assert_eq!(h["x-portico-session"].as_str().unwrap().len(), 32);
    assert!(h.get("x-request-id").is_some());
}

#[tokio::test]
async fn duplicate_authorization_headers_are_refused() {
    let (up, key, gw) = orders_gateway().await;
    let good = sign(&key, &claims("alice"));
    let r = client()
        .get(gw.url("/orders/x"))
        .header("authorization", format!("Bearer {good}"))
        .header("authorization", "Bearer forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(up.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// One API trusting two issuers, with a 1-per-minute plan for everyone.
async fn two_issuer_gateway() -> (
    Upstream,
    portico_auth::sign::SigningKey,
    portico_auth::sign::SigningKey,
    RunningGateway,
) {
    let up = Upstream::start().await;
    let (key_a, key_b) = (rsa_key(), rsa_key().with_kid("k2"));
    let mut trust_b = trust_pem(&key_b);
    trust_b.issuer = Some("https://other.test".into());
    let mut orders = api(
        "orders",
        "/orders",
        &up.url(),
        vec![trust_pem(&key_a), trust_b],
    );
    orders.policies = PolicySource {
        default_policies: vec!["plan".into()],
        scope_map: HashMap::new(),
        ..Default::default()
    };
    let gw = start_gateway(&config(
        vec![orders],
        vec![policy("plan", &["orders"], Some((1, 60_000)), None)],
    ))
    .await;
    (up, key_a, key_b, gw)
}

#[tokio::test]
async fn the_same_sub_at_two_issuers_is_two_identities() {
    let (_up, key_a, key_b, gw) = two_issuer_gateway().await;
    let at_a = sign(&key_a, &claims("alice"));
    let at_b = sign(
        &key_b,
        &with(claims("alice"), json!({"iss": "https://other.test"})),
    );
    let a = seen_headers(get(&gw.url("/orders/x"), Some(&at_a)).await).await;
    // Alice at A has used her one request; Alice at B has her own counter.
    assert_eq!(get(&gw.url("/orders/x"), Some(&at_a)).await.status(), 429);
    let b = seen_headers(get(&gw.url("/orders/x"), Some(&at_b)).await).await;
    assert_ne!(a["x-portico-session"], b["x-portico-session"]);
    assert_eq!(a["x-portico-issuer"], ISSUER);
    assert_eq!(b["x-portico-issuer"], "https://other.test");
    assert_eq!(a["x-portico-identity"], b["x-portico-identity"]);
}

#[tokio::test]
async fn a_numeric_identity_is_not_the_string_of_its_digits() {
    let (_up, key_a, _key_b, gw) = two_issuer_gateway().await;
    let number = sign(&key_a, &with(claims("x"), json!({"sub": 42})));
    let string = sign(&key_a, &with(claims("x"), json!({"sub": "42"})));
    let n = seen_headers(get(&gw.url("/orders/x"), Some(&number)).await).await;
    let s = seen_headers(get(&gw.url("/orders/x"), Some(&string)).await).await;
    assert_ne!(n["x-portico-session"], s["x-portico-session"]);
}

#[tokio::test]
async fn a_connection_naming_content_length_cannot_smuggle_a_request() {
    use portico_testkit::scripted::{Reply, ScriptedUpstream};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let up = ScriptedUpstream::start(vec![vec![Reply::Send(OK), Reply::Send(OK)]]).await;
    let key = rsa_key();
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = ApiAuth::Keyless;
    let secured = api("secured", "/secured", &up.url(), vec![trust_pem(&key)]);
    let gw = start_gateway(&config(vec![open, secured], vec![])).await;
    let smuggled = "GET /secured/admin HTTP/1.1\r\nhost: up\r\nx-portico-identity: admin\r\n\r\n";
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /open/x HTTP/1.1\r\nhost: gw\r\ncontent-length: {}\r\n\
             connection: close, content-length\r\n\r\n{smuggled}",
            smuggled.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let first = &up.requests()[0];
    assert!(
        first.ends_with(smuggled),
        "the client's body is not the body of its request upstream: {first:?}"
    );
}
