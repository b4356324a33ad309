//! The gateway: listeners, connections, and the request path
//! `route → token → verify → identity session → policies → access → limits → proxy`.

use crate::admission::Admission;
use crate::body::{FullBody, GatewayBody};
use crate::error::Rejection;
use crate::metrics::{FetchMetrics, GatewayMetrics, ReasonLabels, RejectionLabels};
use crate::pipeline::{ApiRuntime, Pipeline, has_dot_segments};
use crate::proxy::{self, ClientIp, ConnectionPools};
use crate::stages::{policies, rate_headers, token};
use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use portico_auth::{KeySourceRegistry, VerifiedToken};
use portico_core::SessionId;
use portico_core::config::{ConfigError, GatewayConfig};
use portico_core::merge::{AccessDecision, decide};
use portico_limits::{Decision, Limiter, Limits, LocalLimiter, Verdict, counter_key};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One gateway: the current pipeline plus what outlives config versions (limiter, key sets,
/// connection pools, metrics).
pub struct Gateway {
    pipeline: ArcSwap<Pipeline>,
    limiter: Arc<LocalLimiter>,
    key_sources: KeySourceRegistry,
    connections: Arc<ConnectionPools>,
    metrics: Arc<GatewayMetrics>,
    request_ids: RequestIds,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("apis", &self.pipeline.load().apis().len())
            .finish()
    }
}

impl Gateway {
    /// Builds the gateway for `config`; remote key sets start loading in the background.
    pub fn new(config: &GatewayConfig) -> Result<Arc<Self>, ConfigError> {
        let metrics = GatewayMetrics::new();
        let key_sources = KeySourceRegistry::new(Arc::new(FetchMetrics(metrics.clone())), true);
        let connections = ConnectionPools::new();
        let pipeline = Pipeline::build(config, &key_sources, &connections, &metrics)?;
        let limiter = Arc::new(LocalLimiter::new(config.settings.sessions));
        limiter.spawn_sweeper(Duration::from_secs(30));
        Ok(Arc::new(Self {
            pipeline: ArcSwap::from_pointee(pipeline),
            limiter,
            key_sources,
            connections,
            metrics,
            request_ids: RequestIds::new(),
        }))
    }

