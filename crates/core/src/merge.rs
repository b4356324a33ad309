//! How several policies become one effective grant for a request.
//!
//! The rules (documented for users in `docs/policies.md`):
//! 1. **Access rights are a union.** An API is granted when any applied policy lists it; a
//!    request is allowed when any of those policies allows its method and path.
//! 2. **Limits apply per API.** For API *A*, the candidate policies are those that list *A* plus
//!    every limits-only policy (one with no access rights, like a plan).
//! 3. **The most permissive limit wins**, separately for rate and quota, among the candidates
//!    that set one. A policy that sets no rate (or quota) does not take part; if none sets one,
//!    that limit does not apply. An explicitly unlimited quota beats every finite one.
//! 4. **Counters belong to the winning policy**: each identity has one allowance per policy, shared by
//!    every API for which that policy supplies the limit.

use crate::policy::{Policy, PolicyId, Quota, RateLimit};
use std::sync::Arc;

/// The limits that apply to one request, each with the policy whose counter it uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EffectiveGrant {
    pub rate: Option<(PolicyId, RateLimit)>,
    pub quota: Option<(PolicyId, Quota)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision {
    Allowed(EffectiveGrant),
    /// No applied policy grants this API.
    ApiNotGranted,
    /// The API is granted, but not this method or path.
    MethodOrPathDenied,
}

/// Decides a request to `api` with `method` on `path` (below the listen path).
pub fn decide(policies: &[Arc<Policy>], api: &str, method: &str, path: &str) -> AccessDecision {
    let mut granted = false;
    let mut allowed = false;
    for policy in policies {
        if let Some(access) = policy.access.get(api) {
            granted = true;
            if access.allows(method, path) {
                allowed = true;
                break;
            }
        }
    }
    if !granted {
        return AccessDecision::ApiNotGranted;
    }
    if !allowed {
        return AccessDecision::MethodOrPathDenied;
    }

    let mut grant = EffectiveGrant::default();
    for policy in policies
        .iter()
        .filter(|p| p.grants_api(api) || p.is_limits_only())
    {
        if let Some(rate) = policy.rate {
            let better = grant.rate.as_ref().is_none_or(|(_, cur)| {
                rate.at_least_as_permissive_as(cur) && !cur.at_least_as_permissive_as(&rate)
            });
            if better {
                grant.rate = Some((policy.id.clone(), rate));
            }
        }
        if let Some(quota) = policy.quota {
            let better = grant.quota.as_ref().is_none_or(|(_, cur)| {
                quota.at_least_as_permissive_as(cur) && !cur.at_least_as_permissive_as(&quota)
            });
            if better {
                grant.quota = Some((policy.id.clone(), quota));
            }
        }
    }
    if matches!(grant.quota, Some((_, Quota::Unlimited))) {
        grant.quota = None;
    }
    AccessDecision::Allowed(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AccessRule, ApiAccess};
    use std::collections::HashMap;

    fn policy(
        id: &str,
        apis: &[(&str, ApiAccess)],
        rate: Option<(u64, u64)>,
        quota: Option<Quota>,
    ) -> Arc<Policy> {
        Arc::new(Policy {
            id: id.into(),
            name: id.into(),
            access: apis
                .iter()
                .map(|(a, acc)| (Arc::from(*a), acc.clone()))
                .collect::<HashMap<_, _>>(),
            rate: rate.map(|(n, per)| RateLimit::try_new(n, per).unwrap()),
            quota,
        })
    }

    fn get_only(pattern: &str) -> ApiAccess {
        ApiAccess {
            rules: vec![AccessRule::try_new(pattern, Some(vec!["GET".into()])).unwrap()],
        }
    }

    #[test]
    fn access_is_a_union() {
        let a = policy("a", &[("orders", get_only("/read"))], None, None);
        let b = policy("b", &[("orders", ApiAccess::default())], None, None);
        assert_eq!(
            decide(std::slice::from_ref(&a), "orders", "POST", "/read"),
            AccessDecision::MethodOrPathDenied
        );
        assert!(matches!(
            decide(&[a.clone(), b], "orders", "POST", "/read"),
            AccessDecision::Allowed(_)
        ));
        assert_eq!(
            decide(&[a], "users", "GET", "/read"),
            AccessDecision::ApiNotGranted
        );
        assert_eq!(
            decide(&[], "users", "GET", "/"),
            AccessDecision::ApiNotGranted
        );
    }

    #[test]
    fn most_permissive_limit_wins_and_owns_the_counter() {
        let silver = policy(
            "silver",
            &[("orders", ApiAccess::default())],
            Some((10, 1000)),
            Some(Quota::limited(100, 60_000).unwrap()),
        );
        let gold = policy(
            "gold",
            &[("orders", ApiAccess::default())],
            Some((100, 1000)),
            Some(Quota::limited(50, 60_000).unwrap()),
        );
        let AccessDecision::Allowed(g) = decide(&[silver, gold], "orders", "GET", "/") else {
            panic!()
        };
        assert_eq!(g.rate.unwrap().0.as_ref(), "gold");
        assert_eq!(g.quota.unwrap().0.as_ref(), "silver");
    }

    #[test]
    fn limits_only_policy_applies_to_granted_apis() {
        let product = policy("product", &[("orders", ApiAccess::default())], None, None);
        let plan = policy(
            "plan",
            &[],
            Some((5, 1000)),
            Some(Quota::limited(1000, 86_400_000).unwrap()),
        );
        let AccessDecision::Allowed(g) =
            decide(&[product.clone(), plan.clone()], "orders", "GET", "/")
        else {
            panic!()
        };
        assert_eq!(
            g.rate,
            Some(("plan".into(), RateLimit::try_new(5, 1000).unwrap()))
        );
        assert_eq!(g.quota.unwrap().0.as_ref(), "plan");
        // A plan alone grants nothing.
        assert_eq!(
            decide(&[plan], "orders", "GET", "/"),
            AccessDecision::ApiNotGranted
        );
        // A product alone: no limits.
        assert_eq!(
            decide(&[product], "orders", "GET", "/"),
            AccessDecision::Allowed(EffectiveGrant::default())
        );
    }

    #[test]
    fn unlimited_quota_wins_and_means_no_quota() {
        let a = policy(
            "a",
            &[("x", ApiAccess::default())],
            None,
            Some(Quota::limited(1, 1000).unwrap()),
        );
        let b = policy(
            "b",
            &[("x", ApiAccess::default())],
            None,
            Some(Quota::Unlimited),
        );
        let AccessDecision::Allowed(g) = decide(&[a, b], "x", "GET", "/") else {
            panic!()
        };
        assert_eq!(g.quota, None);
    }

    #[test]
    fn limits_of_policies_for_other_apis_do_not_apply() {
        let orders = policy(
            "orders",
            &[("orders", ApiAccess::default())],
            Some((1000, 1000)),
            None,
        );
        let users = policy(
            "users",
            &[("users", ApiAccess::default())],
            Some((1, 1000)),
            None,
        );
        let AccessDecision::Allowed(g) = decide(&[users, orders], "orders", "GET", "/") else {
            panic!()
        };
        assert_eq!(g.rate.unwrap().0.as_ref(), "orders");
    }
}
