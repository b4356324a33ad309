//! Phase 7, forward: the request to the upstream (see [`crate::proxy`]) and its response, in
//! the client's protocol version.

use crate::body::GatewayBody;
use crate::error::EdgeError;
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::proxy::{self, ClientIp, Forwarding};
use http::{Request, Response};
use hyper::body::Incoming;

pub async fn forward(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    req: Request<Incoming>,
    rest: &str,
    client_ip: &ClientIp,
) -> Result<Response<GatewayBody>, EdgeError> {
    let inbound_version = req.version();
    let original_uri = req.uri().clone();
    let path = if api.spec.strip_listen_path {
        rest
    } else {
        original_uri.path()
    };
    let forwarding = Forwarding {
        client: client_ip,
        trusted_peer: pipeline.is_trusted_proxy(client_ip.ip()),
        forward_rewrite_headers: api.spec.upstream_headers.forward_rewrite_headers,
    };
    let mut response =
        proxy::forward(&api.upstream, req, path, forwarding, api.spec.timeouts).await?;
    // Answer in the client's protocol, whatever the upstream spoke.
    *response.version_mut() = inbound_version;
    Ok(response)
}
