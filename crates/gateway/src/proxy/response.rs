//! The upstream's response head: parsed with `httparse`, framed strictly by RFC 9112 §6.3, its
//! hop-by-hop headers dropped. A `101` is accepted only as the answer to a WebSocket upgrade,
//! and only when it switches to `websocket`.

use super::hop_by_hop::{connection_tokens, is_hop_by_hop};
use bytes::{Buf, BytesMut};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// A response head larger than this is refused.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
const ADDED_BY_GATEWAY: usize = 8;

/// What the request asked for, as far as reading its answer depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Plain,
    /// `HEAD`: no body follows, whatever the framing headers say.
    Head,
    /// A WebSocket upgrade: `101` to `websocket` is a valid answer.
    WebSocket,
}

impl Asked {
    pub fn of(method: &http::Method, websocket: bool) -> Self {
        if websocket {
            Asked::WebSocket
        } else if method == http::Method::HEAD {
            Asked::Head
        } else {
            Asked::Plain
        }
    }
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a `HEAD` request, or a 1xx (`101` included), 204 or 304 status.
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// End-to-end headers only.
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Why a response head was refused.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    #[error("invalid response head: {0}")]
    Syntax(httparse::Error),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("invalid status code")]
    Status,
    #[error("invalid header")]
    Header,
    #[error("invalid or conflicting Content-Length")]
    ContentLength,
    #[error("protocol switch that was not asked for")]
    UnrequestedUpgrade,
    #[error("switched to a protocol other than websocket")]
    WrongUpgrade,
}

/// Parses a complete head from the front of `buf` and consumes it; `Ok(None)` when more
/// bytes are needed. After a `101`, what is left in `buf` belongs to the new protocol.
pub fn parse(buf: &mut BytesMut, asked: Asked) -> Result<Option<ResponseHead>, Malformed> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(Malformed::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Malformed::TooLarge),
        Err(e) => return Err(Malformed::Syntax(e)),
    };
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(Malformed::Status)?;
    let switching = status == StatusCode::SWITCHING_PROTOCOLS;
    if switching && asked != Asked::WebSocket {
        return Err(Malformed::UnrequestedUpgrade);
    }
    let mut to_websocket = false;
    let http11 = parsed.version == Some(1);

    // Room for the headers the gateway adds (request id, rate limits) without a regrowth.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + ADDED_BY_GATEWAY);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked_last = false;
    let mut close = !http11;
    // Headers named by `Connection` besides `close` and `keep-alive` (rare).
    let mut connection_named: Vec<HeaderName> = Vec::new();
    // Repeated or listed lengths are sent on as one plain value.
    let mut normalize_length = false;
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Malformed::Header)?;
        if name == header::CONTENT_LENGTH {
            let n = parse_content_length(h.value)?;
            if content_length.is_some_and(|prior| prior != n) {
                return Err(Malformed::ContentLength);
            }
            normalize_length |= content_length.is_some() || h.value.contains(&b',');
            content_length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            chunked_last = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::UPGRADE {
            to_websocket = h.value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if name == header::CONNECTION {
            for token in connection_tokens(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                    connection_named.extend(HeaderName::from_bytes(token).ok());
                }
            }
        }
        if is_hop_by_hop(&name) {
            continue;
        }
        // Values are copied: the connection's buffer stays unshared and is reused.
        let value = HeaderValue::from_bytes(h.value).map_err(|_| Malformed::Header)?;
        headers.append(name, value);
    }

    if switching && !to_websocket {
        return Err(Malformed::WrongUpgrade);
    }

    let framing = if asked == Asked::Head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Empty
    } else if transfer_encoding {
        // A Transfer-Encoding overrides Content-Length; not ending in chunked, the body
        // runs until close (RFC 9112 §6.3).
        if content_length.is_some() || !chunked_last {
            close = true;
        }
        if chunked_last {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        close = true;
        Framing::UntilClose
    };
    buf.advance(len);

    for name in &connection_named {
        headers.remove(name);
    }
    if switching {
        // The connection is no longer HTTP: nothing to frame, nothing to reuse.
        headers.remove(header::CONTENT_LENGTH);
        close = true;
    } else if let Some(n) = content_length {
        match framing {
            Framing::Chunked | Framing::UntilClose => {
                headers.remove(header::CONTENT_LENGTH);
            }
            _ if normalize_length => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            _ => {}
        }
    }
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        keep_alive: !close,
    }))
}

