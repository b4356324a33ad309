//! Phase 2, authenticate: the bearer token (RFC 6750 §2.1), found in the admission cache or
//! verified by the API's verifier (signature, or the issuer's introspection endpoint). An
//! issuer that cannot answer is a 503 with `Retry-After`, never a 401 or a 500.

use crate::admission::{Admission, CacheKey};
use crate::error::{BadRequest, EdgeError, EdgeErrorKind};
use crate::flow::RequestContext;
use crate::metrics::{GatewayMetrics, ReasonLabels};
use crate::pipeline::{ApiRuntime, Pipeline};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use portico_auth::{JwtVerifier, TokenError, VerifiedToken};

/// How long a client is asked to wait when the token's issuer cannot vouch for it.
const IDP_RETRY_AFTER_SECS: u64 = 2;
use std::sync::Arc;

/// A token that passed.
#[derive(Debug)]
pub enum Authenticated {
    /// Seen before: what it means for this API is already known.
    Cached(Arc<Admission>),
    /// Verified now; `cache_key` is where its admission goes (`None`: the cache is off).
    Verified {
        token: Box<VerifiedToken>,
        cache_key: Option<CacheKey>,
    },
}

pub async fn authenticate(
    pipeline: &Pipeline,
    api: &ApiRuntime,
    verifier: &JwtVerifier,
    headers: &HeaderMap,
    ctx: &RequestContext<'_>,
    metrics: &GatewayMetrics,
) -> Result<Authenticated, EdgeError> {
    // Which copy the upstream would read is anyone's guess: refuse rather than verify one and
    // forward all.
    if headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
        return Err(EdgeErrorKind::BadRequest(BadRequest::DuplicateAuthorization).into());
    }
    let token = bearer_token(headers).ok_or(EdgeErrorKind::MissingToken)?;
    let cache_key = pipeline.admissions.key(api.index, token);
    if let Some(admission) = cache_key
        .as_ref()
        .and_then(|k| pipeline.admissions.get(k, ctx.now_secs))
    {
        return Ok(Authenticated::Cached(admission));
    }
    match verifier.verify_access_token(token, ctx.now_secs).await {
        Ok(token) => Ok(Authenticated::Verified {
            token: Box::new(token),
            cache_key,
        }),
        // Not the caller's fault: the log and the introspection metrics say why.
        Err(TokenError::Uncheckable) => Err(EdgeErrorKind::IdpUnavailable {
            retry_after_secs: IDP_RETRY_AFTER_SECS,
        }
        .into()),
        Err(e) => {
            metrics
                .auth_failures
                .get_or_create(&ReasonLabels { reason: e.code() })
                .inc();
            Err(EdgeErrorKind::InvalidToken(e).into())
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is case-insensitive;
/// anything else (no header, another scheme, an empty token) is no token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn extracts_bearer_tokens_only() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
