//! One complete, validated gateway configuration: APIs, policies and runtime settings.

use crate::api::{ApiAuth, ApiSpec};
use crate::policy::PolicySet;
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

#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    pub jwks: KeyFetchSettings,
    pub sessions: SessionSettings,
    pub token_cache: TokenCacheSettings,
    /// Peers whose `X-Forwarded-*`, `Forwarded` and `X-Real-IP` headers are kept (and
    /// extended); from anyone else they are replaced. Default: none.
    pub trusted_proxies: Vec<crate::net::IpNet>,
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
            if let ApiAuth::Jwt(jwt) = &api.auth
                && jwt.issuers.is_empty()
            {
                problems.push(Problem::error(
                    location(i),
                    "JWT auth needs at least one issuer or key",
                ));
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
