//! Remote key sets against a real HTTP server on loopback: refetch on unknown kid (once,
//! shared by concurrent callers, with a cooldown), last good keys kept when the IdP fails,
//! OIDC discovery, Cache-Control, and whether a key that verified a token is still published.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use portico_auth::sign::SigningKey;
use portico_auth::sources::JwksLocation;
use portico_auth::{JwtVerifier, KeySourceRegistry, TokenError};
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{Algorithm, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Clone)]
struct Idp {
    url: String,
    jwks: Arc<Mutex<(u16, String, Option<String>)>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_issuer: Arc<Mutex<String>>,
}

impl Idp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let idp = Idp {
            url: url.clone(),
            jwks: Arc::new(Mutex::new((200, json!({"keys": []}).to_string(), None))),
            jwks_hits: Arc::new(AtomicUsize::new(0)),
            discovery_issuer: Arc::new(Mutex::new(url)),
        };
        let state = idp.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(req.uri().path())) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        idp
    }

    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, body, cache) = match path {
            "/jwks" => {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
                self.jwks.lock().clone()
            }
            "/.well-known/openid-configuration" => {
                (200, json!({"issuer": *self.discovery_issuer.lock(), "jwks_uri": format!("{}/jwks", self.url)}).to_string(), None)
            }
            _ => (404, String::new(), None),
        };
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        if let Some(c) = cache {
            r.headers_mut().insert("cache-control", c.parse().unwrap());
        }
        r
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let jwks =
            json!({"keys": keys.iter().map(|k| k.public_jwk().unwrap()).collect::<Vec<_>>()})
                .to_string();
        *self.jwks.lock() = (200, jwks, None);
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

fn settings(cooldown_secs: u64) -> KeyFetchSettings {
    KeyFetchSettings {
        unknown_kid_cooldown_secs: cooldown_secs,
        fetch_timeout_ms: 2000,
        ..Default::default()
    }
}

fn verifier(
    keys: KeySourceSpec,
    issuer: Option<String>,
    registry: &KeySourceRegistry,
    fetch: KeyFetchSettings,
) -> JwtVerifier {
    let spec = JwtSpec {
        issuers: vec![IssuerTrust::new(issuer, keys)],
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    JwtVerifier::build(&spec, registry, &fetch).unwrap()
}

fn token(key: &SigningKey, iss: &str) -> String {
    let claims: Map<String, Value> = json!({"sub": "a", "iss": iss, "exp": 4_000_000_000u64})
        .as_object()
        .unwrap()
        .clone();
    key.sign_jwt(&claims, &Map::new()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_once_for_all_concurrent_callers() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::RS256)
        .unwrap()
        .with_kid("k1");
    let k2 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k2");
    idp.publish(&[&k1]);
    let registry = KeySourceRegistry::on_demand();
    let v = Arc::new(verifier(
        KeySourceSpec::JwksUrl(url(format!("{}/jwks", idp.url))),
        None,
        &registry,
        settings(0),
    ));
    v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    assert_eq!(idp.hits(), 1, "first use loads the keys");
    v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    assert_eq!(idp.hits(), 1, "known kid: no fetch");

    idp.publish(&[&k2, &k1]);
    let t2 = token(&k2, "x");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (v, t) = (v.clone(), t2.clone());
            tokio::spawn(async move { v.verify_access_token(&t, 1).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(
        idp.hits(),
        2,
        "twenty callers with the new kid share one refetch"
    );
}

#[tokio::test]
async fn random_kids_cannot_hammer_the_idp() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::RS256)
        .unwrap()
        .with_kid("k1");
    idp.publish(&[&k1]);
    let registry = KeySourceRegistry::on_demand();
    let v = verifier(
        KeySourceSpec::JwksUrl(url(format!("{}/jwks", idp.url))),
        None,
        &registry,
        settings(60),
    );
    v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    for i in 0..50 {
        let random = SigningKey::generate(Algorithm::HS256)
            .unwrap()
            .with_kid(format!("random-{i}"));
        assert_eq!(
            v.verify_access_token(&token(&random, "x"), 1)
                .await
                .unwrap_err(),
            TokenError::UnknownKey
        );
    }
    assert_eq!(idp.hits(), 1, "no refetch within the cooldown");
}

#[tokio::test]
async fn last_good_keys_survive_idp_failures() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::EdDSA)
        .unwrap()
        .with_kid("k1");
    idp.publish(&[&k1]);
    let registry = KeySourceRegistry::on_demand();
    let v = verifier(
        KeySourceSpec::JwksUrl(url(format!("{}/jwks", idp.url))),
        None,
        &registry,
        settings(0),
    );
    v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    let remote = v.remote_key_sets().next().unwrap().clone();
    for broken in [
        (500, "oops".to_string()),
        (200, "not json".to_string()),
        (200, json!({"keys": []}).to_string()),
    ] {
        *idp.jwks.lock() = (broken.0, broken.1, None);
        remote.refresh().await;
        v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    }
    assert_eq!(idp.hits(), 4);
}

