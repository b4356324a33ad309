//! The request head sent upstream, written straight into one buffer in one pass over the
//! client's headers: its method and end-to-end headers, the rewritten path, the upstream's
//! `Host`, `X-Forwarded-*`, the gateway's own headers ([`OwnHeaders`]), the body's framing, and
//! for a WebSocket upgrade its `Upgrade` and `Connection`. This is the one place that decides
//! which client headers reach the upstream.

use super::Upstream;
use super::hop_by_hop::{self, HOP_BY_HOP};
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method};
use std::net::{IpAddr, SocketAddr};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// What the gateway does with a client header when writing the upstream head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// Sent on unchanged, unless the gateway sends its own header by that name.
    Pass,
    /// Written by the gateway itself (`Host`, `X-Request-Id`, `Content-Length` from the body's
    /// framing, and `Expect`, which hyper answers).
    Rewritten,
    /// Hop-by-hop (RFC 9110 §7.6.1): describes the client's connection only.
    HopByHop,
    /// `X-Forwarded-For`: extended from a trusted proxy, else replaced.
    ForwardedFor,
    /// `X-Forwarded-Proto` / `-Host`: kept from a trusted proxy, else replaced.
    ForwardedProto,
    ForwardedHost,
    /// `Forwarded`, `X-Real-IP`: kept from a trusted proxy, else removed.
    TrustedOnly,
    /// Rewrite-style headers: removed unless the API forwards them.
    RewriteStyle,
    /// Names with `_`: CGI, WSGI, PHP and Rack read `X_Portico_Identity` as
    /// `X-Portico-Identity`, so they could smuggle a trusted header past its removal. Removed,
    /// as nginx does by default.
    Underscored,
}

/// A string match compiles to a switch on the length: cheaper than comparing names in turn
/// for every header of every request.
fn treatment(name: &HeaderName) -> Treatment {
    match name.as_str() {
        "host" | "expect" | "x-request-id" | "content-length" => Treatment::Rewritten,
        "x-forwarded-for" => Treatment::ForwardedFor,
        "x-forwarded-proto" => Treatment::ForwardedProto,
        "x-forwarded-host" => Treatment::ForwardedHost,
        "forwarded"
        | "x-real-ip"
        | "true-client-ip"
        | "x-client-ip"
        | "x-cluster-client-ip"
        | "x-url-scheme"
        | "front-end-https" => Treatment::TrustedOnly,
        "x-original-url"
        | "x-rewrite-url"
        | "x-override-url"
        | "x-http-method-override"
        | "x-http-method"
        | "x-method-override" => Treatment::RewriteStyle,
        _ if hop_by_hop::is_hop_by_hop(name) => Treatment::HopByHop,
        // `X-Forwarded-Port`, `-Prefix`, `-Ssl`, `-Scheme`, `-Server`, …
        other if other.starts_with("x-forwarded-") => Treatment::TrustedOnly,
        other if other.as_bytes().contains(&b'_') => Treatment::Underscored,
        _ => Treatment::Pass,
    }
}

/// Names the gateway writes or frames the request with itself: an identity header by one of
/// them would corrupt the request or be lost.
pub fn is_managed_by_gateway(name: &HeaderName) -> bool {
    treatment(name) != Treatment::Pass || name == header::AUTHORIZATION
}

/// The client connection as forwarding headers describe it, formatted once per connection.
#[derive(Debug, Clone)]
pub struct ClientIp {
    ip: IpAddr,
    text: Bytes,
    /// `http` or `https`: how the client reached the gateway.
    proto: &'static str,
}

