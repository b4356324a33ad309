//! Phase 1, route: the API whose listen path is the longest prefix of the request path, and
//! the rest of the path below it. Paths an upstream could read differently from the gateway
//! are refused before any rule sees them.

use crate::error::{EdgeError, EdgeErrorKind};
use crate::pipeline::{ApiRuntime, Pipeline};
use http::Uri;

pub fn route<'p>(
    pipeline: &'p Pipeline,
    uri: &'p Uri,
) -> Result<(&'p ApiRuntime, &'p str), EdgeError> {
    let path = uri.path();
    if has_dot_segments(path) {
        return Err(EdgeErrorKind::NoRoute.into());
    }
    pipeline
        .route(path)
        .map(|(api, rest)| (&**api, rest))
        .ok_or_else(|| EdgeErrorKind::NoRoute.into())
}

/// True when the path has `.` or `..` segments (also percent-encoded), which could slip past
/// path-based access rules; such requests are refused. Allocation-free: it runs on every
/// request.
pub fn has_dot_segments(path: &str) -> bool {
    (path.contains('.') || path.contains('%')) && path.split('/').any(is_dot_segment)
}

fn is_dot_segment(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let (mut dots, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b'.' {
            i += 1;
        } else if bytes[i] == b'%'
            && bytes.get(i + 1) == Some(&b'2')
            && bytes.get(i + 2).is_some_and(|b| b | 0x20 == b'e')
        {
            i += 3;
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        assert!(has_dot_segments("/a/../b"));
        assert!(has_dot_segments("/a/%2E%2e/b"));
        assert!(has_dot_segments("/a/."));
        assert!(!has_dot_segments("/a/..b/c.d"));
        assert!(!has_dot_segments("/a/.../b"));
        assert!(!has_dot_segments("/a/%2/b"));
        assert!(has_dot_segments("/a/.%2E/b"));
        assert!(!has_dot_segments("/plain/path"));
    }
}
