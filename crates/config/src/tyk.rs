//! Tyk Classic API definitions and `policies.json`, loaded as Tyk's file-based mode does.
//! Every field Portico does not support and that is set to something other than its default
//! is reported as a warning. What Portico cannot honour and that would open an API wider than
//! Tyk does (other auth modes, IP lists, `ignored` paths, internal APIs reachable from outside,
//! a limit it cannot represent) is an error or, for an internal API, not loaded: a restriction
//! is never dropped silently.

mod auth_modes;
mod endpoints;
mod external_oauth;
mod limits;
mod oas;
mod policies;
mod restrictions;

pub use policies::{PerApiSplits, load_policies_file};

use base64::Engine;
use portico_core::api::{
    ApiAuth, ConnectionLimits, PolicySource, UpstreamHeaders, UpstreamTarget, UpstreamTimeouts,
};
use portico_core::config::{Problem, has_errors};
use portico_core::jwt::{
    Algorithm, ClaimSkews, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec, Secret,
};
use portico_core::{ApiSpec, ClaimPath, HttpUrl, IdentitySpec, ListenPath, PolicyId};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// API definition fields Portico reads.
const API_FIELDS: &[&str] = &[
    "api_id",
    "name",
    "org_id",
    "active",
    "internal",
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
    "external_oauth",
    "proxy",
    "version_data",
    "strip_auth_data",
];
/// Fields that describe rather than configure; never reported.
const DESCRIPTIVE_FIELDS: &[&str] = &["id", "_id", "slug", "api_model", "tags", "definition"];
const PROXY_FIELDS: &[&str] = &[
    "listen_path",
    "target_url",
    "strip_listen_path",
    "transport",
];
/// `proxy.transport` fields Portico reads.
const TRANSPORT_FIELDS: &[&str] = &["ssl_insecure_skip_verify"];

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

/// What kind of JSON value this is, for error messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Warns about every field of `obj` that is set and not in one of the `known` lists.
fn report_unsupported(
    obj: &Map<String, Value>,
    known: &[&[&str]],
    location: &str,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in obj {
        if !known.iter().any(|k| k.contains(&key.as_str())) && is_set(value) {
            problems.push(Problem::warning(
                location,
                format!("{prefix}{key} is not supported by Portico and is ignored"),
            ));
        }
    }
}

/// A non-empty string field; `None` when absent, null, empty or not a string.
fn string_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Typed reads of an API definition's fields: a value of the wrong type is an error, not
/// silently a default.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    location: &'a str,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    fn wrong(&self, problems: &mut Vec<Problem>, key: &str, expected: &str, got: &Value) {
        problems.push(Problem::error(
            self.location,
            format!(
                "{}{key} must be {expected}, not {}",
                self.prefix,
                json_kind(got)
            ),
        ));
    }

    /// Absent or null: `false`.
    fn flag(&self, key: &str, problems: &mut Vec<Problem>) -> bool {
        match self.obj.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.wrong(problems, key, "true or false", other);
                false
            }
        }
    }

    /// Absent, null or empty: `None`.
    fn text(&self, key: &str, problems: &mut Vec<Problem>) -> Option<&'a str> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()).filter(|s| !s.is_empty()),
            Some(other) => {
                self.wrong(problems, key, "a string", other);
                None
            }
        }
    }

    /// Whole seconds: absent or null is 0; anything but a non-negative integer is an error.
    fn seconds(&self, key: &str, problems: &mut Vec<Problem>) -> u64 {
        match self.obj.get(key) {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().unwrap_or_else(|| {
                problems.push(Problem::error(
                    self.location,
                    format!(
                        "{}{key} must be a non-negative integer (seconds)",
                        self.prefix
                    ),
                ));
                0
            }),
        }
    }

    /// Policy ids: absent or null is none.
    fn policy_ids(&self, key: &str, problems: &mut Vec<Problem>) -> Vec<PolicyId> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => ids
                .iter()
                .filter_map(Value::as_str)
                .map(Into::into)
                .collect(),
            Some(other) => {
                self.wrong(problems, key, "an array of policy ids", other);
                Vec::new()
            }
        }
    }

    /// Scope -> policy id: absent or null is none.
    fn scope_map(&self, key: &str, problems: &mut Vec<Problem>) -> HashMap<String, Vec<PolicyId>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => HashMap::new(),
            Some(Value::Object(map)) if map.values().all(Value::is_string) => map
                .iter()
                .filter_map(|(scope, id)| Some((scope.clone(), vec![id.as_str()?.into()])))
                .collect(),
            Some(other) => {
                self.wrong(problems, key, "an object of scope -> policy id", other);
                HashMap::new()
            }
        }
    }
}

