//! Rate-limit response headers: `RateLimit-Policy` and `RateLimit` (IETF httpapi
//! ratelimit-headers draft, structured fields) and the customary `X-RateLimit-Limit`,
//! `-Remaining`, `-Reset` (seconds), which describe the rate limit when there is one, else the
//! quota.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use portico_limits::{Decision, LimitStatus};
use std::fmt::Write;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// One structured-field list, e.g. `"rate";q=10;w=1, "quota";q=1000;w=86400`.
fn list(
    present: &[(&str, LimitStatus)],
    item: impl Fn(&mut String, &LimitStatus),
) -> Option<HeaderValue> {
    let mut out = String::with_capacity(64);
    for (i, (name, status)) in present.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{name}\"");
        item(&mut out, status);
    }
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

pub fn insert(headers: &mut HeaderMap, decision: &Decision) {
    let mut present: [(&str, LimitStatus); 2] = Default::default();
    let mut n = 0;
    for (name, status) in [("rate", decision.rate), ("quota", decision.quota)] {
        if let Some(s) = status {
            present[n] = (name, s);
            n += 1;
        }
    }
    let present = &present[..n];
    let Some(&(_, primary)) = present.first() else {
        return;
    };
    let policy = list(present, |out, s| {
        let _ = write!(out, ";q={};w={}", s.limit, secs(s.window_ms).max(1));
    });
    let current = list(present, |out, s| {
        let _ = write!(out, ";r={};t={}", s.remaining, secs(s.reset_ms));
    });
    if let (Some(p), Some(c)) = (policy, current) {
        headers.insert(RATELIMIT_POLICY, p);
        headers.insert(RATELIMIT, c);
    }
    headers.insert(X_LIMIT, HeaderValue::from(primary.limit));
    headers.insert(X_REMAINING, HeaderValue::from(primary.remaining));
    headers.insert(X_RESET, HeaderValue::from(secs(primary.reset_ms)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_limits::Verdict;

    #[test]
    fn describes_rate_and_quota() {
        let d = Decision {
            verdict: Verdict::Allowed,
            rate: Some(LimitStatus {
                limit: 10,
                window_ms: 1000,
                remaining: 9,
                reset_ms: 100,
            }),
            quota: Some(LimitStatus {
                limit: 1000,
                window_ms: 86_400_000,
                remaining: 990,
                reset_ms: 3_600_000,
            }),
        };
        let mut h = HeaderMap::new();
        insert(&mut h, &d);
        assert_eq!(
            h["ratelimit-policy"],
            "\"rate\";q=10;w=1, \"quota\";q=1000;w=86400"
        );
        assert_eq!(h["ratelimit"], "\"rate\";r=9;t=1, \"quota\";r=990;t=3600");
        assert_eq!(h["x-ratelimit-limit"], "10");
        assert_eq!(h["x-ratelimit-remaining"], "9");
        assert_eq!(h["x-ratelimit-reset"], "1");
    }

    #[test]
    fn nothing_without_limits() {
        let mut h = HeaderMap::new();
        insert(
            &mut h,
            &Decision {
                verdict: Verdict::Allowed,
                rate: None,
                quota: None,
            },
        );
        assert!(h.is_empty());
    }
}
