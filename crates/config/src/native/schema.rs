//! The native configuration file's shape, as serde reads it. Unknown fields are errors.
//! Defaults are applied when converting (`super::convert`), so `None` here means "not given".

use super::super::LogFormat;
use portico_core::api::UpstreamHeaders;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub listen_tls: Option<ListenTlsSection>,
    pub data_dir: Option<PathBuf>,
    pub worker_threads: Option<usize>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub gateway_name: Option<String>,
    pub jwks_path: Option<String>,
    pub max_token_lifetime_secs: Option<u64>,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub jwks: JwksSection,
    #[serde(default)]
    pub sessions: SessionsSection,
    #[serde(default)]
    pub token_cache: TokenCacheSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub apis: Vec<ApiSection>,
    #[serde(default)]
    pub policies: Vec<PolicySection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenTlsSection {
    pub address: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: Option<LogFormat>,
    pub level: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JwksSection {
    pub refresh_secs: Option<u64>,
    pub min_refresh_secs: Option<u64>,
    pub max_refresh_secs: Option<u64>,
    pub unknown_kid_cooldown_secs: Option<u64>,
    pub fetch_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    pub max_sessions: Option<usize>,
    pub idle_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenCacheSection {
    pub max_entries: Option<usize>,
    pub max_ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub backend: Option<LimiterBackendName>,
    pub redis_url: Option<String>,
    pub timeout_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub on_redis_failure: Option<RedisFailureRuleName>,
    pub nodes: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterBackendName {
    Local,
    Redis,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailureRuleName {
    FailOpenLocal,
    FailClosed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub id: String,
    pub name: Option<String>,
    pub org_id: Option<String>,
    pub listen_path: String,
    #[serde(default = "yes")]
    pub strip_listen_path: bool,
    #[serde(default)]
    pub allow_path_parameters: bool,
    pub upstream: String,
    #[serde(default)]
    pub timeouts: TimeoutsSection,
    #[serde(default)]
    pub connections: ConnectionsSection,
    #[serde(default)]
    pub tls: UpstreamTlsSection,
    pub upstream_jwt: Option<UpstreamJwtSection>,
    #[serde(default)]
    pub keyless: bool,
    pub jwt: Option<JwtSection>,
    pub identity_claims: Option<Vec<String>>,
    #[serde(default)]
    pub policies: PoliciesSection,
    #[serde(default)]
    pub upstream_headers: UpstreamHeadersSection,
    #[serde(default)]
    pub websocket: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    pub connect_ms: Option<u64>,
    pub read_ms: Option<u64>,
    pub send_idle_ms: Option<u64>,
    pub body_idle_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamJwtSection {
    pub algorithm: String,
    pub private_key_file: Option<PathBuf>,
    pub private_key_env: Option<String>,
    pub kid: String,
    pub header: Option<String>,
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSection {
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsSection {
    pub max_active: Option<u32>,
    pub queue_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    pub max_token_bytes: Option<usize>,
    pub issuers: Vec<IssuerSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    pub issuer: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub public_key: Option<String>,
    pub public_key_file: Option<PathBuf>,
    pub secret_base64: Option<String>,
    pub secret_base64_env: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub require_at_jwt: bool,
    #[serde(default = "yes")]
    pub require_exp: bool,
    #[serde(default)]
    pub skew: SkewSection,
    pub introspection: Option<IntrospectionSection>,
}

/// RFC 7662 introspection of an issuer's tokens; defaults in `portico_core::introspection`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    pub endpoint: Option<String>,
    pub client_id: String,
    pub auth_method: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_env: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub private_key_env: Option<String>,
    pub algorithm: Option<String>,
    pub key_id: Option<String>,
    #[serde(default)]
    pub cache: IntrospectionCacheSection,
    pub timeout_ms: Option<u64>,
    pub grace_secs: Option<u64>,
    pub jwt_validation: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionCacheSection {
    pub enabled: Option<bool>,
    pub ttl_secs: Option<u64>,
    pub negative_ttl_secs: Option<u64>,
    pub max_entries: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SkewSection {
    #[serde(default)]
    pub exp_secs: u64,
    #[serde(default)]
    pub nbf_secs: u64,
    #[serde(default)]
    pub iat_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSection {
    pub claim: Option<String>,
    pub scope_claim: Option<String>,
    #[serde(default)]
    pub scope_map: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub defaults: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamHeadersSection {
    #[serde(default = "default_identity_header")]
    pub identity: Option<String>,
    #[serde(default = "default_session_header")]
    pub session: Option<String>,
    #[serde(default = "default_issuer_header")]
    pub issuer: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub forward_authorization: bool,
    #[serde(default)]
    pub forward_rewrite_headers: bool,
}

fn default_identity_header() -> Option<String> {
    UpstreamHeaders::default().identity
}

fn default_session_header() -> Option<String> {
    UpstreamHeaders::default().session
}

fn default_issuer_header() -> Option<String> {
    UpstreamHeaders::default().issuer
}

impl Default for UpstreamHeadersSection {
    fn default() -> Self {
        Self {
            identity: default_identity_header(),
            session: default_session_header(),
            issuer: default_issuer_header(),
            claims: BTreeMap::new(),
            forward_authorization: true,
            forward_rewrite_headers: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub id: String,
    pub name: Option<String>,
    #[serde(default)]
    pub apis: BTreeMap<String, ApiAccessSection>,
    pub rate_limit: Option<RateLimitSection>,
    pub quota: Option<QuotaSection>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiAccessSection {
    #[serde(default)]
    pub allow: Vec<AllowSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowSection {
    pub path: String,
    pub methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub requests: u64,
    pub per_secs: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSection {
    /// -1: unlimited.
    pub max: i64,
    #[serde(default)]
    pub renewal_secs: u64,
}