/// How a Tyk apps folder is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct TykOptions {
    /// Serve the other APIs when some use an auth mode Portico does not serve (each skipped
    /// API is a warning); by default such an API is an error (`--tyk-skip-unsupported`).
    pub skip_unsupported: bool,
}

/// Loads every `*.json` in `dir`, in name order: Tyk Classic definitions and Tyk OAS
/// documents (`openapi` + `x-tyk-api-gateway`), except the `*-oas.json` and `*-mcp.json`
/// companions that Tyk's file mode keeps beside a Classic `is_oas` file (as Tyk does; such a
/// Classic file is refused).
pub fn load_api_dir(dir: &Path, options: TykOptions) -> (Vec<ApiSpec>, Vec<String>, Vec<Problem>) {
    let mut problems = Vec::new();
    let companion = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("-oas.json") || n.ends_with("-mcp.json"))
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !companion(p))
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
                let api = if oas::is_oas_document(&obj) {
                    oas::convert_oas_api(&obj, &location, options, &mut problems)
                } else {
                    convert_api(&obj, &location, options, &mut problems)
                };
                if let Some(api) = api {
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

/// Points every API that names a split per_api policy (in its scope map or default policies)
/// at the policies it was split into, so that each of its APIs keeps its own limit and
/// counter. A policy claim names policies in the token, where no split can follow: an API
/// that reads one while policies are split is an error rather than a grant that silently
/// lacks the per-API limits.
pub fn use_per_api_splits(
    apis: &mut [ApiSpec],
    locations: &[String],
    splits: &PerApiSplits,
    problems: &mut Vec<Problem>,
) {
    if splits.is_empty() {
        return;
    }
    let expand = |ids: &mut Vec<PolicyId>| {
        let mut out: Vec<PolicyId> = Vec::with_capacity(ids.len());
        for id in ids.drain(..) {
            for id in splits.get(&id).cloned().unwrap_or_else(|| vec![id]) {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        *ids = out;
    };
    let mut split_ids: Vec<&str> = splits.keys().map(|id| &**id).collect();
    split_ids.sort();
    for (i, api) in apis.iter_mut().enumerate() {
        expand(&mut api.policies.default_policies);
        for ids in api.policies.scope_map.values_mut() {
            expand(ids);
        }
        if let Some(claim) = &api.policies.policy_claim {
            problems.push(Problem::error(
                locations.get(i).map_or("API", String::as_str),
                format!(
                    "reads policy ids from the claim \"{claim}\", but the per_api policies {} have per-API limits, which Portico applies by splitting them into one policy per API (<policy>#<api>): name them through the scope map or default policies instead",
                    split_ids.join(", ")
                ),
            ));
        }
    }
}

/// Interprets `jwt_source` in all of Tyk's forms: a JWKS URL, or base64 of a JWKS URL, of a
/// PEM public key or certificate, or of an HMAC secret.
pub fn key_source(jwt_source: &str, signing_method: &str) -> Result<KeySourceSpec, String> {
    key_source_of(
        jwt_source,
        signing_method,
        &JwtFieldNames {
            source: "jwt_source",
            signing_method: "jwt_signing_method",
        },
    )
}

/// What the fields holding a JWT key source and signing method are called where they were
/// read (`jwt_source` of an API, `source` of an external OAuth provider), for errors.
struct JwtFieldNames<'a> {
    source: &'a str,
    signing_method: &'a str,
}

fn key_source_of(
    source: &str,
    signing_method: &str,
    names: &JwtFieldNames<'_>,
) -> Result<KeySourceSpec, String> {
    let source = source.trim();
    if let Ok(url) = HttpUrl::try_new(source) {
        return Ok(KeySourceSpec::JwksUrl(url));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(source)
        .map_err(|_| format!("{} is neither a URL nor base64", names.source))?;
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
            "{} does not hold a JWKS URL or PEM key, as {} {signing_method:?} needs",
            names.source, names.signing_method
        ))
    }
}

