//! One complete, validated gateway configuration: APIs, policies and runtime settings.

use crate::api::{ApiAuth, ApiSpec};
use crate::jwt::{IssuerTrust, KeySourceSpec};
use crate::policy::PolicySet;
use crate::redis_url::RedisUrl;
use crate::url::HttpUrl;
use std::collections::HashMap;
use std::fmt;

/// Problems found while loading or checking a configuration, each with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// E.g. `portico.yaml: apis[2].jwt.issuers[0]` or `apps/orders.json: jwt_source`.
    pub location: String,
    pub message: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The configuration cannot be used.
    Error,
    /// Usable, but something is ignored or probably a mistake.
    Warning,
}

impl Problem {
    pub fn error(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            severity: Severity::Error,
        }
    }

    pub fn warning(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            message: message.into(),
            severity: Severity::Warning,
        }
    }
}

/// Whether any of `problems` is an error (warnings do not count).
pub fn has_errors(problems: &[Problem]) -> bool {
    problems.iter().any(|p| p.severity == Severity::Error)
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.location, self.message)
    }
}

/// A configuration that could not be loaded, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid configuration:\n{}", list(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How remote key sets (JWKS) are fetched and refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFetchSettings {
    /// Refresh interval when the IdP sends no usable `Cache-Control: max-age` (default 300).
    pub refresh_secs: u64,
    /// Lower and upper bounds applied to `max-age` (defaults 30 and 86,400).
    pub min_refresh_secs: u64,
    pub max_refresh_secs: u64,
    /// After a refetch for an unknown `kid`, no other such refetch for this long (default 10).
    pub unknown_kid_cooldown_secs: u64,
    /// Timeout of each discovery or JWKS request (default 5,000).
    pub fetch_timeout_ms: u64,
}

impl Default for KeyFetchSettings {
    fn default() -> Self {
        Self {
            refresh_secs: 300,
            min_refresh_secs: 30,
            max_refresh_secs: 86_400,
            unknown_kid_cooldown_secs: 10,
            fetch_timeout_ms: 5_000,
        }
    }
}

/// Bounds on identity sessions held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// At most this many sessions (default 1,000,000); beyond it the least recently seen go.
    pub max_sessions: usize,
    /// A session unused this long, whose counters are all at rest, is dropped (default 3,600).
    pub idle_ttl_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            max_sessions: 1_000_000,
            idle_ttl_secs: 3_600,
        }
    }
}

/// Which store holds the rate-limit and quota counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterBackend {
    /// In this process: exact for one node.
    Local,
    /// In Redis, shared by every gateway node pointed at it.
    Redis,
}

impl LimiterBackend {
    /// The name the configuration file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LimiterBackend::Local => "local",
            LimiterBackend::Redis => "redis",
        }
    }
}

/// What the Redis limiter does while Redis is unreachable, slow or answers nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailureRule {
    /// Decide in this process with each limit divided by `nodes`.
    FailOpenLocal,
    /// Refuse the request: 503 with `Retry-After`.
    FailClosed,
}

impl RedisFailureRule {
    /// The name the configuration file (and the metrics' `rule` label) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisFailureRule::FailOpenLocal => "fail_open_local",
            RedisFailureRule::FailClosed => "fail_closed",
        }
    }
}

/// Where rate-limit and quota counters live, and what happens when that store is away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterSettings {
    /// Default [`LimiterBackend::Local`].
    pub backend: LimiterBackend,
    /// Used with [`LimiterBackend::Redis`] (default `redis://127.0.0.1:6379`).
    pub redis_url: RedisUrl,
    /// Longest wait for each Redis answer, in milliseconds (default 50).
    pub timeout_ms: u64,
    /// Longest wait for a connection to Redis, in milliseconds (default 200).
    pub connect_timeout_ms: u64,
    /// Default [`RedisFailureRule::FailOpenLocal`].
    pub on_redis_failure: RedisFailureRule,
    /// Gateway nodes sharing the counters; `fail_open_local` divides each limit by it
    /// (default 1, at least 1).
    pub nodes: u32,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        Self {
            backend: LimiterBackend::Local,
            redis_url: RedisUrl::try_new("redis://127.0.0.1:6379").expect("a static, valid URL"),
            timeout_ms: 50,
            connect_timeout_ms: 200,
            on_redis_failure: RedisFailureRule::FailOpenLocal,
            nodes: 1,
        }
    }
}

