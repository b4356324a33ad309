//! The request path, phase by phase, over one per-request context. Each phase is one file in
//! [`crate::stages`]; this file only puts them in order:
//!
//! 1. [`route`] — which API serves this path; paths the upstream could read differently are
//!    refused, and so are endpoints the API's own allow and block lists exclude.
//! 2. [`authenticate`] — the bearer token, verified (or found in the admission cache).
//! 3. [`identity`] — who is calling: identity, session id, policies; refused when revoked.
//! 4. [`access`] — do the policies grant this API, method and path; which limits apply.
//! 5. [`limit`] — rate limit, then quota, for the identity session.
//! 6. [`upstream_headers`] — what the gateway tells the upstream: identity, upstream JWT,
//!    request id (client headers by those names never pass).
//! 7. [`forward`] — the request to the upstream and its response, or a WebSocket tunnel.
//! 8. [`respond`] — rate-limit headers, request id, metrics, the one log line.
//!
//! Phases 2–5 are skipped for keyless APIs; 4–5 for authentication-only APIs.

use crate::Gateway;
use crate::admission::Admission;
use crate::body::GatewayBody;
use crate::error::EdgeError;
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::proxy::ClientIp;
use crate::stages::{
    access, authenticate, forward, identity, limit, respond, route, upstream_headers,
};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use portico_limits::Decision;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the phases learn about one request, for the phases after them.
#[derive(Debug)]
pub struct RequestContext<'p> {
    pub started: Instant,
    /// Seconds since the epoch, read once per request.
    pub now_secs: u64,
    pub request_id: HeaderValue,
    /// The routed API; `None` until routing succeeded.
    pub api: Option<&'p ApiRuntime>,
    /// The path below the API's listen path.
    pub rest: &'p str,
    /// Who is calling; `None` on keyless APIs.
    pub admission: Option<Arc<Admission>>,
    /// The limiter's decision, for the rate-limit headers (also on a 429).
    pub decision: Option<Decision>,
}

impl Gateway {
    /// Handles one request end to end.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        client_ip: &ClientIp,
    ) -> Response<GatewayBody> {
        let pipeline = self.pipeline.load_full();
        // A cheap clone (shared bytes) so the path can be borrowed while `req` changes.
        let uri = req.uri().clone();
        let mut ctx = RequestContext {
            started: Instant::now(),
            now_secs: unix_now(),
            request_id: self.request_ids.for_request(req.headers()),
            api: None,
            rest: "",
            admission: None,
            decision: None,
        };
        let result = self
            .run_phases(&pipeline, &uri, &mut ctx, req, client_ip)
            .await;
        respond::respond(&ctx, result, &self.metrics, &self.usage)
    }

    async fn run_phases<'p>(
        &self,
        pipeline: &'p Pipeline,
        uri: &'p Uri,
        ctx: &mut RequestContext<'p>,
        mut req: Request<Incoming>,
        client_ip: &ClientIp,
    ) -> Result<Response<GatewayBody>, EdgeError> {
        if pipeline.serves_jwks_at(uri.path()) {
            return Ok(crate::ops::jwks_response(pipeline));
        }
        let (api, rest) = route::route(pipeline, uri)?;
        ctx.api = Some(api);
        ctx.rest = rest;
        route::check_endpoint(api, req.method(), uri, rest)?;

        if let Some(verifier) = &api.verifier {
            let token = authenticate::authenticate(
                pipeline,
                api,
                verifier,
                req.headers(),
                ctx,
                &self.metrics,
            )
            .await?;
            let admission = identity::admit(pipeline, api, token, ctx.now_secs)?;
            // Known from here on, for the usage counts of refused requests too.
            ctx.admission = Some(admission.clone());
            identity::refuse_revoked(&self.revocations, &admission, ctx.now_secs, &self.metrics)?;
            if let Some(limits) = access::granted_limits(api, &admission, req.method(), rest)? {
                limit::check(
                    &*self.limiter,
                    api,
                    admission.session,
                    &limits,
                    ctx,
                    &self.metrics,
                )
                .await?;
            }
        }

        let websocket = forward::take_websocket_upgrade(api, &mut req)?;
        let trusted = upstream_headers::trusted_headers(pipeline, api, ctx)?;
        forward::forward(pipeline, api, req, rest, client_ip, &trusted, websocket).await
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Request ids: the client's `X-Request-Id` when it is short and plain, else a fresh one.
pub(crate) struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Self {
            prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    pub fn for_request(&self, headers: &http::HeaderMap) -> HeaderValue {
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
