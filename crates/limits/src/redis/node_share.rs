//! `fail_open_local`: while Redis is away each node decides alone, so it may allow only its
//! share of every limit. The share is `floor(limit / nodes)`, so that the nodes together never
//! allow more than the limit — but never below 1 when the limit is at least 1, so that a
//! policy stays usable on every node (then, and only then, `nodes` requests may pass where the
//! limit is smaller than `nodes`). A limit of 0 stays 0.

use crate::Limits;
use portico_core::policy::{Quota, RateLimit};

/// The part of `limits` one of `nodes` gateway nodes may allow on its own (same windows).
pub fn node_share(limits: &Limits, nodes: u32) -> Limits {
    Limits {
        rate: limits.rate.map(|(key, rate)| {
            (
                key,
                RateLimit {
                    requests: share(rate.requests, nodes),
                    per_ms: rate.per_ms,
                },
            )
        }),
        quota: limits.quota.map(|(key, quota)| {
            (
                key,
                match quota {
                    Quota::Limited { max, renewal_ms } => Quota::Limited {
                        max: share(max, nodes),
                        renewal_ms,
                    },
                    Quota::Unlimited => Quota::Unlimited,
                },
            )
        }),
    }
}

fn share(limit: u64, nodes: u32) -> u64 {
    if limit == 0 {
        return 0;
    }
    (limit / u64::from(nodes.max(1))).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_down_never_below_one() {
        assert_eq!(share(100, 1), 100);
        assert_eq!(share(100, 3), 33, "3 x 33 <= 100");
        assert_eq!(share(101, 2), 50);
        assert_eq!(share(2, 3), 1, "a usable policy stays usable on every node");
        assert_eq!(share(1, 8), 1);
        assert_eq!(share(0, 4), 0, "a zero quota stays closed");
        assert_eq!(share(7, 0), 7, "0 nodes is read as 1");
    }

    #[test]
    fn windows_and_counter_keys_are_kept() {
        let limits = Limits {
            rate: Some((7, RateLimit::try_new(100, 60_000).unwrap())),
            quota: Some((9, Quota::limited(1_000, 86_400_000).unwrap())),
        };
        let shared = node_share(&limits, 4);
        assert_eq!(
            shared.rate,
            Some((7, RateLimit::try_new(25, 60_000).unwrap()))
        );
        assert_eq!(
            shared.quota,
            Some((9, Quota::limited(250, 86_400_000).unwrap()))
        );
        let unlimited = Limits {
            rate: None,
            quota: Some((9, Quota::Unlimited)),
        };
        assert_eq!(node_share(&unlimited, 4), unlimited);
    }
}
