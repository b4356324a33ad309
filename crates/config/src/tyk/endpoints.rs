//! `version_data`: the one version Portico serves, and its `white_list` / `black_list` as
//! [`EndpointRules`]. What would widen access (`ignored`, internal endpoints) or replace the
//! upstream (mock responses, virtual endpoints, plugins) is an error; other endpoint middleware
//! is reported as a warning.

use super::{Fields, is_set, json_kind, report_unsupported};
use portico_core::config::Problem;
use portico_core::policy::{AccessRule, EndpointRules};
use serde_json::{Map, Value};

/// `extended_paths` members that would widen access or answer instead of the upstream.
const REFUSED_MEMBERS: &[(&str, &str)] = &[
    (
        "ignored",
        "ignored paths skip authentication in Tyk; Portico does not widen access",
    ),
    (
        "internal",
        "internal endpoints are only reachable through Tyk's internal looping, which Portico does not have",
    ),
    ("rate_limit", "per-endpoint rate limits are not supported"),
    ("mock_response", "mock responses are not supported"),
    (
        "virtual",
        "virtual (JavaScript) endpoints are not supported",
    ),
    ("go_plugin", "Go plugins are not supported"),
    (
        "url_rewrites",
        "URL rewrites change the path the upstream receives; not supported",
    ),
];
fn refusal(member: &str) -> &'static str {
    REFUSED_MEMBERS
        .iter()
        .find(|(m, _)| *m == member)
        .map_or("not supported", |(_, why)| why)
}

/// `extended_paths` members that restrict requests without deciding who may call what.
const UNENFORCED_LIMITS: &[&str] = &[
    "size_limits",
    "hard_timeouts",
    "circuit_breakers",
    "validate_json",
    "validate_request",
];
const VERSION_FIELDS: &[&str] = &[
    "name",
    "expires",
    "paths",
    "use_extended_paths",
    "extended_paths",
    "ignore_endpoint_case",
];

/// The endpoint rules of the version Portico serves. Problems go to `problems`; the rules
/// returned after an error are not to be used.
pub(super) fn endpoint_rules(
    api: &Map<String, Value>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> EndpointRules {
    let mut out = EndpointRules::default();
    let err =
        |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(location, msg));
    let data = match api.get("version_data") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(data)) => data,
        Some(other) => {
            err(
                problems,
                format!("version_data must be an object, not {}", json_kind(other)),
            );
            return out;
        }
    };
    report_unsupported(
        data,
        &[&["not_versioned", "default_version", "versions"]],
        location,
        "version_data.",
        problems,
    );
    let versions = match data.get("versions") {
        None | Some(Value::Null) => return out,
        Some(Value::Object(versions)) if versions.is_empty() => return out,
        Some(Value::Object(versions)) => versions,
        Some(other) => {
            err(
                problems,
                format!(
                    "version_data.versions must be an object, not {}",
                    json_kind(other)
                ),
            );
            return out;
        }
    };
    let not_versioned = match data.get("not_versioned") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            err(
                problems,
                format!(
                    "version_data.not_versioned must be true or false, not {}",
                    json_kind(other)
                ),
            );
            return out;
        }
    };
    let Some((name, version)) = served_version(versions, not_versioned)
        .map_err(|e| err(problems, format!("version_data: {e}")))
        .ok()
    else {
        return out;
    };
    let Some(version) = version.as_object() else {
        err(
            problems,
            format!("version_data.versions.{name} must be an object"),
        );
        return out;
    };
    let prefix = format!("version_data.versions.{name}.");
    let fields = Fields {
        obj: version,
        location,
        prefix: &prefix,
    };
    if !not_versioned {
        problems.push(Problem::warning(
            location,
            format!(
                "version_data.not_versioned is false, but Portico does not read a version from requests: every request is served with version {name:?}'s settings"
            ),
        ));
        if let Some(expires) = version.get("expires").and_then(Value::as_str)
            && !expires.is_empty()
            && expires != "-1"
        {
            err(
                problems,
                format!(
                    "{prefix}expires {expires:?}: Tyk stops serving this version then; Portico has no version expiry"
                ),
            );
        }
    }
    report_version_fields(version, &prefix, location, problems);
    let ignore_case = fields.flag("ignore_endpoint_case", problems);
    let use_extended = fields.flag("use_extended_paths", problems);
    let (used, unused) = if use_extended {
        ("extended_paths", "paths")
    } else {
        ("paths", "extended_paths")
    };
    if version.get(unused).is_some_and(is_set) {
        problems.push(Problem::warning(
            location,
            format!(
                "{prefix}{unused} is ignored, as in Tyk, because use_extended_paths is {use_extended}"
            ),
        ));
    }
    let lists = match version.get(used) {
        None | Some(Value::Null) => return out,
        Some(Value::Object(lists)) => lists,
        Some(other) => {
            err(
                problems,
                format!("{prefix}{used} must be an object, not {}", json_kind(other)),
            );
            return out;
        }
    };
    let prefix = format!("{prefix}{used}.");
    if use_extended {
        report_extended_members(lists, &prefix, location, problems);
    } else {
        report_unsupported(
            lists,
            &[&["white_list", "black_list", "ignored"]],
            location,
            &prefix,
            problems,
        );
        if lists.get("ignored").is_some_and(is_set) {
            err(problems, format!("{prefix}ignored: {}", refusal("ignored")));
        }
    }
    for (list, block) in [("white_list", false), ("black_list", true)] {
        let entries = match lists.get(list) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                err(
                    problems,
                    format!("{prefix}{list} must be an array, not {}", json_kind(other)),
                );
                continue;
            }
        };
        for (i, entry) in entries.iter().enumerate() {
            let converted = if use_extended {
                extended_entry(entry, ignore_case, block)
            } else {
                entry
                    .as_str()
                    .ok_or_else(|| format!("must be a path, not {}", json_kind(entry)))
                    .and_then(|path| rule(path, None, ignore_case, block).map(Some))
            };
            match converted {
                Ok(Some(rule)) if block => out.block.push(rule),
                Ok(Some(rule)) => out.allow.push(rule),
                Ok(None) => {}
                Err(e) => err(problems, format!("{prefix}{list}[{i}]: {e}")),
            }
        }
    }
    out
}

