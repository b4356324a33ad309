//! Which policies a token brings: its policy claim, its scopes through the scope map, else the
//! API's default policies.

use portico_core::api::PolicySource;
use portico_core::{ClaimPath, Policy, PolicySet};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The policies applied to a request, in a stable order without duplicates. Unknown policy
/// ids in a claim are ignored.
pub fn applied_policies(
    source: &PolicySource,
    scope_claim: &ClaimPath,
    claims: &Map<String, Value>,
    set: &PolicySet,
) -> Vec<Arc<Policy>> {
    let mut applied: Vec<Arc<Policy>> = Vec::new();
    let add = |applied: &mut Vec<Arc<Policy>>, id: &str| {
        if let Some(p) = set.get(id)
            && !applied.iter().any(|a| a.id == p.id)
        {
            applied.push(p.clone());
        }
    };
    if let Some(claim) = &source.policy_claim {
        for id in claim.lookup_list(claims) {
            add(&mut applied, id);
        }
    }
    if !source.scope_map.is_empty() {
        for scope in scope_claim.lookup_list(claims) {
            for id in source.scope_map.get(scope).into_iter().flatten() {
                add(&mut applied, id);
            }
        }
    }
    if applied.is_empty() {
        for id in &source.default_policies {
            add(&mut applied, id);
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn set(ids: &[&str]) -> PolicySet {
        let mut s = PolicySet::default();
        for id in ids {
            s.insert(Policy {
                id: (*id).into(),
                name: (*id).into(),
                access: HashMap::new(),
                rate: None,
                quota: None,
            });
        }
        s
    }

    fn ids(p: &[Arc<Policy>]) -> Vec<&str> {
        p.iter().map(|p| p.id.as_ref()).collect()
    }

    #[test]
    fn claim_scopes_and_defaults() {
        let policies = set(&["gold", "reader", "basic"]);
        let source = PolicySource {
            policy_claim: Some(ClaimPath::try_new("pol").unwrap()),
            scope_claim: None,
            scope_map: HashMap::from([("orders:read".to_string(), vec!["reader".into()])]),
            default_policies: vec!["basic".into()],
        };
        let scope = source.scope_claim();
        let c = json!({"pol": ["gold", "nope"], "scope": "orders:read other"});
        assert_eq!(
            ids(&applied_policies(
                &source,
                &scope,
                c.as_object().unwrap(),
                &policies
            )),
            vec!["gold", "reader"]
        );
        let c = json!({"pol": "gold", "scope": "orders:read"});
        assert_eq!(
            ids(&applied_policies(
                &source,
                &scope,
                c.as_object().unwrap(),
                &policies
            )),
            vec!["gold", "reader"]
        );
        let c = json!({"scope": "unmapped"});
        assert_eq!(
            ids(&applied_policies(
                &source,
                &scope,
                c.as_object().unwrap(),
                &policies
            )),
            vec!["basic"]
        );
    }

    #[test]
    fn nested_scope_claims() {
        let policies = set(&["admin"]);
        let source = PolicySource {
            scope_claim: Some(ClaimPath::try_new("realm_access.roles").unwrap()),
            scope_map: HashMap::from([("admin".to_string(), vec!["admin".into()])]),
            ..Default::default()
        };
        let c = json!({"realm_access": {"roles": ["user", "admin"]}});
        assert_eq!(
            ids(&applied_policies(
                &source,
                &source.scope_claim(),
                c.as_object().unwrap(),
                &policies
            )),
            vec!["admin"]
        );
    }
}
