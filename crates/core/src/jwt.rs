//! What a JWT-protected API trusts: issuers, their keys, audiences, algorithms and clock skews.
//! Plain settings; the `portico-auth` crate turns them into verifiers.

use std::fmt;
use std::str::FromStr;

/// JWS algorithms Portico verifies. `none` is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 13] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

impl FromStr for Algorithm {
    type Err = String;

    /// Exact, case-sensitive names as registered in RFC 7518 (so `None`, `nOnE` and friends
    /// are unknown algorithms, never "no signature").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unsupported algorithm {s:?}"))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shared secret. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceSpec {
    /// An HMAC secret (HS256/384/512).
    Secret(Secret),
    /// A PEM public key (SPKI or PKCS#1 RSA) or X.509 certificate.
    PublicKeyPem(String),
    /// A JWKS document given inline (e.g. read from a file).
    JwksDocument(String),
    /// A JWKS fetched and refreshed from a URL.
    JwksUrl(crate::url::HttpUrl),
    /// The issuer's OIDC discovery document names the JWKS URL.
    Discovery,
    /// No local keys: every token of this issuer is introspected (`IssuerTrust::introspection`
    /// is then required).
    None,
}

/// Allowed clock skew per time claim, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimSkews {
    pub exp_secs: u64,
    pub nbf_secs: u64,
    pub iat_secs: u64,
}

/// One trusted token issuer of an API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerTrust {
    /// Exact `iss` this entry matches. `None`: matches tokens no other entry claims, and `iss`
    /// is not checked (Tyk's static-key behaviour).
    pub issuer: Option<String>,
    pub keys: KeySourceSpec,
    /// When non-empty, the token's `aud` (string or array) must contain one of these.
    pub audiences: Vec<String>,
    /// When set, only these algorithms; always further limited by what each key allows.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Require header `typ: at+jwt` (RFC 9068). Otherwise `at+jwt`, `JWT` or no `typ` pass.
    pub require_at_jwt: bool,
    /// Require an `exp` claim (default true).
    pub require_exp: bool,
    pub skew: ClaimSkews,
    /// RFC 7662 introspection of this issuer's tokens (opaque ones; JWTs too when it has no
    /// keys or validates them `LocalThenIntrospect`).
    pub introspection: Option<crate::introspection::IntrospectionSpec>,
}

impl IssuerTrust {
    pub fn new(issuer: Option<String>, keys: KeySourceSpec) -> Self {
        Self {
            issuer,
            keys,
            audiences: Vec::new(),
            algorithms: None,
            require_at_jwt: false,
            require_exp: true,
            skew: ClaimSkews::default(),
            introspection: None,
        }
    }

    /// What makes an identity from this entry unique, for its session id: `iss:` and the
    /// issuer; for an entry trusted without an issuer, `key:` and a SHA-256 fingerprint of its
    /// key source (two static keys are two issuers, whatever `iss` their tokens claim).
    pub fn session_scope(&self) -> String {
        if let Some(issuer) = &self.issuer {
            return format!("iss:{issuer}");
        }
        let (tag, material): (&[u8], &[u8]) = match &self.keys {
            KeySourceSpec::Secret(s) => (b"secret", s.expose()),
            KeySourceSpec::PublicKeyPem(pem) => (b"pem", pem.as_bytes()),
            KeySourceSpec::JwksDocument(doc) => (b"jwks", doc.as_bytes()),
            KeySourceSpec::JwksUrl(url) => (b"jwks_url", url.as_str().as_bytes()),
            KeySourceSpec::Discovery => (b"discovery", b""),
            KeySourceSpec::None => (
                b"introspection",
                self.introspection
                    .as_ref()
                    .and_then(|i| i.endpoint.as_ref())
                    .map_or(b"".as_slice(), |url| url.as_str().as_bytes()),
            ),
        };
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(tag);
        ctx.update(b"\0");
        ctx.update(material);
        let digest = ctx.finish();
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("key:{hex}")
    }
}

/// Default cap on the size of a bearer token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The JWT settings of one API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSpec {
    pub issuers: Vec<IssuerTrust>,
    pub max_token_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_exact() {
        assert_eq!("RS256".parse::<Algorithm>(), Ok(Algorithm::RS256));
        for bad in ["none", "None", "NONE", "nOnE", "rs256", "HS256 ", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad}");
        }
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>(), Ok(a));
        }
    }

    #[test]
    fn session_scopes_name_the_issuer_or_the_key() {
        let named = IssuerTrust::new(Some("https://a".into()), KeySourceSpec::Discovery);
        assert_eq!(named.session_scope(), "iss:https://a");
        let key1 = IssuerTrust::new(None, KeySourceSpec::Secret(Secret::new(vec![1; 32])));
        let key2 = IssuerTrust::new(None, KeySourceSpec::Secret(Secret::new(vec![2; 32])));
        assert!(key1.session_scope().starts_with("key:"));
        assert_ne!(key1.session_scope(), key2.session_scope());
        assert!(!key1.session_scope().contains("0101"), "no key material");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
    }
}
