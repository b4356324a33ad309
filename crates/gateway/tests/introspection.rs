//! Opaque tokens through RFC 7662 introspection: against the real test IdP (npm
//! `oidc-provider`, whose opaque tokens are introspectable), and against a fake endpoint for
//! the faults a real one cannot be made to show on demand.

use portico_core::api::PolicySource;
use portico_core::introspection::{
    ClientAuth, IntrospectionCache, IntrospectionSpec, JwtValidation,
};
use portico_core::jwt::{IssuerTrust, KeySourceSpec, Secret};
use portico_core::{HttpUrl, IdentitySpec};
use portico_testkit::idp::{CLIENT_ID, CLIENT_SECRET, Idp, PKJWT_CLIENT_ID};
use portico_testkit::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn spec(client_auth: ClientAuth, cache: IntrospectionCache) -> IntrospectionSpec {
    IntrospectionSpec {
        endpoint: None,
        client_id: CLIENT_ID.into(),
        client_auth,
        cache,
        timeout_ms: 2_000,
        grace_secs: 0,
        jwt_validation: JwtValidation::Local,
    }
}

fn basic() -> ClientAuth {
    ClientAuth::ClientSecretBasic(Secret::new(CLIENT_SECRET.as_bytes().to_vec()))
}

/// Trust in the IdP's tokens by introspection only (endpoint from discovery).
fn introspected(idp: &Idp, introspection: IntrospectionSpec) -> IssuerTrust {
    let mut trust = IssuerTrust::new(Some(idp.issuer.clone()), KeySourceSpec::None);
    trust.introspection = Some(introspection);
    trust
}

/// An API `orders` at `/orders` trusting `trust`, `orders:read` → policy `reader`.
async fn orders(trust: IssuerTrust) -> (Upstream, RunningGateway) {
    let up = Upstream::start().await;
    let mut a = api("orders", "/orders", &up.url(), vec![trust]);
    a.identity = IdentitySpec::sub_then_client_id();
    a.policies = PolicySource {
        scope_map: HashMap::from([("orders:read".to_string(), vec!["reader".into()])]),
        ..Default::default()
    };
    let gw = start_gateway(&config(
        vec![a],
        vec![policy("reader", &["orders"], None, None)],
    ))
    .await;
    (up, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_are_introspected_once_per_cache_lifetime_and_their_scopes_select_policies() {
    let idp = Idp::start();
    let (_up, gw) = orders(introspected(
        &idp,
        spec(basic(), IntrospectionCache::default()),
    ))
    .await;
    let token = idp.opaque_token("orders:read").await;
    assert!(!token.contains('.'), "an opaque token: {token}");
    let before = idp.introspection_calls().await;

    // 1,000 requests with one token, the first hundred at once: one introspection call.
    let first: Vec<_> = (0..100)
        .map(|_| {
            let url = gw.url("/orders/list");
            let token = token.clone();
            tokio::spawn(async move { get(&url, Some(&token)).await.status().as_u16() })
        })
        .collect();
    for request in first {
        assert_eq!(request.await.unwrap(), 200);
    }
    for _ in 0..900 {
        assert_eq!(
            get(&gw.url("/orders/list"), Some(&token)).await.status(),
            200
        );
    }
    let calls = idp.introspection_calls().await - before;
    eprintln!("1,000 requests, one token: {calls} introspection call(s)");
    assert_eq!(calls, 1);

    // The answer's claims feed the identity and the scope map as a JWT's would.
    let seen: Value = get(&gw.url("/orders/list"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["headers"]["x-portico-identity"], CLIENT_ID,
        "no `sub` in a client_credentials answer: the identity is its client_id"
    );
    let billing = idp.opaque_token("billing:read").await;
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&billing)).await.status(),
        403
    );
    let unknown = get(&gw.url("/orders/list"), Some("not-a-token-the-idp-issued")).await;
    assert_eq!(unknown.status(), 401);
    assert!(
        unknown.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_at_the_idp_is_refused_once_the_cache_lapses_and_at_once_without_cache() {
    let idp = Idp::start();
    let short = IntrospectionCache {
        ttl_secs: 2,
        ..IntrospectionCache::default()
    };
    let off = IntrospectionCache {
        enabled: false,
        ..IntrospectionCache::default()
    };
    let (_up1, cached) = orders(introspected(&idp, spec(basic(), short))).await;
    let (_up2, uncached) = orders(introspected(&idp, spec(basic(), off))).await;
    let token = idp.opaque_token("orders:read").await;
    for gw in [&cached, &uncached] {
        assert_eq!(
            get(&gw.url("/orders/list"), Some(&token)).await.status(),
            200
        );
    }
    idp.revoke(&token).await;
    assert_eq!(
        get(&uncached.url("/orders/list"), Some(&token))
            .await
            .status(),
        401,
        "without a cache the very next request asks the IdP"
    );
    assert_eq!(
        get(&cached.url("/orders/list"), Some(&token))
            .await
            .status(),
        200,
        "within the cache lifetime the last answer stands"
    );
    let revoked_at = Instant::now();
    loop {
        let status = get(&cached.url("/orders/list"), Some(&token))
            .await
            .status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(4),
            "still served after the 2 s cache lifetime"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "revoked token refused {:?} after revocation (cache TTL 2 s)",
        revoked_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_503_and_a_metric_never_a_pass() {
    let idp = Idp::start();
    let wrong = ClientAuth::ClientSecretBasic(Secret::new(b"not-the-secret".to_vec()));
    let (_up, gw) = orders(introspected(
        &idp,
        spec(wrong, IntrospectionCache::default()),
    ))
    .await;
    let token = idp.opaque_token("orders:read").await;
    let r = get(&gw.url("/orders/list"), Some(&token)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("client"),
        "the reason stays in the log: {body}"
    );
    assert_eq!(
        gw.metric("portico_introspection_calls_total{outcome=\"client_auth\"}")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_client_authentication_works() {
    let idp = Idp::start();
    let pem = std::fs::read_to_string(idp.pkjwt_key_file()).unwrap();
    let mut introspection = spec(
        ClientAuth::PrivateKeyJwt {
            private_key_pem: Secret::new(pem.into_bytes()),
            algorithm: portico_core::jwt::Algorithm::RS256,
            key_id: Some("pkjwt-client".into()),
        },
        IntrospectionCache::default(),
    );
    introspection.client_id = PKJWT_CLIENT_ID.into();
    let (_up, gw) = orders(introspected(&idp, introspection)).await;
    let token = idp.opaque_token("orders:read").await;
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&token)).await.status(),
        200
    );
    assert_eq!(
        gw.metric("portico_introspection_calls_total{outcome=\"active\"}")
            .await,
        1
    );
}

/// One issuer, both ways: its JWTs verified with its keys (discovery), its opaque tokens
/// introspected; and with `LocalThenIntrospect` a JWT must also be vouched for by the IdP.
/// This IdP refuses to introspect its JWT access tokens (HTTP 400 `unsupported_token_type`),
/// so a validly signed JWT is then not let through: 503, fail closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_verified_locally_and_opaque_tokens_introspected_on_one_api() {
    let idp = Idp::start();
    let both = |jwt_validation| {
        let mut trust = IssuerTrust::new(Some(idp.issuer.clone()), KeySourceSpec::Discovery);
        let mut introspection = spec(basic(), IntrospectionCache::default());
        introspection.jwt_validation = jwt_validation;
        trust.introspection = Some(introspection);
        trust
    };
    let (_up, gw) = orders(both(JwtValidation::Local)).await;
    let jwt = idp.client_credentials_token("orders:read").await;
    let opaque = idp.opaque_token("orders:read").await;
    let before = idp.introspection_calls().await;
    assert_eq!(get(&gw.url("/orders/list"), Some(&jwt)).await.status(), 200);
    assert_eq!(
        idp.introspection_calls().await,
        before,
        "a JWT is verified locally"
    );
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&opaque)).await.status(),
        200
    );
    assert_eq!(idp.introspection_calls().await, before + 1);

    let (_up2, strict) = orders(both(JwtValidation::LocalThenIntrospect)).await;
    let r = get(&strict.url("/orders/list"), Some(&jwt)).await;
    assert_eq!(r.status(), 503, "the IdP cannot vouch for its JWT");
    assert_eq!(
        strict
            .metric("portico_introspection_calls_total{outcome=\"status\"}")
            .await,
        1
    );
    assert_eq!(idp.introspection_calls().await, before + 2);
}

