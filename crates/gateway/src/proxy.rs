//! Forwarding to the upstream: URL rewrite, hop-by-hop headers, `X-Forwarded-*`, pooled
//! keep-alive connections, connect and response timeouts. Bodies stream both ways.

use crate::error::Rejection;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;
use portico_core::api::UpstreamTarget;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

pub type UpstreamClient = Client<HttpConnector, Incoming>;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Connection pools, one per connect timeout, kept across config reloads.
#[derive(Default)]
pub struct UpstreamClients {
    by_connect_ms: Mutex<HashMap<u64, UpstreamClient>>,
}

impl std::fmt::Debug for UpstreamClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamClients")
    }
}

impl UpstreamClients {
    pub fn get(&self, connect_ms: u64) -> UpstreamClient {
        self.by_connect_ms
            .lock()
            .entry(connect_ms)
            .or_insert_with(|| {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(Duration::from_millis(connect_ms)));
                connector.set_nodelay(true);
                connector.enforce_http(true);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .pool_max_idle_per_host(256)
                    .build(connector)
            })
            .clone()
    }
}

const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including those named in `Connection`.
/// Most messages have none, so one pass over the (few) present names decides whether any work
/// is needed.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// An API's upstream, parsed once per config version.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    host: HeaderValue,
}

impl Upstream {
    pub fn try_new(target: &UpstreamTarget) -> Result<Self, String> {
        let invalid = |_| {
            format!(
                "{}://{} is not a valid upstream",
                target.scheme, target.authority
            )
        };
        Ok(Self {
            scheme: Scheme::try_from(target.scheme.as_str())
                .map_err(|_| format!("invalid scheme {:?}", target.scheme))?,
            authority: Authority::try_from(target.authority.as_str()).map_err(invalid)?,
            base_path: target.base_path.clone(),
            host: HeaderValue::from_str(&target.authority)
                .map_err(|_| format!("invalid host {:?}", target.authority))?,
        })
    }

    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }
}

/// The client's address as an `X-Forwarded-For` entry, formatted once per connection.
#[derive(Debug, Clone)]
pub struct ClientIp(HeaderValue);

impl ClientIp {
    pub fn new(addr: SocketAddr) -> Self {
        Self(
            HeaderValue::from_str(&addr.ip().to_string())
                .expect("an IP address is a valid header value"),
        )
    }
}

/// Turns the client's request into the upstream request, in place.
pub fn prepare(
    request: &mut Request<Incoming>,
    upstream: &Upstream,
    path: &str,
    client_ip: &ClientIp,
) -> Result<(), Rejection> {
    let query = request.uri().query();
    let mut path_and_query = String::with_capacity(
        upstream.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1),
    );
    path_and_query.push_str(&upstream.base_path);
    path_and_query.push_str(path);
    if let Some(q) = query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    let original_host = request.headers().get(header::HOST).cloned().or_else(|| {
        request
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(upstream.scheme.clone());
    parts.authority = Some(upstream.authority.clone());
    parts.path_and_query = Some(
        PathAndQuery::from_maybe_shared(Bytes::from(path_and_query))
            .map_err(|_| Rejection::BadGateway)?,
    );
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| Rejection::BadGateway)?;
    *request.version_mut() = Version::HTTP_11;
    let headers = request.headers_mut();
    remove_hop_by_hop(headers);
    let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prior) => {
            let ip = client_ip.0.to_str().unwrap_or_default();
            HeaderValue::from_maybe_shared(Bytes::from(format!("{prior}, {ip}"))).ok()
        }
        None => Some(client_ip.0.clone()),
    };
    if let Some(v) = forwarded_for {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers.insert(header::HOST, upstream.host.clone());
    Ok(())
}

/// Sends the request; 502 when the upstream cannot be reached, 504 when its response head
/// does not arrive within `read_timeout`.
pub async fn send(
    client: &UpstreamClient,
    request: Request<Incoming>,
    read_timeout: Duration,
) -> Result<Response<Incoming>, Rejection> {
    match tokio::time::timeout(read_timeout, client.request(request)).await {
        Err(_) => Err(Rejection::GatewayTimeout),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, connect = e.is_connect(), "upstream request failed");
            Err(Rejection::BadGateway)
        }
        Ok(Ok(mut response)) => {
            remove_hop_by_hop(response.headers_mut());
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert(header::TE, "trailers".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}
