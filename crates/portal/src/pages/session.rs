//! Browser sessions and CSRF protection for the pages.
//!
//! - Signing in (a developer with email and password, an admin with the admin token) starts a
//!   new session: a random cookie (`portico_session`, HttpOnly, SameSite=Lax) that the store
//!   knows only by its SHA-256, ending after [`SESSION_TTL_SECS`] or at sign-out.
//! - Every form carries a CSRF token (`csrf`): the session's own, or, before signing in, the
//!   value of a `portico_csrf` cookie (double submit). [`guard`] checks it, and that a
//!   browser's `Origin` (when sent) is this host, on every request that is not a GET or HEAD,
//!   before any handler runs: no handler can forget it.

use super::error_page;
use crate::api::{PortalState, token_hash};
use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use portico_store::portal::Developer;
use portico_store::portal_sessions::WebSession;
use serde_json::{Value, json};

pub const SESSION_COOKIE: &str = "portico_session";
pub const CSRF_COOKIE: &str = "portico_csrf";
/// How long a session lasts from signing in.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;
/// Largest form body read.
const MAX_FORM_BYTES: usize = crate::api::MAX_BODY_BYTES;

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Who is asking: a session if signed in, and the CSRF token the page's forms must carry.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub session: Option<Current>,
    /// The developer of a developer session.
    pub developer: Option<Developer>,
    pub csrf: String,
}

#[derive(Clone, Debug)]
pub struct Current {
    pub token_hash: String,
    pub session: WebSession,
}

impl Visitor {
    pub fn is_admin(&self) -> bool {
        self.session.as_ref().is_some_and(|c| c.session.admin)
    }

    /// What every template sees as `visitor`.
    pub fn context(&self) -> Value {
        json!({
            "csrf": self.csrf,
            "admin": self.is_admin(),
            "developer": self.developer.as_ref().map(|d| json!({"name": d.name, "email": d.email})),
            "cart": self.session.as_ref().map_or(0, |c| c.session.cart.len()),
        })
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session cookie (or, with `None`, one that removes it).
pub fn session_cookie(state: &PortalState, token: Option<&str>) -> HeaderValue {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let text = match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_TTL_SECS}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).expect("a cookie of URL-safe characters")
}

