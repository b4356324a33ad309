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

mod body;
pub(crate) mod hop_by_hop;
mod pool;
mod request;
mod response;

pub use body::UpstreamBody;
pub use pool::ConnectionPools;
pub use request::{ClientIp, Forwarding};

use crate::body::{FullBody, GatewayBody};
use crate::error::{EdgeError, EdgeErrorKind};
use bytes::Buf;
use http::header::HeaderValue;
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use pool::{Connection, UpstreamPool};
use portico_core::api::{UpstreamTarget, UpstreamTimeouts};
use request::BodyFraming;
use response::{Framing, Malformed, ResponseHead};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// An API's upstream, parsed once per config version.
#[derive(Debug, Clone)]
pub struct Upstream {
    base_path: String,
    host: HeaderValue,
    pool: Arc<UpstreamPool>,
}

impl Upstream {
    pub fn try_new(target: &UpstreamTarget, pools: &ConnectionPools) -> Result<Self, String> {
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
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        Ok(Self {
            base_path: target.base_path.clone(),
            host: HeaderValue::from_str(authority.as_str())
                .map_err(|_| format!("invalid host {:?}", target.authority()))?,
            pool: pools.for_address(&address),
        })
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
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

/// Sends the request (hop-by-hop headers removed, path rewritten, forwarding headers added)
/// and returns the upstream's response, whose body streams. 502 when the upstream cannot be
/// reached or answers nonsense, 504 when its response head is not in within `read_ms`.
pub async fn forward(
    upstream: &Upstream,
    request: Request<Incoming>,
    path: &str,
    forwarding: Forwarding<'_>,
    timeouts: UpstreamTimeouts,
) -> Result<Response<GatewayBody>, EdgeError> {
    // Hop-by-hop headers are already gone (`stages::upstream_headers`).
    let (parts, mut body) = request.into_parts();
    let framing = BodyFraming::of(&parts.headers, http_body::Body::is_end_stream(&body));
    let head = request::encode_head(&parts, upstream, path, forwarding, framing);
    let head_request = parts.method == Method::HEAD;
    // Without a body the request can be sent again; only idempotent ones are.
    let replayable = framing == BodyFraming::Empty && parts.method.is_idempotent();
    let connect_timeout = Duration::from_millis(timeouts.connect_ms);
    let read_timeout = Duration::from_millis(timeouts.read_ms);

    let mut conn = upstream
        .pool
        .checkout(connect_timeout)
        .await
        .map_err(|e| failed(upstream, UpstreamError::Connect(e)))?;
    let response_head = loop {
        let exchange = exchange(&mut conn, &head, &mut body, framing, head_request);
        match tokio::time::timeout(read_timeout, exchange).await {
            Err(_) => {
                return Err(EdgeError::with_cause(
                    EdgeErrorKind::GatewayTimeout,
                    format!(
                        "no response head from {} within {} ms",
                        upstream.address(),
                        timeouts.read_ms
                    ),
                ));
            }
            Ok(Ok(head)) => break head,
            Ok(Err(UpstreamError::ClosedEarly)) if conn.reused() && replayable => {
                conn = upstream
                    .pool
                    .connect(connect_timeout)
                    .await
                    .map_err(|e| failed(upstream, UpstreamError::Connect(e)))?;
            }
            Ok(Err(e)) => return Err(failed(upstream, e)),
        }
    };
    Ok(into_response(upstream, conn, response_head))
}

fn failed(upstream: &Upstream, error: UpstreamError) -> EdgeError {
    EdgeError::with_cause(
        EdgeErrorKind::BadGateway,
        format!("{}: {error}", upstream.address()),
    )
}

/// Writes the request and reads the final response head (1xx heads are skipped).
async fn exchange(
    conn: &mut Connection,
    head: &[u8],
    body: &mut Incoming,
    framing: BodyFraming,
    head_request: bool,
) -> Result<ResponseHead, UpstreamError> {
    conn.write_all(head)
        .await
        .map_err(|_| UpstreamError::ClosedEarly)?;
    if framing != BodyFraming::Empty {
        send_body(conn, body, framing == BodyFraming::Chunked).await?;
    }
    let mut received = false;
    loop {
        if !conn.buf.is_empty()
            && let Some(head) = response::parse(&mut conn.buf, head_request)?
        {
            if head.status.is_informational() {
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

/// Streams the client's body upstream, as it is or chunked.
async fn send_body(
    conn: &mut Connection,
    body: &mut Incoming,
    chunked: bool,
) -> Result<(), UpstreamError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(UpstreamError::ClientBody)?;
        // Trailers are not forwarded (`TE: trailers` is hop-by-hop, so none were asked for).
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let mut piece = Vec::with_capacity(data.len() + 20);
            piece.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            piece.extend_from_slice(&data);
            piece.extend_from_slice(b"\r\n");
            conn.write_all(&piece).await
        } else {
            conn.write_all(&data).await
        }
        .map_err(UpstreamError::Io)?;
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n")
            .await
            .map_err(UpstreamError::Io)?;
    }
    Ok(())
}

/// The response for the client. A body already read whole frees the connection at once.
fn into_response(
    upstream: &Upstream,
    mut conn: Connection,
    head: ResponseHead,
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
        )),
    };
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    response
}