impl ClientIp {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            ip: addr.ip(),
            text: Bytes::from(addr.ip().to_string()),
            proto: "http",
        }
    }

    /// A client that reached the gateway over TLS.
    pub fn over_tls(mut self) -> Self {
        self.proto = "https";
        self
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

/// How forwarding headers are written for one request.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    pub client: &'a ClientIp,
    /// The peer is a trusted proxy: its forwarding headers are kept.
    pub trusted_peer: bool,
    pub forward_rewrite_headers: bool,
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

/// The headers the gateway itself tells the upstream (identity, upstream JWT, request id),
/// written after the client's.
pub trait GatewayHeaders {
    /// Whether the client's header by this name is withheld (asked only for headers that
    /// would otherwise pass).
    fn withholds(&self, name: &HeaderName) -> bool;
    /// Writes each header with `put(name, value)`; every value is a valid header value.
    fn write(&self, put: &mut dyn FnMut(&HeaderName, &[u8]));
    /// About how many bytes `write` adds.
    fn size_hint(&self) -> usize;
}

/// The upstream request head; `websocket` asks the upstream to switch.
pub fn encode_head(
    parts: &Parts,
    upstream: &Upstream,
    path: &str,
    forwarding: Forwarding<'_>,
    body: BodyFraming,
    websocket: bool,
    own: &impl GatewayHeaders,
) -> Vec<u8> {
    let head = Head {
        parts,
        upstream,
        path,
        forwarding,
        body,
        websocket,
    };
    match head.encode(&[], own) {
        Ok(bytes) => bytes,
        // Rare: `Connection` names end-to-end headers, which are left out too.
        Err(NamedByConnection) => {
            let named: Vec<&[u8]> = parts
                .headers
                .get_all(header::CONNECTION)
                .iter()
                .flat_map(|v| hop_by_hop::connection_tokens(v.as_bytes()))
                .collect();
            head.encode(&named, own).unwrap_or_default()
        }
    }
}

/// `Connection` names headers other than the standard hop-by-hop ones.
#[derive(Debug)]
struct NamedByConnection;

fn names_other_headers(connection: &HeaderValue) -> bool {
    hop_by_hop::connection_tokens(connection.as_bytes()).any(|token| {
        !token.eq_ignore_ascii_case(b"close")
            && !HOP_BY_HOP
                .iter()
                .any(|name| token.eq_ignore_ascii_case(name.as_str().as_bytes()))
    })
}

fn is_named(named: &[&[u8]], name: &HeaderName) -> bool {
    named
        .iter()
        .any(|token| token.eq_ignore_ascii_case(name.as_str().as_bytes()))
}

struct Head<'a> {
    parts: &'a Parts,
    upstream: &'a Upstream,
    path: &'a str,
    forwarding: Forwarding<'a>,
    body: BodyFraming,
    websocket: bool,
}

impl Head<'_> {
    /// The head, leaving out the client's headers `named` by its `Connection` header; `Err`
    /// when `named` is empty and the client's `Connection` names some.
    fn encode(
        &self,
        named: &[&[u8]],
        own: &impl GatewayHeaders,
    ) -> Result<Vec<u8>, NamedByConnection> {
        let Head {
            parts,
            upstream,
            path,
            forwarding,
            body,
            websocket,
        } = *self;
        let headers = &parts.headers;
        let query = parts.uri.query();
        let trusted = forwarding.trusted_peer;
        // Room for the whole head: growing the buffer copies it.
        let client_headers: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let mut head = Vec::with_capacity(
            128 + upstream.base_path.len()
                + path.len()
                + query.map_or(0, str::len)
                + client_headers
                + own.size_hint(),
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
        let (mut proto_sent, mut host_sent) = (false, false);
        for (name, value) in headers {
            let send = match treatment(name) {
                Treatment::Pass => !own.withholds(name),
                Treatment::HopByHop => {
                    if named.is_empty() && name == header::CONNECTION && names_other_headers(value)
                    {
                        return Err(NamedByConnection);
                    }
                    false
                }
                Treatment::Rewritten | Treatment::ForwardedFor => false,
                Treatment::ForwardedProto => trusted && !std::mem::replace(&mut proto_sent, true),
                Treatment::ForwardedHost => trusted && !std::mem::replace(&mut host_sent, true),
                Treatment::TrustedOnly => trusted,
                Treatment::RewriteStyle => forwarding.forward_rewrite_headers,
                Treatment::Underscored => false,
            };
            if send && (named.is_empty() || !is_named(named, name)) {
                put(&mut head, name.as_str().as_bytes(), value.as_bytes());
            }
        }

        head.extend_from_slice(b"x-forwarded-for: ");
        if trusted && (named.is_empty() || !is_named(named, &X_FORWARDED_FOR)) {
            for prior in headers.get_all(&X_FORWARDED_FOR) {
                head.extend_from_slice(prior.as_bytes());
                head.extend_from_slice(b", ");
            }
        }
        head.extend_from_slice(&forwarding.client.text);
        head.extend_from_slice(b"\r\n");
        if !proto_sent {
            put(
                &mut head,
                b"x-forwarded-proto",
                forwarding.client.proto.as_bytes(),
            );
        }
        let original_host = headers
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()));
        if !host_sent && let Some(host) = original_host {
            put(&mut head, b"x-forwarded-host", host);
        }
        own.write(&mut |name, value| put(&mut head, name.as_str().as_bytes(), value));
        if websocket {
            head.extend_from_slice(b"connection: upgrade\r\nupgrade: websocket\r\n");
        }
        match body {
            // Always the gateway's: the client's `Content-Length` decided the framing, and is
            // written whatever its `Connection` names.
            BodyFraming::Length => {
                if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
                    put(&mut head, b"content-length", length.as_bytes());
                }
            }
            BodyFraming::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            BodyFraming::Empty if expects_body(&parts.method) => {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
            _ => {}
        }
        head.extend_from_slice(b"\r\n");
        Ok(head)
    }
}

