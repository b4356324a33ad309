//! Tyk Classic API definitions and `policies.json`, loaded as Tyk's file-based mode does.
//! Every field Portico does not support and that is set to something other than its default
//! is reported as a warning; auth modes Portico cannot honour are errors.

use base64::Engine;
use portico_core::api::{ApiAuth, PolicySource, UpstreamHeaders, UpstreamTarget, UpstreamTimeouts};
use portico_core::config::Problem;
use portico_core::jwt::{
    Algorithm, ClaimSkews, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec, Secret,
};
use portico_core::policy::{AccessRule, ApiAccess, EndpointRules, Policy, Quota, RateLimit};
use portico_core::{ApiSpec, ClaimPath, HttpUrl, IdentitySpec, ListenPath};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// API definition fields Portico reads.
const API_FIELDS: &[&str] = &[
    "api_id",
    "name",
    "org_id",
    "active",
    "use_keyless",
    "enable_jwt",
    "jwt_signing_method",
    "jwt_source",
    "jwt_identity_base_field",
    "jwt_policy_field_name",
    "jwt_default_policies",
    "jwt_scope_to_policy_mapping",
    "jwt_scope_claim_name",
    "jwt_issued_at_validation_skew",
    "jwt_not_before_validation_skew",
    "jwt_expires_at_validation_skew",
    "proxy",
];
/// Fields that describe rather than configure; never reported.
const DESCRIPTIVE_FIELDS: &[&str] = &[
    "id",
    "_id",
    "slug",
    "api_model",
    "tags",
    "internal",
    "is_oas",
    "definition",
    "version_data",
];
const PROXY_FIELDS: &[&str] = &["listen_path", "target_url", "strip_listen_path"];

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
];
const POLICY_DESCRIPTIVE: &[&str] = &[
    "tags",
    "meta_data",
    "last_updated",
    "state",
    "key_expires_in",
    "hmac_enabled",
];

/// False for values that mean "not set" in Tyk's exports: null, false, 0, "", [], {}.
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_set),
    }
}

fn report_unsupported(
    obj: &Map<String, Value>,
    known: &[&str],
    descriptive: &[&str],
    location: &str,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in obj {
        if !known.contains(&key.as_str()) && !descriptive.contains(&key.as_str()) && is_set(value) {
            problems.push(Problem::warning(
                location,
                format!("{prefix}{key} is not supported by Portico and is ignored"),
            ));
        }
    }
}

fn string_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Loads every `*.json` in `dir`, in name order.
pub fn load_api_dir(dir: &Path) -> (Vec<ApiSpec>, Vec<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            problems.push(Problem::error(
                dir.display().to_string(),
                format!("cannot read folder: {e}"),
            ));
            return (Vec::new(), Vec::new(), problems);
        }
    };
    files.sort();
    let mut apis = Vec::new();
    let mut locations = Vec::new();
    for file in files {
        let location = file.display().to_string();
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|t| {
                serde_json::from_str::<Value>(&t).map_err(|e| format!("not valid JSON: {e}"))
            });
        match parsed {
            Ok(Value::Object(obj)) => {
                if let Some(api) = convert_api(&obj, &location, &mut problems) {
                    apis.push(api);
                    locations.push(location);
                }
            }
            Ok(_) => problems.push(Problem::error(
                location,
                "an API definition must be a JSON object",
            )),
            Err(e) => problems.push(Problem::error(location, e)),
        }
    }
    (apis, locations, problems)
}

fn skew(obj: &Map<String, Value>, key: &str, location: &str, problems: &mut Vec<Problem>) -> u64 {
    match obj.get(key) {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().unwrap_or_else(|| {
            problems.push(Problem::error(
                location,
                format!("{key} must be a non-negative integer (seconds)"),
            ));
            0
        }),
    }
}

