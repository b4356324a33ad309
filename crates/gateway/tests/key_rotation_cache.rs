//! A token whose key leaves the IdP's JWKS stops working at once, although what it means is
//! in the admission cache: the cached entry is dropped when the refreshed key set no longer
//! has the key, and the token then fails verification with `unknown_kid`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use portico_auth::sign::SigningKey;
use portico_core::HttpUrl;
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{Algorithm, IssuerTrust, KeySourceSpec};
use portico_testkit::*;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;

/// A JWKS at `{url}/jwks` whose keys the test changes; counts the fetches.
#[derive(Clone)]
struct Jwks {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Jwks {
    async fn start(keys: &[&SigningKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks = Jwks {
            url: format!("http://{}/jwks", listener.local_addr().unwrap()),
            body: Arc::new(Mutex::new(String::new())),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        jwks.publish(keys);
        let state = jwks.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            state.fetches.fetch_add(1, Ordering::SeqCst);
                            let body = state.body.lock().clone();
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        jwks
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.body.lock() =
            json!({"keys": keys.iter().map(|k| k.public_jwk().unwrap()).collect::<Vec<_>>()})
                .to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn es256(kid: &str) -> SigningKey {
    SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid(kid)
}

#[tokio::test]
async fn a_cached_token_stops_working_when_its_key_leaves_the_jwks() {
    let (k1, k2, stranger) = (es256("k1"), es256("k2"), es256("k3"));
    let jwks = Jwks::start(&[&k1, &k2]).await;
    let up = Upstream::start().await;
    let mut trust = IssuerTrust::new(
        Some(ISSUER.into()),
        KeySourceSpec::JwksUrl(HttpUrl::try_new(&jwks.url).unwrap()),
    );
    trust.audiences = vec![AUDIENCE.into()];
    let mut cfg = config(
        vec![api("orders", "/orders", &up.url(), vec![trust])],
        vec![],
    );
    // Any unknown kid refetches at once (the refresh this test needs); the periodic refresh
    // stays at its default (minutes), so it does not interfere.
    cfg.settings.jwks = KeyFetchSettings {
        unknown_kid_cooldown_secs: 0,
        ..Default::default()
    };
    let gw = start_gateway(&cfg).await;
    let by_k1 = sign(&k1, &claims("alice"));
    let by_k2 = sign(&k2, &claims("bob"));
    for _ in 0..2 {
        assert_eq!(get(&gw.url("/orders/x"), Some(&by_k1)).await.status(), 200);
        assert_eq!(get(&gw.url("/orders/x"), Some(&by_k2)).await.status(), 200);
    }

    // The IdP drops k1; a token with an unknown kid makes the gateway refetch.
    jwks.publish(&[&k2]);
    let before = jwks.fetches();
    let unknown = get(&gw.url("/orders/x"), Some(&sign(&stranger, &claims("eve")))).await;
    assert_eq!(unknown.status(), 401);
    assert!(
        jwks.fetches() > before,
        "the unknown kid refetched the JWKS"
    );

    let r = get(&gw.url("/orders/x"), Some(&by_k1)).await;
    assert_eq!(
        r.status(),
        401,
        "the cached admission of a token whose key is gone is not used"
    );
    assert!(
        www_authenticate(&r).starts_with("Bearer error=\"invalid_token\""),
        "{}",
        www_authenticate(&r)
    );
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("portico_auth_failures_total{reason=\"unknown_kid\"} 2"),
        "the stranger's token, then k1's, fail verification as unknown kids: {metrics}"
    );
    assert_eq!(
        get(&gw.url("/orders/x"), Some(&by_k2)).await.status(),
        200,
        "tokens of keys still published keep working"
    );
}
