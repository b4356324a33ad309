//! Redirects while fetching discovery documents and JWKS, against real servers on loopback —
//! plain http and https with a CA made here: http→http and https→https are followed, a
//! redirect from https to http is refused before anything is asked of the http server.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use portico_auth::sign::SigningKey;
use portico_auth::{JwtVerifier, KeySourceRegistry, TokenError};
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{Algorithm, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate for 127.0.0.1 that it issued.
struct TestCa {
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl TestCa {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "idp");
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();
        Self {
            ca_der: ca_cert.der().clone(),
            server_chain: vec![server_cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    /// A registry whose fetches trust this CA (besides the platform's roots).
    fn registry(&self) -> KeySourceRegistry {
        KeySourceRegistry::on_demand()
            .with_root_certificates([self.ca_der.to_vec()])
            .unwrap()
    }
}

#[derive(Clone)]
enum Reply {
    Json(String),
    Redirect(String),
}

/// A web server on 127.0.0.1 answering fixed routes; counts every request it gets.
#[derive(Clone)]
struct Site {
    url: String,
    hits: Arc<AtomicUsize>,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
}

impl Site {
    async fn plain() -> Self {
        Self::start(None).await
    }

    async fn https(ca: &TestCa) -> Self {
        Self::start(Some(ca.acceptor())).await
    }

    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let site = Site {
            url: format!("{scheme}://{}", listener.local_addr().unwrap()),
            hits: Arc::new(AtomicUsize::new(0)),
            routes: Arc::new(Mutex::new(HashMap::new())),
        };
        let state = site.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, tls) = (state.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(req.uri().path())) }
                    });
                    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        site
    }

    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let reply = self.routes.lock().get(path).cloned();
        let mut response = Response::new(Full::new(Bytes::new()));
        match reply {
            Some(Reply::Json(body)) => *response.body_mut() = Full::new(Bytes::from(body)),
            Some(Reply::Redirect(location)) => {
                *response.status_mut() = hyper::StatusCode::FOUND;
                response
                    .headers_mut()
                    .insert("location", location.parse().unwrap());
            }
            None => *response.status_mut() = hyper::StatusCode::NOT_FOUND,
        }
        response
    }

    fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().insert(path.to_string(), reply);
    }

    fn serve_jwks(&self, key: &SigningKey) {
        self.route(
            "/jwks",
            Reply::Json(json!({"keys": [key.public_jwk().unwrap()]}).to_string()),
        );
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn key() -> SigningKey {
    SigningKey::generate(Algorithm::ES256)
        .unwrap()
        .with_kid("k1")
}

fn verifier(trust: IssuerTrust, registry: &KeySourceRegistry) -> JwtVerifier {
    let spec = JwtSpec {
        issuers: vec![trust],
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    let fetch = KeyFetchSettings {
        unknown_kid_cooldown_secs: 0,
        fetch_timeout_ms: 5_000,
        ..Default::default()
    };
    JwtVerifier::build(&spec, registry, &fetch).unwrap()
}

fn jwks_url(url: String) -> IssuerTrust {
    IssuerTrust::new(
        None,
        KeySourceSpec::JwksUrl(portico_core::HttpUrl::try_new(&url).unwrap()),
    )
}

fn token(key: &SigningKey, iss: &str) -> String {
    let claims: Map<String, Value> = json!({"sub": "a", "iss": iss, "exp": 4_000_000_000u64})
        .as_object()
        .unwrap()
        .clone();
    key.sign_jwt(&claims, &Map::new()).unwrap()
}

#[tokio::test]
async fn http_to_http_redirect_is_followed() {
    let site = Site::plain().await;
    let k = key();
    site.serve_jwks(&k);
    site.route("/old", Reply::Redirect(format!("{}/jwks", site.url)));
    let v = verifier(
        jwks_url(format!("{}/old", site.url)),
        &KeySourceRegistry::on_demand(),
    );
    v.verify_access_token(&token(&k, "x"), 1).await.unwrap();
    assert_eq!(site.hits(), 2);
}

#[tokio::test]
async fn https_to_https_redirect_is_followed() {
    let ca = TestCa::new();
    let site = Site::https(&ca).await;
    let k = key();
    site.serve_jwks(&k);
    site.route("/old", Reply::Redirect(format!("{}/jwks", site.url)));
    let v = verifier(jwks_url(format!("{}/old", site.url)), &ca.registry());
    v.verify_access_token(&token(&k, "x"), 1).await.unwrap();
    assert_eq!(site.hits(), 2);
}

#[tokio::test]
async fn https_jwks_redirected_to_http_is_refused() {
    let ca = TestCa::new();
    let secure = Site::https(&ca).await;
    let plain = Site::plain().await;
    let k = key();
    plain.serve_jwks(&k);
    secure.route("/jwks", Reply::Redirect(format!("{}/jwks", plain.url)));
    let v = verifier(jwks_url(format!("{}/jwks", secure.url)), &ca.registry());
    assert_eq!(
        v.verify_access_token(&token(&k, "x"), 1).await.unwrap_err(),
        TokenError::KeysUnavailable,
        "keys behind a downgrade are not used"
    );
    assert!(secure.hits() >= 1);
    assert_eq!(plain.hits(), 0, "the http URL is never requested");
}

#[tokio::test]
async fn https_discovery_redirected_to_http_is_refused() {
    let ca = TestCa::new();
    let secure = Site::https(&ca).await;
    let plain = Site::plain().await;
    let k = key();
    plain.serve_jwks(&k);
    let discovery = "/.well-known/openid-configuration";
    plain.route(
        discovery,
        Reply::Json(
            json!({"issuer": secure.url, "jwks_uri": format!("{}/jwks", plain.url)}).to_string(),
        ),
    );
    secure.route(
        discovery,
        Reply::Redirect(format!("{}{discovery}", plain.url)),
    );
    let v = verifier(
        IssuerTrust::new(Some(secure.url.clone()), KeySourceSpec::Discovery),
        &ca.registry(),
    );
    assert_eq!(
        v.verify_access_token(&token(&k, &secure.url), 1)
            .await
            .unwrap_err(),
        TokenError::KeysUnavailable
    );
    assert!(secure.hits() >= 1);
    assert_eq!(
        plain.hits(),
        0,
        "the http discovery document is never requested"
    );
}