/// The cache of verified tokens: a token seen again costs a hash and a lookup, not a
/// signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheSettings {
    /// At most this many tokens (default 50,000, a few hundred bytes each); 0 turns it off.
    pub max_entries: usize,
    /// No entry lives longer than this (default 300), and never past the token's `exp`.
    pub max_ttl_secs: u64,
}

impl Default for TokenCacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 50_000,
            max_ttl_secs: 300,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub jwks: KeyFetchSettings,
    pub sessions: SessionSettings,
    pub limits: LimiterSettings,
    pub token_cache: TokenCacheSettings,
    /// Peers whose `X-Forwarded-*`, `Forwarded` and `X-Real-IP` headers are kept (and
    /// extended); from anyone else they are replaced. Default: none.
    pub trusted_proxies: Vec<crate::net::IpNet>,
    /// The gateway's name: `iss` of the upstream JWTs it signs (default `portico`).
    pub gateway_name: String,
    /// A path on the gateway listener that serves the upstream JWTs' JWKS (default none; the
    /// admin listener always serves it at `/.well-known/jwks.json`).
    pub jwks_path: Option<String>,
    /// The longest lifetime of an access token from any trusted issuer: a revocation given
    /// no end lasts this long, so that it outlasts every token it covers (default 86,400).
    pub max_token_lifetime_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            jwks: KeyFetchSettings::default(),
            sessions: SessionSettings::default(),
            limits: LimiterSettings::default(),
            token_cache: TokenCacheSettings::default(),
            trusted_proxies: Vec::new(),
            gateway_name: "portico".into(),
            jwks_path: None,
            max_token_lifetime_secs: crate::revocation::DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    pub apis: Vec<ApiSpec>,
    pub policies: PolicySet,
    pub settings: GatewaySettings,
}

impl GatewayConfig {
    /// Cross-checks between APIs and policies. `api_locations[i]` names where API `i` came from.
    pub fn check(&self, api_locations: &[String]) -> Vec<Problem> {
        let mut problems = Vec::new();
        let location = |i: usize| {
            api_locations
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("apis[{i}]"))
        };
        let mut ids = HashMap::new();
        let mut paths = HashMap::new();
        for (i, api) in self.apis.iter().enumerate() {
            if let Some(first) = ids.insert(api.id.clone(), i) {
                problems.push(Problem::error(
                    location(i),
                    format!("API id {:?} is also used by {}", api.id, location(first)),
                ));
            }
            if let Some(first) = paths.insert(api.listen_path.clone(), i) {
                problems.push(Problem::error(
                    location(i),
                    format!(
                        "listen path {:?} is also used by {}",
                        api.listen_path.as_str(),
                        location(first)
                    ),
                ));
            }
            let referenced = api
                .policies
                .default_policies
                .iter()
                .chain(api.policies.scope_map.values().flatten());
            for id in referenced {
                if self.policies.get(id).is_none() {
                    problems.push(Problem::error(
                        location(i),
                        format!("refers to unknown policy {id:?}"),
                    ));
                }
            }
            if let ApiAuth::Jwt(jwt) = &api.auth {
                if jwt.issuers.is_empty() {
                    problems.push(Problem::error(
                        location(i),
                        "JWT auth needs at least one issuer or key",
                    ));
                }
                let introspecting = jwt
                    .issuers
                    .iter()
                    .filter(|t| t.introspection.is_some())
                    .count();
                if introspecting > 1 {
                    problems.push(Problem::warning(
                        location(i),
                        format!(
                            "{introspecting} issuers introspect opaque tokens: each is asked in order until one calls a token active, so one IdP sees the tokens of those after it"
                        ),
                    ));
                }
                for (j, trust) in jwt.issuers.iter().enumerate() {
                    let at = issuer_location(&location(i), j);
                    problems.extend(
                        issuer_trust_warnings(trust).map(|m| Problem::warning(at.clone(), m)),
                    );
                }
            }
        }
        for policy in self.policies.iter() {
            for api in policy.access.keys() {
                if !ids.contains_key(api) {
                    problems.push(Problem::warning(
                        format!("policy {:?}", policy.id),
                        format!("grants unknown API {api:?} (ignored until such an API exists)"),
                    ));
                }
            }
        }
        problems
    }
}

