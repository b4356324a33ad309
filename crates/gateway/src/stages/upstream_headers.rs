//! Phase 6, upstream headers: telling the upstream who called — identity, session id,
//! issuer and mapped claims as headers, and the request id.
//!
//! What the upstream trusts must be impossible to forge on every route: hop-by-hop headers go
//! first (so a client's `Connection: X-Portico-Identity` cannot delete what the gateway adds),
//! then every identity header name configured on *any* API is removed from every request,
//! keyless APIs included; only then are this API's own values added.

use crate::admission::Admission;
use crate::error::{EdgeError, EdgeErrorKind};
use crate::flow::{RequestContext, X_REQUEST_ID};
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::proxy::hop_by_hop::remove_hop_by_hop;
use http::{HeaderMap, HeaderName, HeaderValue};
use portico_auth::upstream_jwt::UpstreamCaller;
use portico_core::UpstreamHeaders;
use serde_json::{Map, Value};

/// Sets the headers the upstream trusts on the request that goes to it, the gateway-signed
/// upstream JWT among them.
pub fn apply(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    ctx: &RequestContext<'_>,
    headers: &mut HeaderMap,
) -> Result<(), EdgeError> {
    remove_hop_by_hop(headers);
    // Clients rarely send any of these: one pass over the (few) names present, most of them
    // standard ones that compare in one step, is cheaper than a hash lookup per name.
    let names = pipeline.identity_header_names();
    if headers.keys().any(|k| names.contains(k)) {
        for name in names {
            headers.remove(name);
        }
    }
    headers.insert(X_REQUEST_ID, ctx.request_id.clone());
    let Some(admission) = &ctx.admission else {
        return Ok(());
    };
    if !api.spec.upstream_headers.forward_authorization {
        headers.remove(http::header::AUTHORIZATION);
    }
    api.identity_headers.insert(headers, admission);
    if let Some(jwt) = &api.upstream_jwt {
        let unsigned = |e: Box<dyn std::error::Error + Send + Sync>| {
            EdgeError::with_cause(EdgeErrorKind::UpstreamJwtUnsigned, e)
        };
        let token = jwt
            .signer
            .token_for(&upstream_caller(api, admission), ctx.now_secs)
            .map_err(|e| unsigned(e.into()))?;
        let value = HeaderValue::from_maybe_shared(token).map_err(|e| unsigned(e.into()))?;
        headers.insert(jwt.header.clone(), value);
    }
    Ok(())
}

/// Who the upstream JWT speaks of. Cached tokens are keyed by all of it, so a change of the
/// caller's policies, scope or client gets a new token.
fn upstream_caller<'a>(api: &'a ApiRuntime, admission: &'a Admission) -> UpstreamCaller<'a> {
    let policies_fingerprint = admission
        .policies
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, p| {
            p.id.bytes()
                .chain([0])
                .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
        });
    UpstreamCaller {
        api_id: &api.spec.id,
        identity: &admission.identity_text,
        issuer: admission.issuer.as_ref().and_then(|i| i.to_str().ok()),
        client_id: admission.client_id.as_deref(),
        scope: admission.scope.as_deref(),
        policies_fingerprint,
    }
}

/// The configured header names, parsed once per config version.
#[derive(Debug, Clone)]
pub struct IdentityHeaderNames {
    identity: Option<HeaderName>,
    session: Option<HeaderName>,
    issuer: Option<HeaderName>,
    claims: Vec<(portico_core::ClaimPath, HeaderName)>,
}

impl IdentityHeaderNames {
    pub fn try_new(config: &UpstreamHeaders) -> Result<Self, String> {
        let parse = |name: &str| {
            if name.contains('_') {
                return Err(format!(
                    "{name:?}: header names with _ are removed from requests; use -"
                ));
            }
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid header name"))
        };
        Ok(Self {
            identity: config.identity.as_deref().map(parse).transpose()?,
            session: config.session.as_deref().map(parse).transpose()?,
            issuer: config.issuer.as_deref().map(parse).transpose()?,
            claims: config
                .claims
                .iter()
                .map(|(c, h)| Ok((c.clone(), parse(h)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// Every header name the upstream is told to trust.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.identity
            .iter()
            .chain(&self.session)
            .chain(&self.issuer)
            .chain(self.claims.iter().map(|(_, h)| h))
    }

    /// The mapped claims of a token as header values (arrays joined with spaces; objects and
    /// values that cannot be header values are skipped).
    pub fn claim_values(&self, claims: &Map<String, Value>) -> Vec<(HeaderName, HeaderValue)> {
        self.claims
            .iter()
            .filter_map(|(claim, name)| {
                let text = match claim.lookup(claims)? {
                    Value::String(s) => s.clone(),
                    v @ (Value::Number(_) | Value::Bool(_)) => v.to_string(),
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => return None,
                };
                HeaderValue::from_bytes(text.as_bytes())
                    .ok()
                    .map(|v| (name.clone(), v))
            })
            .collect()
    }

    /// Sets the identity headers of an admitted token.
    pub fn insert(&self, headers: &mut HeaderMap, admission: &Admission) {
        if let Some(name) = &self.identity {
            headers.insert(name.clone(), admission.identity.clone());
        }
        if let Some(name) = &self.session {
            headers.insert(name.clone(), admission.session_hex.clone());
        }
        if let Some(name) = &self.issuer
            && let Some(issuer) = &admission.issuer
        {
            headers.insert(name.clone(), issuer.clone());
        }
        for (name, value) in &admission.claim_headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}