/// The algorithms of a Tyk signing method (`jwt_signing_method`, or `field`).
fn algorithms(method: &str, field: &str) -> Result<Vec<Algorithm>, String> {
    use Algorithm::*;
    Ok(match method {
        "hmac" => vec![HS256, HS384, HS512],
        "rsa" => vec![RS256, RS384, RS512],
        "ecdsa" => vec![ES256, ES384, ES512],
        "rsa-pss" | "rsapss" => vec![PS256, PS384, PS512],
        "" => return Err(format!("{field} is required")),
        other => {
            return Err(format!(
                "{field} {other:?} is not supported (hmac, rsa, ecdsa, rsa-pss are)"
            ));
        }
    })
}

/// The trusted issuer entry of Tyk's JWT settings (`enable_jwt`, or an external OAuth `jwt`
/// provider): any `iss`, the algorithms of the signing method, the keys of the source, `exp`
/// not required (Tyk accepts tokens without it). Errors name the fields as `names` does.
fn jwt_trust(
    signing_method: &str,
    source: &str,
    skew: ClaimSkews,
    names: &JwtFieldNames<'_>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<IssuerTrust> {
    let mut refuse = |e: String| problems.push(Problem::error(location, e));
    let algorithms = algorithms(signing_method, names.signing_method)
        .map_err(&mut refuse)
        .ok();
    let keys = key_source_of(source, signing_method, names)
        .map_err(&mut refuse)
        .ok();
    let mut trust = IssuerTrust::new(None, keys?);
    trust.algorithms = Some(algorithms?);
    trust.require_exp = false;
    trust.skew = skew;
    Some(trust)
}