    /// Builds a pipeline for `config` and swaps it in atomically. Requests in flight finish on
    /// the version they started with; on error nothing changes.
    pub fn reload(&self, config: &GatewayConfig) -> Result<(), ConfigError> {
        let pipeline =
            Pipeline::build(config, &self.key_sources, &self.connections, &self.metrics)?;
        self.pipeline.store(Arc::new(pipeline));
        Ok(())
    }

    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// Serves the data plane on `listener` (HTTP/1.1 and h2c) until `shutdown` completes.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let this = self.clone();
        serve_connections(listener, shutdown, move |remote| {
            let client_ip = ClientIp::new(remote);
            let gateway = this.clone();
            service_fn(move |req| {
                let gateway = gateway.clone();
                let client_ip = client_ip.clone();
                async move { Ok::<_, Infallible>(gateway.handle(req, &client_ip).await) }
            })
        })
        .await;
    }

    /// Serves `/metrics`, `/health` and `/ready` on `listener` until `shutdown` completes.
    pub async fn serve_admin(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        let this = self.clone();
        serve_connections(listener, shutdown, move |_| {
            let gateway = this.clone();
            service_fn(move |req: Request<Incoming>| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.admin(&req)) }
            })
        })
        .await;
    }

    fn admin(&self, req: &Request<Incoming>) -> Response<GatewayBody> {
        let (status, content_type, body) = match req.uri().path() {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            ),
            "/health" | "/ready" => (
                StatusCode::OK,
                "application/json",
                "{\"status\":\"ok\"}".to_string(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "application/json",
                "{\"status\":\"not found\"}".to_string(),
            ),
        };
        let mut response = Response::new(GatewayBody::full(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        response
    }

    /// Handles one request end to end.
    pub async fn handle(
        &self,
        mut req: Request<Incoming>,
        client_ip: &ClientIp,
    ) -> Response<GatewayBody> {
        let started = Instant::now();
        let pipeline = self.pipeline.load_full();
        let request_id = self.request_ids.for_request(req.headers());
        // A cheap clone (shared bytes) so the path can be borrowed while `req` changes.
        let uri = req.uri().clone();
        let path = uri.path();
        let routed = if has_dot_segments(path) {
            None
        } else {
            pipeline.route(path)
        };
        let Some((api, rest)) = routed else {
            let mut response = Rejection::NoRoute.into_response();
            response.headers_mut().insert(X_REQUEST_ID, request_id);
            return response;
        };
        req.headers_mut().insert(X_REQUEST_ID, request_id.clone());

        let (mut response, decision) = match self.admit(&pipeline, api, &mut req, rest).await {
            Ok(decision) => (self.forward(api, req, rest, client_ip).await, decision),
            Err((rejection, decision)) => (rejection.into_response(), decision),
        };
        if let Some(d) = &decision {
            rate_headers::insert(response.headers_mut(), d);
        }
        response
            .headers_mut()
            .insert(X_REQUEST_ID, request_id.clone());
        let status = response.status().as_u16();
        api.metrics
            .record(&self.metrics, status, started.elapsed().as_secs_f64());
        if status >= 500 {
            tracing::warn!(request_id = ?request_id, api = %api.spec.id, status, "upstream failed");
        } else {
            tracing::debug!(request_id = ?request_id, api = %api.spec.id, status, "request");
        }
        response
    }

    /// Authenticates and authorizes; on success the request carries the identity headers and
    /// the limiter's decision is returned for the response headers.
    async fn admit(
        &self,
        pipeline: &Pipeline,
        api: &ApiRuntime,
        req: &mut Request<Incoming>,
        rest: &str,
    ) -> Result<Option<Decision>, (Rejection, Option<Decision>)> {
        let Some(verifier) = &api.verifier else {
            return Ok(None);
        };
        let token = token::bearer_token(req.headers()).ok_or((Rejection::MissingToken, None))?;
        let now = unix_now();
        let key = pipeline.admissions.key(api.index, token);
        let cached = key.as_ref().and_then(|k| pipeline.admissions.get(k, now));
        let admission = match cached {
            Some(admission) => admission,
            None => {
                let verified = verifier
                    .verify_access_token(token, now)
                    .await
                    .map_err(|e| {
                        self.metrics
                            .auth_failures
                            .get_or_create(&ReasonLabels { reason: e.code() })
                            .inc();
                        (Rejection::InvalidToken(e), None)
                    })?;
                let admission = Arc::new(admit_verified(pipeline, api, &verified, now)?);
                if let Some(key) = key {
                    pipeline.admissions.insert(key, admission.clone(), now);
                }
                admission
            }
        };

        let mut decision = None;
        if let Some(limits) = granted_limits(api, &admission, req.method().as_str(), rest)? {
            let d = self.limiter.check(admission.session, &limits).await;
            if let Verdict::RateLimited { retry_after_ms }
            | Verdict::QuotaExceeded { retry_after_ms } = d.verdict
            {
                let quota = matches!(d.verdict, Verdict::QuotaExceeded { .. });
                let limit = if quota { "quota" } else { "rate" };
                self.metrics
                    .limit_rejections
                    .get_or_create(&RejectionLabels {
                        api: api.metrics.labels.api.clone(),
                        limit,
                    })
                    .inc();
                let retry_after_secs = retry_after_ms.div_ceil(1000).max(1);
                return Err((
                    Rejection::TooManyRequests {
                        retry_after_secs,
                        quota,
                    },
                    Some(d),
                ));
            }
            decision = Some(d);
        }

        let headers = req.headers_mut();
        api.identity_headers.remove_from(headers);
        if !api.spec.upstream_headers.forward_authorization {
            headers.remove(http::header::AUTHORIZATION);
        }
        api.identity_headers.insert(headers, &admission);
        Ok(decision)
    }

    async fn forward(
        &self,
        api: &ApiRuntime,
        req: Request<Incoming>,
        rest: &str,
        client_ip: &ClientIp,
    ) -> Response<GatewayBody> {
        let inbound_version = req.version();
        let original_uri = req.uri().clone();
        let path = if api.spec.strip_listen_path {
            rest
        } else {
            original_uri.path()
        };
        match proxy::forward(&api.upstream, req, path, client_ip, api.spec.timeouts).await {
            Ok(mut response) => {
                // Answer in the client's protocol, whatever the upstream spoke.
                *response.version_mut() = inbound_version;
                response
            }
            Err(rejection) => rejection.into_response(),
        }
    }
}

/// The access stage: whether the admitted token's policies grant this method and path of
/// `api`, and the limits that then apply (`None`: authentication only, or no limits).
fn granted_limits(
    api: &ApiRuntime,
    admission: &Admission,
    method: &str,
    rest: &str,
) -> Result<Option<Limits>, (Rejection, Option<Decision>)> {
    if api.spec.policies.is_authentication_only() {
        return Ok(None);
    }
    let denied = |why| Err((Rejection::InsufficientScope(why), None));
    if admission.policies.is_empty() {
        return denied("the token's scopes and policies grant no access");
    }
    let grant = match decide(&admission.policies, &api.spec.id, method, rest) {
        AccessDecision::Allowed(grant) => grant,
        AccessDecision::ApiNotGranted => return denied("the token grants no access to this API"),
        AccessDecision::MethodOrPathDenied => {
            return denied("the token grants no access to this method or path");
        }
    };
    let limits = Limits {
        rate: grant.rate.map(|(id, r)| (counter_key(&id), r)),
        quota: grant.quota.map(|(id, q)| (counter_key(&id), q)),
    };
    Ok((!limits.is_empty()).then_some(limits))
}

/// What a freshly verified token means for `api`: identity, session, policies, header values.
fn admit_verified(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    verified: &VerifiedToken,
    now: u64,
) -> Result<Admission, (Rejection, Option<Decision>)> {
    let identity = api
        .spec
        .identity
        .resolve(&verified.claims)
        .ok_or((Rejection::NoIdentity, None))?;
    let identity_value =
        HeaderValue::from_bytes(identity.as_bytes()).map_err(|_| (Rejection::NoIdentity, None))?;
    let session = SessionId::derive(&api.spec.org_id, &identity);
    let policies = if api.spec.policies.is_authentication_only() {
        Vec::new()
    } else {
        policies::applied_policies(
            &api.spec.policies,
            &api.scope_claim,
            &verified.claims,
            &pipeline.policies,
        )
    };
    Ok(Admission {
        session,
        identity: identity_value,
        session_hex: HeaderValue::from_str(&session.to_hex()).expect("hex is a valid header value"),
        policies,
        claim_headers: api.identity_headers.claim_values(&verified.claims),
        valid_until: pipeline.admissions.valid_until(verified.valid_until, now),
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Request ids: the client's `X-Request-Id` when it is short and plain, else a fresh one.
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Self {
            prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    fn for_request(&self, headers: &http::HeaderMap) -> HeaderValue {
        if let Some(v) = headers.get(X_REQUEST_ID)
            && v.len() <= 128
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
            && !v.is_empty()
        {
            return v.clone();
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // 16 hex digits of the process prefix, 8 of the counter.
        let mut id = [0u8; 24];
        let digits = (u128::from(self.prefix) << 32) | u128::from(n as u32);
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = b"0123456789abcdef"[((digits >> (4 * (23 - i))) & 0xf) as usize];
        }
        HeaderValue::from_bytes(&id).expect("hex is a valid header value")
    }
}

/// Accepts connections until `shutdown`, serving each with HTTP/1.1 or h2c.
async fn serve_connections<S, F>(
    listener: TcpListener,
    shutdown: F,
    make_service: impl Fn(SocketAddr) -> S,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<GatewayBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = make_service(remote);
        let builder = builder.clone();
        tokio::spawn(async move {
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
