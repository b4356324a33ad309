//! WebSocket pass-through against real WebSocket peers (tungstenite) on both sides: the
//! handshake is authenticated like any request, messages cross both ways, closes are passed
//! on, and APIs without `websocket: true` never switch.

use futures_util::{SinkExt, StreamExt};
use portico_core::api::ApiAuth;
use portico_testkit::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Handshake = Result<(Client, http::Response<Option<Vec<u8>>>), WsError>;

/// A WebSocket echo server (tungstenite's own handshake). The text message `close` makes it
/// close with 1000 "bye"; a path containing `/deny` is answered 403 without switching, and a
/// request that is not an upgrade 426.
struct WsUpstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Every request head received, as text.
    heads: Arc<Mutex<Vec<String>>>,
}

impl WsUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_upstream(stream, seen.clone()));
            }
        });
        Self {
            addr,
            connections,
            heads,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve_upstream(stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    // The head is peeked, not read, so that tungstenite reads it again for its handshake.
    let mut buf = vec![0u8; 16 * 1024];
    let head = loop {
        let Ok(n) = stream.peek(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            break String::from_utf8_lossy(&buf[..end + 4]).to_lowercase();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    heads.lock().unwrap().push(head.clone());
    let refuse = |status: &str| format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
    let reply = if head.starts_with("get /deny") {
        Some(refuse("403 Forbidden"))
    } else if !head.contains("\r\nupgrade: websocket\r\n") {
        Some(refuse("426 Upgrade Required"))
    } else {
        None
    };
    if let Some(reply) = reply {
        let mut stream = stream;
        let _ = stream.read(&mut buf).await;
        let _ = stream.write_all(reply.as_bytes()).await;
        return;
    }
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    echo(ws).await;
}

/// Echoes text and binary messages; `close` closes with 1000 "bye".
async fn echo<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        let reply = match message {
            Message::Text(text) if text.as_str() == "close" => {
                let bye = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into(),
                };
                let _ = ws.close(Some(bye)).await;
                continue;
            }
            m @ (Message::Text(_) | Message::Binary(_)) => m,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// A gateway with the JWT-protected API `chat` at `/chat`, and `plain` at `/plain` without
/// `websocket: true`, both in front of `upstream`.
async fn chat_gateway(
    upstream: &str,
    key: &portico_auth::sign::SigningKey,
    max_active: u32,
) -> RunningGateway {
    let mut chat = api("chat", "/chat", upstream, vec![trust_pem(key)]);
    chat.websocket = true;
    chat.connections.max_active = max_active;
    chat.connections.queue_ms = 50;
    let plain = api("plain", "/plain", upstream, vec![trust_pem(key)]);
    start_gateway(&config(vec![chat, plain], vec![])).await
}

async fn connect(gw: &RunningGateway, path: &str, token: Option<&str>) -> Handshake {
    let mut request = gw
        .url(path)
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    if let Some(token) = token {
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    tokio::time::timeout(Duration::from_secs(10), connect_async(request))
        .await
        .expect("the handshake ends")
}

async fn next(ws: &mut Client) -> Option<Result<Message, WsError>> {
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a message or the end within 10 s")
}

/// The status of a refused handshake.
fn refused_status(result: Handshake) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the handshake failed otherwise: {e}"),
        Ok(_) => panic!("the handshake succeeded"),
    }
}

#[tokio::test]
async fn messages_echo_both_ways_through_an_authenticated_handshake() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1024).await;
    let token = sign(&key, &claims("alice"));

    let (mut ws, response) = connect(&gw, "/chat/room/1?x=1", Some(&token))
        .await
        .expect("the handshake succeeds");
    assert_eq!(response.status(), 101);
    assert!(response.headers().contains_key("x-request-id"));
    // Sent at once after the handshake: nothing may be lost while the tunnel starts.
    ws.send(Message::text("hello")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("hello")
    );
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2, 255])
    );
    let big = "x".repeat(256 * 1024);
    ws.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap().unwrap(), Message::text(big));

    let heads = up.heads();
    assert_eq!(heads.len(), 1);
    let head = &heads[0];
    assert!(head.starts_with("get /room/1?x=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nx-portico-identity: alice\r\n"), "{head}");
    assert!(head.contains("\r\nsec-websocket-key: "), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn a_handshake_without_a_token_is_refused_before_the_upstream() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1024).await;
    assert_eq!(refused_status(connect(&gw, "/chat/room", None).await), 401);
    let forged = sign(&rsa_key(), &claims("mallory"));
    assert_eq!(
        refused_status(connect(&gw, "/chat/room", Some(&forged)).await),
        401
    );
    assert_eq!(up.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_api_without_websocket_never_switches() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1024).await;
    let token = sign(&key, &claims("alice"));
    // Sent on as a plain GET without `Upgrade`/`Connection`: the upstream does not switch,
    // and its answer reaches the client, whose handshake fails with it.
    assert_eq!(
        refused_status(connect(&gw, "/plain/room", Some(&token)).await),
        426
    );
    let heads = up.heads();
    assert_eq!(heads.len(), 1);
    assert!(!heads[0].contains("\r\nupgrade:"), "{}", heads[0]);
    assert!(!heads[0].contains("\r\nconnection:"), "{}", heads[0]);
}

