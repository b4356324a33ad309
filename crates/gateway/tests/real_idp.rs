//! The gateway against a real OpenID Provider (npm `oidc-provider`), configured with nothing
//! but the issuer URL.

use portico_auth::jws::b64url_decode;
use portico_core::api::PolicySource;
use portico_core::jwt::{IssuerTrust, KeySourceSpec};
use portico_testkit::idp::{CLIENT_ID, Idp, JWT_RESOURCE};
use portico_testkit::*;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

fn kid_of(token: &str) -> String {
    let header: Value =
        serde_json::from_slice(&b64url_decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_tokens_are_accepted_and_key_rotation_costs_one_refetch() {
    let idp = Idp::start();
    let up = Upstream::start().await;
    let mut trust = IssuerTrust::new(Some(idp.issuer.clone()), KeySourceSpec::Discovery);
    trust.audiences = vec![JWT_RESOURCE.into()];
    trust.require_at_jwt = true;
    let mut a = api("orders", "/orders", &up.url(), vec![trust]);
    a.policies = PolicySource {
        scope_map: HashMap::from([("orders:read".to_string(), vec!["reader".into()])]),
        ..Default::default()
    };
    let mut cfg = config(
        vec![a],
        vec![policy("reader", &["orders"], Some((1000, 1000)), None)],
    );
    cfg.settings.jwks.unknown_kid_cooldown_secs = 0;
    let gw = start_gateway(&cfg).await;

    // The background refresher loads the keys once at start.
    for _ in 0..100 {
        if gw
            .metric("portico_jwks_fetches_total{outcome=\"ok\"}")
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        gw.metric("portico_jwks_fetches_total{outcome=\"ok\"}")
            .await,
        1
    );

    let token = idp.client_credentials_token("orders:read").await;
    let r = get(&gw.url("/orders/list"), Some(&token)).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["x-portico-identity"], CLIENT_ID,
        "sub of a client_credentials token is the client id"
    );
    let denied = get(
        &gw.url("/orders/list"),
        Some(&idp.client_credentials_token("billing:read").await),
    )
    .await;
    assert_eq!(denied.status(), 403, "a scope that maps to no policy");
    assert_eq!(
        gw.metric("portico_jwks_fetches_total{outcome=\"ok\"}")
            .await,
        1,
        "known keys: no fetch per request"
    );

    let new_kid = idp.rotate_signing_key().await;
    let rotated = idp.client_credentials_token("orders:read").await;
    assert_eq!(kid_of(&rotated), new_kid);
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&rotated)).await.status(),
        200
    );
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&rotated)).await.status(),
        200
    );
    assert_eq!(
        gw.metric("portico_jwks_fetches_total{outcome=\"ok\"}")
            .await,
        2,
        "exactly one refetch for the new kid"
    );
    assert_eq!(
        gw.metric("portico_jwks_unknown_kid_refetches_total").await,
        1
    );
    // Tokens signed with the previous key stay valid while it is published.
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&token)).await.status(),
        200
    );
}
