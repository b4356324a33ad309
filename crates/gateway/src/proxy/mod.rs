//! Forwarding to upstreams over HTTP/1.1, driven inline by the request's own task: the head
//! is written in one call, the response head parsed with `httparse`, and the body streamed
//! back by its framing over pooled keep-alive connections. No per-connection task and no
//! channels sit between the client's request and the upstream socket.
//!
//! - [`request`]: the upstream request head (path rewrite, `Host`, `X-Forwarded-*`).
//! - [`response`]: parsing and framing the response head.
//! - [`body`]: the streamed response body.
//! - [`pool`]: idle connections per upstream address.
//! - [`hop_by_hop`]: headers that never cross the gateway.
//! - [`upgrade`]: WebSocket pass-through, the tunnel after a `101`.

mod body;
pub(crate) mod hop_by_hop;
mod pool;
mod request;
mod response;
mod send;
mod upgrade;

pub use body::UpstreamBody;
pub use pool::ConnectionPools;
pub use request::{ClientIp, Forwarding, GatewayHeaders, is_managed_by_gateway};
pub use upgrade::websocket_requested;

use crate::body::{FullBody, GatewayBody};
use crate::error::{BadRequest, EdgeError, EdgeErrorKind};
use crate::tls::UpstreamTls;
use bytes::Buf;
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use pool::{Connection, UpstreamPool};
use portico_core::api::{ConnectionLimits, UpstreamTarget, UpstreamTimeouts, UpstreamTlsSettings};
use request::BodyFraming;
use response::{Asked, Framing, Malformed, ResponseHead};
use send::Sent;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An API's upstream, parsed once per config version.
#[derive(Debug, Clone)]
pub struct Upstream {
    base_path: String,
    host: HeaderValue,
    pool: Arc<UpstreamPool>,
    /// One permit per request in flight (`connections.max_active`).
    active: Arc<Semaphore>,
    queue: Duration,
}

impl Upstream {
    pub fn try_new(
        target: &UpstreamTarget,
        tls: &UpstreamTlsSettings,
        limits: ConnectionLimits,
        pools: &ConnectionPools,
    ) -> Result<Self, String> {
        let authority = Authority::try_from(target.authority())
            .map_err(|_| format!("{:?} is not a valid upstream host", target.authority()))?;
        if !target.base_path.is_empty()
            && PathAndQuery::try_from(target.base_path.as_str())
                .map_or(true, |p| p.query().is_some() || !p.path().starts_with('/'))
        {
            return Err(format!(
                "{:?} is not a valid upstream path",
                target.base_path
            ));
        }
        let address = format!("{}:{}", authority.host(), target.url.port());
        let tls = if target.url.is_https() {
            Some(UpstreamTls::new(tls, target.url.host()).map_err(|e| e.to_string())?)
        } else {
            None
        };
        Ok(Self {
            base_path: target.base_path.clone(),
            host: HeaderValue::from_str(authority.as_str())
                .map_err(|_| format!("invalid host {:?}", target.authority()))?,
            pool: pools.for_upstream(&address, tls),
            active: Arc::new(Semaphore::new(limits.max_active as usize)),
            queue: Duration::from_millis(limits.queue_ms),
        })
    }

    /// A slot for one request in flight: at once, or within `queue_ms`, or `Busy`.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, UpstreamError> {
        if let Ok(permit) = self.active.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.queue, self.active.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(UpstreamError::Busy),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        self.pool.address()
    }
}

/// What went wrong talking to the upstream.
#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("connect: {0}")]
    Connect(io::Error),
    /// Closed (or reset) before any byte of a response: on a reused connection, the upstream
    /// closed it while idle, and the request can be replayed on a new one.
    #[error("connection closed before the response")]
    ClosedEarly,
    #[error("{0}")]
    Io(io::Error),
    #[error("reading the request body: {0}")]
    ClientBody(hyper::Error),
    #[error("the client sent no body bytes for too long")]
    ClientBodyIdle,
    #[error("stopped taking the request body")]
    SendIdle,
    #[error("no response head within {0} ms of the request")]
    HeadTimeout(u64),
    #[error("all connections busy")]
    Busy,
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// Sends the request (path rewritten, forwarding headers and the gateway's `own` headers
/// added) and returns the upstream's response, whose body streams. 502 when the upstream cannot be reached or answers nonsense;
/// 504 when its response head is not in within `read_ms` of the end of the request body, or
/// it stops taking the body for `send_idle_ms`; 408 when the client stops sending its body for
/// `send_idle_ms`; 503 when the API's upstream connections are all busy for `queue_ms`.
///
/// `websocket`, the client's side of a WebSocket upgrade: the upstream is asked to switch, and
/// a `101` from it starts the tunnel ([`upgrade`]); any other answer is relayed as usual.
pub async fn forward(
    upstream: &Upstream,
    request: Request<Incoming>,
    path: &str,
    forwarding: Forwarding<'_>,
    own: &impl GatewayHeaders,
    timeouts: UpstreamTimeouts,
    websocket: Option<OnUpgrade>,
) -> Result<Response<GatewayBody>, EdgeError> {
    let (parts, mut body) = request.into_parts();
    let framing = BodyFraming::of(&parts.headers, http_body::Body::is_end_stream(&body));
    let switch = websocket.is_some();
    let head = request::encode_head(&parts, upstream, path, forwarding, framing, switch, own);
    let asked = Asked::of(&parts.method, switch);
    // Without a body the request can be sent again; only idempotent ones are.
    let replayable = framing == BodyFraming::Empty && parts.method.is_idempotent();
    let connect_timeout = Duration::from_millis(timeouts.connect_ms);

    let permit = upstream.admit().await.map_err(|e| failed(upstream, e))?;
    let mut conn = upstream
        .pool
        .checkout(connect_timeout)
        .await
        .map_err(|e| failed(upstream, UpstreamError::Connect(e)))?;
    let response_head = loop {
        match exchange(&mut conn, &head, &mut body, framing, asked, timeouts).await {
            Ok(head) => break head,
            Err(UpstreamError::ClosedEarly) if conn.reused() && replayable => {
                conn = upstream
                    .pool
                    .connect(connect_timeout)
                    .await
                    .map_err(|e| failed(upstream, UpstreamError::Connect(e)))?;
            }
            Err(e) => return Err(failed(upstream, e)),
        }
    };
    if response_head.status == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = websocket
    {
        let address = upstream.address();
        return Ok(upgrade::switch(
            conn,
            response_head,
            client,
            permit,
            address,
        ));
    }
    conn.hold(permit);
    Ok(into_response(upstream, conn, response_head, timeouts))
}

