//! API definition fields that restrict who may call an API and that Portico cannot enforce.
//! Loading such an API without them would open it wider than Tyk does, so each one that is in
//! effect is an error, never a warning.

use super::limits;
use portico_core::config::Problem;
use serde_json::{Map, Value};

/// Auth modes Tyk chains with JWT: with several enabled, a request must pass every one.
const CHAINED_AUTH_FLAGS: &[&str] = &[
    "use_standard_auth",
    "use_basic_auth",
    "use_oauth2",
    "use_openid",
    "use_mutual_tls_auth",
    "use_go_plugin_auth",
    "enable_coprocess_auth",
    "enable_signature_checking",
];
const PLUGIN_HOOKS: &[&str] = &["pre", "post", "post_key_auth"];

/// Whether a flag that turns a restriction on may be on: anything but absent, null or `false`
/// (a mistyped flag is taken as on, so the restriction is refused rather than dropped).
pub(super) fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    !matches!(
        obj.get(key),
        None | Some(Value::Null) | Some(Value::Bool(false))
    )
}

/// Whether a flag that turns a restriction off is surely on: exactly `true`.
fn off(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(true))
}

fn non_empty_array(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key)
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// Reports every restriction in effect as an error. Returns the fields it has dealt with, so
/// that they are not reported again as merely unsupported.
pub(super) fn refuse_unenforced(
    api: &Map<String, Value>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Vec<&'static str> {
    let mut handled = vec!["expiration"];
    let mut refuse = |fields: &[&'static str], why: String| {
        handled.extend_from_slice(fields);
        problems.push(Problem::error(location, why));
    };
    if flag(api, "is_oas") {
        refuse(
            &["is_oas"],
            "is_oas: this is the Classic half of a Tyk OAS API as Tyk's file mode stores it; its settings (allow lists, validation, ...) are in the OAS document: put that document in the folder instead (named other than *-oas.json)".into(),
        );
    }
    if flag(api, "enable_ip_whitelisting") && non_empty_array(api, "allowed_ips") {
        refuse(
            &["enable_ip_whitelisting", "allowed_ips"],
            "enable_ip_whitelisting with allowed_ips: Tyk admits only those client addresses; Portico has no IP allow list".into(),
        );
    }
    if flag(api, "enable_ip_blacklisting") && non_empty_array(api, "blacklisted_ips") {
        refuse(
            &["enable_ip_blacklisting", "blacklisted_ips"],
            "enable_ip_blacklisting with blacklisted_ips: Tyk refuses those client addresses; Portico has no IP block list".into(),
        );
    }
    if let Some(expiration) = api.get("expiration").and_then(Value::as_str)
        && !expiration.is_empty()
        && expiration != "-1"
    {
        refuse(
            &[],
            format!(
                "expiration {expiration:?}: Tyk stops serving the API then; Portico has no API expiry"
            ),
        );
    }
    if let Some(global) = api.get("global_rate_limit").and_then(Value::as_object)
        && !off(api, "disable_rate_limit")
        && !off(global, "disabled")
    {
        match limits::rate_limit(global) {
            Ok(None) => {}
            Ok(Some(_)) => refuse(
                &["global_rate_limit"],
                "global_rate_limit: an API-wide rate limit is not supported; set the limit in a policy".into(),
            ),
            Err(e) => refuse(&["global_rate_limit"], format!("global_rate_limit: {e}")),
        }
    }
    // Their types are checked where they are read.
    let served = !off(api, "use_keyless");
    let jwt = served && off(api, "enable_jwt");
    let external_oauth = served
        && api
            .get("external_oauth")
            .and_then(Value::as_object)
            .is_some_and(|o| flag(o, "enabled"));
    if jwt || external_oauth {
        let (mode, verified) = if jwt {
            ("enable_jwt", "the JWT")
        } else {
            ("external_oauth", "the access token")
        };
        for &auth in CHAINED_AUTH_FLAGS {
            if flag(api, auth) {
                refuse(
                    &[auth],
                    format!(
                        "{auth} is enabled as well as {mode}: Tyk then requires both to pass; Portico verifies only {verified}"
                    ),
                );
            }
        }
    }
    if jwt && external_oauth {
        refuse(
            &["external_oauth"],
            "external_oauth is enabled as well as enable_jwt: Tyk then requires a token to pass both its JWT check and its external OAuth check; Portico admits a token that one trusted issuer entry verifies, so it cannot require both".into(),
        );
    }
    if let Some(domain) = api.get("domain").and_then(Value::as_str)
        && !domain.is_empty()
        && !off(api, "domain_disabled")
    {
        refuse(
            &["domain"],
            format!(
                "domain {domain:?}: Tyk serves the API on that host only; Portico routes by path on every host"
            ),
        );
    }
    if let Some(plugins) = api.get("custom_middleware").and_then(Value::as_object) {
        let enabled = |hook: &Value| {
            hook.as_object().is_some_and(|h| {
                !off(h, "disabled")
                    && h.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty())
            })
        };
        let mut hooks: Vec<&str> = PLUGIN_HOOKS
            .iter()
            .copied()
            .filter(|hook| {
                plugins
                    .get(*hook)
                    .and_then(Value::as_array)
                    .is_some_and(|list| list.iter().any(enabled))
            })
            .collect();
        if plugins.get("auth_check").is_some_and(enabled) {
            hooks.push("auth_check");
        }
        if !hooks.is_empty() {
            refuse(
                &["custom_middleware"],
                format!(
                    "custom_middleware ({}): plugins may enforce rules, and Portico cannot run them",
                    hooks.join(", ")
                ),
            );
        }
    }
    if api
        .get("custom_middleware_bundle")
        .and_then(Value::as_str)
        .is_some_and(|b| !b.is_empty())
        && !off(api, "custom_middleware_bundle_disabled")
    {
        refuse(
            &["custom_middleware_bundle"],
            "custom_middleware_bundle: plugins may enforce rules, and Portico cannot run them"
                .into(),
        );
    }
    handled
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(api: Value) -> Vec<String> {
        let mut problems = Vec::new();
        refuse_unenforced(api.as_object().unwrap(), "f", &mut problems);
        problems.into_iter().map(|p| p.message).collect()
    }

    #[test]
    fn restrictions_in_effect_are_errors() {
        let cases = [
            (
                json!({"enable_ip_whitelisting": true, "allowed_ips": ["10.0.0.1"]}),
                "allowed_ips",
            ),
            (
                json!({"enable_ip_blacklisting": true, "blacklisted_ips": ["1.2.3.4"]}),
                "blacklisted_ips",
            ),
            (json!({"expiration": "2020-01-01 00:00"}), "expiration"),
            (
                json!({"global_rate_limit": {"rate": 100, "per": 60}}),
                "global_rate_limit",
            ),
            (
                json!({"global_rate_limit": {"rate": "x", "per": 60}}),
                "must be a number",
            ),
            (
                json!({"enable_jwt": true, "use_standard_auth": true}),
                "use_standard_auth",
            ),
            (
                json!({"enable_jwt": true, "external_oauth": {"enabled": true}}),
                "external_oauth is enabled as well as enable_jwt",
            ),
            (
                json!({"external_oauth": {"enabled": true}, "use_basic_auth": true}),
                "use_basic_auth is enabled as well as external_oauth",
            ),
            (json!({"domain": "admin.example.com"}), "domain"),
            (
                json!({"custom_middleware": {"pre": [{"name": "checkHeader"}]}}),
                "(pre)",
            ),
            (
                json!({"custom_middleware": {"auth_check": {"name": "myAuth"}}}),
                "auth_check",
            ),
            (
                json!({"custom_middleware_bundle": "bundle.zip"}),
                "custom_middleware_bundle",
            ),
        ];
        for (api, expected) in cases {
            let messages = refused(api.clone());
            assert!(
                messages.len() == 1 && messages[0].contains(expected),
                "{api}: {messages:?}"
            );
        }
    }

    #[test]
    fn restrictions_not_in_effect_pass() {
        for api in [
            json!({"enable_ip_whitelisting": true, "allowed_ips": []}),
            json!({"enable_ip_blacklisting": false, "blacklisted_ips": ["1.2.3.4"]}),
            json!({"expiration": ""}),
            json!({"expiration": "-1"}),
            json!({"global_rate_limit": {"rate": 0, "per": 0}}),
            json!({"global_rate_limit": {"rate": 10, "per": 1}, "disable_rate_limit": true}),
            json!({"use_keyless": true, "enable_jwt": true, "use_standard_auth": true}),
            json!({"use_keyless": true, "external_oauth": {"enabled": true}, "use_basic_auth": true}),
            json!({"external_oauth": {"enabled": false}, "use_basic_auth": true}),
            json!({"domain": "x.example.com", "domain_disabled": true}),
            json!({"custom_middleware": {"pre": [{"name": "p", "disabled": true}], "post": [], "auth_check": {"name": ""}, "driver": "otto"}}),
            json!({"custom_middleware_bundle": "b.zip", "custom_middleware_bundle_disabled": true}),
            json!({"is_oas": false}),
        ] {
            assert!(refused(api.clone()).is_empty(), "{api}");
        }
    }
}
