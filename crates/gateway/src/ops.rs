//! Operations endpoints on the admin listener: `/metrics` (Prometheus text), `/health`,
//! `/ready` (which says when the node serves its last good configuration), and
//! `/.well-known/jwks.json` (the keys of the upstream JWTs the gateway signs). When the admin
//! REST API is served (`crates/admin`), these answer beside it.

use crate::Gateway;
use crate::body::{FullBody, GatewayBody};
use crate::pipeline::Pipeline;
use crate::server::serve_admin_connections;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the operations endpoints of `gateway` on `listener` until `shutdown` completes,
/// with the admin listener's limits ([`serve_admin_connections`]).
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let service = service_fn(move |req: Request<Incoming>| {
        let gateway = gateway.clone();
        async move { Ok::<_, Infallible>(gateway.ops_response(req.uri().path())) }
    });
    serve_admin_connections(listener, shutdown, service).await;
}

impl Gateway {
    /// The answer of the operations endpoint at `path` (404 for any other path).
    pub fn ops_response(&self, path: &str) -> Response<GatewayBody> {
        answer(self, path)
    }
}

fn answer(gateway: &Gateway, path: &str) -> Response<GatewayBody> {
    let (status, content_type, body) = match path {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            gateway.metrics().render(),
        ),
        "/.well-known/jwks.json" => return jwks_response(&gateway.pipeline.load()),
        "/ready" => (StatusCode::OK, "application/json", ready_body(gateway)),
        "/health" => (
            StatusCode::OK,
            "application/json",
            "{\"status\":\"ok\"}".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"status\":\"not found\"}".to_string(),
        ),
    };
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// Ready: the node can serve. A node serving its last good configuration (the store is
/// unavailable) is ready too, and says so with the revision it serves.
fn ready_body(gateway: &Gateway) -> String {
    match gateway.metrics().config_served() {
        (revision, true) => {
            format!("{{\"status\":\"ok\",\"configuration\":\"last_good\",\"revision\":{revision}}}")
        }
        (_, false) => "{\"status\":\"ok\"}".to_string(),
    }
}

/// The upstream JWT signers' public keys (`{"keys": [...]}`), for upstreams to verify with.
pub fn jwks_response(pipeline: &Pipeline) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(pipeline.jwks()));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}