fn convert_api(
    obj: &Map<String, Value>,
    location: &str,
    options: TykOptions,
    problems: &mut Vec<Problem>,
) -> Option<ApiSpec> {
    let before = problems.len();
    let err =
        |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(location, msg));
    let fields = Fields {
        obj,
        location,
        prefix: "",
    };
    if obj.get("active") == Some(&Value::Bool(false)) {
        problems.push(Problem::warning(
            location,
            "active is false: API not loaded",
        ));
        return None;
    }
    if fields.flag("internal", problems) {
        problems.push(Problem::warning(
            location,
            "internal: true — only reachable through Tyk's internal looping, which Portico does not have; not routed",
        ));
        return None;
    }
    let modes = auth_modes::unserved_modes(obj);
    if !modes.is_empty() {
        let api_id = string_field(obj, "api_id").unwrap_or("(no api_id)");
        problems.push(auth_modes::unserved(
            api_id,
            &modes,
            options.skip_unsupported,
            location,
        ));
        return None;
    }
    let handled = restrictions::refuse_unenforced(obj, location, problems);
    report_unsupported(
        obj,
        &[API_FIELDS, DESCRIPTIVE_FIELDS, &handled],
        location,
        "",
        problems,
    );
    let Some(api_id) = fields.text("api_id", problems) else {
        err(problems, "api_id is required".into());
        return None;
    };
    let empty = Map::new();
    let proxy = match obj.get("proxy") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(proxy)) => proxy,
        Some(other) => {
            err(
                problems,
                format!("proxy must be an object, not {}", json_kind(other)),
            );
            &empty
        }
    };
    report_unsupported(proxy, &[PROXY_FIELDS], location, "proxy.", problems);
    let proxy_fields = Fields {
        obj: proxy,
        location,
        prefix: "proxy.",
    };
    let listen_path = ListenPath::try_new(proxy_fields.text("listen_path", problems).unwrap_or(""))
        .map_err(|e| err(problems, format!("proxy.listen_path: {e}")))
        .ok();
    let upstream = UpstreamTarget::try_new(proxy_fields.text("target_url", problems).unwrap_or(""))
        .map_err(|e| err(problems, format!("proxy.target_url: {e}")))
        .ok();
    let strip = proxy_fields.flag("strip_listen_path", problems);
    let strip_auth_data = fields.flag("strip_auth_data", problems);
    let transport = match proxy.get("transport") {
        Some(Value::Object(t)) => t.clone(),
        _ => Map::new(),
    };
    report_unsupported(
        &transport,
        &[TRANSPORT_FIELDS],
        location,
        "proxy.transport.",
        problems,
    );
    let insecure_skip_verify = Fields {
        obj: &transport,
        location,
        prefix: "proxy.transport.",
    }
    .flag("ssl_insecure_skip_verify", problems);
    if insecure_skip_verify {
        problems.push(Problem::warning(
            location,
            "proxy.transport.ssl_insecure_skip_verify: the upstream's certificate is not verified",
        ));
    }

    let keyless = fields.flag("use_keyless", problems);
    let jwt = fields.flag("enable_jwt", problems);
    // `None`: mistyped (reported). Both it and enable_jwt: refused in `restrictions`.
    let external_oauth = if keyless || jwt {
        Some(false)
    } else {
        external_oauth::enabled(obj, location, problems)
    };
    let mut external_identity = None;
    let auth = match (keyless, jwt, external_oauth) {
        (true, _, _) => Some(ApiAuth::Keyless),
        (false, true, _) => {
            let method = fields.text("jwt_signing_method", problems).unwrap_or("");
            let names = JwtFieldNames {
                source: "jwt_source",
                signing_method: "jwt_signing_method",
            };
            let skew = ClaimSkews {
                exp_secs: fields.seconds("jwt_expires_at_validation_skew", problems),
                nbf_secs: fields.seconds("jwt_not_before_validation_skew", problems),
                iat_secs: fields.seconds("jwt_issued_at_validation_skew", problems),
            };
            match fields.text("jwt_source", problems) {
                Some(source) => {
                    jwt_trust(method, source, skew, &names, location, problems).map(|trust| {
                        ApiAuth::Jwt(JwtSpec {
                            issuers: vec![trust],
                            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                        })
                    })
                }
                None => {
                    err(problems, "jwt_source is empty: per-key JWT secrets are not supported; set a JWKS URL, PEM key or secret".into());
                    let _ = algorithms(method, names.signing_method).map_err(|e| err(problems, e));
                    None
                }
            }
        }
        (false, false, Some(true)) => {
            external_oauth::convert(obj, location, problems).map(|converted| {
                external_identity = Some(converted.identity);
                ApiAuth::Jwt(JwtSpec {
                    issuers: converted.issuers,
                    max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                })
            })
        }
        (false, false, Some(false)) => {
            err(problems, "only enable_jwt, external_oauth or use_keyless APIs are supported (this one uses another auth mode)".into());
            None
        }
        (false, false, None) => None,
    };

    let claim = |name: &str, problems: &mut Vec<Problem>| {
        ClaimPath::try_new(name)
            .map_err(|e| problems.push(Problem::error(location, e)))
            .ok()
    };
    let identity = if external_oauth == Some(true) {
        // Tyk's external OAuth names the identity claim in each provider.
        external_identity
    } else {
        let mut identity_claims = Vec::new();
        if let Some(field) = fields.text("jwt_identity_base_field", problems) {
            identity_claims.extend(claim(field, problems));
        }
        // Tyk falls back to `sub` when the identity field is missing.
        identity_claims.extend(claim("sub", problems));
        identity_claims.dedup();
        IdentitySpec::try_new(identity_claims)
            .map_err(|e| err(problems, e))
            .ok()
    };
    let policies = PolicySource {
        policy_claim: fields
            .text("jwt_policy_field_name", problems)
            .and_then(|c| claim(c, problems)),
        scope_claim: fields
            .text("jwt_scope_claim_name", problems)
            .and_then(|c| claim(c, problems)),
        scope_map: fields.scope_map("jwt_scope_to_policy_mapping", problems),
        default_policies: fields.policy_ids("jwt_default_policies", problems),
    };
    let endpoints = endpoints::endpoint_rules(obj, location, problems);
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(ApiSpec {
        id: api_id.into(),
        name: string_field(obj, "name").unwrap_or(api_id).to_string(),
        org_id: string_field(obj, "org_id").unwrap_or("default").to_string(),
        listen_path: listen_path?,
        strip_listen_path: strip,
        allow_path_parameters: false,
        upstream: upstream?,
        upstream_tls: portico_core::api::UpstreamTlsSettings {
            insecure_skip_verify,
            ..Default::default()
        },
        timeouts: UpstreamTimeouts::default(),
        connections: ConnectionLimits::default(),
        auth: auth?,
        identity: identity?,
        policies,
        upstream_headers: UpstreamHeaders {
            // Tyk's `strip_auth_data`: the caller's credentials do not reach the upstream.
            forward_authorization: !strip_auth_data,
            ..UpstreamHeaders::default()
        },
        endpoints,
        // Tyk switches WebSockets on gateway-wide (`enable_websockets` in tyk.conf), not in an
        // API definition: nothing here to map, so an imported API stays without them.
        websocket: false,
        upstream_jwt: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use portico_core::config::Severity;

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

    fn jwt_api(extra: Value) -> Value {
        let mut api = serde_json::json!({
            "api_id": "a", "enable_jwt": true, "jwt_signing_method": "rsa",
            "jwt_source": "https://idp.example/jwks",
            "proxy": {"listen_path": "/a/", "target_url": "http://127.0.0.1:9"}
        });
        api.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        api
    }

    fn convert(api: Value) -> (Option<ApiSpec>, Vec<Problem>) {
        let mut problems = Vec::new();
        let spec = convert_api(
            api.as_object().unwrap(),
            "a.json",
            TykOptions::default(),
            &mut problems,
        );
        (spec, problems)
    }

    /// A fresh folder under the system temp folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let dir =
                std::env::temp_dir().join(format!("portico-tyk-{name}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn internal_apis_are_not_routed_and_policies_granting_them_still_load() {
        let dir = TempDir::new("internal");
        let apps = dir.0.join("apps");
        std::fs::create_dir(&apps).unwrap();
        // Its auth mode alone would be an error, were it loaded.
        let internal = serde_json::json!({"api_id": "inner", "internal": true, "use_basic_auth": true,
            "proxy": {"listen_path": "/inner/", "target_url": "http://127.0.0.1:9"}});
        std::fs::write(apps.join("inner.json"), internal.to_string()).unwrap();
        std::fs::write(
            apps.join("outer.json"),
            jwt_api(serde_json::json!({})).to_string(),
        )
        .unwrap();
        let policies = dir.0.join("policies.json");
        std::fs::write(
            &policies,
            r#"{"p": {"access_rights": {"inner": {}, "a": {}}, "rate": 1, "per": 1}}"#,
        )
        .unwrap();
        let sources = crate::ConfigSources {
            tyk_apps_dir: Some(apps),
            tyk_policies_file: Some(policies),
            ..Default::default()
        };
        let loaded = crate::load(&sources, &crate::env::MapEnv::default()).unwrap();
        let ids: Vec<&str> = loaded.gateway.apis.iter().map(|a| &*a.id).collect();
        assert_eq!(ids, ["a"]);
        assert!(
            loaded.warnings.iter().any(|w| w.location.ends_with("inner.json")
                && w.message
                    == "internal: true — only reachable through Tyk's internal looping, which Portico does not have; not routed"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn unserved_auth_modes_are_refused_or_skipped_with_the_flag() {
        let dir = TempDir::new("skip");
        let apps = dir.0.join("apps");
        std::fs::create_dir(&apps).unwrap();
        let basic = serde_json::json!({"api_id": "basic", "use_basic_auth": true,
            "proxy": {"listen_path": "/basic/", "target_url": "http://127.0.0.1:9"}});
        std::fs::write(apps.join("basic.json"), basic.to_string()).unwrap();
        std::fs::write(
            apps.join("jwt.json"),
            jwt_api(serde_json::json!({})).to_string(),
        )
        .unwrap();
        let policies = dir.0.join("policies.json");
        std::fs::write(
            &policies,
            r#"{"only-basic": {"access_rights": {"basic": {}}}}"#,
        )
        .unwrap();
        let mut sources = crate::ConfigSources {
            tyk_apps_dir: Some(apps.clone()),
            tyk_policies_file: Some(policies),
            ..Default::default()
        };
        let env = crate::env::MapEnv::default();
        let refused = crate::load(&sources, &env).unwrap_err();
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.severity == Severity::Error
                    && p.location.ends_with("basic.json")
                    && p.message
                        .contains(r#"API "basic" uses auth mode basic (use_basic_auth)"#)
                    && p.message.contains("--tyk-skip-unsupported")),
            "{:?}",
            refused.problems
        );
        sources.tyk_skip_unsupported = true;
        let loaded = crate::load(&sources, &env).unwrap();
        let ids: Vec<&str> = loaded.gateway.apis.iter().map(|a| &*a.id).collect();
        assert_eq!(ids, ["a"]);
        assert!(loaded.gateway.policies.get("only-basic").is_some());
        let skipped: Vec<_> = loaded
            .warnings
            .iter()
            .filter(|w| w.message.contains("skipped"))
            .collect();
        assert_eq!(skipped.len(), 1, "{:?}", loaded.warnings);
        assert!(skipped[0].location.ends_with("basic.json"));
        // JWT and another mode: Tyk requires both, so it stays an error with the flag.
        std::fs::write(
            apps.join("both.json"),
            jwt_api(serde_json::json!({"api_id": "both", "use_basic_auth": true,
                "proxy": {"listen_path": "/both/", "target_url": "http://127.0.0.1:9"}}))
            .to_string(),
        )
        .unwrap();
        let refused = crate::load(&sources, &env).unwrap_err();
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.severity == Severity::Error
                    && p.location.ends_with("both.json")
                    && p.message
                        .contains("use_basic_auth is enabled as well as enable_jwt")),
            "{:?}",
            refused.problems
        );
    }

    #[test]
    fn apis_naming_a_split_per_api_policy_get_each_apis_own_limit_and_counter() {
        use portico_core::merge::{AccessDecision, decide};
        let dir = TempDir::new("per-api");
        let apps = dir.0.join("apps");
        std::fs::create_dir(&apps).unwrap();
        for (id, extra) in [
            (
                "a",
                serde_json::json!({"jwt_scope_to_policy_mapping": {"plan": "gold"}}),
            ),
            ("b", serde_json::json!({"jwt_default_policies": ["gold"]})),
        ] {
            let mut api = jwt_api(extra);
            api["api_id"] = id.into();
            api["proxy"]["listen_path"] = format!("/{id}/").into();
            std::fs::write(apps.join(format!("{id}.json")), api.to_string()).unwrap();
        }
        let policies = dir.0.join("policies.json");
        std::fs::write(
            &policies,
            r#"{"gold": {"rate": 100, "per": 1, "partitions": {"per_api": true}, "access_rights": {
                "a": {"limit": {"rate": 1, "per": 1}}, "b": {"limit": {"rate": 2, "per": 1}}}}}"#,
        )
        .unwrap();
        let mut sources = crate::ConfigSources {
            tyk_apps_dir: Some(apps.clone()),
            tyk_policies_file: Some(policies),
            ..Default::default()
        };
        let env = crate::env::MapEnv::default();
        let loaded = crate::load(&sources, &env).unwrap();
        let set = &loaded.gateway.policies;
        assert!(set.get("gold").is_none(), "nothing left under the Tyk id");
        for api in &loaded.gateway.apis {
            let named: Vec<&PolicyId> = api
                .policies
                .default_policies
                .iter()
                .chain(api.policies.scope_map.values().flatten())
                .collect();
            assert_eq!(
                named,
                [&PolicyId::from("gold#a"), &PolicyId::from("gold#b")]
            );
            let applied: Vec<_> = named
                .iter()
                .map(|id| set.get(id).unwrap().clone())
                .collect();
            let AccessDecision::Allowed(grant) = decide(&applied, &api.id, "GET", "/") else {
                panic!()
            };
            let (counter, rate) = grant.rate.unwrap();
            let per_api = if &*api.id == "a" { 1 } else { 2 };
            assert_eq!(
                (&*counter, rate.requests),
                (&*format!("gold#{}", api.id), per_api)
            );
        }
        // A policy claim names policies in the token, where no split can follow.
        std::fs::write(
            apps.join("c.json"),
            serde_json::json!({"api_id": "c", "enable_jwt": true, "jwt_signing_method": "rsa",
                "jwt_source": "https://idp.example/jwks", "jwt_policy_field_name": "pol",
                "proxy": {"listen_path": "/c/", "target_url": "http://127.0.0.1:9"}})
            .to_string(),
        )
        .unwrap();
        sources.tyk_skip_unsupported = true;
        let refused = crate::load(&sources, &env).unwrap_err();
        assert!(
            refused
                .problems
                .iter()
                .any(|p| p.location.ends_with("c.json")
                    && p.message
                        .contains(r#"reads policy ids from the claim "pol""#)),
            "{:?}",
            refused.problems
        );
    }

    #[test]
    fn white_and_black_lists_become_the_apis_endpoint_rules() {
        let (api, problems) = convert(jwt_api(serde_json::json!({"version_data": {
        "not_versioned": true, "versions": {"Default": {"name": "Default", "use_extended_paths": true,
        "extended_paths": {
            "white_list": [{"path": "/users/{id}", "method_actions": {"GET": {"action": "no_action", "code": 200}}}],
            "black_list": [{"path": "/users/root", "method_actions": {"GET": {"action": "no_action", "code": 200}}}]
        }}}}})));
        assert!(problems.is_empty(), "{problems:?}");
        let rules = &api.unwrap().endpoints;
        assert!(rules.permits("GET", "/a/users/7", "/users/7"));
        assert!(!rules.permits("POST", "/a/users/7", "/users/7"));
        assert!(!rules.permits("GET", "/a/orders", "/orders"));
        assert!(!rules.permits("GET", "/a/users/root", "/users/root"));
        let (api, _) = convert(jwt_api(serde_json::json!({})));
        assert!(api.unwrap().endpoints.is_empty());
    }

    #[test]
    fn what_would_widen_access_is_refused() {
        for (extra, expected) in [
            (
                serde_json::json!({"use_standard_auth": true}),
                "use_standard_auth",
            ),
            (
                serde_json::json!({"enable_ip_whitelisting": true, "allowed_ips": ["10.0.0.0/8"]}),
                "allowed_ips",
            ),
            (
                serde_json::json!({"version_data": {"not_versioned": true, "versions": {"Default": {
                "use_extended_paths": true, "extended_paths": {"ignored": [{"path": "/public", "method": "GET"}]}}}}}),
                "ignored",
            ),
            (
                serde_json::json!({"jwt_default_policies": "plan"}),
                "jwt_default_policies must be an array",
            ),
            (
                serde_json::json!({"jwt_scope_to_policy_mapping": {"read": ["a", "b"]}}),
                "jwt_scope_to_policy_mapping",
            ),
            (
                serde_json::json!({"jwt_policy_field_name": 7}),
                "jwt_policy_field_name must be a string",
            ),
            (
                serde_json::json!({"internal": "yes"}),
                "internal must be true or false",
            ),
            (
                serde_json::json!({"proxy": "/a/"}),
                "proxy must be an object",
            ),
        ] {
            let (api, problems) = convert(jwt_api(extra.clone()));
            assert!(api.is_none(), "{extra}");
            assert!(
                problems
                    .iter()
                    .any(|p| p.severity == Severity::Error && p.message.contains(expected)),
                "{extra}: {problems:?}"
            );
        }
        // A restriction reported as an error is not also listed as merely unsupported.
        let (_, problems) = convert(jwt_api(serde_json::json!({"use_standard_auth": true})));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
