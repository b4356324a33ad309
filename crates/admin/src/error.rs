//! The one error shape of the admin API, and the one place where failures become status
//! codes. Store failures that are ours (a spec that no longer decrypts, a broken migration)
//! are logged and answered with a bare 500; nothing internal reaches a response body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Seconds a client is asked to wait when the store is unavailable.
pub const RETRY_AFTER_SECS: u32 = 2;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where, from the document's root: `spec.jwt.issuers[0].jwks_url`; in `apply`, prefixed
    /// with the document's index: `[2].metadata.name`.
    pub path: String,
    /// Why, for a person.
    pub reason: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `invalid_request`, `unsupported_media_type`,
    /// `not_found`, `method_not_allowed`, `conflict`, `already_exists`, `payload_too_large`,
    /// `unavailable`, `internal`.
    pub error: String,
    /// What happened, for a person.
    pub message: String,
    /// The fields at fault (empty when the problem is not about a field).
    pub fields: Vec<FieldError>,
}

/// A failed request, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: no, a malformed or a wrong admin token; deliberately says nothing more.
    Unauthorized,
    /// 400: the request cannot be read or breaks a rule.
    Invalid {
        message: String,
        fields: Vec<FieldError>,
    },
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 404.
    NotFound(String),
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the resource changed since the version the client named.
    Conflict(String),
    /// 409: create of a resource that exists.
    AlreadyExists(String),
    /// 413.
    PayloadTooLarge,
    /// 503 with `Retry-After`: the store is away; retrying later makes sense.
    Unavailable,
    /// 500: our fault; the details went to the log.
    Internal,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, fields: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            message: message.into(),
            fields,
        }
    }

    /// A 400 about one field.
    pub fn invalid_field(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = FieldError::new(path, reason);
        ApiError::Invalid {
            message: format!("{}: {}", field.path, field.reason),
            fields: vec![field],
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::AlreadyExists(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as the API answers it: code, message, fields.
    pub fn into_body(self) -> ErrorBody {
        let (error, message, fields) = match self {
            ApiError::Unauthorized => (
                "unauthorized",
                "a valid admin token is required: Authorization: Bearer <token>".to_string(),
                Vec::new(),
            ),
            ApiError::Invalid { message, fields } => ("invalid_request", message, fields),
            ApiError::UnsupportedMediaType => (
                "unsupported_media_type",
                "the body must be JSON, with Content-Type: application/json".to_string(),
                Vec::new(),
            ),
            ApiError::NotFound(message) => ("not_found", message, Vec::new()),
            ApiError::MethodNotAllowed => (
                "method_not_allowed",
                "this route does not take this method; see the Allow header".to_string(),
                Vec::new(),
            ),
            ApiError::Conflict(message) => ("conflict", message, Vec::new()),
            ApiError::AlreadyExists(message) => ("already_exists", message, Vec::new()),
            ApiError::PayloadTooLarge => (
                "payload_too_large",
                format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
                Vec::new(),
            ),
            ApiError::Unavailable => (
                "unavailable",
                "the store is unavailable; retry later".to_string(),
                Vec::new(),
            ),
            ApiError::Internal => (
                "internal",
                "internal error; the details are in the server's log".to_string(),
                Vec::new(),
            ),
        };
        ErrorBody {
            error: error.to_string(),
            message,
            fields,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = matches!(self, ApiError::Unavailable);
        let unauthorized = matches!(self, ApiError::Unauthorized);
        let mut response = (status, Json(self.into_body())).into_response();
        let headers = response.headers_mut();
        if retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portico-admin\""),
            );
        }
        response
    }
}

/// Middleware: axum answers a method a route does not take with a bare 405; this gives it
/// the one error shape (keeping its `Allow` header).
pub async fn shape_bare_errors(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut shaped = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        shaped.headers_mut().insert(header::ALLOW, allow);
    }
    shaped
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "admin API: store unavailable");
                ApiError::Unavailable
            }
            e @ (StoreError::Conflict { .. } | StoreError::RevisionMoved { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            e @ (StoreError::Exists { .. } | StoreError::Taken(_)) => {
                ApiError::AlreadyExists(e.to_string())
            }
            e @ StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            // The store's own checks (names): their messages name the rule, nothing internal.
            StoreError::Invalid(message) => ApiError::invalid(message, Vec::new()),
            e @ (StoreError::Sealed { .. }
            | StoreError::Migration(_)
            | StoreError::SchemaMismatch { .. }
            | StoreError::WrongKey) => {
                tracing::error!(error = %e, "admin API: store failure");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_store_failures_do_not_reach_the_body() {
        let sealed = StoreError::Sealed {
            kind: "Api".into(),
            name: "payments".into(),
        };
        let body = ApiError::from(sealed).into_body();
        assert_eq!(body.error, "internal");
        assert!(!body.message.contains("payments"));
        let unavailable = StoreError::Unavailable("connection refused to 10.0.0.5".into());
        let body = ApiError::from(unavailable).into_body();
        assert!(!body.message.contains("10.0.0.5"));
    }
}
