//! Keep-alive connections to upstreams: one idle list per upstream (scheme, host, port and,
//! for TLS, server name and TLS settings), shared by every config version. An idle connection has no task of its own. One the upstream has closed is
//! noticed when it is checked out (its socket has turned readable, which costs no syscall to
//! see) or by the periodic sweep, which also closes connections idle for a minute. Neither
//! checkout nor release reads the clock: idle age is counted in sweeps.

use crate::tls::UpstreamTls;
use bytes::BytesMut;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How often idle lists are swept of expired and closed connections.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// A connection idle through this many sweeps (45–60 s) is closed.
const IDLE_SWEEPS: u32 = 4;
/// At most this many idle connections are kept per upstream address.
const MAX_IDLE_PER_UPSTREAM: usize = 256;
/// Reads start asking for this much room, doubling while they fill it, up to `MAX_READ`.
const READ_CHUNK: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;

/// Every upstream's pool. Pools outlive config versions, so a reload keeps the warm
/// connections of upstreams it still uses.
#[derive(Default)]
pub struct ConnectionPools {
    by_key: Mutex<HashMap<String, Arc<UpstreamPool>>>,
    /// Sweeps so far: the idle lists' clock.
    sweeps: Arc<AtomicU32>,
}

impl std::fmt::Debug for ConnectionPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPools")
            .field("upstreams", &self.by_key.lock().len())
            .finish()
    }
}

impl ConnectionPools {
    /// Pools plus a background sweep that ends when they are dropped. Needs a Tokio runtime.
    pub fn new() -> Arc<Self> {
        let pools = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&pools);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(pools) = weak.upgrade() else { break };
                let sweep = pools.sweeps.fetch_add(1, Ordering::Relaxed) + 1;
                let all: Vec<_> = pools.by_key.lock().values().cloned().collect();
                for pool in all {
                    pool.sweep(sweep);
                }
            }
        });
        pools
    }

    /// The pool for plain HTTP to `address` (`host:port`).
    pub fn for_address(&self, address: &str) -> Arc<UpstreamPool> {
        self.for_upstream(address, None)
    }

    /// The pool for `address` (`host:port`), over TLS when `tls` is given. Connections are
    /// shared only by upstreams with the same address, server name and TLS settings.
    pub fn for_upstream(&self, address: &str, tls: Option<UpstreamTls>) -> Arc<UpstreamPool> {
        let key = match &tls {
            None => format!("http://{address}"),
            Some(t) => format!(
                "https://{address}#{:?}#{:016x}",
                t.server_name(),
                t.fingerprint()
            ),
        };
        self.by_key
            .lock()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(UpstreamPool {
                    address: address.to_string(),
                    tls,
                    idle: Mutex::new(Vec::new()),
                    sweeps: self.sweeps.clone(),
                })
            })
            .clone()
    }
}

/// The idle connections to one upstream address.
#[derive(Debug)]
pub struct UpstreamPool {
    address: String,
    tls: Option<UpstreamTls>,
    idle: Mutex<Vec<Idle>>,
    sweeps: Arc<AtomicU32>,
}

#[derive(Debug)]
struct Idle {
    conn: Connection,
    /// The sweep count when it went idle.
    since: u32,
}

impl UpstreamPool {
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The most recently used idle connection that is still open, or a new one.
    pub async fn checkout(&self, connect_timeout: Duration) -> io::Result<Connection> {
        // The lock is released before a stale connection is dropped (closed).
        while let Some(entry) = self.take_idle() {
            if entry.conn.is_idle_open() {
                let mut conn = entry.conn;
                conn.reused = true;
                return Ok(conn);
            }
        }
        self.connect(connect_timeout).await
    }

    fn take_idle(&self) -> Option<Idle> {
        self.idle.lock().pop()
    }

    /// A new connection (resolving the host name each time, as DNS may change), with its TLS
    /// handshake done; both within `timeout`.
    ///
    /// Its (≈ 1.3 KB) future is boxed: held inline, it would make every request's future that
    /// much larger, and hyper moves that future once per request, while a new connection is
    /// rare and costs a round trip anyway.
    pub async fn connect(&self, timeout: Duration) -> io::Result<Connection> {
        Box::pin(self.open(timeout)).await
    }

