//! Auth modes of a Tyk API that Portico does not serve (auth token, basic, HMAC, OAuth 2.0,
//! OpenID Connect, mTLS, plugins). Such an API is refused, or skipped with
//! `--tyk-skip-unsupported`; an API that enables one of them *as well as* JWT or external
//! OAuth is always refused (Tyk then requires both), see `restrictions`.

use super::restrictions::flag;
use portico_core::config::Problem;
use serde_json::{Map, Value};

/// Classic flags of the auth modes Portico does not serve, each with the mode's name.
const UNSERVED_MODES: &[(&str, &str)] = &[
    ("use_standard_auth", "auth token"),
    ("use_basic_auth", "basic"),
    ("enable_signature_checking", "HMAC"),
    ("use_oauth2", "Tyk OAuth 2.0"),
    ("use_openid", "OpenID Connect"),
    ("use_mutual_tls_auth", "mTLS"),
    ("use_go_plugin_auth", "Go plugin"),
    ("enable_coprocess_auth", "custom plugin"),
];

/// The auth modes of a Classic API definition that Portico does not serve, as
/// `name (field)`; empty when it is keyless, JWT, or external OAuth (read elsewhere). An API
/// that enables no mode at all is an auth token API, Tyk's default.
pub(super) fn unserved_modes(api: &Map<String, Value>) -> Vec<String> {
    let on = |key: &str| api.get(key) == Some(&Value::Bool(true));
    let external_oauth = api
        .get("external_oauth")
        .and_then(Value::as_object)
        .is_some_and(|o| flag(o, "enabled"));
    if on("use_keyless") || on("enable_jwt") || external_oauth {
        return Vec::new();
    }
    let modes: Vec<String> = UNSERVED_MODES
        .iter()
        .filter(|(field, _)| flag(api, field))
        .map(|(field, name)| format!("{name} ({field})"))
        .collect();
    if modes.is_empty() {
        return vec!["auth token (no auth mode enabled: Tyk's default)".into()];
    }
    modes
}

/// What becomes of an API whose auth modes Portico does not serve: an error, or with
/// `skip` a warning saying it is not served. One problem per API.
pub(super) fn unserved(api_id: &str, modes: &[String], skip: bool, location: &str) -> Problem {
    let modes = modes.join(" + ");
    if skip {
        Problem::warning(
            location,
            format!(
                "API {api_id:?} skipped (--tyk-skip-unsupported): auth mode {modes}, which Portico does not serve"
            ),
        )
    } else {
        Problem::error(
            location,
            format!(
                "API {api_id:?} uses auth mode {modes}, which Portico does not serve; --tyk-skip-unsupported serves the other APIs without it"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn modes(api: Value) -> Vec<String> {
        unserved_modes(api.as_object().unwrap())
    }

    #[test]
    fn each_unserved_mode_is_named() {
        assert_eq!(
            modes(json!({"use_basic_auth": true})),
            ["basic (use_basic_auth)"]
        );
        assert_eq!(
            modes(json!({"use_standard_auth": true, "enable_signature_checking": true})),
            [
                "auth token (use_standard_auth)",
                "HMAC (enable_signature_checking)"
            ]
        );
        assert_eq!(
            modes(json!({"use_keyless": false})),
            ["auth token (no auth mode enabled: Tyk's default)"]
        );
        for api in [
            json!({"use_keyless": true, "use_basic_auth": true}),
            json!({"enable_jwt": true, "use_basic_auth": true}),
            json!({"external_oauth": {"enabled": true}}),
        ] {
            assert!(modes(api.clone()).is_empty(), "{api}");
        }
    }
}
