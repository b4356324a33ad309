//! What can go wrong with a request, whose fault it is, and the one mapping to HTTP responses:
//! RFC 6750 `WWW-Authenticate` for token problems, RFC 9457 problem JSON for everything.
//! Bodies never carry keys, tokens or internals.

use crate::body::{FullBody, GatewayBody};
use http::{HeaderValue, Response, StatusCode, header};
use portico_auth::TokenError;

#[derive(Debug)]
pub enum Rejection {
    /// No API at this path.
    NoRoute,
    /// No bearer token was sent.
    MissingToken,
    /// A token was sent and rejected.
    InvalidToken(TokenError),
    /// The token is valid but names no identity.
    NoIdentity,
    /// The token is valid but grants nothing for this API, method or path.
    InsufficientScope(&'static str),
    /// Over the rate limit or quota.
    TooManyRequests { retry_after_secs: u64, quota: bool },
    /// The upstream refused or broke the connection.
    BadGateway,
    /// The upstream did not answer in time.
    GatewayTimeout,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::NoRoute => StatusCode::NOT_FOUND,
            Rejection::MissingToken | Rejection::InvalidToken(_) | Rejection::NoIdentity => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Rejection::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::BadGateway => StatusCode::BAD_GATEWAY,
            Rejection::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn detail(&self) -> String {
        match self {
            Rejection::NoRoute => "no API is served at this path".into(),
            Rejection::MissingToken => "this API requires a bearer token".into(),
            Rejection::InvalidToken(e) => e.to_string(),
            Rejection::NoIdentity => "the token has no identity claim".into(),
            Rejection::InsufficientScope(why) => (*why).into(),
            Rejection::TooManyRequests { quota: false, .. } => "rate limit exceeded".into(),
            Rejection::TooManyRequests { quota: true, .. } => "quota exceeded".into(),
            Rejection::BadGateway => "the upstream could not be reached".into(),
            Rejection::GatewayTimeout => "the upstream did not answer in time".into(),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), when one applies.
    fn challenge(&self) -> Option<String> {
        let quoted = |s: &str| s.replace(['\\', '"'], "'");
        match self {
            Rejection::MissingToken => Some("Bearer".into()),
            Rejection::InvalidToken(_) | Rejection::NoIdentity => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quoted(&self.detail())
            )),
            Rejection::InsufficientScope(_) => Some(format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                quoted(&self.detail())
            )),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<GatewayBody> {
        let status = self.status();
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        let mut response = Response::new(GatewayBody::full(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge()
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Rejection::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
