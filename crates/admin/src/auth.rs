//! The admin token: at least 32 bytes, never printed, compared in constant time against
//! `Authorization: Bearer <token>` on every route under `/api/v1/`.
//!
//! Only SHA-256 digests are kept and compared, so the comparison takes the same time whatever
//! the length or content of the presented token, and the secret itself is not held in memory
//! after start.

use crate::error::ApiError;
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::sync::Arc;

/// The shortest admin token accepted, in bytes.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 32;

/// The secret that guards the admin API.
#[derive(Clone)]
pub struct AdminToken {
    digest: Arc<[u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    #[error(
        "the admin token must be at least {MIN_ADMIN_TOKEN_BYTES} bytes, this one has {0}; \
         generate one with e.g. `openssl rand -base64 32`"
    )]
    TooShort(usize),
    #[error(
        "the admin token may hold only visible ASCII characters (no spaces or control \
         characters), as it is sent in an Authorization header"
    )]
    NotVisibleAscii,
}

impl AdminToken {
    /// Refuses tokens shorter than [`MIN_ADMIN_TOKEN_BYTES`] and tokens that could not be
    /// sent in a header (spaces, control characters, non-ASCII).
    pub fn new(secret: impl AsRef<str>) -> Result<Self, AdminTokenError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_ADMIN_TOKEN_BYTES {
            return Err(AdminTokenError::TooShort(secret.len()));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminTokenError::NotVisibleAscii);
        }
        Ok(Self {
            digest: Arc::from(digest(&SHA256, secret.as_bytes()).as_ref()),
        })
    }

    /// A key for `purpose`, derived from the token (HMAC-SHA-256 of the purpose under the
    /// token's digest): the same on every control plane that shares the token, and nothing
    /// the token can be found from.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.digest);
        let tag = aws_lc_rs::hmac::sign(&key, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `presented` is this token, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let presented = digest(&SHA256, presented);
        verify_slices_are_equal(&self.digest, presented.as_ref()).is_ok()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive), or `None` when the
/// header is missing, repeated or malformed.
fn bearer_token(request: &Request) -> Option<&[u8]> {
    let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = value[7..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Middleware: lets a request through only with the admin token. Every refusal is the same
/// 401, so a caller learns nothing about why.
pub async fn require_admin_token(
    State(token): State<AdminToken>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = bearer_token(&request).is_some_and(|presented| token.matches(presented));
    if !authorized {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn short_or_unsendable_tokens_are_refused() {
        let short = AdminToken::new("too-short").unwrap_err();
        assert_eq!(short, AdminTokenError::TooShort(9));
        assert!(short.to_string().contains("at least 32 bytes"));
        assert_eq!(
            AdminToken::new(format!("{SECRET} with spaces")).unwrap_err(),
            AdminTokenError::NotVisibleAscii
        );
        assert!(AdminToken::new(SECRET).is_ok());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = AdminToken::new(SECRET).unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains("0123"), "{shown}");
    }

    #[test]
    fn only_the_same_token_matches() {
        let token = AdminToken::new(SECRET).unwrap();
        assert!(token.matches(SECRET.as_bytes()));
        assert!(!token.matches(b"0123456789abcdef0123456789abcdeF"));
        assert!(!token.matches(b"0123456789abcdef0123456789abcdef0"));
        assert!(!token.matches(b""));
    }

    fn request_with(values: &[&str]) -> Request {
        let mut builder = Request::builder();
        for value in values {
            builder = builder.header(header::AUTHORIZATION, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(
            bearer_token(&request_with(&["Bearer abc"])),
            Some(&b"abc"[..])
        );
        assert_eq!(
            bearer_token(&request_with(&["bearer abc"])),
            Some(&b"abc"[..])
        );
        assert_eq!(bearer_token(&request_with(&[])), None);
        assert_eq!(bearer_token(&request_with(&["Basic abc"])), None);
        assert_eq!(bearer_token(&request_with(&["Bearer "])), None);
        assert_eq!(bearer_token(&request_with(&["Bearerabc"])), None);
        assert_eq!(bearer_token(&request_with(&["Bearer a", "Bearer b"])), None);
    }
}
