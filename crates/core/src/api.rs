//! An API: an upstream exposed at a listen path, with its auth and identity settings.

use crate::claims::ClaimPath;
use crate::identity::IdentitySpec;
use crate::jwt::JwtSpec;
use crate::policy::{EndpointRules, PolicyId};
use crate::url::HttpUrl;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub type ApiId = Arc<str>;

/// A listen path: starts with `/`; matched on whole path segments (`/orders` matches
/// `/orders` and `/orders/1`, not `/ordersx`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenPath(String);

impl ListenPath {
    /// Normalises away a trailing `/` (except for the root `/`).
    pub fn try_new(raw: &str) -> Result<Self, String> {
        if !raw.starts_with('/') {
            return Err(format!("listen path {raw:?} must start with '/'"));
        }
        if raw.contains(['?', '#']) || raw.contains("//") {
            return Err(format!("listen path {raw:?} must be a plain path"));
        }
        let trimmed = raw.trim_end_matches('/');
        Ok(Self(if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The rest of `path` below this listen path (always starting with `/`), or `None` when
    /// `path` is not under it.
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.0 == "/" {
            return Some(path);
        }
        let rest = path.strip_prefix(self.0.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

/// Where requests go: `http(s)://authority[/base/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    pub url: HttpUrl,
    /// No trailing `/`; empty for the root.
    pub base_path: String,
}

impl UpstreamTarget {
    pub fn try_new(raw: &str) -> Result<Self, String> {
        let url = HttpUrl::try_new(raw).map_err(|e| format!("upstream: {e}"))?;
        let path = url.path_and_query();
        if path.contains('?') {
            return Err(format!("upstream {raw:?} must not have a query"));
        }
        Ok(Self {
            base_path: path.trim_end_matches('/').into(),
            url,
        })
    }

    /// `host[:port]`, as the `Host` header sent upstream.
    pub fn authority(&self) -> &str {
        self.url.authority()
    }
}

/// How to speak TLS to one upstream. Plain data with `Hash + Eq`, as read from config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTlsSettings {
    /// PEM file of the CA certificates trusted to sign the upstream's certificate. When
    /// `None` (the default), the system's root certificates.
    pub ca_file: Option<PathBuf>,
    /// Accept any upstream certificate: the connection is still encrypted and the handshake
    /// signatures still checked, but the upstream is not authenticated. `ca_file` is then
    /// unused. Default `false`.
    pub insecure_skip_verify: bool,
    /// A client certificate to present (mTLS). Default none.
    pub client_cert: Option<ClientCertFiles>,
    /// The name to verify the upstream's certificate against and send as SNI. Default: the
    /// upstream URL's host. An IP address is verified against the certificate's IP SANs and
    /// sent without SNI.
    pub server_name: Option<String>,
}

/// A client certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientCertFiles {
    /// PEM file with the certificate chain, end-entity certificate first.
    pub cert_file: PathBuf,
    /// PEM file with the private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key_file: PathBuf,
}

/// The gateway-signed JWT an API's upstream gets, telling it the call came through the gateway
/// and who made it.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamJwtSpec {
    /// RS256, ES256 or EdDSA.
    pub algorithm: crate::jwt::Algorithm,
    /// The private key, PEM (PKCS#8; PKCS#1 for RSA).
    pub private_key_pem: String,
    /// `kid` of the key, as published in the gateway's JWKS.
    pub kid: String,
    /// The request header carrying the token (default `X-Portico-JWT`).
    pub header: String,
    /// Token lifetime in seconds (default 60, 10..=3600).
    pub ttl_secs: u64,
}

impl std::fmt::Debug for UpstreamJwtSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamJwtSpec")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("header", &self.header)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// Defaults of an upstream JWT's optional settings.
pub const DEFAULT_UPSTREAM_JWT_HEADER: &str = "X-Portico-JWT";
pub const DEFAULT_UPSTREAM_JWT_TTL_SECS: u64 = 60;

/// Where an API's policies come from. All empty: authentication only, no limits.
#[derive(Debug, Clone, Default)]
pub struct PolicySource {
    /// A claim holding policy ids (string or array).
    pub policy_claim: Option<ClaimPath>,
    /// The claim holding scopes for `scope_map` (default `scope`).
    pub scope_claim: Option<ClaimPath>,
    /// Scope value -> policy ids.
    pub scope_map: HashMap<String, Vec<PolicyId>>,
    /// Applied when neither the policy claim nor the scope map yields a policy.
    pub default_policies: Vec<PolicyId>,
}

impl PolicySource {
    /// True when no policy source is configured: any valid token may call, unlimited.
    pub fn is_authentication_only(&self) -> bool {
        self.policy_claim.is_none() && self.scope_map.is_empty() && self.default_policies.is_empty()
    }