    async fn open(&self, timeout: Duration) -> io::Result<Connection> {
        let connect = async {
            let tcp = TcpStream::connect(self.address.as_str()).await?;
            tcp.set_nodelay(true)?;
            match &self.tls {
                None => Ok::<_, io::Error>(Stream::Plain(tcp)),
                Some(tls) => Ok(Stream::Tls(Box::new(tls.connect(tcp).await?))),
            }
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(Connection {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            read_size: READ_CHUNK,
            reused: false,
            permit: None,
        })
    }

    /// Returns a connection that sits between two messages (nothing buffered) for reuse.
    pub fn release(&self, mut conn: Connection) {
        debug_assert!(conn.buf.is_empty());
        // Idle connections do not count as active.
        conn.permit = None;
        // Bytes past the response may sit decrypted inside TLS, unseen by `buf`: such a
        // connection would hand them to the next request as its response.
        if let Stream::Tls(tls) = &mut conn.stream {
            match tls.get_mut().1.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() == 0 => {}
                _ => return,
            }
        }
        let entry = Idle {
            conn,
            since: self.sweeps.load(Ordering::Relaxed),
        };
        let overflow = {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE_PER_UPSTREAM {
                idle.push(entry);
                None
            } else {
                Some(entry)
            }
        };
        drop(overflow);
    }

    fn sweep(&self, sweep: u32) {
        let mut idle = self.idle.lock();
        idle.retain(|e| sweep.wrapping_sub(e.since) < IDLE_SWEEPS && e.conn.is_idle_open());
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().len()
    }
}

/// The byte stream under a connection.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1.1 connection to an upstream, with its read buffer.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    /// Bytes read and not yet consumed.
    pub buf: BytesMut,
    /// Room asked for per read: grows for large bodies.
    read_size: usize,
    /// Taken from the idle list rather than freshly connected.
    reused: bool,
    /// The API's slot for the request this connection carries, freed with it.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Connection {
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// True while nothing (no bytes, no close) has arrived since the connection went idle.
    /// The socket's readiness is checked first, so an open connection costs no syscall.
    fn is_idle_open(&self) -> bool {
        match &self.stream {
            Stream::Plain(tcp) => {
                matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            // Peeked, not read: bytes taken from under TLS would break the stream. Anything
            // readable while idle (a close_notify, say) retires the connection.
            Stream::Tls(tls) => {
                let mut byte = [0u8; 1];
                let mut buf = ReadBuf::new(&mut byte);
                let mut cx = Context::from_waker(std::task::Waker::noop());
                tls.get_ref().0.poll_peek(&mut cx, &mut buf).is_pending()
            }
        }
    }

    /// Reads more bytes into `buf`; `Ok(0)` is end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            &mut self.buf
        ))?;
        if n == room && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    pub async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// Writes and flushes `bytes` (TLS may hold written bytes until flushed).
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    pub fn poll_write(&mut self, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, bytes)
    }

    /// Keeps the request's slot until the connection is released or dropped.
    pub fn hold(&mut self, permit: tokio::sync::OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }

    /// The stream of a connection that switched protocols, and the bytes of the new protocol
    /// already read past the `101` head. It never returns to a pool.
    pub fn into_switched(self) -> (Stream, BytesMut) {
        (self.stream, self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn closed_idle_connections_are_not_handed_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let pools = ConnectionPools::new();
        let pool = pools.for_address(&address);
        assert!(Arc::ptr_eq(&pool, &pools.for_address(&address)));

        let conn = pool.connect(Duration::from_secs(1)).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        pool.release(conn);
        assert_eq!(pool.idle_count(), 1);
        // Open and quiet: handed out again, marked as reused.
        let conn = pool.checkout(Duration::from_secs(1)).await.unwrap();
        assert!(conn.reused());
        pool.release(conn);

        // The upstream closes it; the next checkout must connect afresh.
        drop(accepted);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fresh = pool.checkout(Duration::from_secs(1)).await.unwrap();
        assert!(!fresh.reused());
        assert_eq!(pool.idle_count(), 0);
        accepted = listener.accept().await.unwrap().0;
        drop(fresh);
        let mut rest = Vec::new();
        assert_eq!(accepted.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn sweep_drops_closed_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = ConnectionPools::new().for_address(&listener.local_addr().unwrap().to_string());
        let conn = pool.connect(Duration::from_secs(1)).await.unwrap();
        drop(listener.accept().await.unwrap());
        // Let the close arrive and the reactor see it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.release(conn);
        pool.sweep(0);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn sweep_closes_connections_idle_too_long() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = ConnectionPools::new().for_address(&listener.local_addr().unwrap().to_string());
        pool.release(pool.connect(Duration::from_secs(1)).await.unwrap());
        pool.sweep(IDLE_SWEEPS - 1);
        assert_eq!(pool.idle_count(), 1);
        pool.sweep(IDLE_SWEEPS);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn refused_connects_fail() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let pool = ConnectionPools::new().for_address(&address);
        assert!(pool.checkout(Duration::from_secs(1)).await.is_err());
    }
}
