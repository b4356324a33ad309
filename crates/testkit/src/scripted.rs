//! A raw TCP upstream for fault injection: it answers each request on its n-th connection
//! with the next scripted reply, byte for byte, and records what it received.

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub enum Reply {
    /// Write these bytes and wait for the next request.
    Send(&'static str),
    /// Write these bytes, then close.
    SendAndClose(&'static str),
    /// Close without answering.
    Close,
    /// Write these bytes as soon as the request head is in (not waiting for its body), then
    /// close: an upstream refusing an upload early.
    AnswerHeadAndClose(&'static str),
    /// Write these bytes as soon as the request head is in, then read the whole request (a
    /// full-duplex upstream answering early with a success).
    AnswerHeadThenRead(&'static str),
    /// Write these bytes, then stay silent (keeping the connection open) for a while.
    SendAndStall(&'static str),
}

pub struct ScriptedUpstream {
    pub addr: SocketAddr,
    /// Each request received (head and body), in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl ScriptedUpstream {
    /// `script[n]`: the replies on the n-th connection. Connections beyond the script are
    /// closed at once.
    pub async fn start(script: Vec<Vec<Reply>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (seen, count) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            let mut script = script.into_iter();
            while let Ok((stream, _)) = listener.accept().await {
                *count.lock() += 1;
                let replies = script.next().unwrap_or_default();
                tokio::spawn(serve(stream, replies, seen.clone()));
            }
        });
        Self {
            addr,
            requests,
            connections,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock()
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().clone()
    }
}

async fn serve(mut stream: TcpStream, replies: Vec<Reply>, seen: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    for reply in replies {
        if let Reply::AnswerHeadThenRead(bytes) = reply {
            while find(&buf, b"\r\n\r\n").is_none() {
                if fill(&mut stream, &mut buf).await.is_none() {
                    return;
                }
            }
            if stream.write_all(bytes.as_bytes()).await.is_err() {
                return;
            }
            let Some(request) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            seen.lock().push(request);
            continue;
        }
        if let Reply::AnswerHeadAndClose(bytes) = reply {
            while find(&buf, b"\r\n\r\n").is_none() {
                if fill(&mut stream, &mut buf).await.is_none() {
                    return;
                }
            }
            seen.lock().push(String::from_utf8_lossy(&buf).into_owned());
            let _ = stream.write_all(bytes.as_bytes()).await;
            return;
        }
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        seen.lock().push(request);
        match reply {
            Reply::Send(bytes) => {
                if stream.write_all(bytes.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
                return;
            }
            Reply::Close => return,
            Reply::SendAndStall(bytes) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                return;
            }
            Reply::AnswerHeadAndClose(_) | Reply::AnswerHeadThenRead(_) => {
                unreachable!("handled above")
            }
        }
    }
}

/// One request: its head, and a body framed by Content-Length or chunked encoding.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let body_end = if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        head_end + len.trim().parse::<usize>().ok()?
    } else if head.contains("transfer-encoding: chunked") {
        loop {
            if let Some(i) = find(&buf[head_end..], b"\r\n0\r\n\r\n") {
                break head_end + i + 7;
            }
            if buf[head_end..].starts_with(b"0\r\n\r\n") {
                break head_end + 5;
            }
            fill(stream, buf).await?;
        }
    } else {
        head_end
    };
    while buf.len() < body_end {
        fill(stream, buf).await?;
    }
    let request = String::from_utf8_lossy(&buf[..body_end]).into_owned();
    buf.drain(..body_end);
    Some(request)
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