    pub fn scope_claim(&self) -> ClaimPath {
        self.scope_claim
            .clone()
            .unwrap_or_else(|| ClaimPath::try_new("scope").expect("static"))
    }
}

/// What the upstream is told about the caller.
#[derive(Debug, Clone)]
pub struct UpstreamHeaders {
    /// Header carrying the identity claim value (default `X-Portico-Identity`); `None` to omit.
    pub identity: Option<String>,
    /// Header carrying the session id (default `X-Portico-Session`); `None` to omit.
    pub session: Option<String>,
    /// Header carrying the issuer of the caller's token (default `X-Portico-Issuer`); `None`
    /// to omit. An identity is only unique together with its issuer.
    pub issuer: Option<String>,
    /// Claim -> header name, for scalar claims (arrays are joined with spaces).
    pub claims: Vec<(ClaimPath, String)>,
    /// Forward the caller's `Authorization` header (default true).
    pub forward_authorization: bool,
    /// Forward rewrite-style headers (`X-Original-URL`, `X-Rewrite-URL`,
    /// `X-HTTP-Method-Override`, …), which make some upstreams serve another path or method
    /// than the one the gateway checked (default false: removed).
    pub forward_rewrite_headers: bool,
}

impl Default for UpstreamHeaders {
    fn default() -> Self {
        Self {
            identity: Some("X-Portico-Identity".into()),
            session: Some("X-Portico-Session".into()),
            issuer: Some("X-Portico-Issuer".into()),
            claims: Vec::new(),
            forward_authorization: true,
            forward_rewrite_headers: false,
        }
    }
}

/// Upstream timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// TCP connect (default 5,000).
    pub connect_ms: u64,
    /// From the end of the request body to the response head (default 30,000).
    pub read_ms: u64,
    /// While sending the request: the longest wait for the client's next body bytes (408) or
    /// for the upstream to take ours (504) (default 30,000).
    pub send_idle_ms: u64,
    /// While streaming the response body: the longest wait for the upstream's next bytes; then
    /// the client connection is aborted (default 60,000).
    pub body_idle_ms: u64,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect_ms: 5_000,
            read_ms: 30_000,
            send_idle_ms: 30_000,
            body_idle_ms: 60_000,
        }
    }
}

/// Bounds on the connections one API opens to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Requests in flight to the upstream at once (default 1,024); more wait up to
    /// `queue_ms`, then get 503 with `Retry-After`.
    pub max_active: u32,
    /// How long a request waits for a free slot (default 100).
    pub queue_ms: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_active: 1_024,
            queue_ms: 100,
        }
    }
}

/// How an API authenticates callers.
#[derive(Debug, Clone)]
pub enum ApiAuth {
    Jwt(JwtSpec),
    /// No authentication at all (explicit opt-in; no identity, no limits).
    Keyless,
}

#[derive(Debug, Clone)]
pub struct ApiSpec {
    pub id: ApiId,
    pub name: String,
    pub org_id: String,
    pub listen_path: ListenPath,
    pub strip_listen_path: bool,
    /// Accept `;` path parameters inside path segments (default false: 400), for upstreams
    /// that use matrix parameters. `..;` is refused either way.
    pub allow_path_parameters: bool,
    pub upstream: UpstreamTarget,
    /// How to speak TLS to an `https://` upstream (unused for `http://`).
    pub upstream_tls: UpstreamTlsSettings,
    pub timeouts: UpstreamTimeouts,
    pub connections: ConnectionLimits,
    pub auth: ApiAuth,
    pub identity: IdentitySpec,
    pub policies: PolicySource,
    pub upstream_headers: UpstreamHeaders,
    /// Allow and block rules for every request to this API, before any policy (default: none).
    pub endpoints: EndpointRules,
    /// Pass WebSocket upgrades through to the upstream (default false: an upgrade request is
    /// sent on as a plain request, its `Upgrade` and `Connection` headers removed).
    pub websocket: bool,
    /// A gateway-signed JWT for the upstream (default none).
    pub upstream_jwt: Option<UpstreamJwtSpec>,
}

impl ApiSpec {
    /// An API with every optional setting at its default: named by its id, org `default`,
    /// listen path stripped, `sub` as identity, authentication only, default headers, timeouts
    /// and limits, no WebSocket pass-through.
    pub fn new(id: &str, listen_path: ListenPath, upstream: UpstreamTarget, auth: ApiAuth) -> Self {
        Self {
            id: id.into(),
            name: id.into(),
            org_id: "default".into(),
            listen_path,
            strip_listen_path: true,
            allow_path_parameters: false,
            upstream,
            upstream_tls: UpstreamTlsSettings::default(),
            timeouts: UpstreamTimeouts::default(),
            connections: ConnectionLimits::default(),
            auth,
            identity: IdentitySpec::default(),
            policies: PolicySource::default(),
            upstream_headers: UpstreamHeaders::default(),
            endpoints: EndpointRules::default(),
            websocket: false,
            upstream_jwt: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_path_matches_whole_segments() {
        let lp = ListenPath::try_new("/orders/").unwrap();
        assert_eq!(lp.as_str(), "/orders");
        assert_eq!(lp.strip("/orders"), Some("/"));
        assert_eq!(lp.strip("/orders/1"), Some("/1"));
        assert_eq!(lp.strip("/ordersx"), None);
        assert_eq!(lp.strip("/other"), None);
        let root = ListenPath::try_new("/").unwrap();
        assert_eq!(root.strip("/x"), Some("/x"));
        assert!(ListenPath::try_new("orders").is_err());
        assert!(ListenPath::try_new("/a?b").is_err());
    }

    #[test]
    fn upstream_target_parsing() {
        let t = UpstreamTarget::try_new("http://127.0.0.1:9000/base/").unwrap();
        assert_eq!(t.authority(), "127.0.0.1:9000");
        assert_eq!(t.base_path, "/base");
        assert_eq!(UpstreamTarget::try_new("http://h").unwrap().base_path, "");
        assert!(UpstreamTarget::try_new("ftp://h").is_err());
        assert!(
            UpstreamTarget::try_new("https://h/x")
                .unwrap()
                .url
                .is_https()
        );
        assert!(UpstreamTarget::try_new("h:80").is_err());
        assert!(UpstreamTarget::try_new("http://").is_err());
        assert!(UpstreamTarget::try_new("http://u:p@h").is_err());
        assert!(UpstreamTarget::try_new("http://h/?q").is_err());
    }
}
