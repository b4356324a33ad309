//! The native YAML configuration file. Every field and its default is documented in
//! `docs/configuration.md`; unknown fields are errors, not silently ignored.

mod limits;
mod schema;

pub use limits::REDIS_URL_ENV;

pub use schema::*;

use super::env::Env;
use super::{ProcessSettings, TlsListener};
use base64::Engine;
use portico_core::api::{
    ApiAuth, ClientCertFiles, ConnectionLimits, DEFAULT_UPSTREAM_JWT_HEADER,
    DEFAULT_UPSTREAM_JWT_TTL_SECS, PolicySource, UpstreamHeaders, UpstreamJwtSpec, UpstreamTarget,
    UpstreamTimeouts, UpstreamTlsSettings,
};
use portico_core::config::{
    GatewayConfig, GatewaySettings, KeyFetchSettings, Problem, SessionSettings, TokenCacheSettings,
    has_errors,
};
use portico_core::introspection::{
    ClientAuth, DEFAULT_GRACE_SECS, DEFAULT_TIMEOUT_MS, IntrospectionCache, IntrospectionSpec,
    JwtValidation,
};
use portico_core::jwt::{
    Algorithm, ClaimSkews, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec, Secret,
};
use portico_core::policy::{AccessRule, ApiAccess, EndpointRules, Policy, Quota, RateLimit};
use portico_core::{ApiSpec, ClaimPath, HttpUrl, IdentitySpec, ListenPath};
use std::collections::HashMap;
use std::path::Path;

/// The result of reading one native config file.
#[derive(Debug)]
pub struct NativeConfig {
    pub gateway: GatewayConfig,
    pub process: ProcessSettings,
    pub api_locations: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Reads and converts `path`; `Err` only when the file cannot be read or parsed at all.
pub fn load_file(path: &Path, env: &dyn Env) -> Result<NativeConfig, Problem> {
    let where_ = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problem::error(&where_, format!("cannot read: {e}")))?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if crate::documents::is_documents_file(&text) {
        let docs = crate::documents::parse_yaml(&text, &where_).map_err(|mut problems| {
            // The first problem stops the file; the rest are in its message.
            let first = problems.remove(0);
            let rest: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.location, p.message))
                .collect();
            if rest.is_empty() {
                first
            } else {
                Problem::error(
                    first.location,
                    format!("{}; {}", first.message, rest.join("; ")),
                )
            }
        })?;
        return Ok(crate::documents::to_native(&docs, &where_, &base_dir, env));
    }
    let file: FileConfig =
        serde_saphyr::from_str(&text).map_err(|e| Problem::error(&where_, e.to_string()))?;
    Ok(convert(file, &where_, &base_dir, env))
}