/// A CSRF cookie value for visitors not signed in: random, and signed (`RANDOM.TAG`), so that
/// only values this portal made are accepted.
fn signed_csrf_value(state: &PortalState) -> String {
    let random = random_token();
    let tag = aws_lc_rs::hmac::sign(&state.csrf_key, random.as_bytes());
    format!(
        "{random}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    )
}

fn csrf_cookie_is_ours(state: &PortalState, value: &str) -> bool {
    let Some((random, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    aws_lc_rs::hmac::verify(&state.csrf_key, random.as_bytes(), &tag).is_ok()
}

fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Whether the browser's `Origin`, if it sent one, is the portal's: the origin of its public
/// URL when one is set (behind a proxy the `Host` may be another), else the request's host.
fn origin_matches(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if let Some(url) = public_url {
        let expected = reqwest::Url::parse(url)
            .ok()
            .map(|u| u.origin().ascii_serialization());
        return origin
            .to_str()
            .ok()
            .zip(expected)
            .is_some_and(|(o, e)| o.eq_ignore_ascii_case(&e));
    }
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// The field `csrf` of a form body.
fn csrf_field(body: &[u8]) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

/// Finds the visitor's session, and, on every request that changes something, checks the
/// CSRF token and the origin before the handler runs.
pub async fn guard(State(state): State<PortalState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let mut visitor = Visitor {
        session: None,
        developer: None,
        csrf: String::new(),
    };
    if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
        let hash = token_hash(token);
        match state.store.session(&hash).await {
            Ok(Some(session)) => {
                if let Some(id) = &session.developer_id {
                    match state.store.developer(id).await {
                        Ok(developer) => visitor.developer = developer,
                        Err(e) => return unavailable(&state, &visitor, e),
                    }
                }
                visitor.csrf = session.csrf.clone();
                visitor.session = Some(Current {
                    token_hash: hash,
                    session,
                });
            }
            Ok(None) => {}
            Err(e) => return unavailable(&state, &visitor, e),
        }
    }
    let mut new_csrf_cookie = None;
    if visitor.session.is_none() {
        match cookie(&parts.headers, CSRF_COOKIE).filter(|v| csrf_cookie_is_ours(&state, v)) {
            Some(value) => visitor.csrf = value.to_string(),
            None => {
                let value = signed_csrf_value(&state);
                visitor.csrf = value.clone();
                new_csrf_cookie = Some(value);
            }
        }
    }
    let body = if parts.method == Method::GET || parts.method == Method::HEAD {
        body
    } else {
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return error_page(
                &state,
                &visitor,
                StatusCode::PAYLOAD_TOO_LARGE,
                "That form is larger than the portal accepts.",
            );
        };
        let given = csrf_field(&bytes);
        let fresh = new_csrf_cookie.is_none()
            && given.is_some_and(|given| same_bytes(&given, &visitor.csrf));
        if !fresh || !origin_matches(&parts.headers, state.public_url.as_deref()) {
            return error_page(
                &state,
                &visitor,
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this portal. Go back, reload the page and try again.",
            );
        }
        Body::from(bytes)
    };
    parts.extensions.insert(visitor);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(value) = new_csrf_cookie {
        let secure = if state.secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!("{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}");
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn unavailable(state: &PortalState, visitor: &Visitor, e: portico_store::StoreError) -> Response {
    tracing::warn!(error = %e, "portal: reading the session");
    error_page(
        state,
        visitor,
        StatusCode::SERVICE_UNAVAILABLE,
        "The portal cannot reach its store just now. Try again in a moment.",
    )
}

impl FromRequestParts<PortalState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &PortalState) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// A signed-in developer; anyone else is sent to the sign-in page (and back afterwards).
pub struct SignedIn {
    pub visitor: Visitor,
    pub developer: Developer,
    pub session: Current,
}

impl FromRequestParts<PortalState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        match (visitor.developer.clone(), visitor.session.clone()) {
            (Some(developer), Some(session)) => Ok(SignedIn {
                visitor,
                developer,
                session,
            }),
            _ => {
                let back = parts.uri.path();
                let next = if parts.method == Method::GET && back.starts_with('/') {
                    format!("/login?next={}", encode(back))
                } else {
                    "/login".to_string()
                };
                Err(Redirect::to(&next).into_response())
            }
        }
    }
}

/// A signed-in admin; anyone else is sent to the admin sign-in page.
pub struct AdminSignedIn {
    pub visitor: Visitor,
}

impl FromRequestParts<PortalState> for AdminSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, Response> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        if visitor.is_admin() {
            Ok(AdminSignedIn { visitor })
        } else {
            Err(Redirect::to("/manage/login").into_response())
        }
    }
}

/// `text` percent-encoded for a query value.
pub fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Where to go after signing in: a path on this portal, never another site.
pub fn local_path(next: Option<&str>, default: &str) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => default.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/apps/1"), "/d"), "/apps/1");
        for evil in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\tx",
            "x",
        ] {
            assert_eq!(local_path(Some(evil), "/d"), "/d", "{evil}");
        }
        assert_eq!(local_path(None, "/d"), "/d");
    }

    #[test]
    fn the_origin_must_be_this_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert!(origin_matches(&headers, None));
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(origin_matches(&headers, None));
        assert!(!origin_matches(&headers, Some("https://portal.example")));
        headers.insert(header::ORIGIN, "https://portal.example".parse().unwrap());
        assert!(origin_matches(&headers, Some("https://portal.example/")));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!origin_matches(&headers, None));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(!origin_matches(&headers, None));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "xportico_session=a; portico_session=b".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("b"));
    }
}