/// The version Tyk would serve: for a non-versioned API the only one, else the one named
/// `Default`, `default` or `""`; for a versioned API, the only one or all of them when they
/// are the same apart from their names (Portico cannot choose per request).
fn served_version(
    versions: &Map<String, Value>,
    not_versioned: bool,
) -> Result<(&str, &Value), String> {
    if versions.len() == 1 {
        let (name, version) = versions.iter().next().expect("one version");
        return Ok((name, version));
    }
    if not_versioned {
        let defaults: Vec<_> = ["Default", "default", ""]
            .into_iter()
            .filter_map(|name| versions.get_key_value(name))
            .collect();
        return match defaults.as_slice() {
            [(name, version)] => Ok((name.as_str(), version)),
            [] => Err(format!(
                "not_versioned is true but none of the {} versions is named \"Default\", so Tyk serves none",
                versions.len()
            )),
            _ => Err("more than one version is named \"Default\", \"default\" or \"\"".into()),
        };
    }
    let without_name = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("name");
        }
        v
    };
    let mut all = versions.iter();
    let (name, first) = all.next().expect("several versions");
    if all.all(|(_, v)| without_name(v) == without_name(first)) {
        Ok((name, first))
    } else {
        let names: Vec<&str> = versions.keys().map(String::as_str).collect();
        Err(format!(
            "the API is versioned and its versions ({}) differ; Portico serves one version for every request: set not_versioned, or give the versions the same settings",
            names.join(", ")
        ))
    }
}

fn report_version_fields(
    version: &Map<String, Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) {
    let size_limited = version.get("global_size_limit").is_some_and(is_set)
        && version.get("global_size_limit_disabled") != Some(&Value::Bool(true));
    if size_limited {
        problems.push(Problem::warning(
            location,
            format!(
                "{prefix}global_size_limit restricts request bodies in Tyk; Portico does not enforce it"
            ),
        ));
    }
    report_unsupported(
        version,
        &[
            VERSION_FIELDS,
            &["global_size_limit", "global_size_limit_disabled"],
        ],
        location,
        prefix,
        problems,
    );
}

fn report_extended_members(
    lists: &Map<String, Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) {
    for (member, value) in lists {
        let member = member.as_str();
        if ["white_list", "black_list"].contains(&member) || !in_effect(member, value) {
            continue;
        }
        problems.push(classify(member).problem(location, &format!("{prefix}{member}")));
    }
}