/// Converts a parsed file into domain types, collecting every problem.
pub fn convert(file: FileConfig, file_name: &str, base_dir: &Path, env: &dyn Env) -> NativeConfig {
    let mut problems = Vec::new();
    let defaults = ProcessSettings::default();
    let process = ProcessSettings {
        listen: file.listen.unwrap_or(defaults.listen),
        admin_listen: file.admin_listen.unwrap_or(defaults.admin_listen),
        listen_tls: file.listen_tls.map(|t| TlsListener {
            address: t.address,
            cert_file: base_dir.join(t.cert_file),
            key_file: base_dir.join(t.key_file),
            client_ca_file: t.client_ca_file.map(|f| base_dir.join(f)),
        }),
        data_dir: file
            .data_dir
            .map(|d| base_dir.join(d))
            .unwrap_or(defaults.data_dir),
        worker_threads: file.worker_threads.unwrap_or(defaults.worker_threads),
        log_format: file.log.format.unwrap_or_default(),
        log_level: file.log.level.unwrap_or(defaults.log_level),
    };
    let jwks_defaults = KeyFetchSettings::default();
    let session_defaults = SessionSettings::default();
    let cache_defaults = TokenCacheSettings::default();
    let trusted_proxies = file
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| {
            portico_core::net::IpNet::try_new(raw)
                .map_err(|e| {
                    problems.push(Problem::error(
                        format!("{file_name}: trusted_proxies[{i}]"),
                        e,
                    ))
                })
                .ok()
        })
        .collect();
    let defaults_gw = GatewaySettings::default();
    let jwks_path = file.jwks_path.clone();
    if let Some(path) = &jwks_path
        && !path.starts_with('/')
    {
        problems.push(Problem::error(
            format!("{file_name}: jwks_path"),
            "must start with '/'",
        ));
    }
    if file.max_token_lifetime_secs == Some(0) {
        problems.push(Problem::error(
            format!("{file_name}: max_token_lifetime_secs"),
            "must be at least 1: a revocation given no end lasts this long",
        ));
    }
    let settings = GatewaySettings {
        trusted_proxies,
        gateway_name: file
            .gateway_name
            .clone()
            .unwrap_or(defaults_gw.gateway_name),
        jwks_path,
        max_token_lifetime_secs: file
            .max_token_lifetime_secs
            .unwrap_or(defaults_gw.max_token_lifetime_secs),
        jwks: KeyFetchSettings {
            refresh_secs: file.jwks.refresh_secs.unwrap_or(jwks_defaults.refresh_secs),
            min_refresh_secs: file
                .jwks
                .min_refresh_secs
                .unwrap_or(jwks_defaults.min_refresh_secs),
            max_refresh_secs: file
                .jwks
                .max_refresh_secs
                .unwrap_or(jwks_defaults.max_refresh_secs),
            unknown_kid_cooldown_secs: file
                .jwks
                .unknown_kid_cooldown_secs
                .unwrap_or(jwks_defaults.unknown_kid_cooldown_secs),
            fetch_timeout_ms: file
                .jwks
                .fetch_timeout_ms
                .unwrap_or(jwks_defaults.fetch_timeout_ms),
        },
        token_cache: TokenCacheSettings {
            max_entries: file
                .token_cache
                .max_entries
                .unwrap_or(cache_defaults.max_entries),
            max_ttl_secs: file
                .token_cache
                .max_ttl_secs
                .unwrap_or(cache_defaults.max_ttl_secs),
        },
        limits: limits::convert_limits(file.limits, file_name, env, &mut problems),
        sessions: SessionSettings {
            max_sessions: file
                .sessions
                .max_sessions
                .unwrap_or(session_defaults.max_sessions),
            idle_ttl_secs: file
                .sessions
                .idle_ttl_secs
                .unwrap_or(session_defaults.idle_ttl_secs),
        },
    };
    if settings.jwks.fetch_timeout_ms == 0 {
        problems.push(Problem::error(
            format!("{file_name}: jwks.fetch_timeout_ms"),
            "must be > 0",
        ));
    }
    if process.worker_threads == 0 {
        problems.push(Problem::error(
            format!("{file_name}: worker_threads"),
            "must be > 0",
        ));
    }
    if settings.sessions.max_sessions == 0 {
        problems.push(Problem::error(
            format!("{file_name}: sessions.max_sessions"),
            "must be > 0",
        ));
    }

    let mut apis = Vec::with_capacity(file.apis.len());
    let mut api_locations = Vec::with_capacity(file.apis.len());
    for (i, section) in file.apis.into_iter().enumerate() {
        let location = format!("{file_name}: apis[{i}] ({})", section.id);
        if let Some(api) = convert_api(section, &location, base_dir, env, &mut problems) {
            apis.push(api);
            api_locations.push(location);
        }
    }
    let mut policies = portico_core::PolicySet::default();
    for (i, section) in file.policies.into_iter().enumerate() {
        let location = format!("{file_name}: policies[{i}] ({})", section.id);
        if let Some(policy) = convert_policy(section, &location, &mut problems) {
            let id = policy.id.clone();
            if policies.insert(policy).is_some() {
                problems.push(Problem::error(
                    location,
                    format!("policy id {id:?} is used twice"),
                ));
            }
        }
    }
    NativeConfig {
        gateway: GatewayConfig {
            apis,
            policies,
            settings,
        },
        process,
        api_locations,
        problems,
    }
}

fn claim_path(raw: &str, location: &str, problems: &mut Vec<Problem>) -> Option<ClaimPath> {
    ClaimPath::try_new(raw)
        .map_err(|e| problems.push(Problem::error(location, e)))
        .ok()
}

