//! A gateway on 127.0.0.1:0, an echo upstream, signing keys, config builders and HTTP
//! helpers.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico_auth::sign::SigningKey;
use portico_core::api::{ApiAuth, UpstreamTarget};
use portico_core::config::GatewayConfig;
use portico_core::jwt::{Algorithm, IssuerTrust, JwtSpec, KeySourceSpec};
use portico_core::policy::{ApiAccess, Policy, Quota, RateLimit};
use portico_core::{ApiSpec, ListenPath};
use portico_gateway::Gateway;
use rustls::pki_types::pem::PemObject;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "orders-api";

/// An upstream that answers with what it received as JSON. `/slow` waits 3 s first;
/// `/stream/N` streams N chunks of 64 KiB.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
}

type UpBody = http_body_util::Either<
    Full<Bytes>,
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

async fn echo(
    req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
    client_cert: bool,
) -> Result<Response<UpBody>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if let Some(n) = path.strip_prefix("/stream/") {
        let n: usize = n.parse().unwrap_or(1);
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = (0..n)
            .map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 64 * 1024]))))
            .collect();
        return Ok(Response::new(http_body_util::Either::Right(
            StreamBody::new(futures_util::stream::iter(chunks)),
        )));
    }
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    // A repeated header is joined with ", " (as HTTP combines them), so a test that expects
    // one value sees a forged second copy.
    let mut headers: Map<String, Value> = Map::new();
    for name in req.headers().keys() {
        let values: Vec<String> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(name.to_string(), Value::String(values.join(", ")));
    }
    if client_cert {
        headers.insert("x-client-cert".into(), "present".into());
    }
    let body_len = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let body = json!({"method": method, "path": path, "query": query, "headers": headers, "body_len": body_len});
    let mut response = Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
        body.to_string(),
    ))));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("connection", "x-upstream-hop".parse().unwrap());
    response
        .headers_mut()
        .insert("x-upstream-hop", "secret".parse().unwrap());
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

impl Upstream {
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// The echo upstream over TLS with `cert` (HTTP/1.1); with `client_ca`, it requires a
    /// client certificate signed by it. It adds `x-client-cert: present` to what it echoes
    /// when the client showed one.
    pub async fn start_tls(
        cert: &crate::pki::CertFiles,
        client_ca: Option<&std::path::Path>,
    ) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs = rustls_pem_certs(&cert.cert_pem);
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&cert.key_file).expect("key");
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls_pem_certs(&std::fs::read_to_string(ca).unwrap()) {
                    roots.add(c).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let counter = counter.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let service = service_fn(move |req| echo(req, counter.clone(), false));
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else {
                                return;
                            };
                            let client_cert = stream.get_ref().1.peer_certificates().is_some();
                            let service =
                                service_fn(move |req| echo(req, counter.clone(), client_cert));
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of a TLS upstream, by the name its certificate carries.
    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

fn rustls_pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.expect("certificate"))
        .collect()
}

pub struct RunningGateway {
    pub gateway: Arc<Gateway>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RunningGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The admin listener's Prometheus text.
    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the first metric line that starts with `line_start` (name and labels),
    /// 0 when there is none yet.
    pub async fn metric(&self, line_start: &str) -> u64 {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

pub async fn start_gateway(config: &GatewayConfig) -> RunningGateway {
    start(config, None).await
}

/// [`start_gateway`], with connections that do no work closed after `idle_timeout` (the
/// gateway's is 30 s).
pub async fn start_gateway_with_idle_timeout(
    config: &GatewayConfig,
    idle_timeout: Duration,
) -> RunningGateway {
    start(config, Some(idle_timeout)).await
}

async fn start(config: &GatewayConfig, idle_timeout: Option<Duration>) -> RunningGateway {
    let gateway = Gateway::new(config).expect("config builds");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared = async move {
        let _ = stopped.await;
    };
    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        shared.await;
        let _ = admin_stop_tx.send(());
    };
    match idle_timeout {
        None => tokio::spawn(gateway.clone().serve(listener, stopped)),
        Some(idle) => tokio::spawn(
            gateway
                .clone()
                .serve_with_idle_timeout(listener, None, idle, stopped),
        ),
    };
    tokio::spawn(gateway.clone().serve_admin(admin_listener, async move {
        let _ = admin_stop_rx.await;
    }));
    RunningGateway {
        gateway,
        addr,
        admin,
        _stop: stop,
    }
}

/// The most common setup: an echo upstream, an RS256 key, and a gateway serving one
/// authentication-only API `orders` at `/orders` that trusts the key.
pub async fn orders_gateway() -> (Upstream, SigningKey, RunningGateway) {
    let up = Upstream::start().await;
    let key = rsa_key();
    let gw = start_gateway(&config(
        vec![api("orders", "/orders", &up.url(), vec![trust_pem(&key)])],
        vec![],
    ))
    .await;
    (up, key, gw)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard claims for `sub`, valid for an hour.
pub fn claims(sub: &str) -> Map<String, Value> {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 3600})
        .as_object()
        .unwrap()
        .clone()
}

pub fn with(mut base: Map<String, Value>, extra: Value) -> Map<String, Value> {
    base.extend(extra.as_object().unwrap().clone());
    base
}

pub fn sign(key: &SigningKey, claims: &Map<String, Value>) -> String {
    key.sign_jwt(claims, &Map::new()).unwrap()
}

pub fn rsa_key() -> SigningKey {
    SigningKey::generate(Algorithm::RS256)
        .unwrap()
        .with_kid("k1")
}

/// Trust in `key`'s public half under `ISSUER`, audience `AUDIENCE`.
pub fn trust_pem(key: &SigningKey) -> IssuerTrust {
    let mut t = IssuerTrust::new(
        Some(ISSUER.into()),
        KeySourceSpec::PublicKeyPem(key.public_key_pem().unwrap()),
    );
    t.audiences = vec![AUDIENCE.into()];
    t
}

pub fn api(id: &str, listen_path: &str, upstream: &str, trust: Vec<IssuerTrust>) -> ApiSpec {
    let mut spec = ApiSpec::new(
        id,
        ListenPath::try_new(listen_path).unwrap(),
        UpstreamTarget::try_new(upstream).unwrap(),
        ApiAuth::Jwt(JwtSpec {
            issuers: trust,
            max_token_bytes: 8192,
        }),
    );
    spec.org_id = "org".into();
    spec
}

pub fn policy(
    id: &str,
    apis: &[&str],
    rate: Option<(u64, u64)>,
    quota: Option<(u64, u64)>,
) -> Policy {
    Policy {
        id: id.into(),
        name: id.into(),
        access: apis
            .iter()
            .map(|a| (Arc::<str>::from(*a), ApiAccess::default()))
            .collect::<HashMap<_, _>>(),
        rate: rate.map(|(n, per)| RateLimit::try_new(n, per).unwrap()),
        quota: quota.map(|(m, r)| Quota::limited(m, r).unwrap()),
    }
}

pub fn config(apis: Vec<ApiSpec>, policies: Vec<Policy>) -> GatewayConfig {
    let mut c = GatewayConfig {
        apis,
        ..Default::default()
    };
    for p in policies {
        c.policies.insert(p);
    }
    c
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn get(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

pub fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
