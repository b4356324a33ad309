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

/// Refuses paths an upstream could normalise into another path: backslashes, `%2F` and `%5C`,
/// double-encoded `/`, `\` and `.`, encoded control characters, empty segments (`//`), and
/// `.`/`..` segments — also percent-encoded and also before a `;` (`..;`). One pass, no
/// allocation: it runs on every request.
pub fn check_path(path: &str) -> Result<(), BadRequest> {
    let bytes = path.as_bytes();
    // Per segment: its length and dots so far, and whether anything but dots was seen (all
    // before any `;`).
    let (mut len, mut dots, mut other, mut in_params) = (0usize, 0usize, false, false);
    let mut i = 0;
    while i <= bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(b'/');
        match b {
            b'/' => {
                if !other && (dots == 1 || dots == 2) && len == dots {
                    return Err(BadRequest::DotSegment);
                }
                if len == 0 && !in_params && i > 0 && i < bytes.len() {
                    return Err(BadRequest::EmptySegment);
                }
                (len, dots, other, in_params) = (0, 0, false, false);
                i += 1;
                continue;
            }
            b'\\' => return Err(BadRequest::Backslash),
            b';' => in_params = true,
            _ => {}
        }
        if in_params {
            i += 1;
            continue;
        }
        let (decoded, width) = if b == b'%' {
            match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(h), Some(l)) => (h << 4 | l, 3),
                _ => return Err(BadRequest::MalformedEscape),
            }
        } else {
            (b, 1)
        };
        if width == 3 {
            match decoded {
                b'/' | b'\\' => return Err(BadRequest::EncodedSeparator),
                0..0x20 | 0x7f => return Err(BadRequest::EncodedControl),
                b'%' => {
                    let next = (
                        bytes.get(i + 3).and_then(hex),
                        bytes.get(i + 4).and_then(hex),
                    );
                    if let (Some(h), Some(l)) = next
                        && matches!(h << 4 | l, b'/' | b'\\' | b'.')
                    {
                        return Err(BadRequest::DoubleEncoded);
                    }
                }
                _ => {}
            }
        }
        if decoded == b'.' {
            dots += 1;
        } else {
            other = true;
        }
        len += 1;
        i += width;
    }
    Ok(())
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
            "/a%2Db",
            "/a;x=1",
            "/a/b;v=2/c",
            "/%7Euser",
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
