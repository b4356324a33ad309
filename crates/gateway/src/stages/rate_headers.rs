//! Rate-limit response headers: `RateLimit-Policy` and `RateLimit` (IETF httpapi
//! ratelimit-headers draft, structured fields) and the customary `X-RateLimit-Limit`,
//! `-Remaining`, `-Reset` (seconds), which describe the rate limit when there is one, else the
//! quota.

use bytes::{BufMut, BytesMut};
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

/// All five values are written into one buffer and share it: one allocation per response.
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
    let mut out = Values {
        buf: BytesMut::with_capacity(128),
        ..Values::default()
    };
    // Structured-field lists, e.g. `"rate";q=10;w=1, "quota";q=1000;w=86400`.
    out.list(present, |out, s| {
        out.param(";q=", s.limit);
        out.param(";w=", secs(s.window_ms).max(1));
    });
    out.list(present, |out, s| {
        out.param(";r=", s.remaining);
        out.param(";t=", secs(s.reset_ms));
    });
    out.number(primary.limit);
    out.number(primary.remaining);
    out.number(secs(primary.reset_ms));
    let values = out.buf.freeze();
    let names = [RATELIMIT_POLICY, RATELIMIT, X_LIMIT, X_REMAINING, X_RESET];
    let mut start = 0;
    for (name, end) in names.into_iter().zip(out.ends) {
        if let Ok(value) = HeaderValue::from_maybe_shared(values.slice(start..end)) {
            headers.insert(name, value);
        }
        start = end;
    }
}

/// Header values written back to back; `ends[i]` is where the i-th ends.
#[derive(Default)]
struct Values {
    buf: BytesMut,
    ends: [usize; 5],
    count: usize,
}

impl Values {
    fn end_value(&mut self) {
        self.ends[self.count] = self.buf.len();
        self.count += 1;
    }

    fn number(&mut self, n: u64) {
        self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
        self.end_value();
    }

    fn param(&mut self, key: &str, n: u64) {
        self.buf.put_slice(key.as_bytes());
        self.buf.put_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn list(&mut self, present: &[(&str, LimitStatus)], params: impl Fn(&mut Self, &LimitStatus)) {
        for (i, (name, status)) in present.iter().enumerate() {
            if i > 0 {
                self.buf.put_slice(b", ");
            }
            self.buf.put_u8(b'"');
            self.buf.put_slice(name.as_bytes());
            self.buf.put_u8(b'"');
            params(self, status);
        }
        self.end_value();
    }
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