/// How Portico treats one endpoint middleware in effect, by its Classic `extended_paths` name
/// (the Tyk OAS loader maps its operation middleware to these names).
pub(super) enum Middleware {
    /// Would widen access or answer instead of the upstream: an error, with why.
    Refused(&'static str),
    /// Restricts requests in Tyk, and Portico does not enforce it: a warning.
    Unenforced,
    /// Anything else: not supported, ignored (a warning).
    Unsupported,
}

pub(super) fn classify(member: &str) -> Middleware {
    if REFUSED_MEMBERS.iter().any(|(m, _)| *m == member) {
        Middleware::Refused(refusal(member))
    } else if UNENFORCED_LIMITS.contains(&member) {
        Middleware::Unenforced
    } else {
        Middleware::Unsupported
    }
}

impl Middleware {
    /// The problem for middleware at `field` (e.g. `extended_paths.ignored`).
    pub(super) fn problem(&self, location: &str, field: &str) -> Problem {
        match self {
            Middleware::Refused(why) => Problem::error(location, format!("{field}: {why}")),
            Middleware::Unenforced => Problem::warning(
                location,
                format!("{field} restricts requests in Tyk; Portico does not enforce it"),
            ),
            Middleware::Unsupported => Problem::warning(
                location,
                format!("{field} is not supported by Portico and is ignored"),
            ),
        }
    }
}

/// True when a middleware list has an entry Tyk would apply (not `disabled`, or for
/// `validate_request` `enabled`).
fn in_effect(member: &str, value: &Value) -> bool {
    let Some(entries) = value.as_array() else {
        return is_set(value);
    };
    entries.iter().any(|entry| match entry.as_object() {
        Some(e) if member == "validate_request" => e.get("enabled") == Some(&Value::Bool(true)),
        Some(e) => e.get("disabled") != Some(&Value::Bool(true)) && is_set(entry),
        None => is_set(entry),
    })
}

/// One `extended_paths` `white_list` / `black_list` entry; `None` when it is disabled.
fn extended_entry(
    entry: &Value,
    ignore_case: bool,
    block: bool,
) -> Result<Option<AccessRule>, String> {
    let Some(entry) = entry.as_object() else {
        return Err(format!("must be an object, not {}", json_kind(entry)));
    };
    let flag = |key: &str| match entry.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(format!(
            "{key} must be true or false, not {}",
            json_kind(other)
        )),
    };
    if flag("disabled")? {
        return Ok(None);
    }
    let path = match entry.get("path") {
        Some(Value::String(path)) => path,
        other => {
            return Err(format!(
                "path must be a string, not {}",
                other.map_or("nothing", json_kind)
            ));
        }
    };
    let methods = match entry.get("method_actions") {
        // Tyk reads `method_actions` when present (an empty object names no method) ...
        Some(Value::Object(actions)) => {
            let mut methods = Vec::new();
            for (method, meta) in actions {
                match meta.get("action").and_then(Value::as_str) {
                    Some("no_action") => methods.push(method.clone()),
                    Some("reply") => {
                        return Err(format!(
                            "method_actions.{method}: action \"reply\" (a mock response) is not supported"
                        ));
                    }
                    other => {
                        return Err(format!(
                            "method_actions.{method}: action {other:?} is not supported (only \"no_action\")"
                        ));
                    }
                }
            }
            Some(methods)
        }
        // ... else the older `method`, where "" means every method.
        None | Some(Value::Null) => match entry.get("method") {
            None | Some(Value::Null) => None,
            Some(Value::String(m)) if m.is_empty() => None,
            Some(Value::String(m)) => Some(vec![m.clone()]),
            Some(other) => {
                return Err(format!("method must be a string, not {}", json_kind(other)));
            }
        },
        Some(other) => {
            return Err(format!(
                "method_actions must be an object, not {}",
                json_kind(other)
            ));
        }
    };
    let ignore_case = ignore_case || flag("ignore_case")?;
    rule(path, methods, ignore_case, block).map(Some)
}

/// A white-list rule matches from the start of the path below the listen path; a black-list
/// rule anywhere in it, and always ignoring case (the broadest of Tyk's matching modes).
pub(super) fn rule(
    path: &str,
    methods: Option<Vec<String>>,
    ignore_case: bool,
    block: bool,
) -> Result<AccessRule, String> {
    let pattern = tyk_path_pattern(path);
    if block {
        AccessRule::try_new_anywhere(&format!("(?i){pattern}"), methods)
    } else if ignore_case {
        AccessRule::try_new(&format!("(?i){pattern}"), methods)
    } else {
        AccessRule::try_new(&pattern, methods)
    }
}