fn convert_api(
    s: ApiSection,
    loc: &str,
    base_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<ApiSpec> {
    let before = problems.len();
    let err = |problems: &mut Vec<Problem>, field: &str, msg: String| {
        problems.push(Problem::error(format!("{loc}.{field}"), msg))
    };
    if s.id.trim().is_empty() {
        err(problems, "id", "must not be empty".into());
    }
    let listen_path = ListenPath::try_new(&s.listen_path)
        .map_err(|e| err(problems, "listen_path", e))
        .ok();
    let upstream = UpstreamTarget::try_new(&s.upstream)
        .map_err(|e| err(problems, "upstream", e))
        .ok();
    let timeout_defaults = UpstreamTimeouts::default();
    let timeouts = UpstreamTimeouts {
        connect_ms: s.timeouts.connect_ms.unwrap_or(timeout_defaults.connect_ms),
        read_ms: s.timeouts.read_ms.unwrap_or(timeout_defaults.read_ms),
        send_idle_ms: s
            .timeouts
            .send_idle_ms
            .unwrap_or(timeout_defaults.send_idle_ms),
        body_idle_ms: s
            .timeouts
            .body_idle_ms
            .unwrap_or(timeout_defaults.body_idle_ms),
    };
    if [
        timeouts.connect_ms,
        timeouts.read_ms,
        timeouts.send_idle_ms,
        timeouts.body_idle_ms,
    ]
    .contains(&0)
    {
        err(problems, "timeouts", "timeouts must be > 0".into());
    }
    let upstream_tls = convert_upstream_tls(s.tls, upstream.as_ref(), loc, base_dir, problems);
    let upstream_jwt = s.upstream_jwt.and_then(|j| {
        convert_upstream_jwt(j, &format!("{loc}.upstream_jwt"), base_dir, env, problems)
    });
    let connection_defaults = ConnectionLimits::default();
    let connections = ConnectionLimits {
        max_active: s
            .connections
            .max_active
            .unwrap_or(connection_defaults.max_active),
        queue_ms: s
            .connections
            .queue_ms
            .unwrap_or(connection_defaults.queue_ms),
    };
    if connections.max_active == 0 {
        err(problems, "connections.max_active", "must be > 0".into());
    }
    let auth = match (s.keyless, s.jwt) {
        (true, None) => Some(ApiAuth::Keyless),
        (true, Some(_)) => {
            err(
                problems,
                "keyless",
                "an API is either keyless or has jwt settings, not both".into(),
            );
            None
        }
        (false, None) => {
            err(problems, "jwt", "missing: configure jwt issuers, or set keyless: true to serve without authentication".into());
            None
        }
        (false, Some(jwt)) => {
            convert_jwt(jwt, &format!("{loc}.jwt"), base_dir, env, problems).map(ApiAuth::Jwt)
        }
    };
    let introspected = matches!(&auth, Some(ApiAuth::Jwt(jwt)) if jwt.issuers.iter().any(|i| i.introspection.is_some()));
    let identity = match s.identity_claims {
        // Introspection answers for client_credentials tokens often carry no `sub`.
        None if introspected => Some(IdentitySpec::sub_then_client_id()),
        None => Some(IdentitySpec::default()),
        Some(claims) => {
            let paths: Option<Vec<_>> = claims
                .iter()
                .map(|c| claim_path(c, &format!("{loc}.identity_claims"), problems))
                .collect();
            paths.and_then(|p| {
                IdentitySpec::try_new(p)
                    .map_err(|e| err(problems, "identity_claims", e))
                    .ok()
            })
        }
    };
    let policies = PolicySource {
        policy_claim: s
            .policies
            .claim
            .as_deref()
            .and_then(|c| claim_path(c, &format!("{loc}.policies.claim"), problems)),
        scope_claim: s
            .policies
            .scope_claim
            .as_deref()
            .and_then(|c| claim_path(c, &format!("{loc}.policies.scope_claim"), problems)),
        scope_map: s
            .policies
            .scope_map
            .into_iter()
            .map(|(scope, ids)| (scope, ids.into_vec().into_iter().map(Into::into).collect()))
            .collect(),
        default_policies: s.policies.defaults.into_iter().map(Into::into).collect(),
    };
    let claims = s
        .upstream_headers
        .claims
        .iter()
        .filter_map(|(claim, header)| {
            claim_path(claim, &format!("{loc}.upstream_headers.claims"), problems)
                .map(|c| (c, header.clone()))
        })
        .collect();
    let upstream_headers = UpstreamHeaders {
        identity: s.upstream_headers.identity,
        session: s.upstream_headers.session,
        issuer: s.upstream_headers.issuer,
        claims,
        forward_authorization: s.upstream_headers.forward_authorization,
        forward_rewrite_headers: s.upstream_headers.forward_rewrite_headers,
    };
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(ApiSpec {
        name: s.name.unwrap_or_else(|| s.id.clone()),
        id: s.id.into(),
        org_id: s.org_id.unwrap_or_else(|| "default".into()),
        listen_path: listen_path?,
        strip_listen_path: s.strip_listen_path,
        allow_path_parameters: s.allow_path_parameters,
        upstream: upstream?,
        upstream_tls,
        timeouts,
        upstream_jwt,
        connections,
        auth: auth?,
        identity: identity?,
        policies,
        upstream_headers,
        endpoints: EndpointRules::default(),
        websocket: s.websocket,
    })
}

fn convert_upstream_jwt(
    s: UpstreamJwtSection,
    loc: &str,
    base_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<UpstreamJwtSpec> {
    let before = problems.len();
    let algorithm = s
        .algorithm
        .parse::<Algorithm>()
        .map_err(|e| problems.push(Problem::error(format!("{loc}.algorithm"), e)))
        .ok();
    if algorithm
        .is_some_and(|a| !matches!(a, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA))
    {
        problems.push(Problem::error(
            format!("{loc}.algorithm"),
            "must be RS256, ES256 or EdDSA (an upstream must not hold a key that can mint tokens)",
        ));
    }
    let pem = match (s.private_key_file, s.private_key_env) {
        (Some(file), None) => read_file(&file, base_dir)
            .map_err(|e| problems.push(Problem::error(loc, e)))
            .ok(),
        (None, Some(var)) => secret_env(env, &var)
            .map_err(|e| problems.push(Problem::error(loc, e)))
            .ok(),
        _ => {
            problems.push(Problem::error(
                loc,
                "give one of private_key_file or private_key_env",
            ));
            None
        }
    };
    if s.kid.trim().is_empty() {
        problems.push(Problem::error(format!("{loc}.kid"), "must not be empty"));
    }
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(UpstreamJwtSpec {
        algorithm: algorithm?,
        private_key_pem: pem?,
        kid: s.kid,
        header: s
            .header
            .unwrap_or_else(|| DEFAULT_UPSTREAM_JWT_HEADER.into()),
        ttl_secs: s.ttl_secs.unwrap_or(DEFAULT_UPSTREAM_JWT_TTL_SECS),
    })
}

fn convert_upstream_tls(
    s: UpstreamTlsSection,
    upstream: Option<&UpstreamTarget>,
    loc: &str,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> UpstreamTlsSettings {
    let given = s.ca_file.is_some()
        || s.insecure_skip_verify
        || s.client_cert_file.is_some()
        || s.client_key_file.is_some()
        || s.server_name.is_some();
    if given && upstream.is_some_and(|u| !u.url.is_https()) {
        problems.push(Problem::error(
            format!("{loc}.tls"),
            "TLS settings need an https:// upstream",
        ));
    }
    if s.insecure_skip_verify {
        problems.push(Problem::warning(
            format!("{loc}.tls.insecure_skip_verify"),
            "the upstream's certificate is not verified: anyone on the path can impersonate it",
        ));
    }
    let client_cert = match (s.client_cert_file, s.client_key_file) {
        (Some(cert), Some(key)) => Some(ClientCertFiles {
            cert_file: base_dir.join(cert),
            key_file: base_dir.join(key),
        }),
        (None, None) => None,
        _ => {
            problems.push(Problem::error(
                format!("{loc}.tls"),
                "client_cert_file and client_key_file go together",
            ));
            None
        }
    };
    UpstreamTlsSettings {
        ca_file: s.ca_file.map(|f| base_dir.join(f)),
        insecure_skip_verify: s.insecure_skip_verify,
        client_cert,
        server_name: s.server_name,
    }
}

fn convert_jwt(
    s: JwtSection,
    loc: &str,
    base_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<JwtSpec> {
    let before = problems.len();
    let issuers: Vec<IssuerTrust> = s
        .issuers
        .into_iter()
        .enumerate()
        .filter_map(|(i, issuer)| {
            convert_issuer(
                issuer,
                &format!("{loc}.issuers[{i}]"),
                base_dir,
                env,
                problems,
            )
        })
        .collect();
    if has_errors(&problems[before..]) {
        return None;
    }
    if issuers.is_empty() {
        problems.push(Problem::error(
            format!("{loc}.issuers"),
            "at least one issuer or key is required",
        ));
        return None;
    }
    let unnamed = issuers.iter().filter(|i| i.issuer.is_none()).count();
    if unnamed > 1 {
        problems.push(Problem::error(
            format!("{loc}.issuers"),
            "at most one entry may omit `issuer`",
        ));
        return None;
    }
    Some(JwtSpec {
        issuers,
        max_token_bytes: s.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES),
    })
}

/// A key or JWKS file, bounded ([`crate::files`]).
fn read_file(path: &Path, base_dir: &Path) -> Result<String, String> {
    let full = base_dir.join(path);
    crate::files::read_bounded_to_string(&full)
        .map_err(|e| format!("cannot read {}: {e}", full.display()))
}

/// A secret from the environment. Portico's own variables (`PORTICO_SECRET_KEY`,
/// `PORTICO_ADMIN_TOKEN`, …) are never handed to an API.
fn secret_env(env: &dyn Env, var: &str) -> Result<String, String> {
    if var.starts_with("PORTICO_") {
        return Err(format!(
            "{var}: Portico's own variables cannot be an API's secret"
        ));
    }
    env.var(var)
        .ok_or_else(|| format!("environment variable {var} is not set"))
}

fn convert_issuer(
    s: IssuerSection,
    loc: &str,
    base_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<IssuerTrust> {
    let err = |problems: &mut Vec<Problem>, msg: String| problems.push(Problem::error(loc, msg));
    let given = [
        s.jwks_url.is_some(),
        s.jwks_file.is_some(),
        s.public_key.is_some(),
        s.public_key_file.is_some(),
        s.secret_base64.is_some(),
        s.secret_base64_env.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given > 1 {
        err(problems, "give one key source: jwks_url, jwks_file, public_key, public_key_file, secret_base64 or secret_base64_env".into());
        return None;
    }
    let decode_secret = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(Secret::new)
            .map_err(|_| "the secret is not valid base64".to_string())
    };
    let keys = if let Some(url) = s.jwks_url {
        HttpUrl::try_new(&url)
            .map(KeySourceSpec::JwksUrl)
            .map_err(|e| format!("jwks_url: {e}"))
    } else if let Some(file) = s.jwks_file {
        read_file(&file, base_dir).map(KeySourceSpec::JwksDocument)
    } else if let Some(pem) = s.public_key {
        Ok(KeySourceSpec::PublicKeyPem(pem))
    } else if let Some(file) = s.public_key_file {
        read_file(&file, base_dir).map(KeySourceSpec::PublicKeyPem)
    } else if let Some(b64) = s.secret_base64 {
        decode_secret(&b64).map(KeySourceSpec::Secret)
    } else if let Some(var) = s.secret_base64_env {
        secret_env(env, &var).and_then(|v| decode_secret(&v).map(KeySourceSpec::Secret))
    } else if let Some(introspection) = &s.introspection
        && introspection
            .jwt_validation
            .as_deref()
            .is_none_or(|v| v == "introspect")
    {
        Ok(KeySourceSpec::None)
    } else if let Some(issuer) = &s.issuer {
        match HttpUrl::try_new(issuer) {
            Ok(_) => Ok(KeySourceSpec::Discovery),
            Err(e) => Err(format!(
                "issuer has no key source, and OIDC discovery needs an http(s) issuer URL: {e}"
            )),
        }
    } else {
        Err("no key source: give an issuer URL (OIDC discovery) or a key".into())
    };
    let keys = keys.map_err(|e| err(problems, e)).ok()?;
    let introspection = match s.introspection {
        None => None,
        Some(section) => Some(convert_introspection(
            section,
            &keys,
            s.issuer.as_deref(),
            &format!("{loc}.introspection"),
            base_dir,
            env,
            problems,
        )?),
    };
    let algorithms = match s.algorithms {
        None => None,
        Some(names) => {
            let parsed: Result<Vec<Algorithm>, String> = names.iter().map(|n| n.parse()).collect();
            Some(parsed.map_err(|e| err(problems, e)).ok()?)
        }
    };
    let mut trust = IssuerTrust::new(s.issuer, keys);
    trust.audiences = s.audiences;
    trust.algorithms = algorithms;
    trust.require_at_jwt = s.require_at_jwt;
    trust.require_exp = s.require_exp;
    trust.skew = ClaimSkews {
        exp_secs: s.skew.exp_secs,
        nbf_secs: s.skew.nbf_secs,
        iat_secs: s.skew.iat_secs,
    };
    trust.introspection = introspection;
    Some(trust)
}

fn convert_introspection(
    s: IntrospectionSection,
    keys: &KeySourceSpec,
    issuer: Option<&str>,
    loc: &str,
    base_dir: &Path,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> Option<IntrospectionSpec> {
    let before = problems.len();
    let mut err = |field: &str, msg: String| {
        let at = if field.is_empty() {
            loc.to_string()
        } else {
            format!("{loc}.{field}")
        };
        problems.push(Problem::error(at, msg));
    };
    let endpoint = match &s.endpoint {
        Some(url) => HttpUrl::try_new(url)
            .map_err(|e| err("endpoint", e.to_string()))
            .ok(),
        None if issuer.is_some_and(|i| HttpUrl::try_new(i).is_ok()) => None,
        None => {
            err(
                "endpoint",
                "missing: give the endpoint, or an http(s) `issuer` whose discovery document \
                 names its introspection_endpoint"
                    .into(),
            );
            None
        }
    };
    if s.client_id.trim().is_empty() {
        err("client_id", "must not be empty".into());
    }
    let jwt_validation = match s.jwt_validation.as_deref() {
        None | Some("local") => JwtValidation::Local,
        Some("local_then_introspect") => JwtValidation::LocalThenIntrospect,
        Some("introspect") => {
            if !matches!(keys, KeySourceSpec::None) {
                err(
                    "jwt_validation",
                    "introspect means no local keys, but this issuer has a key source".into(),
                );
            }
            JwtValidation::Local
        }
        Some(other) => {
            err(
                "jwt_validation",
                format!("unknown value {other:?}; use local, local_then_introspect or introspect"),
            );
            JwtValidation::Local
        }
    };
    let secret = match (s.client_secret, s.client_secret_env) {
        (Some(secret), None) => Some(secret),
        (None, Some(var)) => secret_env(env, &var)
            .map_err(|e| err("client_secret_env", e))
            .ok(),
        (None, None) => None,
        (Some(_), Some(_)) => {
            err(
                "",
                "give client_secret or client_secret_env, not both".into(),
            );
            None
        }
    };
    let method = s.auth_method.as_deref().unwrap_or("client_secret_basic");
    let client_auth = match method {
        "client_secret_basic" | "client_secret_post" => {
            if s.private_key_file.is_some() || s.private_key_env.is_some() {
                err(
                    "auth_method",
                    format!("{method} uses a client secret; a private key is for private_key_jwt"),
                );
            }
            match secret {
                Some(secret) if method == "client_secret_basic" => Some(
                    ClientAuth::ClientSecretBasic(Secret::new(secret.into_bytes())),
                ),
                Some(secret) => Some(ClientAuth::ClientSecretPost(Secret::new(
                    secret.into_bytes(),
                ))),
                None => {
                    err(
                        "",
                        format!("{method} needs client_secret or client_secret_env"),
                    );
                    None
                }
            }
        }
        "private_key_jwt" => {
            if secret.is_some() {
                err(
                    "auth_method",
                    "private_key_jwt signs with a private key; drop the client secret".into(),
                );
            }
            let pem = match (s.private_key_file, s.private_key_env) {
                (Some(file), None) => read_file(&file, base_dir)
                    .map_err(|e| err("private_key_file", e))
                    .ok(),
                (None, Some(var)) => secret_env(env, &var)
                    .map_err(|e| err("private_key_env", e))
                    .ok(),
                _ => {
                    err(
                        "",
                        "private_key_jwt needs one of private_key_file or private_key_env".into(),
                    );
                    None
                }
            };
            let algorithm = s
                .algorithm
                .as_deref()
                .unwrap_or("RS256")
                .parse::<Algorithm>()
                .map_err(|e| err("algorithm", e))
                .ok();
            match (pem, algorithm) {
                (Some(pem), Some(algorithm)) => Some(ClientAuth::PrivateKeyJwt {
                    private_key_pem: Secret::new(pem.into_bytes()),
                    algorithm,
                    key_id: s.key_id,
                }),
                _ => None,
            }
        }
        other => {
            err(
                "auth_method",
                format!(
                    "unknown method {other:?}; use client_secret_basic, client_secret_post or \
                     private_key_jwt"
                ),
            );
            None
        }
    };
    let defaults = IntrospectionCache::default();
    let cache = IntrospectionCache {
        enabled: s.cache.enabled.unwrap_or(defaults.enabled),
        ttl_secs: s.cache.ttl_secs.unwrap_or(defaults.ttl_secs),
        negative_ttl_secs: s
            .cache
            .negative_ttl_secs
            .unwrap_or(defaults.negative_ttl_secs),
        max_entries: s.cache.max_entries.unwrap_or(defaults.max_entries),
    };
    let timeout_ms = s.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 {
        err("timeout_ms", "must be at least 1".into());
    }
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(IntrospectionSpec {
        endpoint,
        client_id: s.client_id,
        client_auth: client_auth?,
        cache,
        timeout_ms,
        grace_secs: s.grace_secs.unwrap_or(DEFAULT_GRACE_SECS),
        jwt_validation,
    })
}

fn convert_policy(s: PolicySection, loc: &str, problems: &mut Vec<Problem>) -> Option<Policy> {
    let before = problems.len();
    let mut access = HashMap::new();
    for (api, section) in s.apis {
        let rules: Vec<AccessRule> = section
            .allow
            .into_iter()
            .filter_map(|a| {
                AccessRule::try_new(&a.path, a.methods)
                    .map_err(|e| problems.push(Problem::error(format!("{loc}.apis.{api}"), e)))
                    .ok()
            })
            .collect();
        access.insert(api.into(), ApiAccess { rules });
    }
    let rate = s.rate_limit.and_then(|r| {
        let per_ms = (r.per_secs * 1000.0).round();
        if !(per_ms.is_finite() && per_ms >= 1.0) {
            problems.push(Problem::error(
                format!("{loc}.rate_limit.per_secs"),
                "must be at least 0.001",
            ));
            return None;
        }
        RateLimit::try_new(r.requests, per_ms as u64)
            .map_err(|e| problems.push(Problem::error(format!("{loc}.rate_limit"), e)))
            .ok()
    });
    let quota = s.quota.and_then(|q| match q.max {
        -1 => Some(Quota::Unlimited),
        max if max >= 0 => Quota::limited(max as u64, q.renewal_secs.saturating_mul(1000))
            .map_err(|e| problems.push(Problem::error(format!("{loc}.quota"), e)))
            .ok(),
        _ => {
            problems.push(Problem::error(
                format!("{loc}.quota.max"),
                "must be -1 (unlimited) or >= 0",
            ));
            None
        }
    });
    if has_errors(&problems[before..]) {
        return None;
    }
    Some(Policy {
        name: s.name.unwrap_or_else(|| s.id.clone()),
        id: s.id.into(),
        access,
        rate,
        quota,
    })
}

#[cfg(test)]
mod tests;
