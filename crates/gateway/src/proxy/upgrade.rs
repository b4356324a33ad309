//! WebSocket pass-through (RFC 6455 over HTTP/1.1). An upgrade request to an API with
//! `websocket: true` is recognised from its hop-by-hop headers ([`websocket_requested`]),
//! which are not copied upstream, and sent with `Upgrade: websocket` and `Connection: upgrade` put back. When the
//! upstream answers `101` to `websocket`, the client gets the `101` and a task of its own joins
//! the two connections byte for byte ([`switch`]), frames uninspected. The upstream connection
//! never returns to its pool, and the API's active-connection slot is held until the tunnel
//! closes.
//!
//! A tunnel has no idle timeout: a quiet WebSocket is a healthy one, and liveness is the
//! peers' business (WebSocket pings, TCP keep-alive). An end of stream from one side is passed
//! on to the other as a shutdown; the tunnel closes when both directions have ended, when
//! either fails, or [`HALF_CLOSED_LINGER`] after the first one ended.

use super::hop_by_hop::connection_tokens;
use super::pool::{Connection, Stream};
use super::response::ResponseHead;
use crate::body::{FullBody, GatewayBody};
use crate::error::BadRequest;
use bytes::BytesMut;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

/// How long one direction of a tunnel may go on after the other ended. A WebSocket ends with
/// a close handshake, after which both peers close at once; this bounds a peer that never does
/// (and the connection slot it would hold).
const HALF_CLOSED_LINGER: Duration = Duration::from_secs(30);

/// Whether a request asks to switch to WebSocket (from its hop-by-hop headers).
/// `Ok(true)` for an HTTP/1.1 `GET` without a body whose `Upgrade` names `websocket` and whose
/// `Connection` names `upgrade`; an `Upgrade: websocket` on anything else is refused.
pub fn websocket_requested<B: http_body::Body>(req: &Request<B>) -> Result<bool, BadRequest> {
    let headers = req.headers();
    if !lists(headers, header::UPGRADE, b"websocket") {
        return Ok(false);
    }
    if req.version() != Version::HTTP_11
        || req.method() != Method::GET
        || !lists(headers, header::CONNECTION, b"upgrade")
        || !req.body().is_end_stream()
    {
        return Err(BadRequest::MalformedUpgrade);
    }
    Ok(true)
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn lists(headers: &HeaderMap, name: header::HeaderName, token: &[u8]) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| connection_tokens(v.as_bytes()))
        .any(|t| t.eq_ignore_ascii_case(token))
}

/// The client's `101` for an upstream that switched to WebSocket. The tunnel starts in a task
/// of its own once hyper has sent that `101`; `permit` (the API's active-connection slot) is
/// held until it closes.
pub fn switch(
    conn: Connection,
    head: ResponseHead,
    client: OnUpgrade,
    permit: OwnedSemaphorePermit,
    upstream: &str,
) -> Response<GatewayBody> {
    let (stream, early) = conn.into_switched();
    let upstream = upstream.to_string();
    tokio::spawn(async move {
        match tunnel(client, stream, early).await {
            Ok((to_upstream, to_client)) => {
                tracing::debug!(upstream, to_upstream, to_client, "websocket closed");
            }
            Err(e) => tracing::debug!(upstream, error = %e, "websocket ended with an error"),
        }
        drop(permit);
    });
    let mut response = Response::new(GatewayBody::full(bytes::Bytes::new()));
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    // Hop-by-hop, so dropped from the upstream's head; hyper switches only with both.
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response
}

/// Once the client has switched too, copies both ways until both directions end; the bytes
/// the upstream sent right behind its `101` head go to the client first. Returns the bytes
/// sent to the upstream and to the client.
async fn tunnel(client: OnUpgrade, upstream: Stream, early: BytesMut) -> io::Result<(u64, u64)> {
    let client = TokioIo::new(client.await.map_err(io::Error::other)?);
    join(client, upstream, early).await
}

