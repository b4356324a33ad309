//! Sending the request body upstream as the client sends it, while watching the connection
//! for an early answer: an upstream may answer (401, 413) before the body is in, and close.
//! That answer is relayed, not lost. Sending is paced by an idle timeout — a healthy upload
//! may take longer than the response timeout, which starts once the body is sent.

use super::UpstreamError;
use super::pool::Connection;
use super::response::{self, Asked, ResponseHead};
use bytes::{Buf, Bytes};
use http_body::Body;
use hyper::body::Incoming;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// How sending the body ended.
#[derive(Debug)]
pub enum Sent {
    /// The whole body is out.
    Complete,
    /// The upstream answered before the body was in: an error or a close (the connection is
    /// then not reused), or a success relayed once the whole body is out.
    EarlyAnswer(ResponseHead),
    /// The upstream stopped reading (it may have answered and closed; read to find out).
    WriteFailed(io::Error),
}

/// Streams `body` to `conn` (as it is, or chunked). `idle`: the longest wait for the client's
/// next bytes or for the upstream to take ours.
pub async fn send_body(
    conn: &mut Connection,
    body: &mut Incoming,
    chunked: bool,
    asked: Asked,
    idle: Duration,
) -> Result<Sent, UpstreamError> {
    let mut pending = Bytes::new();
    let mut body_done = false;
    let mut timer = Box::pin(tokio::time::sleep(idle));
    let mut progressed = false;
    // Bytes written but perhaps still held by TLS.
    let mut unflushed = false;
    // A success answered early (a full-duplex upstream): sending goes on, and the answer is
    // relayed once the body is out (RFC 9112 §9.3); reading stops so its body stays put.
    let mut answered: Option<ResponseHead> = None;
    std::future::poll_fn(|cx| {
        loop {
            if std::mem::take(&mut progressed) {
                timer.as_mut().reset(tokio::time::Instant::now() + idle);
            }
            // An answer already?
            let poll_answer = if answered.is_some() {
                Poll::Pending
            } else {
                conn.poll_fill(cx)
            };
            match poll_answer {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(UpstreamError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed the connection while receiving the request body",
                    ))));
                }
                Poll::Ready(Ok(_)) => {
                    while !conn.buf.is_empty() {
                        match response::parse(&mut conn.buf, asked)? {
                            Some(head) if head.status.is_informational() => {}
                            // An error, or a close: the rest of the body is not wanted.
                            Some(mut head) if head.status.as_u16() >= 400 || !head.keep_alive => {
                                head.keep_alive = false;
                                return Poll::Ready(Ok(Sent::EarlyAnswer(head)));
                            }
                            Some(head) => {
                                answered = Some(head);
                                break;
                            }
                            None => break,
                        }
                    }
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(UpstreamError::Io(e))),
                Poll::Pending => {}
            }
            // Write what the client sent.
            if !pending.is_empty() {
                match conn.poll_write(cx, &pending) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Ok(stopped(
                            answered.take(),
                            io::ErrorKind::WriteZero.into(),
                        )));
                    }
                    Poll::Ready(Ok(n)) => {
                        pending.advance(n);
                        progressed = true;
                        unflushed = true;
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Ok(stopped(answered.take(), e))),
                    Poll::Pending => {
                        return match timer.as_mut().poll(cx) {
                            Poll::Ready(()) => Poll::Ready(Err(UpstreamError::SendIdle)),
                            Poll::Pending => Poll::Pending,
                        };
                    }
                }
            }
            if unflushed {
                match conn.poll_flush(cx) {
                    Poll::Ready(Ok(())) => unflushed = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Ok(stopped(answered.take(), e))),
                    Poll::Pending => {
                        return match timer.as_mut().poll(cx) {
                            Poll::Ready(()) => Poll::Ready(Err(UpstreamError::SendIdle)),
                            Poll::Pending => Poll::Pending,
                        };
                    }
                }
            }
            if body_done {
                return Poll::Ready(Ok(match answered.take() {
                    Some(head) => Sent::EarlyAnswer(head),
                    None => Sent::Complete,
                }));
            }
            // The client's next piece.
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    progressed = true;
                    // Trailers are not forwarded (`TE: trailers` is hop-by-hop, so none were
                    // asked for).
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        pending = if chunked { chunk(&data) } else { data };
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(UpstreamError::ClientBody(e))),
                Poll::Ready(None) => {
                    body_done = true;
                    if chunked {
                        pending = Bytes::from_static(b"0\r\n\r\n");
                    }
                }
                Poll::Pending => {
                    return match timer.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Err(UpstreamError::ClientBodyIdle)),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    })
    .await
}

/// The upstream stopped taking the body: relay its answer if one came, else find out.
fn stopped(answered: Option<ResponseHead>, error: io::Error) -> Sent {
    match answered {
        Some(mut head) => {
            head.keep_alive = false;
            Sent::EarlyAnswer(head)
        }
        None => Sent::WriteFailed(error),
    }
}

fn chunk(data: &Bytes) -> Bytes {
    let mut piece = Vec::with_capacity(data.len() + 20);
    piece.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    piece.extend_from_slice(data);
    piece.extend_from_slice(b"\r\n");
    piece.into()
}
