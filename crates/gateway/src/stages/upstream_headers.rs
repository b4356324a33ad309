//! Phase 6, upstream headers: telling the upstream who called — identity, session id,
//! issuer and mapped claims as headers, the gateway-signed upstream JWT, and the request id.
//!
//! What the upstream trusts must be impossible to forge on every route. Nothing is removed
//! from the client's header map: the upstream head is written in one pass
//! ([`crate::proxy`]), and that pass leaves out hop-by-hop headers (with those named in
//! `Connection`, so a client's `Connection: X-Portico-Identity` cannot delete what the gateway
//! adds), every identity header name configured on *any* API (keyless APIs included), and
//! the client's `X-Request-Id`; it then writes [`TrustedHeaders`].

use crate::admission::Admission;
use crate::error::{EdgeError, EdgeErrorKind};
use crate::flow::{RequestContext, X_REQUEST_ID};
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::proxy::{GatewayHeaders, is_managed_by_gateway};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use portico_auth::upstream_jwt::UpstreamCaller;
use portico_core::UpstreamHeaders;
use serde_json::{Map, Value};

/// The headers the gateway itself sends the upstream for one request.
pub struct TrustedHeaders<'a> {
    /// Client headers by these names never reach the upstream.
    reserved: &'a [HeaderName],
    forward_authorization: bool,
    request_id: &'a HeaderValue,
    caller: Option<(&'a IdentityHeaderNames, &'a Admission)>,
    upstream_jwt: Option<(&'a HeaderName, Bytes)>,
}

/// What the upstream is told about this request; signs the upstream JWT (or takes it from
/// the signer's cache).
pub fn trusted_headers<'a>(
    pipeline: &'a Pipeline,
    api: &'a ApiRuntime,
    ctx: &'a RequestContext<'_>,
) -> Result<TrustedHeaders<'a>, EdgeError> {
    let admission = ctx.admission.as_deref();
    let upstream_jwt = match (&api.upstream_jwt, admission) {
        (Some(jwt), Some(admission)) => {
            let token = jwt
                .signer
                .token_for(&upstream_caller(api, admission), ctx.now_secs)
                .map_err(|e| EdgeError::with_cause(EdgeErrorKind::UpstreamJwtUnsigned, e))?;
            Some((&jwt.header, token))
        }
        _ => None,
    };
    Ok(TrustedHeaders {
        reserved: pipeline.identity_header_names(),
        // Keyless APIs have no token of their own to keep from the upstream.
        forward_authorization: admission.is_none()
            || api.spec.upstream_headers.forward_authorization,
        request_id: &ctx.request_id,
        caller: admission.map(|a| (&api.identity_headers, a)),
        upstream_jwt,
    })
}

impl GatewayHeaders for TrustedHeaders<'_> {
    #[inline]
    fn withholds(&self, name: &HeaderName) -> bool {
        // Clients rarely send any of these, and most of their headers are standard names,
        // which differ from the (custom) reserved ones in one comparison.
        (!self.forward_authorization && name == header::AUTHORIZATION)
            || self.reserved.contains(name)
    }

    fn write(&self, put: &mut dyn FnMut(&HeaderName, &[u8])) {
        put(&X_REQUEST_ID, self.request_id.as_bytes());
        if let Some((names, admission)) = self.caller {
            names.write(admission, put);
        }
        if let Some((name, token)) = &self.upstream_jwt {
            // A JWS compact serialization: base64url and dots only.
            debug_assert!(HeaderValue::from_bytes(token).is_ok());
            put(name, token);
        }
    }

    fn size_hint(&self) -> usize {
        let caller = self.caller.map_or(0, |(_, a)| {
            128 + a.identity.len()
                + a.issuer.as_ref().map_or(0, HeaderValue::len)
                + a.claim_headers
                    .iter()
                    .map(|(n, v)| n.as_str().len() + v.len() + 4)
                    .sum::<usize>()
        });
        let jwt = self
            .upstream_jwt
            .as_ref()
            .map_or(0, |(n, t)| n.as_str().len() + t.len() + 4);
        48 + caller + jwt
    }
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

/// A configured name of a header the upstream trusts (identity headers, the upstream JWT).
pub fn trusted_header_name(name: &str) -> Result<HeaderName, String> {
    if name.contains('_') {
        return Err(format!(
            "{name:?}: header names with _ are removed from requests; use -"
        ));
    }
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    if is_managed_by_gateway(&parsed) {
        return Err(format!(
            "{name:?} is a header the gateway writes or forwards by its own rules; choose another name"
        ));
    }
    Ok(parsed)
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
        let parse = |name: &str| trusted_header_name(name);
        let names = Self {
            identity: config.identity.as_deref().map(parse).transpose()?,
            session: config.session.as_deref().map(parse).transpose()?,
            issuer: config.issuer.as_deref().map(parse).transpose()?,
            claims: config
                .claims
                .iter()
                .map(|(c, h)| Ok((c.clone(), parse(h)?)))
                .collect::<Result<_, String>>()?,
        };
        names.check_distinct(None)?;
        Ok(names)
    }

    /// Two values for one header name would leave the upstream to pick one: refused, also
    /// against the API's upstream JWT header.
    pub fn check_distinct(&self, upstream_jwt: Option<&HeaderName>) -> Result<(), String> {
        let all: Vec<&HeaderName> = self.names().chain(upstream_jwt).collect();
        for (i, name) in all.iter().enumerate() {
            if all[..i].contains(name) {
                return Err(format!("{name:?} is configured for two upstream headers"));
            }
        }
        Ok(())
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

    /// Writes the identity headers of an admitted token.
    fn write(&self, admission: &Admission, put: &mut dyn FnMut(&HeaderName, &[u8])) {
        let mut put_value = |name: &HeaderName, value: &HeaderValue| put(name, value.as_bytes());
        if let Some(name) = &self.identity {
            put_value(name, &admission.identity);
        }
        if let Some(name) = &self.session {
            put_value(name, &admission.session_hex);
        }
        if let Some(name) = &self.issuer
            && let Some(issuer) = &admission.issuer
        {
            put_value(name, issuer);
        }
        for (name, value) in &admission.claim_headers {
            put_value(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trusted_header_name;

    #[test]
    fn names_the_gateway_manages_cannot_carry_identity() {
        for name in [
            "Host",
            "Authorization",
            "Content-Length",
            "Connection",
            "X-Forwarded-For",
            "X-Forwarded-Prefix",
            "X-Request-Id",
            "X-Real-IP",
            "X_Portico_Identity",
        ] {
            assert!(trusted_header_name(name).is_err(), "{name}");
        }
        assert!(trusted_header_name("X-Portico-Identity").is_ok());
    }
}
