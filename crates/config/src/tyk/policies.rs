//! Tyk `policies.json`: access rights, rate limits and quotas. A restriction Portico cannot
//! apply as written is an error, never dropped.

use super::limits;
use super::{Fields, is_set, json_kind, report_unsupported, string_field};
use portico_core::config::{Problem, has_errors};
use portico_core::policy::{AccessRule, ApiAccess, Policy, PolicyId};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

const POLICY_FIELDS: &[&str] = &[
    "id",
    "_id",
    "name",
    "org_id",
    "access_rights",
    "rate",
    "per",
    "quota_max",
    "quota_renewal_rate",
    "active",
    "is_inactive",
    "partitions",
    "max_query_depth",
];
const POLICY_DESCRIPTIVE: &[&str] = &[
    "tags",
    "meta_data",
    "last_updated",
    "state",
    "key_expires_in",
    "hmac_enabled",
];
const ACCESS_FIELDS: &[&str] = &["api_id", "api_name", "versions", "allowed_urls", "limit"];
/// Access-right members that narrow a grant in ways Portico does not enforce.
const REFUSED_ACCESS_FIELDS: &[(&str, &str)] = &[
    ("endpoints", "per-endpoint rate limits are not supported"),
    (
        "restricted_types",
        "GraphQL type restrictions are not supported",
    ),
    (
        "allowed_types",
        "GraphQL type restrictions are not supported",
    ),
    (
        "field_access_rights",
        "GraphQL field restrictions are not supported",
    ),
];

/// A per_api policy whose APIs have limits of their own, loaded as one policy per such API
/// (`<policy>#<api>`) plus, for its other APIs, the policy under its own id: what to read for
/// the Tyk policy id where an API names it (scope map, default policies).
pub type PerApiSplits = HashMap<PolicyId, Vec<PolicyId>>;

/// Loads a Tyk `policies.json`: an object keyed by policy id, or an array of policies.
pub fn load_policies_file(path: &Path) -> (Vec<Policy>, PerApiSplits, Vec<Problem>) {
    let location = path.display().to_string();
    let mut problems = Vec::new();
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|t| {
            serde_json::from_str::<Value>(&t).map_err(|e| format!("not valid JSON: {e}"))
        });
    let entries: Vec<(Option<String>, Value)> = match parsed {
        Ok(Value::Object(map)) => map.into_iter().map(|(k, v)| (Some(k), v)).collect(),
        Ok(Value::Array(items)) => items.into_iter().map(|v| (None, v)).collect(),
        Ok(_) => {
            problems.push(Problem::error(
                &location,
                "policies must be an object keyed by id or an array",
            ));
            return (Vec::new(), PerApiSplits::new(), problems);
        }
        Err(e) => {
            problems.push(Problem::error(&location, e));
            return (Vec::new(), PerApiSplits::new(), problems);
        }
    };
    let mut policies = Vec::new();
    let mut splits = PerApiSplits::new();
    for (i, (key, value)) in entries.into_iter().enumerate() {
        match value {
            Value::Object(obj) => {
                if let Some(converted) = convert_policy(key, &obj, &location, &mut problems) {
                    if let Some(id) = converted.split_from {
                        splits.insert(
                            id,
                            converted.policies.iter().map(|p| p.id.clone()).collect(),
                        );
                    }
                    policies.extend(converted.policies);
                }
            }
            other => problems.push(Problem::error(
                &location,
                format!(
                    "policy {}: must be an object, not {}",
                    key.unwrap_or_else(|| format!("[{i}]")),
                    json_kind(&other)
                ),
            )),
        }
    }
    (policies, splits, problems)
}

/// What one Tyk policy becomes: itself, or for a per_api policy whose APIs have limits of
/// their own, one policy per such API (and one for the rest), split from the Tyk id.
pub(super) struct ConvertedPolicy {
    pub policies: Vec<Policy>,
    pub split_from: Option<PolicyId>,
}

