//! Phase 8, respond: the response the client gets — the upstream's, or the classified error's
//! — with rate-limit headers and the request id; the request counted in the metrics (and, for
//! a token that names its OAuth client, in the usage per client and minute), and a failure
//! logged once, with its request id, fault and cause.

use super::rate_headers;
use crate::body::GatewayBody;
use crate::error::{EdgeError, Fault};
use crate::flow::{RequestContext, X_REQUEST_ID};
use crate::metrics::GatewayMetrics;
use crate::usage::Usage;
use http::Response;

pub fn respond(
    ctx: &RequestContext<'_>,
    result: Result<Response<GatewayBody>, EdgeError>,
    metrics: &GatewayMetrics,
    usage: &Usage,
) -> Response<GatewayBody> {
    let api_id = ctx.api.map_or("-", |a| &*a.spec.id);
    let mut response = match result {
        Ok(response) => {
            tracing::debug!(request_id = ?ctx.request_id, api = api_id, status = response.status().as_u16(), "request");
            response
        }
        Err(error) => {
            log(ctx, api_id, &error);
            error.to_response()
        }
    };
    if let Some(d) = &ctx.decision {
        rate_headers::insert(response.headers_mut(), d);
    }
    response
        .headers_mut()
        .insert(X_REQUEST_ID, ctx.request_id.clone());
    let status = response.status().as_u16();
    if let Some(api) = ctx.api {
        api.metrics
            .record(metrics, status, ctx.started.elapsed().as_secs_f64());
    }
    if let Some(admission) = &ctx.admission
        && let (Some(key), Some(client_id)) = (admission.usage_key, &admission.client_id)
    {
        let issuer = admission.token_issuer.as_deref().unwrap_or("");
        usage.record(key, issuer, client_id, ctx.now_secs, status);
    }
    response
}

/// One line per failure: client mistakes at debug, upstream trouble at warn, our own at error;
/// an issuer's trouble at debug (the introspector warns once per failed call).
fn log(ctx: &RequestContext<'_>, api: &str, error: &EdgeError) {
    let status = error.status().as_u16();
    let fault = error.fault().as_str();
    match error.fault() {
        Fault::Client => {
            tracing::debug!(request_id = ?ctx.request_id, api, status, fault, error = %error, "request rejected");
        }
        Fault::Upstream => {
            tracing::warn!(request_id = ?ctx.request_id, api, status, fault, error = %error, "upstream failed");
        }
        // The introspector logged why, once per call; this is each request it failed.
        Fault::IdentityProvider => {
            tracing::debug!(request_id = ?ctx.request_id, api, status, fault, error = %error, "token issuer unavailable");
        }
        Fault::Internal => {
            tracing::error!(request_id = ?ctx.request_id, api, status, fault, error = %error, "request failed");
        }
    }
}