/// Tyk's endpoint path syntax as a regular expression, as its `PreparePathRegexp` does: the
/// path is a regular expression already, in which `{name}` stands for one path segment (when
/// the braces balance) and `/*` for the rest of the path (`/*/` for one segment).
pub(super) fn tyk_path_pattern(path: &str) -> String {
    let mut pattern = String::with_capacity(path.len() + 8);
    let (open, close) = (path.matches('{').count(), path.matches('}').count());
    if open > 0 && open == close {
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            match rest[start + 1..].find('}') {
                Some(len) if len > 0 => {
                    pattern.push_str(&rest[..start]);
                    pattern.push_str("[^/]+");
                    rest = &rest[start + len + 2..];
                }
                _ => {
                    pattern.push_str(&rest[..=start]);
                    rest = &rest[start + 1..];
                }
            }
        }
        pattern.push_str(rest);
    } else {
        pattern.push_str(path);
    }
    if pattern.contains("/*") {
        pattern = pattern.replace("/*/", "/[^/]+/").replace("/*", "/.*");
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::config::Severity;
    use serde_json::json;

    fn load(api: Value) -> (EndpointRules, Vec<Problem>) {
        let mut problems = Vec::new();
        let rules = endpoint_rules(api.as_object().unwrap(), "f", &mut problems);
        (rules, problems)
    }

    fn extended(paths: Value) -> Value {
        json!({"version_data": {"not_versioned": true, "versions": {"Default": {
            "name": "Default", "use_extended_paths": true, "extended_paths": paths}}}})
    }

    fn load_extended(paths: Value) -> (EndpointRules, Vec<Problem>) {
        load(extended(paths))
    }

    fn errors(problems: &[Problem]) -> Vec<&str> {
        problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.message.as_str())
            .collect()
    }

    fn permits(rules: &EndpointRules, method: &str, rest: &str) -> bool {
        rules.permits(method, &format!("/api{rest}"), rest)
    }

    #[test]
    fn tyk_path_syntax() {
        assert_eq!(tyk_path_pattern("/users/{id}"), "/users/[^/]+");
        assert_eq!(tyk_path_pattern("/a/{x}/b/{y}"), "/a/[^/]+/b/[^/]+");
        assert_eq!(tyk_path_pattern("/a/*/b/*"), "/a/[^/]+/b/.*");
        assert_eq!(tyk_path_pattern("(get|anything)"), "(get|anything)");
        assert_eq!(tyk_path_pattern("/x{2}"), "/x[^/]+", "as Tyk does");
        assert_eq!(tyk_path_pattern("/x{2"), "/x{2", "unbalanced braces stay");
        assert_eq!(tyk_path_pattern("/{}"), "/{}");
    }

    #[test]
    fn white_list_with_method_actions() {
        let (rules, problems) = load_extended(json!({"white_list": [
            {"path": "/users/{id}", "method_actions": {"GET": {"action": "no_action", "code": 200, "data": "", "headers": {}}}},
            {"path": "/health", "method": "", "disabled": false},
            {"path": "/off", "disabled": true, "method_actions": {"GET": {"action": "no_action"}}},
            {"path": "/none", "method_actions": {}}
        ]}));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(permits(&rules, "GET", "/users/7"));
        assert!(!permits(&rules, "DELETE", "/users/7"));
        assert!(permits(&rules, "POST", "/health"));
        assert!(
            !permits(&rules, "GET", "/off"),
            "disabled entries allow nothing"
        );
        assert!(!permits(&rules, "GET", "/none"), "no method named");
        assert!(!permits(&rules, "GET", "/admin"));
        assert!(!permits(&rules, "GET", "/admin/users/7"), "from the start");
    }

    #[test]
    fn black_list_blocks_anywhere_and_ignoring_case() {
        let (rules, problems) = load_extended(json!({"black_list": [
            {"path": "/admin", "method_actions": {"GET": {"action": "no_action"}, "POST": {"action": "no_action"}}},
            {"path": "/debug", "method": "DELETE"}
        ]}));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!permits(&rules, "GET", "/admin"));
        assert!(!permits(&rules, "POST", "/v1/ADMIN/x"));
        assert!(!permits(&rules, "GET", "/%61dmin"));
        assert!(permits(&rules, "PUT", "/admin"));
        assert!(!permits(&rules, "DELETE", "/debug"));
        assert!(permits(&rules, "GET", "/debug"));
        assert!(
            permits(&rules, "GET", "/users"),
            "no white list: the rest is open"
        );
    }

    #[test]
    fn legacy_paths_and_ignore_case() {
        let api = json!({"version_data": {"not_versioned": true, "versions": {"v1": {
            "use_extended_paths": false, "ignore_endpoint_case": true,
            "paths": {"white_list": ["/items"], "black_list": ["/items/secret"], "ignored": []}}}}});
        let (rules, problems) = load(api);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(permits(&rules, "GET", "/ITEMS/1"));
        assert!(!permits(&rules, "GET", "/items/secret"));
        assert!(!permits(&rules, "GET", "/other"));
    }

    #[test]
    fn refused_and_reported_members() {
        let (_, problems) = load_extended(json!({
            "ignored": [{"path": "/public", "method_actions": {"GET": {"action": "no_action"}}}],
            "internal": [{"path": "/x", "method": "GET"}],
            "white_list": [{"path": "/m", "method_actions": {"GET": {"action": "reply", "code": 200}}}],
            "hard_timeouts": [{"path": "/slow", "method": "GET", "timeout": 5}],
            "size_limits": [{"path": "/up", "method": "POST", "size_limit": 10}],
            "transform": [{"path": "/t", "method": "GET", "template_data": {"template_source": "x"}}],
            "mock_response": [{"path": "/m", "disabled": true}],
            "url_rewrites": []
        }));
        let errs = errors(&problems);
        assert!(
            errs.iter()
                .any(|e| e.contains("ignored") && e.contains("authentication")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("internal")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("\"reply\"")), "{errs:?}");
        assert!(
            !errs.iter().any(|e| e.contains("mock_response")),
            "disabled: {errs:?}"
        );
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let warned = |m: &str| {
            text.iter()
                .any(|t| t.starts_with("warning") && t.contains(m))
        };
        assert!(warned("hard_timeouts restricts requests"), "{text:?}");
        assert!(warned("size_limits restricts requests"), "{text:?}");
        assert!(warned("transform is not supported"), "{text:?}");
        assert!(!text.iter().any(|t| t.contains("url_rewrites")), "{text:?}");
    }

    #[test]
    fn which_version_is_served() {
        let v = |paths: Value| json!({"use_extended_paths": true, "extended_paths": {"black_list": paths}});
        let admin = v(json!([{"path": "/admin", "method": ""}]));
        // Not versioned: the Default version, whatever the others say.
        let api = json!({"version_data": {"not_versioned": true, "versions": {
            "Default": admin, "v2": v(json!([]))}}});
        let (rules, problems) = load(api);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!permits(&rules, "GET", "/admin"));
        // Versioned with differing versions: refused.
        let api = json!({"version_data": {"not_versioned": false, "versions": {
            "v1": admin, "v2": v(json!([]))}}});
        let errs = load(api).1;
        assert!(
            errors(&errs)
                .iter()
                .any(|e| e.contains("versions (v1, v2) differ")),
            "{errs:?}"
        );
        // Versioned, versions alike: served, with a warning.
        let api = json!({"version_data": {"not_versioned": false, "versions": {
            "v1": admin, "v2": admin}}});
        let (rules, problems) = load(api);
        assert!(errors(&problems).is_empty(), "{problems:?}");
        assert!(!permits(&rules, "GET", "/admin"));
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("does not read a version"))
        );
        // Not versioned, several versions, none the default.
        let api =
            json!({"version_data": {"not_versioned": true, "versions": {"a": admin, "b": admin}}});
        assert!(!errors(&load(api).1).is_empty());
        // An expiring version of a versioned API.
        let api = json!({"version_data": {"versions": {"v1": {"expires": "2030-01-01 00:00"}}}});
        assert!(errors(&load(api).1).iter().any(|e| e.contains("expires")));
    }

    #[test]
    fn bad_shapes_are_errors() {
        for paths in [
            json!({"white_list": {"path": "/x"}}),
            json!({"white_list": ["/x"]}),
            json!({"white_list": [{"method": "GET"}]}),
            json!({"white_list": [{"path": "/x", "method_actions": []}]}),
            json!({"black_list": [{"path": "(", "method": ""}]}),
            json!({"black_list": [{"path": "/x", "disabled": "true"}]}),
        ] {
            let (_, problems) = load_extended(paths.clone());
            assert!(!errors(&problems).is_empty(), "{paths}");
        }
        assert!(!errors(&load(json!({"version_data": []})).1).is_empty());
        // A mistyped switch would silently select the other lists.
        let api = json!({"version_data": {"not_versioned": true, "versions": {"Default": {
            "use_extended_paths": "true", "extended_paths": {"black_list": [{"path": "/x"}]}}}}});
        assert!(!errors(&load(api).1).is_empty());
    }
}
