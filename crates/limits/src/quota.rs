//! Quotas: at most `max` requests per renewal period; the period starts at the first request
//! after the previous one ended.

use crate::LimitStatus;

/// Stored quota state of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaState {
    pub used: u64,
    /// When the current period ends (ns on the limiter's clock); 0: no period yet.
    pub renews_at_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOutcome {
    pub allowed: bool,
    /// The state to store if the request goes ahead.
    pub next: QuotaState,
    pub retry_after_ns: u64,
    pub status: LimitStatus,
}

/// Decides one request at `now_ns`. Does not store anything.
pub fn check(max: u64, renewal_ms: u64, state: QuotaState, now_ns: u64) -> QuotaOutcome {
    let renewal_ns = renewal_ms.saturating_mul(1_000_000);
    let current = if now_ns >= state.renews_at_ns {
        QuotaState {
            used: 0,
            renews_at_ns: now_ns.saturating_add(renewal_ns),
        }
    } else {
        state
    };
    let reset_ms = (current.renews_at_ns - now_ns).div_ceil(1_000_000);
    let allowed = current.used < max;
    let next = if allowed {
        QuotaState {
            used: current.used + 1,
            ..current
        }
    } else {
        current
    };
    QuotaOutcome {
        allowed,
        next,
        retry_after_ns: if allowed {
            0
        } else {
            current.renews_at_ns - now_ns
        },
        status: LimitStatus {
            limit: max,
            window_ms: renewal_ms,
            // `used` exceeds `max` when a reload lowered `max` during the period.
            remaining: max.saturating_sub(next.used),
            reset_ms,
        },
    }
}

/// True when nothing would be lost by forgetting this state at `now_ns`.
pub fn at_rest(state: QuotaState, now_ns: u64) -> bool {
    state.used == 0 || now_ns >= state.renews_at_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn counts_up_to_max_then_renews() {
        let mut st = QuotaState::default();
        let mut allowed = 0;
        for _ in 0..5 {
            let o = check(3, 60_000, st, 10 * S);
            if o.allowed {
                st = o.next;
                allowed += 1;
            } else {
                assert_eq!(o.retry_after_ns, 60 * S);
                assert_eq!(o.status.remaining, 0);
            }
        }
        assert_eq!(allowed, 3);
        assert!(!check(3, 60_000, st, 69 * S).allowed);
        let renewed = check(3, 60_000, st, 70 * S);
        assert!(renewed.allowed);
        assert_eq!(renewed.status.remaining, 2);
        assert!(!at_rest(renewed.next, 71 * S));
        assert!(at_rest(renewed.next, 130 * S));
    }

    #[test]
    fn a_max_lowered_below_the_count_so_far_rejects_with_nothing_remaining() {
        let used = QuotaState {
            used: 8,
            renews_at_ns: 60 * S,
        };
        let o = check(5, 60_000, used, 10 * S);
        assert!(!o.allowed);
        assert_eq!(o.status.remaining, 0);
    }

    #[test]
    fn zero_quota_allows_nothing() {
        assert!(!check(0, 1000, QuotaState::default(), S).allowed);
    }
}