/// Where issuer entry `j` of the API at `api_location` is: `… apis[2] (orders).jwt.issuers[0]`
/// for a native file, `apps/orders.json: jwt.issuers[0]` for a Tyk file.
fn issuer_location(api_location: &str, j: usize) -> String {
    let separator = if api_location.contains("apis[") {
        "."
    } else {
        ": "
    };
    format!("{api_location}{separator}jwt.issuers[{j}]")
}

/// What makes an issuer entry trust more than it should; usable, so warnings.
fn issuer_trust_warnings(trust: &IssuerTrust) -> impl Iterator<Item = String> {
    let plain_jwks_url = match &trust.keys {
        KeySourceSpec::JwksUrl(url) if !url.is_https() => Some(format!(
            "the JWKS URL {url} is plain http: anyone on the network path can substitute their \
             own keys and mint tokens Portico accepts; use the IdP's https:// JWKS URL"
        )),
        _ => None,
    };
    let plain_discovery = match (&trust.keys, &trust.issuer) {
        (KeySourceSpec::Discovery, Some(issuer))
            if HttpUrl::try_new(issuer).is_ok_and(|url| !url.is_https()) =>
        {
            Some(format!(
                "the issuer {issuer:?} is plain http, so its discovery document and JWKS are \
                 fetched without TLS: anyone on the network path can substitute their own keys; \
                 use the IdP's https:// issuer URL"
            ))
        }
        _ => None,
    };
    let no_audience = trust.audiences.is_empty().then(|| {
        "no audiences: a token this issuer minted for any other service (at the same IdP) is \
         accepted here too (RFC 8725 §3.9); set audiences to the aud value(s) the IdP puts in \
         tokens meant for this API"
            .to_string()
    });
    [plain_jwks_url, plain_discovery, no_audience]
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ListenPath;
    use crate::api::UpstreamTarget;
    use crate::jwt::{DEFAULT_MAX_TOKEN_BYTES, JwtSpec, Secret};

    fn jwt_api(id: &str, issuers: Vec<IssuerTrust>) -> ApiSpec {
        ApiSpec::new(
            id,
            ListenPath::try_new(&format!("/{id}")).unwrap(),
            UpstreamTarget::try_new("http://127.0.0.1:9000").unwrap(),
            ApiAuth::Jwt(JwtSpec {
                issuers,
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            }),
        )
    }

    fn trust(issuer: Option<&str>, keys: KeySourceSpec, audiences: &[&str]) -> IssuerTrust {
        let mut t = IssuerTrust::new(issuer.map(String::from), keys);
        t.audiences = audiences.iter().map(|a| a.to_string()).collect();
        t
    }

    fn jwks_url(url: &str) -> KeySourceSpec {
        KeySourceSpec::JwksUrl(HttpUrl::try_new(url).unwrap())
    }

    fn warnings(config: &GatewayConfig, locations: &[String]) -> Vec<Problem> {
        let problems = config.check(locations);
        assert!(
            problems.iter().all(|p| p.severity == Severity::Warning),
            "{problems:#?}"
        );
        problems
    }

    #[test]
    fn https_key_sources_with_audiences_pass_quietly() {
        let config = GatewayConfig {
            apis: vec![jwt_api(
                "orders",
                vec![
                    trust(
                        Some("https://idp.example"),
                        KeySourceSpec::Discovery,
                        &["orders"],
                    ),
                    trust(None, jwks_url("https://idp.example/jwks"), &["orders"]),
                    trust(
                        None,
                        KeySourceSpec::Secret(Secret::new(vec![1; 32])),
                        &["o"],
                    ),
                ],
            )],
            ..Default::default()
        };
        assert_eq!(warnings(&config, &[]), vec![]);
    }

    #[test]
    fn plain_http_jwks_url_is_a_warning_at_its_issuer_entry() {
        let config = GatewayConfig {
            apis: vec![jwt_api(
                "orders",
                vec![
                    trust(None, jwks_url("https://idp.example/jwks"), &["orders"]),
                    trust(None, jwks_url("http://idp.example/jwks"), &["orders"]),
                ],
            )],
            ..Default::default()
        };
        let found = warnings(&config, &["portico.yaml: apis[0] (orders)".into()]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].location,
            "portico.yaml: apis[0] (orders).jwt.issuers[1]"
        );
        assert!(
            found[0].message.contains("http://idp.example/jwks")
                && found[0].message.contains("plain http")
                && found[0].message.contains("use the IdP's https://"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn plain_http_discovery_issuer_is_a_warning() {
        let config = GatewayConfig {
            apis: vec![jwt_api(
                "orders",
                vec![trust(
                    Some("HTTP://idp.example/realms/a"),
                    KeySourceSpec::Discovery,
                    &["orders"],
                )],
            )],
            ..Default::default()
        };
        let found = warnings(&config, &[]);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].location, "apis[0].jwt.issuers[0]");
        assert!(
            found[0].message.contains("discovery document and JWKS")
                && found[0].message.contains("https://"),
            "{}",
            found[0].message
        );

        // An http issuer with static keys fetches nothing: no transport warning.
        let static_keys = GatewayConfig {
            apis: vec![jwt_api(
                "orders",
                vec![trust(
                    Some("http://idp.example"),
                    KeySourceSpec::Secret(Secret::new(vec![1; 32])),
                    &["orders"],
                )],
            )],
            ..Default::default()
        };
        assert_eq!(warnings(&static_keys, &[]), vec![]);
    }

    #[test]
    fn issuer_without_audiences_is_a_warning_per_entry() {
        let config = GatewayConfig {
            apis: vec![
                jwt_api(
                    "orders",
                    vec![trust(
                        Some("https://idp.example"),
                        KeySourceSpec::Discovery,
                        &["orders"],
                    )],
                ),
                jwt_api(
                    "billing",
                    vec![
                        trust(
                            Some("https://idp.example"),
                            KeySourceSpec::Discovery,
                            &["billing"],
                        ),
                        trust(Some("https://other.example"), KeySourceSpec::Discovery, &[]),
                    ],
                ),
            ],
            ..Default::default()
        };
        let found = warnings(
            &config,
            &[
                "portico.yaml: apis[0] (orders)".into(),
                "apps/billing.json".into(),
            ],
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].location, "apps/billing.json: jwt.issuers[1]");
        assert!(
            found[0].message.contains("no audiences")
                && found[0].message.contains("RFC 8725")
                && found[0].message.contains("set audiences"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn one_entry_can_have_several_warnings() {
        let config = GatewayConfig {
            apis: vec![jwt_api(
                "orders",
                vec![trust(None, jwks_url("http://idp.example/jwks"), &[])],
            )],
            ..Default::default()
        };
        let found = warnings(&config, &[]);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found.iter().all(|p| p.location == "apis[0].jwt.issuers[0]"));
    }
}