#[tokio::test]
async fn an_upstream_that_declines_is_relayed() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1024).await;
    let token = sign(&key, &claims("alice"));
    assert_eq!(
        refused_status(connect(&gw, "/chat/deny", Some(&token)).await),
        403
    );
}

#[tokio::test]
async fn the_upstreams_close_reaches_the_client() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1024).await;
    let token = sign(&key, &claims("alice"));
    let (mut ws, _) = connect(&gw, "/chat/room", Some(&token)).await.unwrap();
    ws.send(Message::text("close")).await.unwrap();
    match next(&mut ws).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Normal);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the upstream's close, got {other:?}"),
    }
    // The close handshake completes and the connection ends.
    match next(&mut ws).await {
        None | Some(Err(WsError::ConnectionClosed)) => {}
        other => panic!("expected the end, got {other:?}"),
    }
}

#[tokio::test]
async fn an_open_websocket_holds_its_connection_slot() {
    let up = WsUpstream::start().await;
    let key = rsa_key();
    let gw = chat_gateway(&up.url(), &key, 1).await;
    let token = sign(&key, &claims("alice"));
    let (mut ws, _) = connect(&gw, "/chat/room", Some(&token)).await.unwrap();
    assert_eq!(get(&gw.url("/chat/x"), Some(&token)).await.status(), 503);
    ws.close(None).await.unwrap();
    while next(&mut ws).await.is_some() {}
    drop(ws);
    // The tunnel ends once both sides closed; its slot is free again.
    let mut status = 503;
    for _ in 0..100 {
        status = get(&gw.url("/chat/x"), Some(&token))
            .await
            .status()
            .as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 426, "the plain request reached the upstream");
}

/// A raw upstream for one connection: reads the request head, writes `reply` in one write,
/// and, if `reply` switched, echoes WebSocket messages.
async fn raw_upstream(reply: impl Fn(&str) -> Vec<u8> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed mid-head");
            head.extend_from_slice(&buf[..n]);
        }
        let reply = reply(&String::from_utf8_lossy(&head));
        stream.write_all(&reply).await.unwrap();
        if reply.starts_with(b"HTTP/1.1 101") {
            echo(WebSocketStream::from_raw_socket(stream, Role::Server, None).await).await;
        } else {
            let _ = stream.read(&mut buf).await;
        }
    });
    format!("http://{addr}")
}

/// The `Sec-WebSocket-Accept` for the key in a request head.
fn accept_key(head: &str) -> String {
    let key = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("sec-websocket-key:")
                .then(|| l[18..].trim().to_string())
        })
        .expect("a Sec-WebSocket-Key");
    derive_accept_key(key.as_bytes())
}

fn keyless_websocket(upstream: &str) -> portico_core::ApiSpec {
    let mut open = api("ws", "/ws", upstream, vec![]);
    open.auth = ApiAuth::Keyless;
    open.websocket = true;
    open
}

#[tokio::test]
async fn bytes_the_upstream_sends_with_its_101_reach_the_client_first() {
    let upstream = raw_upstream(|head| {
        let mut reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(head)
        )
        .into_bytes();
        // An unmasked text frame, "welcome", in the same write as the head.
        reply.extend_from_slice(&[0x81, 7]);
        reply.extend_from_slice(b"welcome");
        reply
    })
    .await;
    let gw = start_gateway(&config(vec![keyless_websocket(&upstream)], vec![])).await;
    let (mut ws, _) = connect(&gw, "/ws", None).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("welcome")
    );
    ws.send(Message::text("after")).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::text("after")
    );
}

#[tokio::test]
async fn a_switch_to_another_protocol_is_a_bad_gateway() {
    let upstream = raw_upstream(|_| {
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n".to_vec()
    })
    .await;
    let gw = start_gateway(&config(vec![keyless_websocket(&upstream)], vec![])).await;
    assert_eq!(refused_status(connect(&gw, "/ws", None).await), 502);
}