/// Methods whose requests normally carry a body; some servers answer 411 without a length.
fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

#[inline]
fn put(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.reserve(name.len() + value.len() + 4);
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
        head_with(request, body, true, false, false)
    }

    fn head_with(
        request: http::Request<()>,
        body: BodyFraming,
        trusted_peer: bool,
        forward_rewrite_headers: bool,
        websocket: bool,
    ) -> String {
        let pools = ConnectionPools::default();
        let target = UpstreamTarget::try_new("http://backend:8080/base").unwrap();
        let upstream =
            Upstream::try_new(&target, &Default::default(), Default::default(), &pools).unwrap();
        let (parts, ()) = request.into_parts();
        let client = ClientIp::new("10.0.0.9:5555".parse().unwrap());
        let forwarding = Forwarding {
            client: &client,
            trusted_peer,
            forward_rewrite_headers,
        };
        String::from_utf8(encode_head(
            &parts, &upstream, "/items/1", forwarding, body, websocket, &Own,
        ))
        .unwrap()
    }

    /// The gateway's own headers in these tests: it reserves `x-trusted` and sends its own.
    struct Own;
    impl GatewayHeaders for Own {
        fn withholds(&self, name: &HeaderName) -> bool {
            name == "x-trusted"
        }
        fn write(&self, put: &mut dyn FnMut(&HeaderName, &[u8])) {
            put(&HeaderName::from_static("x-trusted"), b"gateway");
        }
        fn size_hint(&self) -> usize {
            20
        }
    }

    #[test]
    fn every_hop_by_hop_name_is_treated_as_one() {
        for name in &HOP_BY_HOP {
            assert_eq!(treatment(name), Treatment::HopByHop, "{name}");
        }
    }

    #[test]
    fn client_headers_by_the_gateways_names_and_hop_by_hop_never_pass() {
        let request = |connection: &str| {
            http::Request::get("http://gw.example/api/items/1")
                .header("host", "gw.example")
                .header("x-trusted", "forged")
                .header("X-Request-Id", "forged")
                .header("x-named", "by connection")
                .header("te", "trailers")
                .header("keep-alive", "timeout=5")
                .header("accept", "a")
                .header("connection", connection)
                .body(())
                .unwrap()
        };
        let expected = "GET /base/items/1 HTTP/1.1\r\n\
                        host: backend:8080\r\n\
                        {named}accept: a\r\n\
                        x-forwarded-for: 10.0.0.9\r\n\
                        x-forwarded-proto: http\r\n\
                        x-forwarded-host: gw.example\r\n\
                        x-trusted: gateway\r\n\r\n";
        assert_eq!(
            head_with(
                request("keep-alive, close"),
                BodyFraming::Empty,
                false,
                false,
                false
            ),
            expected.replace("{named}", "x-named: by connection\r\n")
        );
        assert_eq!(
            head_with(
                request("Keep-Alive, X-Named, x-trusted"),
                BodyFraming::Empty,
                false,
                false,
                false
            ),
            expected.replace("{named}", "")
        );
    }

    #[test]
    fn a_connection_naming_content_length_keeps_the_body_framed() {
        // `BodyFraming` is decided from the client's headers; the head must declare it even
        // when `Connection` names `Content-Length`, or the body is read upstream as the next
        // request (smuggled past authentication, with any headers it likes).
        let request = http::Request::post("http://gw.example/api/items/1")
            .header("host", "gw.example")
            .header("content-length", "5")
            .header("connection", "content-length")
            .body(())
            .unwrap();
        let head = head_for(request, BodyFraming::Length);
        assert!(
            head.contains("content-length: 5\r\n")
                || head.contains("transfer-encoding: chunked\r\n"),
            "the body is not framed: {head}"
        );
    }

    #[test]
    fn forwarding_headers_from_untrusted_peers_are_replaced() {
        let request = || {
            http::Request::get("http://gw.example/api/items/1")
                .header("host", "gw.example")
                .header("x-forwarded-for", "192.0.2.1")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "evil.example")
                .header("forwarded", "for=192.0.2.1")
                .header("x-real-ip", "192.0.2.1")
                .header("x-original-url", "/admin")
                .header("x-http-method-override", "DELETE")
                .header("x-forwarded-prefix", "/admin")
                .header("true-client-ip", "192.0.2.1")
                .header("x_portico_identity", "alice")
                .body(())
                .unwrap()
        };
        assert_eq!(
            head_with(request(), BodyFraming::Empty, false, false, false),
            "GET /base/items/1 HTTP/1.1\r\n\
             host: backend:8080\r\n\
             x-forwarded-for: 10.0.0.9\r\n\
             x-forwarded-proto: http\r\n\
             x-forwarded-host: gw.example\r\n\
             x-trusted: gateway\r\n\r\n"
        );
        let trusted = head_with(request(), BodyFraming::Empty, true, true, false);
        for kept in [
            "x-forwarded-for: 192.0.2.1, 10.0.0.9\r\n",
            "x-forwarded-proto: https\r\n",
            "x-forwarded-host: evil.example\r\n",
            "forwarded: for=192.0.2.1\r\n",
            "x-real-ip: 192.0.2.1\r\n",
            "x-original-url: /admin\r\n",
            "x-http-method-override: DELETE\r\n",
            "x-forwarded-prefix: /admin\r\n",
            "true-client-ip: 192.0.2.1\r\n",
        ] {
            assert!(trusted.contains(kept), "{kept:?} in {trusted}");
        }
        assert_eq!(trusted.matches("x-forwarded-proto").count(), 1);
        assert!(
            !trusted.contains("x_portico"),
            "underscored names never pass"
        );
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
             x-forwarded-proto: https\r\n\
             accept: a\r\n\
             accept: b\r\n\
             x-forwarded-for: 192.0.2.1, 10.0.0.9\r\n\
             x-forwarded-host: gw.example\r\n\
             x-trusted: gateway\r\n\r\n"
        );
    }

    #[test]
    fn websocket_upgrades_ask_the_upstream_to_switch() {
        // What the client sent as `Upgrade`/`Connection` is not copied; the
        // `Sec-WebSocket-*` headers are end-to-end.
        let request = http::Request::get("http://gw.example/api/items/1")
            .header("host", "gw.example")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .body(())
            .unwrap();
        assert_eq!(
            head_with(request, BodyFraming::Empty, false, false, true),
            "GET /base/items/1 HTTP/1.1\r\n\
             host: backend:8080\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-version: 13\r\n\
             x-forwarded-for: 10.0.0.9\r\n\
             x-forwarded-proto: http\r\n\
             x-forwarded-host: gw.example\r\n\
             x-trusted: gateway\r\n\
             connection: upgrade\r\n\
             upgrade: websocket\r\n\r\n"
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
