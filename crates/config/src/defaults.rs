//! Every configuration default with a plain value, rendered from the code's own `Default`s
//! (never restated here), keyed as the reference in `docs/configuration.md` lists them. A test
//! checks the reference's default column against this list, so the two cannot drift.

use crate::ProcessSettings;
use portico_core::api::{
    ApiAuth, ConnectionLimits, DEFAULT_UPSTREAM_JWT_HEADER, DEFAULT_UPSTREAM_JWT_TTL_SECS,
    UpstreamHeaders, UpstreamTarget, UpstreamTimeouts,
};
use portico_core::config::GatewaySettings;
use portico_core::config::{
    KeyFetchSettings, LimiterSettings, SessionSettings, TokenCacheSettings,
};
use portico_core::jwt::{DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, KeySourceSpec};
use portico_core::{ApiSpec, ListenPath};

/// `(section, field, default)`: the section is the heading the field is listed under in
/// `docs/configuration.md` (`Top level`, `jwks`, `apis[]`, …).
pub fn documented_defaults() -> Vec<(&'static str, &'static str, String)> {
    let process = ProcessSettings::default();
    let jwks = KeyFetchSettings::default();
    let sessions = SessionSettings::default();
    let limits = LimiterSettings::default();
    let cache = TokenCacheSettings::default();
    let timeouts = UpstreamTimeouts::default();
    let headers = UpstreamHeaders::default();
    let connections = ConnectionLimits::default();
    let issuer = IssuerTrust::new(None, KeySourceSpec::Discovery);
    let api = ApiSpec::new(
        "api",
        ListenPath::try_new("/").expect("a valid listen path"),
        UpstreamTarget::try_new("http://127.0.0.1:1").expect("a valid upstream"),
        ApiAuth::Keyless,
    );
    let or_null = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    let introspection_cache = portico_core::introspection::IntrospectionCache::default();
    const INTROSPECTION: &str = "jwt.issuers[].introspection";
    vec![
        (
            INTROSPECTION,
            "cache.ttl_secs",
            introspection_cache.ttl_secs.to_string(),
        ),
        (
            INTROSPECTION,
            "cache.negative_ttl_secs",
            introspection_cache.negative_ttl_secs.to_string(),
        ),
        (
            INTROSPECTION,
            "cache.max_entries",
            introspection_cache.max_entries.to_string(),
        ),
        (
            INTROSPECTION,
            "timeout_ms",
            portico_core::introspection::DEFAULT_TIMEOUT_MS.to_string(),
        ),
        (
            INTROSPECTION,
            "grace_secs",
            portico_core::introspection::DEFAULT_GRACE_SECS.to_string(),
        ),
        ("Top level", "listen", process.listen.to_string()),
        (
            "Top level",
            "gateway_name",
            GatewaySettings::default().gateway_name,
        ),
        (
            "Top level",
            "max_token_lifetime_secs",
            GatewaySettings::default()
                .max_token_lifetime_secs
                .to_string(),
        ),
        (
            "apis[]",
            "upstream_jwt.header",
            DEFAULT_UPSTREAM_JWT_HEADER.into(),
        ),
        (
            "apis[]",
            "upstream_jwt.ttl_secs",
            DEFAULT_UPSTREAM_JWT_TTL_SECS.to_string(),
        ),
        (
            "Top level",
            "admin_listen",
            process.admin_listen.to_string(),
        ),
        (
            "Top level",
            "data_dir",
            process.data_dir.display().to_string(),
        ),
        ("Top level", "log.format", "text".into()),
        ("Top level", "log.level", process.log_level),
        (
            "Top level",
            "token_cache.max_entries",
            cache.max_entries.to_string(),
        ),
        (
            "Top level",
            "token_cache.max_ttl_secs",
            cache.max_ttl_secs.to_string(),
        ),
        ("jwks", "refresh_secs", jwks.refresh_secs.to_string()),
        (
            "jwks",
            "min_refresh_secs",
            jwks.min_refresh_secs.to_string(),
        ),
        (
            "jwks",
            "max_refresh_secs",
            jwks.max_refresh_secs.to_string(),
        ),
        (
            "jwks",
            "unknown_kid_cooldown_secs",
            jwks.unknown_kid_cooldown_secs.to_string(),
        ),
        (
            "jwks",
            "fetch_timeout_ms",
            jwks.fetch_timeout_ms.to_string(),
        ),
        (
            "sessions",
            "max_sessions",
            sessions.max_sessions.to_string(),
        ),
        (
            "sessions",
            "idle_ttl_secs",
            sessions.idle_ttl_secs.to_string(),
        ),
        ("limits", "backend", limits.backend.as_str().into()),
        ("limits", "redis_url", limits.redis_url.to_string()),
        ("limits", "timeout_ms", limits.timeout_ms.to_string()),
        (
            "limits",
            "connect_timeout_ms",
            limits.connect_timeout_ms.to_string(),
        ),
        (
            "limits",
            "on_redis_failure",
            limits.on_redis_failure.as_str().into(),
        ),
        ("limits", "nodes", limits.nodes.to_string()),
        (
            "apis[]",
            "timeouts.connect_ms",
            timeouts.connect_ms.to_string(),
        ),
        ("apis[]", "timeouts.read_ms", timeouts.read_ms.to_string()),
        (
            "apis[]",
            "timeouts.send_idle_ms",
            timeouts.send_idle_ms.to_string(),
        ),
        (
            "apis[]",
            "timeouts.body_idle_ms",
            timeouts.body_idle_ms.to_string(),
        ),
        (
            "apis[]",
            "connections.max_active",
            connections.max_active.to_string(),
        ),
        (
            "apis[]",
            "connections.queue_ms",
            connections.queue_ms.to_string(),
        ),
        (
            "apis[]",
            "jwt.max_token_bytes",
            DEFAULT_MAX_TOKEN_BYTES.to_string(),
        ),
        (
            "apis[]",
            "upstream_headers.identity",
            or_null(headers.identity),
        ),
        (
            "apis[]",
            "upstream_headers.session",
            or_null(headers.session),
        ),
        ("apis[]", "upstream_headers.issuer", or_null(headers.issuer)),
        (
            "apis[]",
            "upstream_headers.forward_authorization",
            headers.forward_authorization.to_string(),
        ),
        (
            "apis[]",
            "upstream_headers.forward_rewrite_headers",
            headers.forward_rewrite_headers.to_string(),
        ),
        ("apis[]", "websocket", api.websocket.to_string()),
        (
            "jwt.issuers[]",
            "require_at_jwt",
            issuer.require_at_jwt.to_string(),
        ),
        (
            "jwt.issuers[]",
            "require_exp",
            issuer.require_exp.to_string(),
        ),
        (
            "jwt.issuers[]",
            "skew.exp_secs",
            issuer.skew.exp_secs.to_string(),
        ),
        (
            "jwt.issuers[]",
            "skew.nbf_secs",
            issuer.skew.nbf_secs.to_string(),
        ),
        (
            "jwt.issuers[]",
            "skew.iat_secs",
            issuer.skew.iat_secs.to_string(),
        ),
    ]
}
