//! The generic cell rate algorithm: `requests` per `per_ms` as a burst of `requests`, then one
//! every `per_ms / requests`. State is one number, the theoretical arrival time (TAT).
//! Rejected requests do not move the TAT, so a client that slows down recovers at once.

use crate::LimitStatus;
use portico_core::policy::RateLimit;

const NS_PER_MS: u128 = 1_000_000;

/// Emission interval and burst tolerance in nanoseconds (the Redis script gets them from here).
pub fn interval_and_tolerance_ns(limit: RateLimit) -> (u64, u64) {
    let period_ns = u128::from(limit.per_ms) * NS_PER_MS;
    let interval = (period_ns / u128::from(limit.requests)).max(1);
    let tolerance = period_ns.saturating_sub(interval);
    (
        interval.min(u128::from(u64::MAX)) as u64,
        tolerance.min(u128::from(u64::MAX)) as u64,
    )
}

/// Outcome of one GCRA check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcraOutcome {
    pub allowed: bool,
    /// The TAT to store if the request goes ahead (unchanged when rejected).
    pub new_tat_ns: u64,
    /// Nanoseconds until a request would be allowed (0 when allowed).
    pub retry_after_ns: u64,
    pub status: LimitStatus,
}

fn ns_to_ms_ceil(ns: u64) -> u64 {
    ns.div_ceil(1_000_000)
}

/// Decides a request at `now_ns` given the stored `tat_ns`. Does not store anything; the
/// status is what is left after this request.
pub fn check(limit: RateLimit, tat_ns: u64, now_ns: u64) -> GcraOutcome {
    let (interval, tolerance) = interval_and_tolerance_ns(limit);
    let tat = tat_ns.max(now_ns);
    if tat - now_ns > tolerance {
        let retry_after_ns = (tat - now_ns) - tolerance;
        return GcraOutcome {
            allowed: false,
            new_tat_ns: tat_ns,
            retry_after_ns,
            status: status_at(limit, tat, now_ns),
        };
    }
    let new_tat = tat.saturating_add(interval);
    GcraOutcome {
        allowed: true,
        new_tat_ns: new_tat,
        retry_after_ns: 0,
        status: status_at(limit, new_tat, now_ns),
    }
}

/// What is left now, before any further request, given the stored `tat_ns`.
pub fn status_now(limit: RateLimit, tat_ns: u64, now_ns: u64) -> LimitStatus {
    status_at(limit, tat_ns.max(now_ns), now_ns)
}

fn status_at(limit: RateLimit, tat_ns: u64, now_ns: u64) -> LimitStatus {
    let (interval, tolerance) = interval_and_tolerance_ns(limit);
    let horizon = now_ns.saturating_add(tolerance);
    let remaining = if horizon >= tat_ns {
        (horizon - tat_ns) / interval + 1
    } else {
        0
    };
    LimitStatus {
        limit: limit.requests,
        window_ms: limit.per_ms,
        remaining: remaining.min(limit.requests),
        reset_ms: ns_to_ms_ceil(tat_ns.saturating_sub(now_ns)),
    }
}

pub fn at_rest(tat_ns: u64, now_ns: u64) -> bool {
    tat_ns <= now_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn run(limit: RateLimit, times_ms: &[u64]) -> Vec<bool> {
        let mut tat = 0;
        times_ms
            .iter()
            .map(|t| {
                let o = check(limit, tat, t * MS + 1_000_000_000);
                if o.allowed {
                    tat = o.new_tat_ns;
                }
                o.allowed
            })
            .collect()
    }

    #[test]
    fn burst_then_steady_rate() {
        let five_per_sec = RateLimit::try_new(5, 1000).unwrap();
        assert_eq!(
            run(five_per_sec, &[0, 0, 0, 0, 0, 0]),
            vec![true, true, true, true, true, false]
        );
        // One slot frees every 200 ms.
        assert_eq!(
            run(five_per_sec, &[0, 0, 0, 0, 0, 199, 200, 201]),
            vec![true, true, true, true, true, false, true, false]
        );
    }

    #[test]
    fn rejected_requests_do_not_consume() {
        let one_per_sec = RateLimit::try_new(1, 1000).unwrap();
        // Hammering at 10 ms intervals does not push recovery further out.
        let mut times: Vec<u64> = (0..100).map(|i| i * 10).collect();
        times.push(1000);
        let results = run(one_per_sec, &times);
        assert!(results[0]);
        assert!(results[1..100].iter().all(|a| !a));
        assert!(
            results[100],
            "allowed again exactly one period after the first"
        );
    }

    #[test]
    fn status_counts_down_and_reports_retry() {
        let three = RateLimit::try_new(3, 3000).unwrap();
        let now = 10_000 * MS;
        let a = check(three, 0, now);
        assert_eq!((a.status.remaining, a.status.limit), (2, 3));
        let b = check(three, a.new_tat_ns, now);
        assert_eq!(b.status.remaining, 1);
        let c = check(three, b.new_tat_ns, now);
        assert_eq!(c.status.remaining, 0);
        assert_eq!(c.status.reset_ms, 3000);
        let d = check(three, c.new_tat_ns, now);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ns, 1000 * MS);
        assert_eq!(d.new_tat_ns, c.new_tat_ns);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let huge = RateLimit::try_new(u64::MAX, 1).unwrap();
        assert!(check(huge, 0, 5).allowed);
        let slow = RateLimit::try_new(1, u64::MAX / 2_000_000).unwrap();
        assert!(check(slow, 0, 5).allowed);
        let endless = RateLimit::try_new(2, u64::MAX).unwrap();
        let first = check(endless, 0, u64::MAX / 2);
        assert!(first.allowed);
        assert!(check(endless, first.new_tat_ns, u64::MAX / 2).allowed);
    }
}
