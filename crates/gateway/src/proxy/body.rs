//! A response body streamed from the upstream connection, decoded by its framing. When the
//! body ends cleanly the connection goes back to its pool; a body dropped early or broken
//! takes the connection down with it.

use super::pool::{Connection, UpstreamPool};
use super::response::Framing;
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// A chunk-size or trailer line longer than this is refused.
const MAX_LINE: usize = 4 * 1024;
/// All trailer lines together (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug)]
pub struct UpstreamBody {
    /// `None` once the body has ended or failed.
    conn: Option<Connection>,
    pool: Arc<UpstreamPool>,
    decoder: Decoder,
    keep_alive: bool,
    /// The longest wait for the upstream's next bytes.
    idle: Duration,
    /// Armed while waiting for bytes.
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl UpstreamBody {
    pub fn new(
        conn: Connection,
        pool: Arc<UpstreamPool>,
        framing: Framing,
        keep_alive: bool,
        idle: Duration,
    ) -> Self {
        Self {
            conn: Some(conn),
            pool,
            decoder: Decoder::new(framing),
            keep_alive,
            idle,
            idle_timer: None,
        }
    }

    /// The body has ended: the connection is reused when nothing follows it.
    fn finish(&mut self) {
        self.decoder = Decoder::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.buf.is_empty()
        {
            self.pool.release(conn);
        }
    }

    fn fail(&mut self, error: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.conn = None;
        self.decoder = Decoder::Done;
        tracing::debug!(error = %error, upstream = self.pool.address(), "upstream body failed");
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.next(&mut conn.buf) {
                Err(e) => return this.fail(e),
                Ok(Step::Data(data)) => {
                    // Read past the framing that follows, so that a body whose last bytes
                    // are out frees its connection now, not on a poll that may never come.
                    if let Err(e) = this.decoder.skip_framing(&mut conn.buf) {
                        return this.fail(e);
                    }
                    if this.decoder == Decoder::Done {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => match conn.poll_fill(cx) {
                    Poll::Pending => {
                        let idle = this.idle;
                        let timer = this
                            .idle_timer
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                        ready!(timer.as_mut().poll(cx));
                        return this.fail(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the upstream sent no body bytes within body_idle_ms",
                        ));
                    }
                    Poll::Ready(result) => {
                        this.idle_timer = None;
                        match result {
                            Ok(0) if this.decoder == Decoder::UntilClose => {
                                this.keep_alive = false;
                                this.finish();
                                return Poll::Ready(None);
                            }
                            Ok(0) => {
                                return this.fail(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "upstream closed the connection mid-body",
                                ));
                            }
                            Ok(_) => {}
                            Err(e) => return this.fail(e),
                        }
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder == Decoder::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    /// Bytes left.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    /// Bytes left in this chunk.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer bytes read so far.
    Trailers(usize),
}

#[derive(Debug, PartialEq, Eq)]
enum Step {
    Data(Bytes),
    NeedMore,
    End,
}

impl Decoder {
    fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunk::Size),
            Framing::UntilClose => Decoder::UntilClose,
        }
    }

    /// The next body bytes in `buf`, consuming them and the framing before them.
    fn next(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        self.skip_framing(buf)?;
        match self {
            Decoder::Done => Ok(Step::End),
            _ if buf.is_empty() => Ok(Step::NeedMore),
            Decoder::Length(left) => {
                let data = take(buf, left);
                if *left == 0 {
                    *self = Decoder::Done;
                }
                Ok(Step::Data(data))
            }
            Decoder::UntilClose => Ok(Step::Data(buf.split().freeze())),
            Decoder::Chunked(Chunk::Data(left)) => {
                let data = take(buf, left);
                if *left == 0 {
                    *self = Decoder::Chunked(Chunk::DataEnd);
                }
                Ok(Step::Data(data))
            }
            // Framing that is not complete in `buf` yet.
            Decoder::Chunked(_) => Ok(Step::NeedMore),
        }
    }

    /// Consumes the framing at the front of `buf` until data or the end comes next, or
    /// `buf` runs out.
    fn skip_framing(&mut self, buf: &mut BytesMut) -> io::Result<()> {
        loop {
            match self {
                Decoder::Chunked(Chunk::Size) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(());
                    };
                    *self = Decoder::Chunked(match chunk_size(&line)? {
                        0 => Chunk::Trailers(0),
                        n => Chunk::Data(n),
                    });
                }
                Decoder::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(());
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Decoder::Chunked(Chunk::Size);
                }
                Decoder::Chunked(Chunk::Trailers(seen)) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(());
                    };
                    if line.is_empty() {
                        *self = Decoder::Done;
                        return Ok(());
                    }
                    *seen += line.len() + 2;
                    if *seen > MAX_TRAILERS {
                        return Err(invalid("trailers too large"));
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Up to `left` bytes from the front of `buf`.
fn take(buf: &mut BytesMut, left: &mut u64) -> Bytes {
    let n = usize::try_from(*left).map_or(buf.len(), |left| left.min(buf.len()));
    *left -= n as u64;
    buf.split_to(n).freeze()
}

/// One CRLF-terminated line from the front of `buf`, without its CRLF.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    let window = &buf[..buf.len().min(MAX_LINE)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_LINE {
            Err(invalid("chunk line too long"))
        } else {
            Ok(None)
        };
    };
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(invalid("chunk line not ended by CRLF"));
    }
    let mut line = buf.split_to(lf + 1);
    line.truncate(lf - 1);
    Ok(Some(line))
}