/// What the fake endpoint does with each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Active,
    Slow,
    Error500,
    Garbage,
    NoActive,
}

/// An introspection endpoint whose behaviour the test switches; counts its calls.
struct FakeIdp {
    url: String,
    behaviour: Arc<parking_lot::Mutex<Behaviour>>,
    calls: Arc<AtomicUsize>,
}

impl FakeIdp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let behaviour = Arc::new(parking_lot::Mutex::new(Behaviour::Active));
        let calls = Arc::new(AtomicUsize::new(0));
        let (b, c) = (behaviour.clone(), calls.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (b, c) = (b.clone(), c.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The head, then the form body (small; its length is in the head).
                    loop {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            if seen.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    let behaviour = *b.lock();
                    let (status, body) = match behaviour {
                        Behaviour::Active => (
                            "200 OK",
                            r#"{"active":true,"client_id":"svc","scope":"orders:read","exp":4102444800}"#,
                        ),
                        Behaviour::Slow => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            ("200 OK", r#"{"active":true}"#)
                        }
                        Behaviour::Error500 => ("500 Internal Server Error", r#"{"error":"boom"}"#),
                        Behaviour::Garbage => ("200 OK", "<html>not json"),
                        Behaviour::NoActive => ("200 OK", r#"{"client_id":"svc"}"#),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self {
            url,
            behaviour,
            calls,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock() = behaviour;
    }
}

fn fake_trust(url: &str, cache: IntrospectionCache, grace_secs: u64) -> IssuerTrust {
    let mut introspection = spec(basic(), cache);
    introspection.endpoint = Some(HttpUrl::try_new(url).unwrap());
    introspection.timeout_ms = 300;
    introspection.grace_secs = grace_secs;
    let mut trust = IssuerTrust::new(Some("https://fake-idp.test".into()), KeySourceSpec::None);
    trust.introspection = Some(introspection);
    trust
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_failure_is_a_503_with_retry_after_never_a_hang_and_it_recovers() {
    let fake = FakeIdp::start().await;
    let off = IntrospectionCache {
        enabled: false,
        ..IntrospectionCache::default()
    };
    let (_up, gw) = orders(fake_trust(&fake.url, off, 0)).await;
    // A closed port: connection refused.
    let refused_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_up2, refused) = orders(fake_trust(
        &format!("http://127.0.0.1:{refused_port}/introspect"),
        off,
        0,
    ))
    .await;

    assert_eq!(
        get(&gw.url("/orders/list"), Some("tok")).await.status(),
        200
    );
    for (behaviour, kind) in [
        (Behaviour::Slow, "timeout"),
        (Behaviour::Error500, "status"),
        (Behaviour::Garbage, "malformed"),
        (Behaviour::NoActive, "malformed"),
    ] {
        fake.set(behaviour);
        let started = Instant::now();
        let r = get(&gw.url("/orders/list"), Some("tok")).await;
        assert_eq!(r.status(), 503, "{behaviour:?}");
        assert_eq!(r.headers()["retry-after"], "2", "{behaviour:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{behaviour:?} took {:?}",
            started.elapsed()
        );
        assert!(
            gw.metric(&format!(
                "portico_introspection_calls_total{{outcome=\"{kind}\"}}"
            ))
            .await
                >= 1,
            "{behaviour:?} counted as {kind}"
        );
    }
    let r = get(&refused.url("/orders/list"), Some("tok")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        refused
            .metric("portico_introspection_calls_total{outcome=\"connect\"}")
            .await,
        1
    );
    // Back to normal: served again, no restart.
    fake.set(Behaviour::Active);
    assert_eq!(
        get(&gw.url("/orders/list"), Some("tok")).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_the_grace_period_a_cached_answer_keeps_serving_while_the_endpoint_fails() {
    let fake = FakeIdp::start().await;
    let one_second = IntrospectionCache {
        ttl_secs: 1,
        ..IntrospectionCache::default()
    };
    let (_up, with_grace) = orders(fake_trust(&fake.url, one_second, 30)).await;
    let (_up2, without) = orders(fake_trust(&fake.url, one_second, 0)).await;
    for gw in [&with_grace, &without] {
        assert_eq!(
            get(&gw.url("/orders/list"), Some("tok")).await.status(),
            200
        );
    }
    fake.set(Behaviour::Error500);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        get(&with_grace.url("/orders/list"), Some("tok"))
            .await
            .status(),
        200,
        "stale but within grace"
    );
    assert_eq!(
        get(&without.url("/orders/list"), Some("tok"))
            .await
            .status(),
        503
    );
    assert_eq!(
        with_grace
            .metric("portico_introspection_cached_total{outcome=\"stale\"}")
            .await,
        1
    );
    // A token never seen before has nothing to fall back on.
    assert_eq!(
        get(&with_grace.url("/orders/list"), Some("other"))
            .await
            .status(),
        503
    );
    let calls = fake.calls.load(Ordering::SeqCst);
    assert!(calls >= 4, "{calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_refuses_a_cached_introspection_answer_on_the_next_request() {
    use portico_core::revocation::{Revocation, RevokedBy};
    let idp = Idp::start();
    let (_up, gw) = orders(introspected(
        &idp,
        spec(basic(), IntrospectionCache::default()),
    ))
    .await;
    let token = idp.opaque_token("orders:read").await;
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&token)).await.status(),
        200
    );
    let calls = idp.introspection_calls().await;
    let revocation = |id, by, value: &str, issuer: Option<&str>| Revocation {
        id,
        by,
        value: value.into(),
        issuer: issuer.map(str::to_string),
        until_secs: u64::MAX,
        issued_before_secs: None,
        reason: None,
        created_at_secs: 0,
    };
    // Another issuer's client of the same id is not this one.
    gw.gateway.set_revocations(vec![revocation(
        1,
        RevokedBy::ClientId,
        CLIENT_ID,
        Some("https://elsewhere.example"),
    )]);
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&token)).await.status(),
        200
    );
    gw.gateway.set_revocations(vec![revocation(
        2,
        RevokedBy::ClientId,
        CLIENT_ID,
        Some(&idp.issuer),
    )]);
    let refused = get(&gw.url("/orders/list"), Some(&token)).await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        idp.introspection_calls().await,
        calls,
        "refused from the cache, without asking the IdP"
    );
    assert_eq!(
        gw.metric("portico_auth_failures_total{reason=\"revoked\"}")
            .await,
        1
    );
    assert_eq!(gw.metric("portico_revocations ").await, 1);
    gw.gateway.set_revocations(Vec::new());
    assert_eq!(
        get(&gw.url("/orders/list"), Some(&token)).await.status(),
        200
    );
}
