//! Everything that can end a request before or instead of the upstream's answer, whose fault
//! it is, and the one mapping to HTTP responses: RFC 6750 `WWW-Authenticate` for token
//! problems, RFC 9457 problem JSON for everything. Every status text lives here. Bodies never
//! carry keys, tokens or internals; the cause is kept for the one log line
//! (`stages::respond`).

use crate::body::{FullBody, GatewayBody};
use http::{HeaderValue, Response, StatusCode, header};
use portico_auth::TokenError;
use std::fmt;

/// Whose fault a failed request is: decides the log level and tells operators where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request was wrong or not allowed; retrying the same request will not help.
    Client,
    /// The upstream failed or broke the protocol.
    Upstream,
    /// The gateway or one of its own dependencies (limiter store) failed.
    Internal,
    /// The token's issuer could not vouch for it (its introspection endpoint failed).
    IdentityProvider,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Upstream => "upstream",
            Fault::Internal => "internal",
            Fault::IdentityProvider => "identity_provider",
        }
    }
}

/// Why a request is malformed or ambiguous: what the gateway checks could differ from what
/// the upstream would see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    DotSegment,
    EmptySegment,
    Backslash,
    MalformedEscape,
    EncodedSeparator,
    EncodedControl,
    EncodedUnreserved,
    DoubleEncoded,
    PathParameters,
    DuplicateAuthorization,
    /// A request header name with `_`: some frameworks read it as the `-` spelling.
    UnderscoreHeader,
    /// The client's request body could not be read (the client aborted it).
    UnreadableBody,
    /// `Upgrade: websocket` on something that is not an HTTP/1.1 `GET` without a body.
    MalformedUpgrade,
}

impl BadRequest {
    pub fn detail(self) -> &'static str {
        match self {
            BadRequest::DotSegment => "dot segments (. or ..) are not accepted in paths",
            BadRequest::EmptySegment => "empty path segments (//) are not accepted",
            BadRequest::Backslash => "backslashes are not accepted in paths",
            BadRequest::MalformedEscape => "malformed percent-encoding in the path",
            BadRequest::EncodedSeparator => "encoded /, \\ or ; are not accepted in paths",
            BadRequest::EncodedUnreserved => {
                "percent-encoded letters, digits and -._~ are not accepted in paths"
            }
            BadRequest::EncodedControl => "encoded control characters are not accepted",
            BadRequest::DoubleEncoded => "double-encoded /, \\, ; or . are not accepted in paths",
            BadRequest::PathParameters => "path parameters (;) are not accepted on this API",
            BadRequest::DuplicateAuthorization => "more than one Authorization header",
            BadRequest::UnderscoreHeader => "header names with _ are not accepted",
            BadRequest::UnreadableBody => "the request body could not be read",
            BadRequest::MalformedUpgrade => {
                "a WebSocket upgrade is an HTTP/1.1 GET without a body, with Connection: upgrade"
            }
        }
    }
}

/// Why a valid token is not enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No policy at all.
    NoPolicy,
    ApiNotGranted,
    MethodOrPathNotGranted,
}

/// What went wrong.
#[derive(Debug)]
pub enum EdgeErrorKind {
    BadRequest(BadRequest),
    /// No API at this path.
    NoRoute,
    /// The API's endpoint rules (Tyk white/black lists) refuse this method and path.
    EndpointNotAllowed,
    /// No bearer token was sent.
    MissingToken,
    /// A token was sent and rejected.
    InvalidToken(TokenError),
    /// The token is valid but names no usable identity.
    NoIdentity,
    /// The token is valid but grants nothing for this API, method or path.
    InsufficientScope(Denied),
    /// The client stopped sending its request body.
    RequestTimeout,
    /// Over the rate limit or quota.
    TooManyRequests {
        retry_after_secs: u64,
        quota: bool,
    },
    /// The limiter could not decide (a remote store is down) and the rule is to fail closed.
    LimiterUnavailable {
        retry_after_secs: u64,
    },
    /// The token's issuer could not say whether it is active (introspection failed).
    IdpUnavailable {
        retry_after_secs: u64,
    },
    /// The upstream refused or broke the connection, or answered nonsense.
    BadGateway,
    /// The upstream did not answer in time.
    GatewayTimeout,
    /// The gateway could not sign the upstream JWT.
    UpstreamJwtUnsigned,
    /// Too many requests are already in flight to this upstream.
    UpstreamBusy {
        retry_after_secs: u64,
    },
}

/// A classified failure with its cause.
#[derive(Debug)]
pub struct EdgeError {
    pub kind: EdgeErrorKind,
    /// What happened underneath, for the log only (never sent to the client).
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl From<EdgeErrorKind> for EdgeError {
    fn from(kind: EdgeErrorKind) -> Self {
        Self { kind, cause: None }
    }
}

impl EdgeError {
    pub fn with_cause(
        kind: EdgeErrorKind,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            cause: Some(cause.into()),
        }
    }

    pub fn fault(&self) -> Fault {
        use EdgeErrorKind::*;
        match self.kind {
            BadRequest(_)
            | NoRoute
            | MissingToken
            | InvalidToken(_)
            | NoIdentity
            | InsufficientScope(_)
            | RequestTimeout
            | EndpointNotAllowed
            | TooManyRequests { .. } => Fault::Client,
            BadGateway | GatewayTimeout | UpstreamBusy { .. } => Fault::Upstream,
            LimiterUnavailable { .. } | UpstreamJwtUnsigned => Fault::Internal,
            IdpUnavailable { .. } => Fault::IdentityProvider,
        }
    }

