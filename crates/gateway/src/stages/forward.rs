//! Phase 7, forward: the request to the upstream (see [`crate::proxy`]) and its response, in
//! the client's protocol version.

use crate::body::GatewayBody;
use crate::error::EdgeError;
use crate::pipeline::ApiRuntime;
use crate::proxy::{self, ClientIp};
use http::{Request, Response};
use hyper::body::Incoming;

pub async fn forward(
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
    let mut response =
        proxy::forward(&api.upstream, req, path, client_ip, api.spec.timeouts).await?;
    // Answer in the client's protocol, whatever the upstream spoke.
    *response.version_mut() = inbound_version;
    Ok(response)
}
