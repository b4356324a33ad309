//! The Lua script that decides a request in Redis (`decide.lua`), the keys and arguments it is
//! called with, and the reading of its answer.
//!
//! Keys: `portico:{<session id, 32 hex>}:rate:<counter key, 16 hex>` and `…:quota:…`. The
//! braces are a Redis Cluster hash tag: all keys of one session hash to one slot, which a
//! script touching several keys needs.

use crate::{Decision, LimitStatus, Limits, Verdict, gcra};
use portico_core::SessionId;
use portico_core::policy::Quota;
use redis::{Script, ScriptInvocation};

pub const DECIDE_LUA: &str = include_str!("decide.lua");

/// Longest quota period the script keeps exact (2^52 µs, about 142 years); longer ones are
/// cut to it, which no caller can tell from "never renews".
const MAX_RENEWAL_US: u64 = 1 << 52;

pub fn decide_script() -> Script {
    Script::new(DECIDE_LUA)
}

pub fn counter_key(session: SessionId, kind: &str, key: u64) -> String {
    format!("portico:{{{session}}}:{kind}:{key:016x}")
}

/// Whether the script counts the request or only looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decide and count: remaining is what is left after this request.
    Count,
    /// Decide, write nothing: remaining is what is left now.
    Peek,
}

/// The script call for one request (both keys are always passed, so the call names every
/// key it may touch, as Cluster requires).
pub fn invocation<'s>(
    script: &'s Script,
    session: SessionId,
    limits: &Limits,
    mode: Mode,
) -> ScriptInvocation<'s> {
    let mut call = script.prepare_invoke();
    let rate_key = limits.rate.map_or(0, |(key, _)| key);
    let quota_key = limits.quota.map_or(0, |(key, _)| key);
    call.key(counter_key(session, "rate", rate_key))
        .key(counter_key(session, "quota", quota_key));
    match limits.rate {
        Some((_, rate)) => {
            let (interval, tolerance) = gcra::interval_and_tolerance_ns(rate);
            call.arg(1).arg(rate.requests).arg(interval).arg(tolerance);
        }
        None => {
            call.arg(0).arg(0).arg(0).arg(0);
        }
    }
    match limits.quota {
        Some((_, Quota::Limited { max, renewal_ms })) => {
            let renewal_us = renewal_ms.saturating_mul(1_000).min(MAX_RENEWAL_US);
            call.arg(1).arg(max).arg(renewal_us);
        }
        _ => {
            call.arg(0).arg(0).arg(0);
        }
    }
    call.arg(u8::from(mode == Mode::Peek));
    call
}

/// Reads the script's answer into the same [`Decision`] the in-process limiter gives.
pub fn decision(limits: &Limits, reply: &[i64]) -> Result<Decision, String> {
    let &[
        verdict,
        retry_after_ms,
        rate_remaining,
        rate_reset_ms,
        quota_remaining,
        quota_reset_ms,
    ] = reply
    else {
        return Err(format!("expected 6 numbers, got {}", reply.len()));
    };
    let number = |n: i64| u64::try_from(n).map_err(|_| format!("negative number {n}"));
    let retry_after_ms = number(retry_after_ms)?;
    let verdict = match verdict {
        0 => Verdict::Allowed,
        1 if limits.rate.is_some() => Verdict::RateLimited { retry_after_ms },
        2 if matches!(limits.quota, Some((_, Quota::Limited { .. }))) => {
            Verdict::QuotaExceeded { retry_after_ms }
        }
        other => return Err(format!("unexpected verdict {other}")),
    };
    let rate = match limits.rate {
        Some((_, rate)) => Some(LimitStatus {
            limit: rate.requests,
            window_ms: rate.per_ms,
            remaining: number(rate_remaining)?.min(rate.requests),
            reset_ms: number(rate_reset_ms)?,
        }),
        None => None,
    };
    let quota = match limits.quota {
        Some((_, Quota::Limited { max, renewal_ms })) => Some(LimitStatus {
            limit: max,
            window_ms: renewal_ms,
            remaining: number(quota_remaining)?.min(max),
            reset_ms: number(quota_reset_ms)?,
        }),
        _ => None,
    };
    Ok(Decision {
        verdict,
        rate,
        quota,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::policy::RateLimit;

    #[test]
    fn one_sessions_keys_share_a_cluster_hash_tag() {
        let session = SessionId::from_label("alice");
        let rate = counter_key(session, "rate", 0xab);
        let quota = counter_key(session, "quota", 0xcd);
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
        assert_eq!(tag(&rate), format!("{{{session}}}"));
        assert_eq!(tag(&rate), tag(&quota));
        assert_eq!(rate, format!("portico:{{{session}}}:rate:00000000000000ab"));
    }

    #[test]
    fn answers_that_do_not_fit_the_limits_are_refused() {
        let rate_only = Limits {
            rate: Some((1, RateLimit::try_new(5, 1000).unwrap())),
            quota: None,
        };
        assert!(decision(&rate_only, &[0, 0, 4, 200, 0, 0]).is_ok());
        assert!(decision(&rate_only, &[0, 0, 4]).is_err());
        assert!(decision(&rate_only, &[2, 10, 4, 200, 0, 0]).is_err());
        assert!(decision(&rate_only, &[7, 0, 4, 200, 0, 0]).is_err());
        assert!(decision(&rate_only, &[0, 0, -1, 200, 0, 0]).is_err());
        let d = decision(&rate_only, &[1, 150, 99, 200, 0, 0]).unwrap();
        assert_eq!(
            d.verdict,
            Verdict::RateLimited {
                retry_after_ms: 150
            }
        );
        assert_eq!(d.rate.unwrap().remaining, 5, "never above the limit");
        assert_eq!(d.quota, None);
    }
}
