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

/// One path pattern (a regular expression), optionally limited to some methods.
#[derive(Debug, Clone)]
pub struct AccessRule {
    /// From [`AccessRule::try_new`]: matched from the start of the path (implicit `^`); from
    /// [`AccessRule::try_new_anywhere`]: matched anywhere in it.
    pub path: Regex,
    /// Upper-case method names; `None` matches every method, `Some(vec![])` none.
    pub methods: Option<Vec<String>>,
}

impl AccessRule {
    /// A rule whose pattern must match from the start of the path.
    pub fn try_new(pattern: &str, methods: Option<Vec<String>>) -> Result<Self, String> {
        Self::compile(&format!("^(?:{pattern})"), pattern, methods)
    }

    /// A rule whose pattern may match anywhere in the path (an unanchored search), unless the
    /// pattern anchors itself with `^` or `$`.
    pub fn try_new_anywhere(pattern: &str, methods: Option<Vec<String>>) -> Result<Self, String> {
        Self::compile(&format!("(?:{pattern})"), pattern, methods)
    }

    fn compile(regex: &str, pattern: &str, methods: Option<Vec<String>>) -> Result<Self, String> {
        let path =
            Regex::new(regex).map_err(|e| format!("invalid path pattern {pattern:?}: {e}"))?;
        let methods = methods.map(|ms| {
            ms.into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect::<Vec<_>>()
        });
        Ok(Self { path, methods })
    }

    /// True when both `method` and `path` match.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)));
        method_ok && self.path.is_match(path)
    }

    /// [`AccessRule::matches`], for rules that grant.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        self.matches(method, path)
    }
}

/// Rules an API applies to every request, whoever the caller and whatever their policies
/// (Tyk's `white_list` and `black_list`). The default has no rules: every endpoint is open.
#[derive(Debug, Clone, Default)]
pub struct EndpointRules {
    /// Non-empty: only requests matching one of these pass. Tried against the path below the
    /// listen path, which must match both as sent and percent-decoded (so an escape cannot carry
    /// another path past a rule). Build them with [`AccessRule::try_new`].
    pub allow: Vec<AccessRule>,
    /// A request matching any of these is refused, whatever `allow` says. Tried against the path
    /// below the listen path and against the whole request path, each as sent and
    /// percent-decoded; any match refuses. Build them with [`AccessRule::try_new_anywhere`] to
    /// match anywhere in the path.
    pub block: Vec<AccessRule>,
}

impl EndpointRules {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.block.is_empty()
    }

    /// Whether a request may reach the API. `request_path` is the path as received (no query),
    /// `rest` the part of it below the listen path (starting with `/`). Pure; allocates only
    /// for paths with `%` escapes, on APIs that have rules.
    pub fn permits(&self, method: &str, request_path: &str, rest: &str) -> bool {
        if self.is_empty() {
            return true;
        }
        let rest_decoded = percent_decoded(rest);
        if !self.block.is_empty() {
            let full_decoded = percent_decoded(request_path);
            let paths = [
                Some(rest),
                Some(request_path),
                rest_decoded.as_deref(),
                full_decoded.as_deref(),
            ];
            let blocked = self
                .block
                .iter()
                .any(|rule| paths.iter().flatten().any(|p| rule.matches(method, p)));
            if blocked {
                return false;
            }
        }
        if self.allow.is_empty() {
            return true;
        }
        let allowed = |path: &str| self.allow.iter().any(|rule| rule.matches(method, path));
        allowed(rest) && rest_decoded.as_deref().is_none_or(allowed)
    }
}

/// `path` with its `%XX` escapes decoded (invalid UTF-8 replaced), or `None` when it has none.
fn percent_decoded(path: &str) -> Option<String> {
    if !path.contains('%') {
        return None;
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let (mut i, mut changed) = (0, false);
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        if let Some((hi, lo)) = escape {
            out.push(hi << 4 | lo);
            i += 3;
            changed = true;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    changed.then(|| String::from_utf8_lossy(&out).into_owned())
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

    type RuleSpec<'a> = (&'a str, Option<&'a [&'a str]>);

    fn rules(allow: &[RuleSpec], block: &[RuleSpec]) -> EndpointRules {
        let methods = |m: Option<&[&str]>| m.map(|m| m.iter().map(|s| s.to_string()).collect());
        EndpointRules {
            allow: allow
                .iter()
                .map(|(p, m)| AccessRule::try_new(p, methods(*m)).unwrap())
                .collect(),
            block: block
                .iter()
                .map(|(p, m)| AccessRule::try_new_anywhere(p, methods(*m)).unwrap())
                .collect(),
        }
    }

    #[test]
    fn no_endpoint_rules_permit_everything() {
        assert!(EndpointRules::default().permits("DELETE", "/api/x%2F..", "/x%2F.."));
    }

    #[test]
    fn allow_rules_admit_only_what_they_match() {
        let r = rules(
            &[("/users/[^/]+$", Some(&["GET"])), ("/health$", None)],
            &[],
        );
        assert!(r.permits("GET", "/api/users/7", "/users/7"));
        assert!(!r.permits("POST", "/api/users/7", "/users/7"), "method");
        assert!(
            !r.permits("GET", "/api/admin/users/7", "/admin/users/7"),
            "from the start"
        );
        assert!(r.permits("PUT", "/api/health", "/health"));
        assert!(!r.permits("GET", "/api/healthz", "/healthz"));
        assert!(!r.permits("GET", "/api/users", "/users"));
        // Allowed as sent, but decoded it leaves the segment: refused.
        assert!(!r.permits("GET", "/api/users/a%2F..%2Fb", "/users/a%2F..%2Fb"));
        assert!(r.permits("GET", "/api/users/john%20doe", "/users/john%20doe"));
        // A rule naming no method allows nothing (Tyk's empty `method_actions`), yet it
        // still makes the allow list non-empty.
        let none = rules(&[("/users", Some(&[]))], &[]);
        assert!(!none.permits("GET", "/api/users", "/users"));
        assert!(!none.permits("GET", "/api/other", "/other"));
    }

    #[test]
    fn block_rules_refuse_anywhere_encoded_or_not_whatever_allow_says() {
        let r = rules(&[("/", None)], &[("/admin", Some(&["DELETE", "GET"]))]);
        assert!(!r.permits("GET", "/api/admin", "/admin"));
        assert!(
            !r.permits("get", "/api/v1/admin/x", "/v1/admin/x"),
            "anywhere"
        );
        assert!(!r.permits("GET", "/api/%61dmin", "/%61dmin"), "escaped");
        assert!(
            r.permits("POST", "/api/admin", "/admin"),
            "other methods pass"
        );
        assert!(r.permits("GET", "/api/users", "/users"));
        // A pattern written with the listen path matches the whole request path.
        let full = rules(&[], &[("^/api/internal", None)]);
        assert!(!full.permits("GET", "/api/internal/x", "/internal/x"));
        assert!(full.permits("GET", "/api/public", "/public"));
        let anchored = rules(&[], &[("^/secret", None)]);
        assert!(!anchored.permits("GET", "/api/secret", "/secret"));
        assert!(anchored.permits("GET", "/api/x/secret", "/x/secret"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decoded("/plain"), None);
        assert_eq!(percent_decoded("/100%"), None);
        assert_eq!(percent_decoded("/%zz"), None);
        assert_eq!(percent_decoded("/a%2Fb%2e").as_deref(), Some("/a/b."));
        assert_eq!(percent_decoded("/%C3%A9").as_deref(), Some("/\u{e9}"));
        assert_eq!(percent_decoded("/%FF").as_deref(), Some("/\u{fffd}"));
    }
}
