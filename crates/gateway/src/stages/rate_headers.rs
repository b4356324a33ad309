//! Rate-limit response headers: `RateLimit-Policy` and `RateLimit` (IETF httpapi
//! ratelimit-headers draft, structured fields) and the customary `X-RateLimit-Limit`,
//! `-Remaining`, `-Reset` (seconds), which describe the rate limit when there is one, else the
//! quota.

use http::{HeaderMap, HeaderName, HeaderValue};
use portico_limits::{Decision, LimitStatus};

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

pub fn insert(headers: &mut HeaderMap, decision: &Decision) {
    let named = [("rate", decision.rate), ("quota", decision.quota)];
    let present: Vec<(&str, LimitStatus)> = named
        .iter()
        .filter_map(|(n, s)| s.map(|s| (*n, s)))
        .collect();
    let Some(&(_, primary)) = present.first() else {
        return;
    };
    let policy = present
        .iter()
        .map(|(n, s)| format!("\"{n}\";q={};w={}", s.limit, secs(s.window_ms).max(1)))
        .collect::<Vec<_>>()
        .join(", ");
    let current = present
        .iter()
        .map(|(n, s)| format!("\"{n}\";r={};t={}", s.remaining, secs(s.reset_ms)))
        .collect::<Vec<_>>()
        .join(", ");
    if let (Ok(p), Ok(c)) = (
        HeaderValue::from_str(&policy),
        HeaderValue::from_str(&current),
    ) {
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
