//! Token introspection (RFC 7662) settings of a trusted issuer: where to ask, how the gateway
//! authenticates itself, and how long answers are kept.

use crate::jwt::{Algorithm, Secret};
use crate::url::HttpUrl;

/// How one issuer's tokens are introspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionSpec {
    /// `None`: the issuer's OIDC discovery document names it (`introspection_endpoint`).
    pub endpoint: Option<HttpUrl>,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub cache: IntrospectionCache,
    /// Longest wait for one introspection call, connect included (milliseconds).
    pub timeout_ms: u64,
    /// While the endpoint fails, a cached positive answer whose token has not expired keeps
    /// serving this many seconds past its cache lifetime (0: not at all).
    pub grace_secs: u64,
    /// How JWTs of this issuer are checked when it also has keys.
    pub jwt_validation: JwtValidation,
}

/// How the gateway authenticates to the introspection endpoint (RFC 7662 §2.1 leaves it to
/// the server; these are the OAuth client authentication methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1), the default.
    ClientSecretBasic(Secret),
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost(Secret),
    /// A JWT signed with the gateway's private key (RFC 7523 §2.2, OIDC `private_key_jwt`).
    PrivateKeyJwt {
        /// PEM, PKCS#8 (or PKCS#1 RSA / SEC1 EC).
        private_key_pem: Secret,
        algorithm: Algorithm,
        /// `kid` of the key as the IdP knows it, when it needs one.
        key_id: Option<String>,
    },
}

impl ClientAuth {
    /// The name of the method, as written in the configuration.
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic(_) => "client_secret_basic",
            ClientAuth::ClientSecretPost(_) => "client_secret_post",
            ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

/// How long introspection answers are kept. An entry never outlives the token's `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntrospectionCache {
    /// Off: every request is introspected (revocation at the IdP takes effect at once).
    pub enabled: bool,
    /// Lifetime of a positive answer; 0 means "until the token's `exp`".
    pub ttl_secs: u64,
    /// Lifetime of a negative answer (`active: false`), so a replayed dead token does not
    /// reach the IdP on every request.
    pub negative_ttl_secs: u64,
    /// Most answers kept; beyond it the oldest of a sample go.
    pub max_entries: usize,
}

impl Default for IntrospectionCache {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_secs: 60,
            negative_ttl_secs: 5,
            max_entries: 100_000,
        }
    }
}

/// The defaults of [`IntrospectionSpec`]'s plain fields.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_GRACE_SECS: u64 = 0;

/// How a JWT from an issuer with both keys and introspection is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtValidation {
    /// Signature and claims, locally (opaque tokens are introspected).
    #[default]
    Local,
    /// Locally, then also introspected (cached like any answer): for APIs where a token
    /// revoked at the IdP must stop working before its `exp`.
    LocalThenIntrospect,
}
