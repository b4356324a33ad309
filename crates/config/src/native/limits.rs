//! The `limits:` section: where rate-limit and quota counters live (in-process or Redis) and
//! what happens while Redis is away. `PORTICO_REDIS_URL` overrides `limits.redis_url`, so one
//! command line works on every node.

use super::schema::{LimiterBackendName, LimitsSection, RedisFailureRuleName};
use crate::env::Env;
use portico_core::RedisUrl;
use portico_core::config::{LimiterBackend, LimiterSettings, Problem, RedisFailureRule};

/// The environment variable that overrides `limits.redis_url`.
pub const REDIS_URL_ENV: &str = "PORTICO_REDIS_URL";

pub fn convert_limits(
    s: LimitsSection,
    file_name: &str,
    env: &dyn Env,
    problems: &mut Vec<Problem>,
) -> LimiterSettings {
    let defaults = LimiterSettings::default();
    let at = |field: &str| format!("{file_name}: limits.{field}");
    let backend = match s.backend {
        None => defaults.backend,
        Some(LimiterBackendName::Local) => LimiterBackend::Local,
        Some(LimiterBackendName::Redis) => LimiterBackend::Redis,
    };
    let (raw_url, url_location) = match env.var(REDIS_URL_ENV) {
        Some(url) => (Some(url), format!("environment variable {REDIS_URL_ENV}")),
        None => (s.redis_url, at("redis_url")),
    };
    let redis_url = match raw_url {
        None => defaults.redis_url,
        Some(raw) => {
            if backend == LimiterBackend::Local {
                problems.push(Problem::warning(
                    &url_location,
                    "a Redis URL is set but limits.backend is local: it is not used",
                ));
            }
            RedisUrl::try_new(&raw).unwrap_or_else(|e| {
                problems.push(Problem::error(&url_location, e));
                defaults.redis_url.clone()
            })
        }
    };
    let positive = |value: Option<u64>, default: u64, field: &str, problems: &mut Vec<Problem>| {
        let value = value.unwrap_or(default);
        if value == 0 {
            problems.push(Problem::error(at(field), "must be > 0"));
        }
        value
    };
    let timeout_ms = positive(s.timeout_ms, defaults.timeout_ms, "timeout_ms", problems);
    let connect_timeout_ms = positive(
        s.connect_timeout_ms,
        defaults.connect_timeout_ms,
        "connect_timeout_ms",
        problems,
    );
    let nodes = s.nodes.unwrap_or(defaults.nodes);
    if nodes == 0 {
        problems.push(Problem::error(
            at("nodes"),
            "must be at least 1 (the number of gateway nodes sharing Redis)",
        ));
    }
    LimiterSettings {
        backend,
        redis_url,
        timeout_ms,
        connect_timeout_ms,
        on_redis_failure: match s.on_redis_failure {
            None => defaults.on_redis_failure,
            Some(RedisFailureRuleName::FailOpenLocal) => RedisFailureRule::FailOpenLocal,
            Some(RedisFailureRuleName::FailClosed) => RedisFailureRule::FailClosed,
        },
        nodes: nodes.max(1),
    }
}