/// A chunk-size line: hex digits, then optional extensions, which are ignored.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(invalid("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(invalid("invalid chunk size"));
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| invalid("invalid chunk size"))?;
    u64::from_str_radix(hex, 16).map_err(|_| invalid("invalid chunk size"))
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the body and whether it ended.
    fn decode(framing: Framing, input: &[u8], step: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match decoder.next(&mut buf)? {
                    Step::Data(d) => body.extend_from_slice(&d),
                    Step::NeedMore => break,
                    Step::End => return Ok((body, true, buf.len())),
                }
            }
        }
        Ok((body, decoder == Decoder::Done, buf.len()))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let input = b"5\r\nhello\r\n1;ext=1\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
        for step in [1, 2, 3, 7, input.len()] {
            let (body, ended, left) = decode(Framing::Chunked, input, step).unwrap();
            assert_eq!(body, b"hello 0123456789", "step {step}");
            assert!(ended);
            assert_eq!(left, 0);
        }
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let (body, ended, left) = decode(Framing::Length(5), b"helloNEXT", 9).unwrap();
        assert_eq!(body, b"hello");
        assert!(ended);
        assert_eq!(left, 4, "bytes after the body stay buffered");
        let (body, ended, _) = decode(Framing::Length(5), b"hel", 1).unwrap();
        assert_eq!((body.as_slice(), ended), (&b"hel"[..], false));
    }

    #[test]
    fn bad_chunked_framing_is_refused() {
        for input in [
            &b"x\r\nhello\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n",
            b"10000000000000000\r\n",
            b"5 x\r\nhello\r\n",
            b"-5\r\nhello\r\n",
        ] {
            assert!(decode(Framing::Chunked, input, 64).is_err(), "{input:?}");
        }
        let long_line = vec![b'1'; MAX_LINE + 1];
        assert!(decode(Framing::Chunked, &long_line, MAX_LINE + 1).is_err());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() <= MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"X-T: 0123456789012345678901234567890123456789\r\n");
        }
        assert!(decode(Framing::Chunked, &trailers, 1024).is_err());
    }

    #[test]
    fn the_end_is_seen_right_after_the_last_data() {
        let mut decoder = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        assert_eq!(
            decoder.next(&mut buf).unwrap(),
            Step::Data(Bytes::from("abc"))
        );
        decoder.skip_framing(&mut buf).unwrap();
        assert_eq!(decoder, Decoder::Done);
        assert!(buf.is_empty());
    }
}
