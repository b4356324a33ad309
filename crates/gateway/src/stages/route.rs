//! Phase 1, route: the API whose listen path is the longest prefix of the request path, and
//! the rest of the path below it.
//!
//! What is checked must be what is forwarded: upstreams normalise paths (decode `%2F`, treat
//! `\` as `/`, drop `;` parameters, resolve `..`), so a path they could read differently
//! from the gateway's routing and access rules is refused with 400 before any rule sees it.

use crate::error::{BadRequest, EdgeError, EdgeErrorKind};
use crate::pipeline::{ApiRuntime, Pipeline};
use http::{Method, Uri};

pub fn route<'p>(
    pipeline: &'p Pipeline,
    uri: &'p Uri,
) -> Result<(&'p ApiRuntime, &'p str), EdgeError> {
    let path = uri.path();
    check_path(path).map_err(EdgeErrorKind::BadRequest)?;
    let (api, rest) = pipeline
        .route(path)
        .map(|(api, rest)| (&**api, rest))
        .ok_or(EdgeErrorKind::NoRoute)?;
    if !api.spec.allow_path_parameters && path.contains(';') {
        return Err(EdgeErrorKind::BadRequest(BadRequest::PathParameters).into());
    }
    Ok((api, rest))
}

/// The API's own endpoint rules (allow and block lists), for every caller, keyless included.
pub fn check_endpoint(
    api: &ApiRuntime,
    method: &Method,
    uri: &Uri,
    rest: &str,
) -> Result<(), EdgeError> {
    let rules = &api.spec.endpoints;
    if rules.is_empty() || rules.permits(method.as_str(), uri.path(), rest) {
        Ok(())
    } else {
        Err(EdgeErrorKind::EndpointNotAllowed.into())
    }
}

/// Refuses paths an upstream could normalise into another path: backslashes; percent-encoded
/// `/`, `\`, `;`, control characters and unreserved characters (letters, digits, `-._~`, which
/// normalisers decode: `/%61pi` is `/api` to them but not to the route table); double-encoded
/// `/`, `\`, `;` and `.`; malformed escapes; empty segments (`//`); and `.`/`..` segments, also
/// before a `;` (`..;`). One pass, no allocation: it runs on every request.
pub fn check_path(path: &str) -> Result<(), BadRequest> {
    let bytes = path.as_bytes();
    // Per segment: its length and dots before any `;`, and whether anything else was seen.
    let (mut len, mut dots, mut other, mut in_params) = (0usize, 0usize, false, false);
    let mut i = 0;
    while i <= bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(b'/');
        match b {
            b'/' => {
                if !other && (dots == 1 || dots == 2) {
                    return Err(BadRequest::DotSegment);
                }
                if len == 0 && i > 0 && i < bytes.len() {
                    return Err(BadRequest::EmptySegment);
                }
                (len, dots, other, in_params) = (0, 0, false, false);
            }
            b'\\' => return Err(BadRequest::Backslash),
            b'%' => {
                let decoded = escape_at(bytes, i).ok_or(BadRequest::MalformedEscape)?;
                match decoded {
                    b'/' | b'\\' | b';' => return Err(BadRequest::EncodedSeparator),
                    0..0x20 | 0x7f => return Err(BadRequest::EncodedControl),
                    // `%25` then `2F`: `%2F` once decoded.
                    b'%' if hex_pair(bytes, i + 3)
                        .is_some_and(|d| matches!(d, b'/' | b'\\' | b';' | b'.')) =>
                    {
                        return Err(BadRequest::DoubleEncoded);
                    }
                    c if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') => {
                        return Err(BadRequest::EncodedUnreserved);
                    }
                    _ => {}
                }
                other |= !in_params;
                len += 1;
                i += 3;
                continue;
            }
            b';' => {
                in_params = true;
                len += 1;
            }
            b'.' if !in_params => {
                dots += 1;
                len += 1;
            }
            _ => {
                other |= !in_params;
                len += 1;
            }
        }
        i += 1;
    }
    Ok(())
}

/// The byte a `%XX` escape at `at` stands for.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    hex_pair(bytes, at + 1)
}

/// Two hex digits at `at`, as a byte.
fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    Some(hex(bytes.get(at)?)? << 4 | hex(bytes.get(at + 1)?)?)
}

fn hex(b: &u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_pass() {
        for ok in [
            "/",
            "/a",
            "/a/",
            "/a/b.c",
            "/a/..b/c.d",
            "/a/.../b",
            "/v1/items/%20x",
            "/a%20b",
            "/a;x=1",
            "/a/b;v=2/c",
            "/%C3%A9t%C3%A9",
            "/a/.well-known/x",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/a/../b",
            "/a/%2E%2e/b",
            "/a/.",
            "/a/.%2E/b",
            "/api/public/..;/admin",
            "/api/public/.;x/admin",
            "/api/public%2F..%2Fadmin",
            "/api%2fadmin",
            "/api/x%5Cy",
            "/api\\admin",
            "/api/..\\admin",
            "/a//b",
            "/a/%252F",
            "/a/%252e%252e/b",
            "/a/%00",
            "/a/%zz",
            "/a/%2",
            "/..",
            "/.",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