async fn join(
    client: impl AsyncRead + AsyncWrite,
    upstream: impl AsyncRead + AsyncWrite,
    early: BytesMut,
) -> io::Result<(u64, u64)> {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut upstream_read, mut upstream_write) = tokio::io::split(upstream);
    let up = pass(&mut client_read, &mut upstream_write);
    let down = async {
        client_write.write_all(&early).await?;
        let n = pass(&mut upstream_read, &mut client_write).await?;
        Ok(n + early.len() as u64)
    };
    tokio::pin!(up, down);
    tokio::select! {
        to_upstream = &mut up => Ok((to_upstream?, linger(down).await?)),
        to_client = &mut down => Ok((linger(up).await?, to_client?)),
    }
}

/// The rest of the other direction, once one has ended.
async fn linger(rest: impl Future<Output = io::Result<u64>>) -> io::Result<u64> {
    tokio::time::timeout(HALF_CLOSED_LINGER, rest)
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "half-closed too long",
            ))
        })
}

/// One direction: everything `from` sends, then its end as a shutdown of `to`.
async fn pass(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
) -> io::Result<u64> {
    let n = tokio::io::copy(from, to).await?;
    to.shutdown().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream};

    fn request(method: Method, version: Version, headers: &[(&str, &str)]) -> Request<String> {
        let mut builder = Request::builder()
            .method(method)
            .version(version)
            .uri("/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(String::new()).unwrap()
    }

    /// The tunnel with in-memory peers: what the client's and the upstream's ends see.
    fn tunnel_between() -> (
        tokio::task::JoinHandle<io::Result<(u64, u64)>>,
        DuplexStream,
        DuplexStream,
    ) {
        let (client, client_peer) = tokio::io::duplex(1024);
        let (upstream, upstream_peer) = tokio::io::duplex(1024);
        let early = BytesMut::from(&b"early"[..]);
        (
            tokio::spawn(join(client, upstream, early)),
            client_peer,
            upstream_peer,
        )
    }

    async fn read_some(peer: &mut DuplexStream) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = peer.read(&mut buf).await.unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_ends_are_passed_on() {
        let (tunnel, mut client, mut upstream) = tunnel_between();
        assert_eq!(read_some(&mut client).await, b"early");
        client.write_all(b"ping").await.unwrap();
        assert_eq!(read_some(&mut upstream).await, b"ping");
        upstream.write_all(b"pong").await.unwrap();
        assert_eq!(read_some(&mut client).await, b"pong");

        upstream.shutdown().await.unwrap();
        assert_eq!(
            read_some(&mut client).await,
            b"",
            "the upstream's end reaches the client"
        );
        client.shutdown().await.unwrap();
        assert_eq!(read_some(&mut upstream).await, b"");
        assert_eq!(tunnel.await.unwrap().unwrap(), (4, 9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_half_closed_tunnel_closes_after_the_linger() {
        let (tunnel, mut client, upstream) = tunnel_between();
        assert_eq!(read_some(&mut client).await, b"early");
        drop(upstream);
        assert_eq!(read_some(&mut client).await, b"");
        // The client never ends its side.
        let started = tokio::time::Instant::now();
        let error = tunnel.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= HALF_CLOSED_LINGER);
        assert!(
            client.write_all(b"late").await.is_err(),
            "the client's connection is closed"
        );
    }

    #[test]
    fn only_well_formed_websocket_upgrades_switch() {
        let handshake = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
        ];
        let get = request(Method::GET, Version::HTTP_11, &handshake);
        assert_eq!(websocket_requested(&get), Ok(true));

        let plain = request(Method::GET, Version::HTTP_11, &[]);
        assert_eq!(websocket_requested(&plain), Ok(false));
        let h2c = request(
            Method::GET,
            Version::HTTP_11,
            &[("connection", "upgrade"), ("upgrade", "h2c")],
        );
        assert_eq!(websocket_requested(&h2c), Ok(false));

        for refused in [
            request(Method::POST, Version::HTTP_11, &handshake),
            request(Method::GET, Version::HTTP_10, &handshake),
            request(Method::GET, Version::HTTP_11, &[("upgrade", "websocket")]),
        ] {
            assert!(websocket_requested(&refused).is_err(), "{refused:?}");
        }
        let mut with_body = request(Method::GET, Version::HTTP_11, &handshake);
        *with_body.body_mut() = "x".into();
        assert!(websocket_requested(&with_body).is_err());
    }
}