pub(super) fn convert_policy(
    key: Option<String>,
    obj: &Map<String, Value>,
    file: &str,
    problems: &mut Vec<Problem>,
) -> Option<ConvertedPolicy> {
    let id = key.or_else(|| {
        string_field(obj, "id")
            .or_else(|| string_field(obj, "_id"))
            .map(str::to_string)
    });
    let Some(id) = id else {
        problems.push(Problem::error(file, "a policy has no id"));
        return None;
    };
    let location = format!("{file}: policy {id:?}");
    let before = problems.len();
    let err =
        |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(&location, msg));
    report_unsupported(
        obj,
        &[POLICY_FIELDS, POLICY_DESCRIPTIVE],
        &location,
        "",
        problems,
    );
    let fields = Fields {
        obj,
        location: &location,
        prefix: "",
    };
    let active = match obj.get("active") {
        None | Some(Value::Null) => true,
        Some(_) => fields.flag("active", problems),
    };
    if !active || fields.flag("is_inactive", problems) {
        problems.push(Problem::warning(&location, "inactive: not loaded"));
        return None;
    }
    // Partitioned policies contribute only the parts they are flagged for.
    let partitions = match obj.get("partitions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => Some(p),
        Some(other) => {
            err(
                problems,
                format!("partitions must be an object, not {}", json_kind(other)),
            );
            None
        }
    };
    if let Some(p) = partitions {
        let flags = Fields {
            obj: p,
            location: &location,
            prefix: "partitions.",
        };
        for name in ["quota", "rate_limit", "acl", "per_api", "complexity"] {
            flags.flag(name, problems);
        }
    }
    let flagged = |name: &str| partitions.and_then(|p| p.get(name)) == Some(&Value::Bool(true));
    // As Tyk's `Partitions.Enabled()`: `complexity` alone also makes a policy partitioned.
    let partitioned = ["quota", "rate_limit", "acl", "complexity"]
        .iter()
        .any(|k| flagged(k));
    let part = |name: &str| !partitioned || flagged(name);
    let per_api = flagged("per_api");
    if per_api && partitioned {
        err(
            problems,
            "partitions.per_api is set with other partitions: Tyk refuses to apply such a policy"
                .into(),
        );
    }
    if part("complexity") {
        check_query_depth(obj, "", &location, problems);
    }

    let rate = if part("rate_limit") {
        limits::rate_limit(obj)
            .map_err(|e| err(problems, format!("rate/per: {e}")))
            .ok()
            .flatten()
    } else {
        None
    };
    let quota = if part("quota") {
        limits::quota(obj)
            .map_err(|e| err(problems, format!("quota: {e}")))
            .ok()
            .flatten()
    } else {
        None
    };

    let mut access = HashMap::new();
    let mut own_limits: Vec<(&str, Limits)> = Vec::new();
    if part("acl") {
        let rights = match obj.get("access_rights") {
            None | Some(Value::Null) => None,
            Some(Value::Object(rights)) => Some(rights),
            Some(other) => {
                err(
                    problems,
                    format!("access_rights must be an object, not {}", json_kind(other)),
                );
                None
            }
        };
        for (api_id, right) in rights.into_iter().flatten() {
            let prefix = format!("access_rights.{api_id}.");
            let right = match right {
                Value::Null => &Map::new(),
                Value::Object(right) => right,
                other => {
                    err(
                        problems,
                        format!("{prefix} must be an object, not {}", json_kind(other)),
                    );
                    continue;
                }
            };
            let refused: Vec<&str> = REFUSED_ACCESS_FIELDS.iter().map(|(f, _)| *f).collect();
            report_unsupported(
                right,
                &[ACCESS_FIELDS, &refused],
                &location,
                &prefix,
                problems,
            );
            for (field, why) in REFUSED_ACCESS_FIELDS {
                if right.get(*field).is_some_and(is_set) {
                    err(problems, format!("{prefix}{field}: {why}"));
                }
            }
            // Tyk reads a per-API limit only in a per_api policy, and only when it is not
            // empty (every member zero); otherwise the policy-wide limits apply.
            if let Some(limit) = right.get("limit").filter(|l| is_set(l))
                && let Some(own) =
                    api_limit(limit, &prefix, per_api, (rate, quota), &location, problems)
            {
                own_limits.push((api_id.as_str(), own));
            }
            let rules = allowed_urls(right.get("allowed_urls"), &prefix, &location, problems);
            access.insert(api_id.as_str().into(), ApiAccess { rules });
        }
    }
    // A per_api policy: its APIs without a limit of their own share the policy-wide limits and
    // one counter named after the policy; an API with its own limit has its own counter (Tyk's
    // `AllowanceScope`). Portico keeps one allowance per policy, so such an API becomes a
    // policy of its own, `<policy>#<api>`, and the rest stay under the policy's id.
    let (rate, quota) = match own_limits.as_slice() {
        // One API only: its limit is the policy's (one counter either way).
        [(_, own)] if access.len() == 1 => {
            let own = *own;
            own_limits.clear();
            own
        }
        _ => (rate, quota),
    };
    if !own_limits.is_empty() && !has_errors(&problems[before..]) {
        let name = string_field(obj, "name").unwrap_or(&id).to_string();
        let mut policies = Vec::new();
        for (api, (rate, quota)) in own_limits {
            let Some((api, rights)) = access.remove_entry(api) else {
                continue;
            };
            policies.push(Policy {
                id: format!("{id}#{api}").into(),
                name: format!("{name} ({api})"),
                access: HashMap::from([(api, rights)]),
                rate,
                quota,
            });
        }
        // Without APIs it would be a limits-only policy, whose limits apply to every API.
        if !access.is_empty() {
            policies.push(Policy {
                id: id.as_str().into(),
                name,
                access,
                rate,
                quota,
            });
        }
        policies.sort_by(|a, b| a.id.cmp(&b.id));
        return Some(ConvertedPolicy {
            policies,
            split_from: Some(id.into()),
        });
    }
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(ConvertedPolicy {
        policies: vec![Policy {
            name: string_field(obj, "name").unwrap_or(&id).to_string(),
            id: id.into(),
            access,
            rate,
            quota,
        }],
        split_from: None,
    })
}

