//! Connections that do no work are closed; connections that do work are not. The gateway runs
//! with a short idle timeout ([`IDLE`]; 30 s in production): a silent connection, the h2c
//! preface and then silence, a TLS handshake and then silence, an idle HTTP/1.1 keep-alive
//! connection and an idle HTTP/2 connection are closed after it, while a slow upstream answer,
//! a response streamed for longer than it, and an idle WebSocket tunnel are not cut.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use portico_core::api::ApiAuth;
use portico_gateway::tls::{ServerTls, ServerTlsSettings};
use portico_testkit::pki::Pki;
use portico_testkit::*;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// The gateway's idle timeout in these tests.
const IDLE: Duration = Duration::from_millis(400);
/// Longer than any close should take here (the idle timeout, a quarter of it between looks,
/// the grace), with room for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

/// A keyless API `open` at `/open` in front of `upstream`, WebSockets allowed.
async fn open_gateway(upstream: &str) -> RunningGateway {
    let mut open = api("open", "/open", upstream, vec![]);
    open.auth = ApiAuth::Keyless;
    open.websocket = true;
    start_gateway_with_idle_timeout(&config(vec![open], vec![]), IDLE).await
}

/// Reads (and returns) everything until the peer closes; panics if it has not within
/// [`CLOSED_WITHIN`].
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(CLOSED_WITHIN, stream.read(&mut buf)).await {
            Err(_) => panic!("still open after {CLOSED_WITHIN:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Asserts that the peer sends nothing and does not close for `wait`.
async fn still_open(stream: &mut TcpStream, wait: Duration) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(wait, stream.read(&mut buf)).await;
    assert!(read.is_err(), "closed or sent early: {read:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let connected = Instant::now();
    still_open(&mut stream, IDLE / 2).await;
    assert_eq!(read_until_closed(&mut stream).await, b"");
    assert!(connected.elapsed() >= IDLE, "{:?}", connected.elapsed());
}

/// The types of the HTTP/2 frames in `bytes`.
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

#[tokio::test]
async fn the_h2c_preface_then_silence_is_closed_with_a_goaway() {
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let connected = Instant::now();
    let seen = read_until_closed(&mut stream).await;
    assert!(connected.elapsed() >= IDLE, "{:?}", connected.elapsed());
    let types = frame_types(&seen);
    assert_eq!(types.first(), Some(&SETTINGS), "{types:?}");
    assert!(types.contains(&GOAWAY), "{types:?}");
}

#[tokio::test]
async fn a_tls_connection_silent_after_its_handshake_is_closed() {
    let pki = Pki::new();
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let tls = ServerTls::load(&ServerTlsSettings {
        cert_file: pki.server.cert_file.clone(),
        key_file: pki.server.key_file.clone(),
        client_ca_file: None,
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let gateway = gw.gateway.clone();
    tokio::spawn(async move {
        gateway
            .serve_with_idle_timeout(listener, Some(&tls), IDLE, std::future::pending())
            .await
    });

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let handshaken = Instant::now();
    read_until_closed(&mut stream).await;
    assert!(handshaken.elapsed() >= IDLE, "{:?}", handshaken.elapsed());
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_request() {
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET /open/x HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    // The whole response: its head, then as many bytes as its Content-Length says.
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let answered = loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response");
        response.extend_from_slice(&buf[..n]);
        let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&response[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("a content-length")
            .parse()
            .unwrap();
        if response.len() >= end + 4 + length {
            break Instant::now();
        }
    };
    assert!(response.starts_with(b"HTTP/1.1 200 "));
    assert!(!response.windows(17).any(|w| w == b"connection: close"));
    still_open(&mut stream, IDLE / 2).await;
    assert_eq!(read_until_closed(&mut stream).await, b"");
    assert!(answered.elapsed() >= IDLE, "{:?}", answered.elapsed());
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_gracefully_after_its_request() {
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let request = http::Request::get(gw.url("/open/x"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    let answered = Instant::now();
    // The client's connection ends without an error: the gateway said GOAWAY and closed.
    tokio::time::timeout(CLOSED_WITHIN, conn)
        .await
        .expect("closed in time")
        .unwrap()
        .expect("closed gracefully");
    assert!(answered.elapsed() >= IDLE, "{:?}", answered.elapsed());
}

#[tokio::test]
async fn an_upstream_slower_than_the_idle_timeout_is_waited_for() {
    let up = Upstream::start().await;
    let gw = open_gateway(&up.url()).await;
    let url = gw.url("/open/slow");
    // `/slow` answers after 3 s, many idle timeouts: on HTTP/1.1 and on HTTP/2.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let (h1, h2) = tokio::join!(client().get(&url).send(), h2.get(&url).send());
    let (h1, h2) = (h1.unwrap(), h2.unwrap());
    assert_eq!(
        (h1.status().as_u16(), h1.version()),
        (200, reqwest::Version::HTTP_11)
    );
    assert_eq!(
        (h2.status().as_u16(), h2.version()),
        (200, reqwest::Version::HTTP_2)
    );
}

/// An upstream that streams a chunked response of `chunks` one-byte chunks, [`IDLE`] and a
/// half apart.
async fn slow_stream_upstream(chunks: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                for _ in 0..chunks {
                    tokio::time::sleep(IDLE * 3 / 2).await;
                    if stream.write_all(b"1\r\nx\r\n").await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_response_streamed_for_longer_than_the_idle_timeout_is_not_cut() {
    let upstream = slow_stream_upstream(3).await;
    let gw = open_gateway(&upstream).await;
    let url = gw.url("/open/events");
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let body = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("the whole body")
    };
    let (h1, h2) = tokio::join!(
        async { body(client().get(&url).send().await.unwrap()).await },
        async { body(h2.get(&url).send().await.unwrap()).await },
    );
    assert_eq!((&h1[..], &h2[..]), (&b"xxx"[..], &b"xxx"[..]));
}

#[tokio::test]
async fn an_idle_websocket_tunnel_is_not_cut() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() && ws.send(message).await.is_err() {
                return;
            }
        }
    });
    let gw = open_gateway(&upstream).await;
    let url = gw.url("/open/chat").replacen("http://", "ws://", 1);
    let (mut ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    // Quiet for many idle timeouts, both ways.
    tokio::time::sleep(IDLE * 4).await;
    ws.send(Message::text("still there")).await.unwrap();
    let echoed = tokio::time::timeout(CLOSED_WITHIN, ws.next())
        .await
        .expect("an answer")
        .expect("the tunnel is open")
        .unwrap();
    assert_eq!(echoed, Message::text("still there"));
}
