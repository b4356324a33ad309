//! Phase 7, forward: the request to the upstream (see [`crate::proxy`]) and its response, in
//! the client's protocol version; for a WebSocket upgrade, the `101` and the tunnel behind it.

use crate::body::GatewayBody;
use crate::error::{EdgeError, EdgeErrorKind};
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::proxy::{self, ClientIp, Forwarding};
use crate::stages::upstream_headers::TrustedHeaders;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

/// The client's side of a WebSocket upgrade, when the API passes them through
/// (`websocket: true`). On other APIs an upgrade request goes on as a plain request, without
/// its hop-by-hop headers. 400 for an `Upgrade: websocket` that is not an HTTP/1.1 `GET`
/// without a body.
pub fn take_websocket_upgrade(
    api: &ApiRuntime,
    req: &mut Request<Incoming>,
) -> Result<Option<OnUpgrade>, EdgeError> {
    if !api.spec.websocket {
        return Ok(None);
    }
    match proxy::websocket_requested(req) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(hyper::upgrade::on(req))),
        Err(why) => Err(EdgeErrorKind::BadRequest(why).into()),
    }
}

pub async fn forward(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    req: Request<Incoming>,
    rest: &str,
    client_ip: &ClientIp,
    trusted: &TrustedHeaders<'_>,
    websocket: Option<OnUpgrade>,
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
    let mut response = proxy::forward(
        &api.upstream,
        req,
        path,
        forwarding,
        trusted,
        api.spec.timeouts,
        websocket,
    )
    .await?;
    // Answer in the client's protocol, whatever the upstream spoke.
    *response.version_mut() = inbound_version;
    Ok(response)
}