/// A `Content-Length` value: digits, or a list of identical digit strings.
fn parse_content_length(value: &[u8]) -> Result<u64, Malformed> {
    let mut result = None;
    for part in value.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Malformed::ContentLength);
        }
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if result.is_some_and(|prior| prior != n) {
            return Err(Malformed::ContentLength);
        }
        result = Some(n);
    }
    result.ok_or(Malformed::ContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &str, head_request: bool) -> Result<ResponseHead, Malformed> {
        let asked = if head_request {
            Asked::Head
        } else {
            Asked::Plain
        };
        parse_asked(text, asked)
    }

    fn parse_asked(text: &str, asked: Asked) -> Result<ResponseHead, Malformed> {
        let mut buf = BytesMut::from(text);
        let head = parse(&mut buf, asked)?.expect("complete head");
        Ok(head)
    }

    #[test]
    fn content_length_frames_and_is_kept() {
        let head = parse_all(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\nServer: up\r\n\r\nhello",
            false,
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.headers["content-length"], "5");
        assert_eq!(head.headers["x-up"], "1");
        assert_eq!(head.headers.len(), 3);
    }

    #[test]
    fn partial_heads_wait_and_the_rest_stays_buffered() {
        let mut buf = BytesMut::from("HTTP/1.1 204 No Content\r\nDate: x\r\n");
        assert!(parse(&mut buf, Asked::Plain).unwrap().is_none());
        buf.extend_from_slice(b"\r\nNEXT");
        let head = parse(&mut buf, Asked::Plain).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Empty);
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn chunked_wins_over_content_length_and_closes() {
        let head = parse_all(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive);
        assert!(!head.headers.contains_key("content-length"));
        assert!(!head.headers.contains_key("transfer-encoding"));
    }

    #[test]
    fn unframed_or_non_chunked_bodies_run_until_close() {
        for text in [
            "HTTP/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\n",
        ] {
            let head = parse_all(text, false).unwrap();
            assert_eq!(head.framing, Framing::UntilClose, "{text}");
            assert!(!head.keep_alive);
        }
        let head = parse_all("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false).unwrap();
        assert!(!head.keep_alive, "HTTP/1.0 connections are not reused");
    }

    #[test]
    fn bodiless_responses() {
        let head = parse_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true).unwrap();
        assert_eq!(head.framing, Framing::Empty);
        assert_eq!(
            head.headers["content-length"], "10",
            "HEAD keeps the length"
        );
        for status in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            assert_eq!(parse_all(&text, false).unwrap().framing, Framing::Empty);
        }
    }

    #[test]
    fn connection_and_the_headers_it_names_go() {
        let head = parse_all(
            "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(!head.keep_alive);
        assert_eq!(head.headers.len(), 1);
        assert!(head.headers.contains_key("content-length"));
    }

    #[test]
    fn switching_protocols_only_to_the_websocket_asked_for() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Accept: abc\r\nContent-Length: 3\r\n\r\n\x81\x01x"[..],
        );
        let head = parse(&mut buf, Asked::WebSocket).unwrap().unwrap();
        assert_eq!(head.status, 101);
        assert_eq!(head.framing, Framing::Empty);
        assert!(!head.keep_alive);
        assert_eq!(head.headers.len(), 1, "{:?}", head.headers);
        assert_eq!(head.headers["sec-websocket-accept"], "abc");
        assert_eq!(
            &buf[..],
            b"\x81\x01x",
            "the new protocol's bytes stay buffered"
        );

        let h2c = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
        assert!(matches!(
            parse_asked(h2c, Asked::WebSocket),
            Err(Malformed::WrongUpgrade)
        ));
        let bare = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
        assert!(matches!(
            parse_asked(bare, Asked::WebSocket),
            Err(Malformed::WrongUpgrade)
        ));
        let websocket = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        assert!(matches!(
            parse_asked(websocket, Asked::Plain),
            Err(Malformed::UnrequestedUpgrade)
        ));
        // Declined: an ordinary answer, read as for a GET.
        let declined = parse_asked(
            "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 2\r\n\r\nno",
            Asked::WebSocket,
        )
        .unwrap();
        assert_eq!(declined.framing, Framing::Length(2));
        assert!(declined.keep_alive);
    }

    #[test]
    fn bad_heads_are_refused() {
        let refused = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 99 Odd\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
        ];
        for text in refused {
            assert!(parse_all(text, false).is_err(), "{text:?}");
        }
        // Identical repeated lengths are one length.
        let head = parse_all(
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        let lengths: Vec<_> = head.headers.get_all("content-length").iter().collect();
        assert_eq!(lengths, ["5"]);

        let mut huge = BytesMut::from("HTTP/1.1 200 OK\r\n");
        while huge.len() <= MAX_HEAD_BYTES {
            huge.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert!(matches!(
            parse(&mut huge, Asked::Plain),
            Err(Malformed::TooLarge)
        ));
    }
}