/// The classified error, with the upstream's address and the cause for the log.
fn failed(upstream: &Upstream, error: UpstreamError) -> EdgeError {
    let kind = match &error {
        UpstreamError::HeadTimeout(_) | UpstreamError::SendIdle => EdgeErrorKind::GatewayTimeout,
        UpstreamError::ClientBodyIdle => EdgeErrorKind::RequestTimeout,
        UpstreamError::ClientBody(_) => EdgeErrorKind::BadRequest(BadRequest::UnreadableBody),
        UpstreamError::Busy => EdgeErrorKind::UpstreamBusy {
            retry_after_secs: 1,
        },
        _ => EdgeErrorKind::BadGateway,
    };
    EdgeError::with_cause(kind, format!("{}: {error}", upstream.address()))
}

/// Writes the request and reads the final response head (1xx heads other than `101` are
/// skipped), or relays an answer the upstream gave before the body was in.
async fn exchange(
    conn: &mut Connection,
    head: &[u8],
    body: &mut Incoming,
    framing: BodyFraming,
    asked: Asked,
    timeouts: UpstreamTimeouts,
) -> Result<ResponseHead, UpstreamError> {
    let send_idle = Duration::from_millis(timeouts.send_idle_ms);
    match tokio::time::timeout(send_idle, conn.write_all(head)).await {
        Err(_) => return Err(UpstreamError::SendIdle),
        Ok(Err(_)) => return Err(UpstreamError::ClosedEarly),
        Ok(Ok(())) => {}
    }
    let mut write_failed = None;
    if framing != BodyFraming::Empty {
        let chunked = framing == BodyFraming::Chunked;
        match send::send_body(conn, body, chunked, asked, send_idle).await? {
            Sent::Complete => {}
            Sent::EarlyAnswer(head) => return Ok(head),
            Sent::WriteFailed(e) => write_failed = Some(e),
        }
    }
    let read = Duration::from_millis(timeouts.read_ms);
    match tokio::time::timeout(read, read_head(conn, asked)).await {
        Err(_) => Err(UpstreamError::HeadTimeout(timeouts.read_ms)),
        Ok(Ok(mut head)) => {
            // The upstream stopped reading the body but answered: relay it, never reuse.
            if write_failed.is_some() {
                head.keep_alive = false;
            }
            Ok(head)
        }
        Ok(Err(e)) => Err(write_failed.map_or(e, UpstreamError::Io)),
    }
}

async fn read_head(conn: &mut Connection, asked: Asked) -> Result<ResponseHead, UpstreamError> {
    let mut received = !conn.buf.is_empty();
    loop {
        if !conn.buf.is_empty()
            && let Some(head) = response::parse(&mut conn.buf, asked)?
        {
            if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
                continue;
            }
            return Ok(head);
        }
        match conn.fill().await {
            Ok(0) | Err(_) if !received => return Err(UpstreamError::ClosedEarly),
            Ok(0) => {
                return Err(UpstreamError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed mid-head",
                )));
            }
            Ok(_) => received = true,
            Err(e) => return Err(UpstreamError::Io(e)),
        }
    }
}

/// The response for the client. A body already read whole frees the connection at once.
fn into_response(
    upstream: &Upstream,
    mut conn: Connection,
    head: ResponseHead,
    timeouts: UpstreamTimeouts,
) -> Response<GatewayBody> {
    let body = match head.framing {
        Framing::Empty => Some(bytes::Bytes::new()),
        Framing::Length(n) if conn.buf.len() as u64 >= n => {
            // Copied, so that the connection's buffer stays unshared and is reused.
            let whole = bytes::Bytes::copy_from_slice(&conn.buf[..n as usize]);
            conn.buf.advance(n as usize);
            Some(whole)
        }
        _ => None,
    };
    let body = match body {
        Some(whole) => {
            // Bytes beyond the response mean the upstream broke framing: never reuse that.
            if head.keep_alive && conn.buf.is_empty() {
                upstream.pool.release(conn);
            }
            GatewayBody::full(whole)
        }
        None => Either::Left(UpstreamBody::new(
            conn,
            upstream.pool.clone(),
            head.framing,
            head.keep_alive,
            Duration::from_millis(timeouts.body_idle_ms),
        )),
    };
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    response
}
