//! Policies: which APIs an identity may call, and how often.

use crate::api::ApiId;
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;

pub type PolicyId = Arc<str>;

/// `requests` per `per_ms` milliseconds, enforced as a GCRA: a burst of up to `requests`, then
/// one request every `per_ms / requests` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u64,
    pub per_ms: u64,
}

impl RateLimit {
    pub fn try_new(requests: u64, per_ms: u64) -> Result<Self, String> {
        if requests == 0 || per_ms == 0 {
            return Err("a rate limit needs requests > 0 and a period > 0".into());
        }
        Ok(Self { requests, per_ms })
    }

    /// True when `self` lets through at least as many requests per unit of time as `other`.
    pub fn at_least_as_permissive_as(&self, other: &RateLimit) -> bool {
        u128::from(self.requests) * u128::from(other.per_ms)
            >= u128::from(other.requests) * u128::from(self.per_ms)
    }
}

/// A quota: at most `max` requests per renewal period, or no cap at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Unlimited,
    Limited { max: u64, renewal_ms: u64 },
}

impl Quota {
    pub fn limited(max: u64, renewal_ms: u64) -> Result<Self, String> {
        if renewal_ms == 0 {
            return Err("a quota needs a renewal period > 0".into());
        }
        Ok(Self::Limited { max, renewal_ms })
    }

    /// Unlimited beats everything; otherwise the higher allowance per unit of time wins.
    pub fn at_least_as_permissive_as(&self, other: &Quota) -> bool {
        match (self, other) {
            (Quota::Unlimited, _) => true,
            (Quota::Limited { .. }, Quota::Unlimited) => false,
            (
                Quota::Limited {
                    max: a,
                    renewal_ms: pa,
                },
                Quota::Limited {
                    max: b,
                    renewal_ms: pb,
                },
            ) => u128::from(*a) * u128::from(*pb) >= u128::from(*b) * u128::from(*pa),
        }
    }
}

/// One allowed path pattern, optionally limited to some methods.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// Matched from the start of the path below the API's listen path (implicit `^`).
    pub path: Regex,
    /// Upper-case method names; `None` allows every method.
    pub methods: Option<Vec<String>>,
}

impl AccessRule {
    pub fn try_new(pattern: &str, methods: Option<Vec<String>>) -> Result<Self, String> {
        let path = Regex::new(&format!("^(?:{pattern})"))
            .map_err(|e| format!("invalid path pattern {pattern:?}: {e}"))?;
        let methods = methods.map(|ms| {
            ms.into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect::<Vec<_>>()
        });
        Ok(Self { path, methods })
    }

    pub fn allows(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)));
        method_ok && self.path.is_match(path)
    }
}

/// What a policy grants on one API: everything (no rules), or what any rule allows.
#[derive(Debug, Clone, Default)]
pub struct ApiAccess {
    pub rules: Vec<AccessRule>,
}

impl ApiAccess {
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r.allows(method, path))
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub id: PolicyId,
    pub name: String,
    /// The APIs this policy grants. Empty: a limits-only policy (a "plan"), whose limits apply
    /// to every API the identity is granted by its other policies.
    pub access: HashMap<ApiId, ApiAccess>,
    /// `None`: this policy says nothing about the rate.
    pub rate: Option<RateLimit>,
    /// `None`: this policy says nothing about the quota.
    pub quota: Option<Quota>,
}

impl Policy {
    pub fn grants_api(&self, api: &str) -> bool {
        self.access.contains_key(api)
    }

    pub fn is_limits_only(&self) -> bool {
        self.access.is_empty()
    }
}

/// All policies of one config version, by id.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    by_id: HashMap<PolicyId, Arc<Policy>>,
}

impl PolicySet {
    pub fn insert(&mut self, policy: Policy) -> Option<Arc<Policy>> {
        self.by_id.insert(policy.id.clone(), Arc::new(policy))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Policy>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_comparison_is_per_unit_of_time() {
        let ten_per_sec = RateLimit::try_new(10, 1000).unwrap();
        let hundred_per_min = RateLimit::try_new(100, 60_000).unwrap();
        assert!(ten_per_sec.at_least_as_permissive_as(&hundred_per_min));
        assert!(!hundred_per_min.at_least_as_permissive_as(&ten_per_sec));
        assert!(RateLimit::try_new(0, 1000).is_err());
        assert!(RateLimit::try_new(1, 0).is_err());
    }

    #[test]
    fn quota_comparison() {
        let per_hour = Quota::limited(100, 3_600_000).unwrap();
        let per_day = Quota::limited(1000, 86_400_000).unwrap();
        assert!(per_hour.at_least_as_permissive_as(&per_day));
        assert!(Quota::Unlimited.at_least_as_permissive_as(&per_hour));
        assert!(!per_day.at_least_as_permissive_as(&Quota::Unlimited));
    }

    #[test]
    fn access_rules_anchor_at_start_and_check_methods() {
        let rule = AccessRule::try_new("/users/[0-9]+", Some(vec!["get".into()])).unwrap();
        assert!(rule.allows("GET", "/users/42"));
        assert!(!rule.allows("POST", "/users/42"));
        assert!(!rule.allows("GET", "/admin/users/42"));
        assert!(AccessRule::try_new("(", None).is_err());
        let open = ApiAccess::default();
        assert!(open.allows("DELETE", "/anything"));
    }
}
