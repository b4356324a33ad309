//! Phase 3, identity: who is calling — the identity claim, the identity session it maps to,
//! the policies the token brings and the header values for the upstream — cached with the
//! token so that a token seen again skips this phase; then, for every request, cached or
//! not, whether a revocation refuses it.

use super::authenticate::Authenticated;
use super::policies;
use crate::admission::Admission;
use crate::error::{EdgeError, EdgeErrorKind};
use crate::metrics::{GatewayMetrics, ReasonLabels};
use crate::pipeline::{ApiRuntime, Pipeline};
use crate::revocations::Revocations;
use http::HeaderValue;
use portico_auth::TokenError;
use portico_core::SessionId;
use std::sync::Arc;

/// Where a token names the OAuth client it was issued to: RFC 9068 and RFC 7662 `client_id`,
/// else OIDC's `azp` (Keycloak, Entra ID), else Okta's `cid`.
pub const CLIENT_ID_CLAIMS: [&str; 3] = ["client_id", "azp", "cid"];

pub fn admit(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    token: Authenticated,
    now_secs: u64,
) -> Result<Arc<Admission>, EdgeError> {
    let (verified, cache_key) = match token {
        Authenticated::Cached(admission) => return Ok(admission),
        Authenticated::Verified { token, cache_key } => (token, cache_key),
    };
    let identity = api
        .spec
        .identity
        .resolve(&verified.claims)
        .ok_or(EdgeErrorKind::NoIdentity)?;
    let identity_value = HeaderValue::from_bytes(identity.value.as_bytes())
        .map_err(|_| EdgeErrorKind::NoIdentity)?;
    let issuer = &api.issuers[verified.issuer_index];
    let session = SessionId::derive(&api.spec.org_id, &issuer.session_scope, &identity);
    // An entry without a configured issuer vouches for no issuer: whoever holds its key can
    // write any `iss`, so none is passed on.
    let issuer_value = issuer.header.clone();
    let policies = if api.spec.policies.is_authentication_only() {
        Vec::new()
    } else {
        policies::applied_policies(
            &api.spec.policies,
            &api.scope_claim,
            &verified.claims,
            &pipeline.policies,
        )
    };
    let client_id = CLIENT_ID_CLAIMS
        .iter()
        .find_map(|name| string_claim(&verified.claims, name));
    let token_issuer = issuer
        .issuer
        .clone()
        .or_else(|| string_claim(&verified.claims, "iss"));
    let usage_key = client_id
        .as_deref()
        .map(|client| crate::usage::client_key(token_issuer.as_deref().unwrap_or(""), client));
    let admission = Arc::new(Admission {
        session,
        identity: identity_value,
        identity_text: identity.value.clone(),
        session_hex: HeaderValue::from_str(&session.to_hex()).expect("hex is a valid header value"),
        issuer: issuer_value,
        client_id,
        scope: string_claim(&verified.claims, "scope"),
        jti: string_claim(&verified.claims, "jti"),
        token_issuer,
        issued_at: verified.issued_at,
        usage_key,
        policies,
        claim_headers: api.identity_headers.claim_values(&verified.claims),
        valid_until: pipeline
            .admissions
            .valid_until(verified.valid_until, now_secs),
        key: verified.key.map(|key| *key),
    });
    if let Some(key) = cache_key {
        pipeline.admissions.insert(key, admission.clone(), now_secs);
    }
    Ok(admission)
}

/// Refuses an admission a revocation in force names (401 `invalid_token`), however it was
/// admitted: a self-contained JWT, a cached one, or a cached introspection answer.
pub fn refuse_revoked(
    revocations: &Revocations,
    admission: &Admission,
    now_secs: u64,
    metrics: &GatewayMetrics,
) -> Result<(), EdgeError> {
    if revocations.refuses(&admission.facts(), now_secs) {
        let revoked = TokenError::Revoked;
        metrics
            .auth_failures
            .get_or_create(&ReasonLabels {
                reason: revoked.code(),
            })
            .inc();
        return Err(EdgeErrorKind::InvalidToken(revoked).into());
    }
    Ok(())
}

fn string_claim(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}
