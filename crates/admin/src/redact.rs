//! Secrets in specs (HMAC secrets, private keys, client secrets) are never returned by the
//! admin API: every spec it answers with passes through a [`crate::Redact`] function first.
//! The default, [`redact_secret_fields`], replaces by key name; the config crate can pass one
//! that knows each kind's schema.
//!
//! Because a redacted document read back and written again would store the placeholder as
//! the secret, writes that contain [`REDACTED`] anywhere in a spec are refused.

use crate::error::FieldError;
use serde_json::Value;

/// What a secret value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Whether a key names a secret: any key containing `secret` (`secret_base64`,
/// `client_secret`, …) or an access token (`initialAccessToken`, `access_token`), `password`,
/// `private_key` or `private_key_pem` — except those that only name where a secret is
/// (`…_env`, `…_file`: `client_secret_env` holds a variable's name, which `get` must print for
/// `apply` to take it back).
pub fn is_secret_key(key: &str) -> bool {
    if key.ends_with("_env") || key.ends_with("_file") {
        return false;
    }
    let folded = key.to_ascii_lowercase().replace('_', "");
    matches!(key, "password" | "private_key" | "private_key_pem")
        || folded.contains("secret")
        || folded.contains("accesstoken")
}

/// Whether a value only names an environment variable (`${IDP_IAT}`): not a secret itself,
/// and `get` must print it for `apply` to take it back.
fn is_variable_reference(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .is_some_and(|name| {
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
    })
}

/// Whether a URL carries a password in its user info (`redis://:pw@host`,
/// `postgres://user:pw@host`).
fn url_with_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The default redaction: every non-null value under a secret key ([`is_secret_key`]), and
/// every URL with a password in it (a `redis_url`), at any depth, becomes `"<redacted>"`. The
/// kind is not consulted.
pub fn redact_secret_fields(_kind: &str, spec: &mut Value) {
    redact_by_key_name(spec);
}

fn redact_by_key_name(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let secret =
                    (is_secret_key(key) && !value.is_null() && !is_variable_reference(value))
                        || value.as_str().is_some_and(url_with_password);
                if secret {
                    *value = Value::String(REDACTED.to_string());
                } else {
                    redact_by_key_name(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_by_key_name),
        _ => {}
    }
}

/// Every place in `value` (at `path`) that holds the placeholder.
pub fn find_placeholders(path: &str, value: &Value, found: &mut Vec<FieldError>) {
    match value {
        Value::String(s) if s == REDACTED => found.push(FieldError::new(
            path,
            "holds the redacted placeholder, which would replace the secret; send the secret itself",
        )),
        Value::Object(map) => {
            for (key, value) in map {
                find_placeholders(&format!("{path}.{key}"), value, found);
            }
        }
        Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                find_placeholders(&format!("{path}[{i}]"), value, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_are_redacted_at_any_depth() {
        let mut spec = json!({
            "secret": "s1",
            "jwt": { "issuers": [ { "secret_base64": "s2", "jwks_url": "https://idp/jwks" } ] },
            "upstream": { "private_key_pem": "-----BEGIN", "password": "pw", "user": "u" },
            "oauth": { "client_secret": {"nested": "s3"}, "client_id": "c" },
            "public_key": "not a secret", "maybe_secret": null
        });
        redact_secret_fields("Api", &mut spec);
        assert_eq!(
            spec,
            json!({
                "secret": REDACTED,
                "jwt": { "issuers": [ { "secret_base64": REDACTED, "jwks_url": "https://idp/jwks" } ] },
                "upstream": { "private_key_pem": REDACTED, "password": REDACTED, "user": "u" },
                "oauth": { "client_secret": REDACTED, "client_id": "c" },
                "public_key": "not a secret", "maybe_secret": null
            })
        );
    }

    #[test]
    fn passwords_in_urls_are_redacted_and_names_of_where_secrets_are_are_not() {
        let mut spec = json!({
            "limits": { "redis_url": "redis://:hunter2@10.0.0.7:6379/0", "other": "redis://10.0.0.7" },
            "issuer": { "secret_base64_env": "IDP_SECRET", "client_secret_env": "IDP_CLIENT",
                        "private_key_file": "keys/gw.pem", "jwks_url": "https://user@idp/jwks" }
        });
        redact_secret_fields("Settings", &mut spec);
        assert_eq!(
            spec,
            json!({
                "limits": { "redis_url": REDACTED, "other": "redis://10.0.0.7" },
                "issuer": { "secret_base64_env": "IDP_SECRET", "client_secret_env": "IDP_CLIENT",
                            "private_key_file": "keys/gw.pem", "jwks_url": "https://user@idp/jwks" }
            })
        );
    }

    #[test]
    fn initial_access_tokens_are_redacted_and_variable_references_are_not() {
        let mut spec = json!({
            "wellKnownUrl": "https://idp/.well-known/openid-configuration",
            "initialAccessToken": "eyJ-the-token",
            "registration": { "initial_access_token": "t2" }
        });
        redact_secret_fields("OAuthProvider", &mut spec);
        assert_eq!(spec["initialAccessToken"], REDACTED);
        assert_eq!(spec["registration"]["initial_access_token"], REDACTED);
        let mut by_reference =
            json!({ "initialAccessToken": "${IDP_IAT}", "client_secret": "${not a name}" });
        redact_secret_fields("OAuthProvider", &mut by_reference);
        assert_eq!(by_reference["initialAccessToken"], "${IDP_IAT}");
        assert_eq!(by_reference["client_secret"], REDACTED);
    }

    #[test]
    fn placeholders_are_found_with_their_paths() {
        let spec = json!({"a": [{"b_secret": REDACTED}], "c": "fine"});
        let mut found = Vec::new();
        find_placeholders("spec", &spec, &mut found);
        let paths: Vec<_> = found.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["spec.a[0].b_secret"]);
    }
}
