//! Listeners and connections: accept, set up the socket (and the TLS handshake on a TLS
//! listener, ALPN `h2` or `http/1.1`), and serve each connection with HTTP/1.1 (upgrades
//! allowed: WebSocket pass-through) or HTTP/2.
//! A connection that does no work is closed: see [`idle`].
//! What a request means is decided in [`crate::flow`].

mod idle;

use crate::body::GatewayBody;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
pub(crate) use idle::IdleTimeouts;
use idle::{RequestActivity, count_requests, serve_until_idle};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A request head must be in within this long (slow-loris protection). On HTTP/1.1 hyper
/// starts it when it starts reading a head, so it also closes a kept-alive connection whose
/// next request does not come within this long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection with no request in flight that starts none for this long is shut down: before
/// its first request (a client that connects and sends nothing, only the HTTP/2 preface, or
/// stops after its TLS handshake) and between requests (HTTP/1.1 keep-alive, an idle HTTP/2
/// connection). Bytes that are not requests (HTTP/2 PINGs, SETTINGS) do not count. 30 s, as
/// [`HEADER_READ_TIMEOUT`], which already ends an HTTP/1.1 connection whose next request head
/// is not in 30 s after the last response: one bound for every protocol and phase, and a
/// client that sends nothing never outlasts one that sends half a head. (nginx's
/// `keepalive_timeout` is 75 s; a longer value would only apply to HTTP/2.) Looked at every
/// quarter of it, so a connection goes 30 to 37.5 s after its last request ended.
pub(crate) const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle connection is shut down gracefully: HTTP/2 gets a GOAWAY, so a client never has a
/// request cut that it sent as the connection closed (it learns which streams were not
/// served); one that has not acknowledged it (answered its PING) and closed this long later,
/// with no request in flight, is disconnected. Requests that started before the GOAWAY are
/// served to the end.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// The data listener's idle limits.
pub(crate) const DATA_PLANE_IDLE: IdleTimeouts = IdleTimeouts {
    idle: CONNECTION_IDLE_TIMEOUT,
    close_grace: IDLE_CLOSE_GRACE,
};
/// HTTP/2: a client that has sent no frame for this long is pinged (dead-peer detection: a
/// long request in flight whose client vanished without a FIN).
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// HTTP/2: a client that does not answer a keep-alive ping within this long is disconnected.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest request head (HTTP/1.1 buffer, HTTP/2 header list).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A client that takes none of our bytes for this long is disconnected (nginx's `send_timeout`):
/// otherwise a client that stops reading would hold its upstream connection forever.
const CLIENT_WRITE_STALL: Duration = Duration::from_secs(60);
/// A TLS handshake must complete within this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// On the admin listener (admin REST API, `/metrics`, `/health`, `/ready`), a request head
/// must be in within this long, and a kept-alive connection that starts no new request for
/// this long is closed: a client that sends half a request (slow loris) holds a connection
/// for at most this.
pub const ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the admin listener serves at once. Beyond it, new connections are not
/// accepted until one closes: they wait in the kernel's accept queue (and are served in
/// turn) rather than being refused, so a scrape or an `apply` during a flood is late, not lost.
pub const ADMIN_MAX_CONNECTIONS: usize = 256;

/// Accepts connections until `shutdown`: plain ones served with HTTP/1.1 or h2c, or, with
/// `tls`, TLS ones served with HTTP/2 or HTTP/1.1 as ALPN chose. A connection that does no
/// work for `idle.idle` is shut down ([`DATA_PLANE_IDLE`] outside tests).
pub(crate) async fn serve_connections<S, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    idle: IdleTimeouts,
    shutdown: F,
    make_service: impl Fn(SocketAddr) -> S,
) where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<GatewayBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
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
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    serve_connection(&builder, WriteStallGuard::new(stream), service, idle).await
                }
                Some(tls) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, WriteStallGuard::new(stream), service, idle)
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %remote, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// Serves one connection (HTTP/1.1 with upgrades, or HTTP/2) until it ends, or until it has
/// done no work for `idle.idle`.
async fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    idle: IdleTimeouts,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<GatewayBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let activity = Arc::new(RequestActivity::default());
    let service = count_requests(service, activity.clone());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    serve_until_idle(conn, |conn| conn.graceful_shutdown(), &activity, idle).await
}

/// Serves the admin listener until `shutdown`: HTTP/1.1 only (no protocol sniffing, which
/// would wait for bytes without a timeout), at most [`ADMIN_MAX_CONNECTIONS`] connections at
/// once, each request head within [`ADMIN_HEADER_READ_TIMEOUT`].
pub async fn serve_admin_connections<S, B, F>(listener: TcpListener, shutdown: F, service: S)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Future<Output = ()>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // A free slot first: while none is, connections wait unaccepted.
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let service = service.clone();
        tokio::spawn(async move {
            if let Err(e) = builder
                .serve_connection(TokioIo::new(WriteStallGuard::new(stream)), service)
                .await
            {
                tracing::debug!(peer = %remote, error = %e, "admin connection ended with an error");
            }
            drop(slot);
        });
    }
}

/// A client stream whose writes fail once they have made no progress for
/// [`CLIENT_WRITE_STALL`]. No timer exists while writes go through.
struct WriteStallGuard<S> {
    inner: S,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteStallGuard<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            stalled: None,
        }
    }

    /// Called when a write is pending: arms the timer, and errors once it fires.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(CLIENT_WRITE_STALL)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no bytes for 60 s",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => this.check_stall(cx).map(Err),
            ready => {
                this.stalled = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.check_stall(cx).map(Err),
            ready => {
                this.stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.check_stall(cx).map(Err),
            ready => {
                this.stalled = None;
                ready
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