#[tokio::test]
async fn unreachable_idp_means_keys_unavailable_not_a_crash() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let registry = KeySourceRegistry::on_demand();
    let v = verifier(
        KeySourceSpec::JwksUrl(url(format!("http://{closed}/jwks"))),
        None,
        &registry,
        settings(0),
    );
    let k = SigningKey::generate(Algorithm::RS256)
        .unwrap()
        .with_kid("k");
    assert_eq!(
        v.verify_access_token(&token(&k, "x"), 1).await.unwrap_err(),
        TokenError::KeysUnavailable
    );
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::ES384)
        .unwrap()
        .with_kid("k1");
    idp.publish(&[&k1]);
    let registry = KeySourceRegistry::on_demand();
    let v = verifier(
        KeySourceSpec::Discovery,
        Some(idp.url.clone()),
        &registry,
        settings(0),
    );
    v.verify_access_token(&token(&k1, &idp.url), 1)
        .await
        .unwrap();
    assert_eq!(
        v.verify_access_token(&token(&k1, "https://other"), 1)
            .await
            .unwrap_err(),
        TokenError::UntrustedIssuer
    );

    let liar = Idp::start().await;
    *liar.discovery_issuer.lock() = "https://someone-else.test".into();
    liar.publish(&[&k1]);
    let v = verifier(
        KeySourceSpec::Discovery,
        Some(liar.url.clone()),
        &registry,
        settings(0),
    );
    assert_eq!(
        v.verify_access_token(&token(&k1, &liar.url), 1)
            .await
            .unwrap_err(),
        TokenError::KeysUnavailable
    );
    assert_eq!(
        liar.hits(),
        0,
        "a discovery document for another issuer is not followed"
    );
}

#[tokio::test]
async fn cache_control_sets_the_refresh_interval_within_bounds() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::RS256)
        .unwrap()
        .with_kid("k1");
    let jwks = json!({"keys": [k1.public_jwk().unwrap()]}).to_string();
    let registry = KeySourceRegistry::on_demand();
    let fetch = settings(0);
    let remote = registry
        .remote(JwksLocation::Url(url(format!("{}/jwks", idp.url))), &fetch)
        .unwrap();
    for (cache, expected) in [
        (Some("max-age=120"), 120),
        (Some("max-age=1"), 30),
        (Some("max-age=9999999"), 86_400),
        (None, 300),
    ] {
        *idp.jwks.lock() = (200, jwks.clone(), cache.map(String::from));
        assert_eq!(
            remote.refresh().await,
            Duration::from_secs(expected),
            "{cache:?}"
        );
    }
    assert!(
        Arc::ptr_eq(
            &remote,
            &registry
                .remote(JwksLocation::Url(url(format!("{}/jwks", idp.url))), &fetch)
                .unwrap()
        ),
        "one shared set per location"
    );
}

fn url(text: String) -> portico_core::HttpUrl {
    portico_core::HttpUrl::try_new(&text).unwrap()
}

#[tokio::test]
async fn a_key_that_leaves_the_jwks_is_no_longer_live() {
    let idp = Idp::start().await;
    let k1 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k1");
    let k2 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k2");
    let k3 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k3");
    idp.publish(&[&k1, &k2]);
    let registry = KeySourceRegistry::on_demand();
    let v = verifier(
        KeySourceSpec::JwksUrl(url(format!("{}/jwks", idp.url))),
        None,
        &registry,
        settings(0),
    );
    let by_k1 = v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    let by_k2 = v.verify_access_token(&token(&k2, "x"), 1).await.unwrap();
    let (l1, l2) = (by_k1.key.clone().unwrap(), by_k2.key.clone().unwrap());
    let remote = v.remote_key_sets().next().unwrap().clone();
    let first = remote.generation();
    assert!(l1.is_live() && l2.is_live());

    remote.refresh().await;
    assert_eq!(
        remote.generation(),
        first,
        "a refresh that brings the same keys is not a new generation"
    );

    idp.publish(&[&k1, &k2, &k3]);
    remote.refresh().await;
    assert!(remote.generation() > first, "a key was added");
    assert!(
        l1.is_live() && l2.is_live(),
        "adding a key leaves the others live"
    );

    idp.publish(&[&k2, &k3]);
    remote.refresh().await;
    assert!(!l1.is_live(), "k1 left the JWKS");
    assert!(l2.is_live(), "k2 is still published");
    assert_eq!(
        v.verify_access_token(&token(&k1, "x"), 1)
            .await
            .unwrap_err(),
        TokenError::UnknownKey
    );

    // The same kid with other key material is not the key that verified the token.
    let impostor = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k2");
    idp.publish(&[&impostor, &k3]);
    remote.refresh().await;
    assert!(!l2.is_live(), "k2 was replaced by other material");

    // A failed refresh keeps the last good keys, and so what they verified.
    let by_k3 = v.verify_access_token(&token(&k3, "x"), 1).await.unwrap();
    let l3 = by_k3.key.unwrap();
    *idp.jwks.lock() = (500, "oops".into(), None);
    remote.refresh().await;
    assert!(l3.is_live());
}

#[tokio::test]
async fn configured_keys_need_no_liveness_check() {
    let k1 = SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k1");
    let v = verifier(
        KeySourceSpec::PublicKeyPem(k1.public_key_pem().unwrap()),
        None,
        &KeySourceRegistry::on_demand(),
        settings(0),
    );
    let verified = v.verify_access_token(&token(&k1, "x"), 1).await.unwrap();
    assert!(verified.key.is_none());
}