/// Interprets `jwt_source` in all of Tyk's forms: a JWKS URL, or base64 of a JWKS URL, of a
/// PEM public key or certificate, or of an HMAC secret.
pub fn key_source(jwt_source: &str, signing_method: &str) -> Result<KeySourceSpec, String> {
    let source = jwt_source.trim();
    if let Ok(url) = HttpUrl::try_new(source) {
        return Ok(KeySourceSpec::JwksUrl(url));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(source)
        .map_err(|_| "jwt_source is neither a URL nor base64".to_string())?;
    if let Ok(text) = std::str::from_utf8(&decoded) {
        let text = text.trim();
        if let Ok(url) = HttpUrl::try_new(text) {
            return Ok(KeySourceSpec::JwksUrl(url));
        }
        if text.contains("-----BEGIN") {
            return Ok(KeySourceSpec::PublicKeyPem(text.to_string()));
        }
    }
    if signing_method == "hmac" {
        Ok(KeySourceSpec::Secret(Secret::new(decoded)))
    } else {
        Err(format!(
            "jwt_source does not hold a JWKS URL or PEM key, as jwt_signing_method {signing_method:?} needs"
        ))
    }
}

/// The algorithms of a Tyk `jwt_signing_method`.
fn algorithms(method: &str) -> Result<Vec<Algorithm>, String> {
    use Algorithm::*;
    Ok(match method {
        "hmac" => vec![HS256, HS384, HS512],
        "rsa" => vec![RS256, RS384, RS512],
        "ecdsa" => vec![ES256, ES384, ES512],
        "rsa-pss" | "rsapss" => vec![PS256, PS384, PS512],
        "" => return Err("jwt_signing_method is required".into()),
        other => {
            return Err(format!(
                "jwt_signing_method {other:?} is not supported (hmac, rsa, ecdsa, rsa-pss are)"
            ));
        }
    })
}

fn convert_api(
    obj: &Map<String, Value>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<ApiSpec> {
    let before = problems.len();
    let err =
        |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(location, msg));
    report_unsupported(obj, API_FIELDS, DESCRIPTIVE_FIELDS, location, "", problems);
    if obj.get("active") == Some(&Value::Bool(false)) {
        problems.push(Problem::warning(
            location,
            "active is false: API not loaded",
        ));
        return None;
    }
    let Some(api_id) = string_field(obj, "api_id") else {
        err(problems, "api_id is required".into());
        return None;
    };
    let empty = Map::new();
    let proxy = obj
        .get("proxy")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    report_unsupported(proxy, PROXY_FIELDS, &[], location, "proxy.", problems);
    let listen_path = ListenPath::try_new(string_field(proxy, "listen_path").unwrap_or(""))
        .map_err(|e| err(problems, format!("proxy.listen_path: {e}")))
        .ok();
    let upstream = UpstreamTarget::try_new(string_field(proxy, "target_url").unwrap_or(""))
        .map_err(|e| err(problems, format!("proxy.target_url: {e}")))
        .ok();
    let strip = proxy
        .get("strip_listen_path")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let keyless = obj
        .get("use_keyless")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let jwt = obj
        .get("enable_jwt")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let auth = match (keyless, jwt) {
        (true, _) => Some(ApiAuth::Keyless),
        (false, true) => {
            let method = string_field(obj, "jwt_signing_method").unwrap_or("");
            let algs = algorithms(method).map_err(|e| err(problems, e)).ok();
            let keys = match string_field(obj, "jwt_source") {
                Some(src) => key_source(src, method).map_err(|e| err(problems, e)).ok(),
                None => {
                    err(problems, "jwt_source is empty: per-key JWT secrets are not supported; set a JWKS URL, PEM key or secret".into());
                    None
                }
            };
            let skews = ClaimSkews {
                exp_secs: skew(obj, "jwt_expires_at_validation_skew", location, problems),
                nbf_secs: skew(obj, "jwt_not_before_validation_skew", location, problems),
                iat_secs: skew(obj, "jwt_issued_at_validation_skew", location, problems),
            };
            match (algs, keys) {
                (Some(algs), Some(keys)) => {
                    let mut trust = IssuerTrust::new(None, keys);
                    trust.algorithms = Some(algs);
                    // Tyk accepts tokens without exp; so does an imported definition.
                    trust.require_exp = false;
                    trust.skew = skews;
                    Some(ApiAuth::Jwt(JwtSpec {
                        issuers: vec![trust],
                        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                    }))
                }
                _ => None,
            }
        }
        (false, false) => {
            err(problems, "only enable_jwt or use_keyless APIs are supported (this one uses another auth mode)".into());
            None
        }
    };

    let claim = |name: &str, problems: &mut Vec<Problem>| {
        ClaimPath::try_new(name)
            .map_err(|e| problems.push(Problem::error(location, e)))
            .ok()
    };
    let mut identity_claims = Vec::new();
    if let Some(field) = string_field(obj, "jwt_identity_base_field") {
        identity_claims.extend(claim(field, problems));
    }
    // Tyk falls back to `sub` when the identity field is missing.
    identity_claims.extend(claim("sub", problems));
    identity_claims.dedup();
    let scope_map: HashMap<String, Vec<portico_core::PolicyId>> = obj
        .get("jwt_scope_to_policy_mapping")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(scope, pol)| pol.as_str().map(|p| (scope.clone(), vec![p.into()])))
                .collect()
        })
        .unwrap_or_default();
    let policies = PolicySource {
        policy_claim: string_field(obj, "jwt_policy_field_name").and_then(|c| claim(c, problems)),
        scope_claim: string_field(obj, "jwt_scope_claim_name").and_then(|c| claim(c, problems)),
        scope_map,
        default_policies: obj
            .get("jwt_default_policies")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(Into::into).collect())
            .unwrap_or_default(),
    };
    if problems[before..]
        .iter()
        .any(|p| p.severity == portico_core::config::Severity::Error)
    {
        return None;
    }
    Some(ApiSpec {
        id: api_id.into(),
        name: string_field(obj, "name").unwrap_or(api_id).to_string(),
        org_id: string_field(obj, "org_id").unwrap_or("default").to_string(),
        listen_path: listen_path?,
        strip_listen_path: strip,
        upstream: upstream?,
        timeouts: UpstreamTimeouts::default(),
        auth: auth?,
        identity: IdentitySpec::try_new(identity_claims).ok()?,
        policies,
        upstream_headers: UpstreamHeaders::default(),
        endpoints: EndpointRules::default(),
    })
}

