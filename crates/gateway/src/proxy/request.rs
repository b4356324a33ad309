//! The request head sent upstream, written straight into one buffer: the client's method and
//! end-to-end headers, the rewritten path, the upstream's `Host`, `X-Forwarded-*`, and the
//! body's framing.

use super::Upstream;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method};
use std::net::SocketAddr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Client headers the gateway writes itself. `Expect` is answered by the gateway's own
/// server, which sends `100 Continue` when it starts reading the body. (A `static`: a `const`
/// array of header names is built and dropped at every use.)
static REWRITTEN: [HeaderName; 5] = [
    header::HOST,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::EXPECT,
];

/// The client's address as an `X-Forwarded-For` entry, formatted once per connection.
#[derive(Debug, Clone)]
pub struct ClientIp(Bytes);

impl ClientIp {
    pub fn new(addr: SocketAddr) -> Self {
        Self(Bytes::from(addr.ip().to_string()))
    }
}

/// How the request body travels upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// As many bytes as the client's `Content-Length` says.
    Length,
    /// A body of unknown length (an HTTP/2 client sent no `Content-Length`), sent chunked.
    Chunked,
}

impl BodyFraming {
    pub fn of(headers: &HeaderMap, end_of_stream: bool) -> Self {
        if headers.contains_key(header::CONTENT_LENGTH) {
            BodyFraming::Length
        } else if end_of_stream {
            BodyFraming::Empty
        } else {
            BodyFraming::Chunked
        }
    }
}

/// The upstream request head for a request whose hop-by-hop headers are already gone.
pub fn encode_head(
    parts: &Parts,
    upstream: &Upstream,
    path: &str,
    client_ip: &ClientIp,
    body: BodyFraming,
) -> Vec<u8> {
    let headers = &parts.headers;
    let query = parts.uri.query();
    let mut head = Vec::with_capacity(
        256 + upstream.base_path.len()
            + path.len()
            + query.map_or(0, str::len)
            + 64 * headers.len(),
    );
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(upstream.base_path.as_bytes());
    head.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        head.push(b'?');
        head.extend_from_slice(q.as_bytes());
    }
    head.extend_from_slice(b" HTTP/1.1\r\n");
    put(&mut head, b"host", upstream.host.as_bytes());
    for (name, value) in headers {
        if !REWRITTEN.contains(name) {
            put(&mut head, name.as_str().as_bytes(), value.as_bytes());
        }
    }

    head.extend_from_slice(b"x-forwarded-for: ");
    for prior in headers.get_all(&X_FORWARDED_FOR) {
        head.extend_from_slice(prior.as_bytes());
        head.extend_from_slice(b", ");
    }
    head.extend_from_slice(&client_ip.0);
    head.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    let original_host = headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
    if let Some(host) = original_host {
        put(&mut head, b"x-forwarded-host", host);
    }
    match body {
        BodyFraming::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyFraming::Empty if expects_body(&parts.method) => {
            head.extend_from_slice(b"content-length: 0\r\n");
        }
        _ => {}
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Methods whose requests normally carry a body; some servers answer 411 without a length.
fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

fn put(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ConnectionPools;
    use portico_core::api::UpstreamTarget;

    fn head_for(request: http::Request<()>, body: BodyFraming) -> String {
        let pools = ConnectionPools::default();
        let target = UpstreamTarget::try_new("http://backend:8080/base").unwrap();
        let upstream = Upstream::try_new(&target, &pools).unwrap();
        let (parts, ()) = request.into_parts();
        let ip = ClientIp::new("10.0.0.9:5555".parse().unwrap());
        String::from_utf8(encode_head(&parts, &upstream, "/items/1", &ip, body)).unwrap()
    }

    #[test]
    fn head_carries_rewritten_path_host_and_forwarding_headers() {
        let request = http::Request::get("http://gw.example/api/items/1?x=1&y=2")
            .header("host", "gw.example")
            .header("x-forwarded-for", "192.0.2.1")
            .header("x-forwarded-proto", "https")
            .header("expect", "100-continue")
            .header("accept", "a")
            .header("accept", "b")
            .body(())
            .unwrap();
        assert_eq!(
            head_for(request, BodyFraming::Empty),
            "GET /base/items/1?x=1&y=2 HTTP/1.1\r\n\
             host: backend:8080\r\n\
             accept: a\r\n\
             accept: b\r\n\
             x-forwarded-for: 192.0.2.1, 10.0.0.9\r\n\
             x-forwarded-proto: http\r\n\
             x-forwarded-host: gw.example\r\n\r\n"
        );
    }

    #[test]
    fn body_framing_is_declared() {
        let post = || http::Request::post("/api/items/1").body(()).unwrap();
        assert!(head_for(post(), BodyFraming::Empty).ends_with("content-length: 0\r\n\r\n"));
        assert!(
            head_for(post(), BodyFraming::Chunked).ends_with("transfer-encoding: chunked\r\n\r\n")
        );
        let delete = http::Request::delete("/api/items/1").body(()).unwrap();
        assert!(!head_for(delete, BodyFraming::Empty).contains("content-length"));

        let mut headers = HeaderMap::new();
        assert_eq!(BodyFraming::of(&headers, true), BodyFraming::Empty);
        assert_eq!(BodyFraming::of(&headers, false), BodyFraming::Chunked);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert_eq!(BodyFraming::of(&headers, true), BodyFraming::Length);
    }
}