/// `allowed_urls`: regular expressions matched from the start of the path below the listen
/// path, each with the methods it allows. As in Tyk, an entry without methods allows nothing.
fn allowed_urls(
    value: Option<&Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Vec<AccessRule> {
    let err =
        |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(location, msg));
    let entries = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            err(
                problems,
                format!(
                    "{prefix}allowed_urls must be an array, not {}",
                    json_kind(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{prefix}allowed_urls[{i}]");
        let Some(entry) = entry.as_object() else {
            err(
                problems,
                format!("{at} must be an object, not {}", json_kind(entry)),
            );
            continue;
        };
        let Some(pattern) = entry.get("url").and_then(Value::as_str) else {
            err(
                problems,
                format!("{at}.url must be a string (a regular expression)"),
            );
            continue;
        };
        let methods: Option<Vec<String>> = match entry.get("methods") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(ms)) => ms.iter().map(|m| m.as_str().map(str::to_string)).collect(),
            Some(_) => None,
        };
        let Some(methods) = methods else {
            err(
                problems,
                format!("{at}.methods must be an array of method names"),
            );
            continue;
        };
        if methods.is_empty() {
            problems.push(Problem::warning(
                location,
                format!("{at} ({pattern:?}) lists no methods, so it allows nothing (as in Tyk)"),
            ));
        }
        match AccessRule::try_new(pattern, Some(methods)) {
            Ok(rule) => rules.push(rule),
            Err(e) => err(problems, format!("{at}: {e}")),
        }
    }
    rules
}

type Limits = (Option<portico_core::RateLimit>, Option<portico_core::Quota>);