/// Loads a Tyk `policies.json`: an object keyed by policy id, or an array of policies.
pub fn load_policies_file(path: &Path) -> (Vec<Policy>, Vec<Problem>) {
    let location = path.display().to_string();
    let mut problems = Vec::new();
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|t| {
            serde_json::from_str::<Value>(&t).map_err(|e| format!("not valid JSON: {e}"))
        });
    let entries: Vec<(Option<String>, Map<String, Value>)> = match parsed {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| v.as_object().cloned().map(|o| (Some(k), o)))
            .collect(),
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| v.as_object().cloned().map(|o| (None, o)))
            .collect(),
        Ok(_) => {
            problems.push(Problem::error(
                &location,
                "policies must be an object keyed by id or an array",
            ));
            return (Vec::new(), problems);
        }
        Err(e) => {
            problems.push(Problem::error(&location, e));
            return (Vec::new(), problems);
        }
    };
    let policies = entries
        .into_iter()
        .filter_map(|(key, obj)| convert_policy(key, &obj, &location, &mut problems))
        .collect();
    (policies, problems)
}

fn number(obj: &Map<String, Value>, key: &str) -> f64 {
    obj.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn convert_policy(
    key: Option<String>,
    obj: &Map<String, Value>,
    file: &str,
    problems: &mut Vec<Problem>,
) -> Option<Policy> {
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
    report_unsupported(
        obj,
        POLICY_FIELDS,
        POLICY_DESCRIPTIVE,
        &location,
        "",
        problems,
    );
    if obj.get("active") == Some(&Value::Bool(false))
        || obj.get("is_inactive") == Some(&Value::Bool(true))
    {
        problems.push(Problem::warning(&location, "inactive: not loaded"));
        return None;
    }
    // Partitioned policies contribute only the parts they are flagged for.
    let partitions = obj.get("partitions").and_then(Value::as_object);
    let partitioned = partitions.is_some_and(|p| {
        ["quota", "rate_limit", "acl"]
            .iter()
            .any(|k| p.get(*k) == Some(&Value::Bool(true)))
    });
    let part = |name: &str| {
        !partitioned || partitions.and_then(|p| p.get(name)) == Some(&Value::Bool(true))
    };
    if partitions.and_then(|p| p.get("per_api")) == Some(&Value::Bool(true)) {
        problems.push(Problem::warning(
            &location,
            "partitions.per_api is not supported; the policy-wide limits apply",
        ));
    }

    let mut access = HashMap::new();
    if part("acl") {
        for (api_id, rights) in obj
            .get("access_rights")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let mut rules = Vec::new();
            for url in rights
                .get("allowed_urls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let pattern = url.get("url").and_then(Value::as_str).unwrap_or("");
                let methods = url.get("methods").and_then(Value::as_array).map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                });
                let methods = methods.filter(|m| !m.is_empty());
                match AccessRule::try_new(pattern, methods) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => problems.push(Problem::error(
                        &location,
                        format!("access_rights.{api_id}.allowed_urls: {e}"),
                    )),
                }
            }
            if rights.get("limit").is_some_and(is_set) {
                problems.push(Problem::warning(&location, format!("access_rights.{api_id}.limit (per-API limits) is not supported; the policy-wide limits apply")));
            }
            access.insert(api_id.as_str().into(), ApiAccess { rules });
        }
    }
    let rate = if part("rate_limit") {
        let (requests, per) = (number(obj, "rate"), number(obj, "per"));
        (requests > 0.0 && per > 0.0)
            .then(|| RateLimit::try_new(requests as u64, (per * 1000.0) as u64).ok())
            .flatten()
    } else {
        None
    };
    let quota = if part("quota") {
        let max = number(obj, "quota_max");
        if max < 0.0 {
            Some(Quota::Unlimited)
        } else if max == 0.0 {
            None
        } else {
            let m = max;
            {
                let renewal_ms = (number(obj, "quota_renewal_rate") * 1000.0) as u64;
                match Quota::limited(m as u64, renewal_ms) {
                    Ok(q) => Some(q),
                    Err(e) => {
                        problems.push(Problem::error(
                            &location,
                            format!("quota_renewal_rate: {e}"),
                        ));
                        return None;
                    }
                }
            }
        }
    } else {
        None
    };
    Some(Policy {
        name: string_field(obj, "name").unwrap_or(&id).to_string(),
        id: id.into(),
        access,
        rate,
        quota,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn jwt_source_forms() {
        assert!(
            matches!(key_source("https://idp/jwks", "rsa"), Ok(KeySourceSpec::JwksUrl(u)) if u.as_str() == "https://idp/jwks")
        );
        let b64_url = STANDARD.encode("https://idp/jwks");
        assert!(
            matches!(key_source(&b64_url, "rsa"), Ok(KeySourceSpec::JwksUrl(u)) if u.as_str() == "https://idp/jwks")
        );
        let b64_pem =
            STANDARD.encode("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        assert!(matches!(
            key_source(&b64_pem, "rsa"),
            Ok(KeySourceSpec::PublicKeyPem(_))
        ));
        let b64_secret = STANDARD.encode([7u8; 32]);
        assert!(
            matches!(key_source(&b64_secret, "hmac"), Ok(KeySourceSpec::Secret(s)) if s.expose() == [7u8; 32])
        );
        assert!(key_source(&b64_secret, "rsa").is_err());
        assert!(key_source("not base64!", "hmac").is_err());
    }

    #[test]
    fn set_values() {
        assert!(!is_set(
            &serde_json::json!({"a": false, "b": [], "c": {"d": 0}})
        ));
        assert!(is_set(&serde_json::json!({"a": {"b": "x"}})));
    }

    #[test]
    fn policy_partitions_and_limits() {
        let obj = serde_json::json!({
            "name": "plan", "rate": 10, "per": 1, "quota_max": 100, "quota_renewal_rate": 3600,
            "access_rights": {"a1": {"allowed_urls": [{"url": "/x", "methods": ["GET"]}]}},
            "partitions": {"quota": true, "rate_limit": true, "acl": false}
        });
        let mut problems = Vec::new();
        let p = convert_policy(
            Some("plan".into()),
            obj.as_object().unwrap(),
            "f",
            &mut problems,
        )
        .unwrap();
        assert!(p.access.is_empty(), "acl partition off: limits only");
        assert_eq!(p.rate, Some(RateLimit::try_new(10, 1000).unwrap()));
        assert_eq!(p.quota, Some(Quota::limited(100, 3_600_000).unwrap()));
        let unlimited = serde_json::json!({"quota_max": -1, "rate": 0, "per": 0});
        let p = convert_policy(
            Some("u".into()),
            unlimited.as_object().unwrap(),
            "f",
            &mut problems,
        )
        .unwrap();
        assert_eq!((p.rate, p.quota), (None, Some(Quota::Unlimited)));
        assert!(problems.is_empty(), "{problems:?}");
    }
}
