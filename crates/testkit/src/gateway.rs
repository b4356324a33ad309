//! A gateway on 127.0.0.1:0, an echo upstream, signing keys, config builders and HTTP
//! helpers.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico_auth::sign::SigningKey;
use portico_core::api::{ApiAuth, PolicySource, UpstreamHeaders, UpstreamTarget, UpstreamTimeouts};
use portico_core::config::GatewayConfig;
use portico_core::jwt::{Algorithm, IssuerTrust, JwtSpec, KeySourceSpec};
use portico_core::policy::{ApiAccess, EndpointRules, Policy, Quota, RateLimit};
use portico_core::{ApiSpec, IdentitySpec, ListenPath};
use portico_gateway::Gateway;
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
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
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
                tokio::spawn(async move {
                    let service = service_fn(move |req| echo(req, counter.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
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
}

pub async fn start_gateway(config: &GatewayConfig) -> RunningGateway {
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
    tokio::spawn(gateway.clone().serve(listener, async move {
        shared.await;
        let _ = admin_stop_tx.send(());
    }));
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
    ApiSpec {
        id: id.into(),
        name: id.into(),
        org_id: "org".into(),
        listen_path: ListenPath::try_new(listen_path).unwrap(),
        strip_listen_path: true,
        upstream: UpstreamTarget::try_new(upstream).unwrap(),
        timeouts: UpstreamTimeouts::default(),
        auth: ApiAuth::Jwt(JwtSpec {
            issuers: trust,
            max_token_bytes: 8192,
        }),
        identity: IdentitySpec::default(),
        policies: PolicySource::default(),
        upstream_headers: UpstreamHeaders::default(),
        endpoints: EndpointRules::default(),
    }
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