/// A per-API `limit` (not empty). In a per_api policy it is that API's limits, returned; in
/// any other policy Tyk ignores it (the policy-wide limits apply), and so does Portico, with
/// a warning when it says something else.
fn api_limit(
    limit: &Value,
    prefix: &str,
    per_api: bool,
    policy_wide: Limits,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<Limits> {
    let Some(limit) = limit.as_object() else {
        problems.push(Problem::error(
            location,
            format!("{prefix}limit must be an object, not {}", json_kind(limit)),
        ));
        return None;
    };
    let parsed = limits::rate_limit(limit).and_then(|r| Ok((r, limits::quota(limit)?)));
    if !per_api {
        if parsed.as_ref().ok() != Some(&policy_wide) {
            problems.push(Problem::warning(
                location,
                format!("{prefix}limit is ignored, as in Tyk: a policy's per-API limits apply only with partitions.per_api; the policy-wide limits apply"),
            ));
        }
        return None;
    }
    let prefix = format!("{prefix}limit.");
    check_query_depth(limit, &prefix, location, problems);
    for throttle in ["throttle_interval", "throttle_retry_limit"] {
        if limits::number(limit, throttle)
            .ok()
            .flatten()
            .is_some_and(|n| n > 0.0)
        {
            problems.push(Problem::warning(
                location,
                format!("{prefix}{throttle}: Tyk retries throttled requests; Portico answers 429 at once"),
            ));
        }
    }
    report_unsupported(
        limit,
        &[&[
            "rate",
            "per",
            "quota_max",
            "quota_renewal_rate",
            "throttle_interval",
            "throttle_retry_limit",
            "max_query_depth",
            // Counter state, not configuration.
            "quota_renews",
            "quota_remaining",
            "set_by",
        ]],
        location,
        &prefix,
        problems,
    );
    parsed
        .map_err(|e| problems.push(Problem::error(location, format!("{prefix}: {e}"))))
        .ok()
}

/// `max_query_depth` (GraphQL): -1 and 0 are none; a depth limit is not enforced by Portico.
fn check_query_depth(
    obj: &Map<String, Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) {
    match limits::number(obj, "max_query_depth") {
        Ok(None) => {}
        Ok(Some(depth)) if depth == -1.0 || depth == 0.0 => {}
        Ok(Some(depth)) => problems.push(Problem::error(
            location,
            format!("{prefix}max_query_depth {depth}: Tyk refuses deeper GraphQL queries; Portico does not enforce it"),
        )),
        Err(e) => problems.push(Problem::error(location, format!("{prefix}{e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::config::Severity;
    use portico_core::policy::{Quota, RateLimit};
    use serde_json::json;

    fn convert_all(v: Value) -> (Option<ConvertedPolicy>, Vec<Problem>) {
        let mut problems = Vec::new();
        let p = convert_policy(Some("p".into()), v.as_object().unwrap(), "f", &mut problems);
        (p, problems)
    }

    fn convert(v: Value) -> (Option<Policy>, Vec<Problem>) {
        let (p, problems) = convert_all(v);
        let p = p.map(|mut c| {
            assert!(c.split_from.is_none() && c.policies.len() == 1);
            c.policies.remove(0)
        });
        (p, problems)
    }

    fn error_text(problems: &[Problem]) -> String {
        problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.message.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn policy_partitions_and_limits() {
        let (p, problems) = convert(json!({
            "name": "plan", "rate": 10, "per": 1, "quota_max": 100, "quota_renewal_rate": 3600,
            "access_rights": {"a1": {"allowed_urls": [{"url": "/x", "methods": ["GET"]}]}},
            "partitions": {"quota": true, "rate_limit": true, "acl": false}
        }));
        let p = p.unwrap();
        assert!(p.access.is_empty(), "acl partition off: limits only");
        assert_eq!(p.rate, Some(RateLimit::try_new(10, 1000).unwrap()));
        assert_eq!(p.quota, Some(Quota::limited(100, 3_600_000).unwrap()));
        let (p, more) = convert(json!({"quota_max": -1, "rate": 0, "per": 0}));
        let p = p.unwrap();
        assert_eq!((p.rate, p.quota), (None, Some(Quota::Unlimited)));
        assert!(
            problems.is_empty() && more.is_empty(),
            "{problems:?} {more:?}"
        );
    }

    #[test]
    fn a_fractional_rate_is_a_limit_not_unlimited() {
        let (p, problems) = convert(json!({"rate": 0.5, "per": 1, "access_rights": {"a": {}}}));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.unwrap().rate, Some(RateLimit::try_new(1, 2000).unwrap()));
    }

    #[test]
    fn unusable_limits_are_errors() {
        for bad in [
            json!({"rate": -5, "per": 1}),
            json!({"rate": "100", "per": 1}),
            json!({"rate": 10, "per": 0}),
            json!({"rate": 1, "per": 0.0001}),
            json!({"quota_max": 100, "quota_renewal_rate": 0}),
            json!({"quota_max": -3}),
            json!({"quota_max": true}),
        ] {
            let (p, problems) = convert(bad.clone());
            assert!(
                p.is_none() && !error_text(&problems).is_empty(),
                "{bad}: {problems:?}"
            );
        }
        // Not used by a partitioned policy: not checked either.
        let (p, _) = convert(
            json!({"rate": "x", "quota_max": 5, "quota_renewal_rate": 60, "partitions": {"quota": true}}),
        );
        assert!(p.is_some());
    }

    #[test]
    fn allowed_urls_without_methods_allow_nothing() {
        let (p, problems) = convert(json!({"access_rights": {"a": {"allowed_urls": [
            {"url": "/open"}, {"url": "/read", "methods": ["GET"]}, {"url": "/none", "methods": []}
        ]}}}));
        let access = &p.unwrap().access["a"];
        assert!(!access.allows("GET", "/open"));
        assert!(!access.allows("GET", "/none"));
        assert!(access.allows("GET", "/read"));
        assert_eq!(
            problems
                .iter()
                .filter(|p| p.message.contains("allows nothing"))
                .count(),
            2
        );
        for bad in [
            json!({"access_rights": []}),
            json!({"access_rights": {"a": "yes"}}),
            json!({"access_rights": {"a": {"allowed_urls": {"url": "/x"}}}}),
            json!({"access_rights": {"a": {"allowed_urls": [{"url": 5, "methods": ["GET"]}]}}}),
            json!({"access_rights": {"a": {"allowed_urls": [{"url": "/x", "methods": "GET"}]}}}),
            json!({"access_rights": {"a": {"allowed_urls": [{"url": "(", "methods": ["GET"]}]}}}),
        ] {
            let (p, problems) = convert(bad.clone());
            assert!(p.is_none(), "{bad}: {problems:?}");
        }
    }

    #[test]
    fn per_api_limits_and_restrictions() {
        // Without per_api Tyk ignores a per-API limit; so does Portico, with a warning.
        let ignored =
            json!({"rate": 10, "per": 1, "access_rights": {"a": {"limit": {"rate": 1, "per": 1}}}});
        let (p, problems) = convert(ignored);
        assert_eq!(p.unwrap().rate, Some(RateLimit::try_new(10, 1000).unwrap()));
        assert!(
            problems.iter().any(|p| p.severity == Severity::Warning
                && p.message
                    .contains("access_rights.a.limit is ignored, as in Tyk")),
            "{problems:?}"
        );
        let same = json!({"rate": 10, "per": 1, "quota_max": -1,
            "access_rights": {"a": {"limit": {"rate": 10, "per": 1, "quota_max": -1}}}});
        let (p, problems) = convert(same);
        assert!(p.is_some() && problems.is_empty(), "{problems:?}");
        // per_api, one API with its own limit: that limit, the policy's counter is the API's.
        let own = json!({"rate": 100, "per": 1, "partitions": {"per_api": true},
            "access_rights": {"a": {"limit": {"rate": 2, "per": 1, "quota_max": 50,
                "quota_renewal_rate": 60, "throttle_interval": -1, "max_query_depth": -1,
                "quota_renews": 1700000000, "quota_remaining": 7, "set_by": "p"}}}});
        let (p, problems) = convert(own);
        let p = p.unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.rate, Some(RateLimit::try_new(2, 1000).unwrap()));
        assert_eq!(p.quota, Some(Quota::limited(50, 60_000).unwrap()));
        // per_api without per-API limits: the policy-wide ones, one counter (as in Tyk).
        let shared = json!({"rate": 5, "per": 1, "partitions": {"per_api": true},
            "access_rights": {"a": {"limit": null}, "b": {"limit": {}}}});
        let (p, problems) = convert(shared);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.unwrap().rate, Some(RateLimit::try_new(5, 1000).unwrap()));
        // per_api with several APIs: one policy per API with its own limit, the rest under
        // the policy's id, so each keeps its own counter.
        let several = json!({"name": "Plan", "rate": 5, "per": 1, "partitions": {"per_api": true},
            "access_rights": {"a": {"limit": {"rate": 1, "per": 1}}, "b": {"limit": {"quota_max": 9, "quota_renewal_rate": 60}}, "c": {}}});
        let (p, problems) = convert_all(several);
        assert!(problems.is_empty(), "{problems:?}");
        let p = p.unwrap();
        assert_eq!(p.split_from.as_deref(), Some("p"));
        let summary: Vec<_> = p
            .policies
            .iter()
            .map(|p| {
                let mut apis: Vec<&str> = p.access.keys().map(|a| &**a).collect();
                apis.sort();
                (&*p.id, p.name.as_str(), apis, p.rate, p.quota)
            })
            .collect();
        let rate = |n, per| Some(RateLimit::try_new(n, per).unwrap());
        assert_eq!(
            summary,
            [
                ("p", "Plan", vec!["c"], rate(5, 1000), None),
                ("p#a", "Plan (a)", vec!["a"], rate(1, 1000), None),
                (
                    "p#b",
                    "Plan (b)",
                    vec!["b"],
                    None,
                    Some(Quota::limited(9, 60_000).unwrap())
                ),
            ]
        );
        // Every API with its own limit: no limits-only remainder.
        let (p, _) = convert_all(json!({"partitions": {"per_api": true},
            "access_rights": {"a": {"limit": {"rate": 1, "per": 1}}, "b": {"limit": {"rate": 2, "per": 1}}}}));
        let ids: Vec<_> = p
            .unwrap()
            .policies
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        assert_eq!(ids, ["p#a", "p#b"]);
        let bad = json!({"partitions": {"per_api": true}, "access_rights": {"a": {"limit": {"rate": "1", "per": 1}}}});
        assert!(convert(bad).0.is_none());
        // GraphQL depth limits are not enforced: an error when in effect.
        for deep in [
            json!({"max_query_depth": 3, "access_rights": {"a": {}}}),
            json!({"partitions": {"per_api": true}, "access_rights": {"a": {"limit": {"max_query_depth": 3}}}}),
        ] {
            let (p, problems) = convert(deep.clone());
            assert!(
                p.is_none() && error_text(&problems).contains("max_query_depth 3"),
                "{deep}"
            );
        }
        let (p, problems) = convert(json!({"max_query_depth": -1, "access_rights": {"a": {}}}));
        assert!(p.is_some() && problems.is_empty(), "{problems:?}");
        // A complexity partition alone grants no access and sets no limits (Tyk's Enabled()).
        let (p, _) = convert(
            json!({"rate": 5, "per": 1, "partitions": {"complexity": true},
            "access_rights": {"a": {}}}),
        );
        let p = p.unwrap();
        assert!(p.access.is_empty() && p.rate.is_none(), "{p:?}");
        let endpoints = json!({"access_rights": {"a": {"endpoints": [{"path": "/x", "methods": [{"name": "GET", "limit": {"rate": 1, "per": 1}}]}]}}});
        let (p, problems) = convert(endpoints);
        assert!(
            p.is_none() && error_text(&problems).contains("endpoints"),
            "{problems:?}"
        );
        let mixed = json!({"partitions": {"per_api": true, "quota": true}});
        assert!(convert(mixed).0.is_none());
        // A mistyped flag would silently grant the policy's whole access rights.
        for bad in [
            json!({"partitions": {"quota": "true"}, "access_rights": {"a": {}}}),
            json!({"partitions": []}),
            json!({"is_inactive": "true"}),
        ] {
            let (p, problems) = convert(bad.clone());
            assert!(p.is_none() && !error_text(&problems).is_empty(), "{bad}");
        }
    }
}