    /// Whether the same request may succeed later without change.
    pub fn retryable(&self) -> bool {
        self.retry_after_secs().is_some()
            || matches!(
                self.kind,
                EdgeErrorKind::BadGateway | EdgeErrorKind::GatewayTimeout
            )
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self.kind {
            EdgeErrorKind::TooManyRequests {
                retry_after_secs, ..
            }
            | EdgeErrorKind::LimiterUnavailable { retry_after_secs }
            | EdgeErrorKind::IdpUnavailable { retry_after_secs }
            | EdgeErrorKind::UpstreamBusy { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        use EdgeErrorKind::*;
        match self.kind {
            BadRequest(_) => StatusCode::BAD_REQUEST,
            NoRoute => StatusCode::NOT_FOUND,
            MissingToken | InvalidToken(_) | NoIdentity => StatusCode::UNAUTHORIZED,
            InsufficientScope(_) | EndpointNotAllowed => StatusCode::FORBIDDEN,
            TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            LimiterUnavailable { .. } | IdpUnavailable { .. } | UpstreamBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BadGateway => StatusCode::BAD_GATEWAY,
            UpstreamJwtUnsigned => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A short, stable name of the kind, for logs and metrics.
    pub fn code(&self) -> &'static str {
        use EdgeErrorKind::*;
        match self.kind {
            BadRequest(_) => "bad_request",
            NoRoute => "no_route",
            MissingToken => "missing_token",
            InvalidToken(_) => "invalid_token",
            NoIdentity => "no_identity",
            InsufficientScope(_) => "insufficient_scope",
            EndpointNotAllowed => "endpoint_not_allowed",
            RequestTimeout => "request_timeout",
            TooManyRequests { quota: false, .. } => "rate_limited",
            TooManyRequests { quota: true, .. } => "quota_exceeded",
            LimiterUnavailable { .. } => "limiter_unavailable",
            IdpUnavailable { .. } => "idp_unavailable",
            BadGateway => "bad_gateway",
            UpstreamJwtUnsigned => "upstream_jwt_unsigned",
            GatewayTimeout => "gateway_timeout",
            UpstreamBusy { .. } => "upstream_busy",
        }
    }

    /// The text the client sees.
    fn detail(&self) -> String {
        use EdgeErrorKind::*;
        match &self.kind {
            BadRequest(why) => why.detail().into(),
            NoRoute => "no API is served at this path".into(),
            MissingToken => "this API requires a bearer token".into(),
            InvalidToken(e) => e.to_string(),
            NoIdentity => "the token has no usable identity claim".into(),
            InsufficientScope(Denied::NoPolicy) => {
                "the token's scopes and policies grant no access".into()
            }
            InsufficientScope(Denied::ApiNotGranted) => {
                "the token grants no access to this API".into()
            }
            InsufficientScope(Denied::MethodOrPathNotGranted) => {
                "the token grants no access to this method or path".into()
            }
            EndpointNotAllowed => "this API does not serve this method and path".into(),
            RequestTimeout => "the request body stopped arriving".into(),
            TooManyRequests { quota: false, .. } => "rate limit exceeded".into(),
            TooManyRequests { quota: true, .. } => "quota exceeded".into(),
            LimiterUnavailable { .. } => "rate limits cannot be checked right now".into(),
            IdpUnavailable { .. } => "the token cannot be checked right now".into(),
            BadGateway => "the upstream could not be reached".into(),
            UpstreamJwtUnsigned => "the upstream JWT could not be signed".into(),
            GatewayTimeout => "the upstream did not answer in time".into(),
            UpstreamBusy { .. } => "the upstream is at its connection limit".into(),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), when one applies.
    fn challenge(&self) -> Option<String> {
        let quoted = |s: &str| s.replace(['\\', '"'], "'");
        match self.kind {
            EdgeErrorKind::MissingToken => Some("Bearer".into()),
            EdgeErrorKind::InvalidToken(_) | EdgeErrorKind::NoIdentity => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                quoted(&self.detail())
            )),
            EdgeErrorKind::InsufficientScope(_) => Some(format!(
                "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                quoted(&self.detail())
            )),
            _ => None,
        }
    }

    pub fn to_response(&self) -> Response<GatewayBody> {
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
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl fmt::Display for EdgeError {
    /// `code: detail: cause` — for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_statuses() {
        let e = EdgeError::with_cause(EdgeErrorKind::BadGateway, "connect: refused");
        assert_eq!((e.fault(), e.status().as_u16()), (Fault::Upstream, 502));
        assert!(e.retryable());
        assert_eq!(
            e.to_string(),
            "bad_gateway: the upstream could not be reached: connect: refused"
        );
        let e = EdgeError::from(EdgeErrorKind::TooManyRequests {
            retry_after_secs: 3,
            quota: true,
        });
        assert_eq!(e.fault(), Fault::Client);
        assert_eq!(e.to_response().headers()["retry-after"], "3");
        let e = EdgeError::from(EdgeErrorKind::LimiterUnavailable {
            retry_after_secs: 1,
        });
        assert_eq!((e.fault(), e.status().as_u16()), (Fault::Internal, 503));
        let e = EdgeError::from(EdgeErrorKind::MissingToken);
        assert_eq!(e.to_response().headers()["www-authenticate"], "Bearer");
        assert!(!e.retryable());
    }

    #[test]
    fn the_cause_never_reaches_the_body() {
        let e = EdgeError::with_cause(EdgeErrorKind::BadGateway, "secret internals");
        let response = e.to_response();
        let http_body_util::Either::Right(full) = response.into_body() else {
            panic!("a full body")
        };
        let bytes = futures_executor_block(full);
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
    }

    fn futures_executor_block(body: http_body_util::Full<bytes::Bytes>) -> bytes::Bytes {
        use http_body_util::BodyExt;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(body.collect())
            .unwrap()
            .to_bytes()
    }
}
