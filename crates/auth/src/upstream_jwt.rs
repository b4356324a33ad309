//! The gateway-signed upstream JWT: a short-lived token the gateway adds to the request it
//! forwards, so the upstream can check the call came through the gateway and who made it
//! (what Kong's upstream-jwt plugin does), plus the JWKS document the upstream verifies it with.
//!
//! One [`UpstreamJwtSigner`] per signing key. [`UpstreamJwtSigner::token_for`] returns the
//! token for one caller of one API; tokens are cached so a busy caller costs one signature per
//! half lifetime, not one per request. [`Jwks`] publishes the keys of several signers in one
//! document.
//!
//! # Token
//! Header: `alg` (RS256, ES256 or EdDSA), `kid`, `typ: "JWT"`. Claims:
//!
//! | claim | value | present |
//! |---|---|---|
//! | `iss` | the gateway's name ([`UpstreamJwtSettings::gateway_name`]) | always |
//! | `aud` | the API id | always |
//! | `sub` | the caller's identity (the identity claim of their token) | always |
//! | `caller_iss` | `iss` of the caller's token | when known |
//! | `client_id` | `client_id` of the caller's token | when present |
//! | `scope` | `scope` of the caller's token, space-delimited as received | when present |
//! | `iat` | when signed, seconds since the Unix epoch | always |
//! | `exp` | `iat` + [`UpstreamJwtSettings::ttl_secs`] | always |
//! | `jti` | 128 random bits, base64url without padding (22 characters) | always |
//!
//! # Cache
//! Tokens are kept in a bounded, sharded map keyed by SHA-256 over everything that goes into a
//! token plus the caller's policy-set fingerprint ([`UpstreamCaller`]). A cached token is reused
//! while at least half of its lifetime remains (`now - iat <= ttl / 2`), so the upstream always
//! gets a token valid for at least `ttl / 2` more seconds; after that the next call signs a
//! fresh one. When a shard is full, tokens past their reuse window go first; if none are, the
//! one signed longest ago. Two requests that miss at the same moment may both sign; the later
//! token replaces the earlier, and both are valid.

mod cache;

use crate::jws::b64url_encode;
use crate::keys::KeyError;
use crate::sign::SigningKey;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use cache::{CacheKey, CachedToken, TokenCache};
use portico_core::jwt::Algorithm;
use serde_json::{Map, Value, json};

/// Default token lifetime, in seconds (defined with the API settings it belongs to).
pub use portico_core::api::DEFAULT_UPSTREAM_JWT_TTL_SECS;
/// Shortest accepted token lifetime, in seconds.
pub const MIN_UPSTREAM_JWT_TTL_SECS: u64 = 10;
/// Longest accepted token lifetime, in seconds.
pub const MAX_UPSTREAM_JWT_TTL_SECS: u64 = 3600;
/// Default bound on the number of cached tokens per signer.
pub const DEFAULT_UPSTREAM_JWT_MAX_CACHED_TOKENS: usize = 10_000;

/// The algorithms an upstream JWT may be signed with. HMAC is not among them: the upstream
/// would need the gateway's secret, and could then mint tokens itself.
pub const UPSTREAM_JWT_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Domain separation for the cache key, versioned in case the key's fields change.
const CACHE_KEY_CONTEXT: &[u8] = b"portico upstream-jwt cache key v1\0";

/// A problem with upstream JWT settings, a caller, or a JWKS. Messages never contain key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamJwtError {
    #[error(
        "upstream JWT: algorithm {0} is not allowed; use RS256, ES256 or EdDSA (an HMAC secret \
         would have to be shared with the upstream, which could then mint tokens itself)"
    )]
    UnsupportedAlgorithm(Algorithm),
    #[error("upstream JWT: the signing key cannot be used: {0}")]
    InvalidKey(KeyError),
    #[error("upstream JWT: a non-empty `kid` is required")]
    MissingKid,
    #[error("upstream JWT: a non-empty gateway name (the `iss` claim) is required")]
    MissingGatewayName,
    #[error(
        "upstream JWT: ttl_secs is {0}; it must be between {MIN_UPSTREAM_JWT_TTL_SECS} and \
         {MAX_UPSTREAM_JWT_TTL_SECS}"
    )]
    TtlOutOfRange(u64),
    #[error("upstream JWT: max_cached_tokens must be at least 1")]
    NoCacheRoom,
    #[error("upstream JWT: the caller has an empty {0}")]
    EmptyCallerField(&'static str),
    #[error("upstream JWT: signing failed: {0}")]
    SigningFailed(KeyError),
    #[error("JWKS: two different keys are published under kid {kid:?}")]
    KidConflict { kid: String },
}

/// How to build an [`UpstreamJwtSigner`]. [`UpstreamJwtSettings::new`] fills in the defaults.
#[derive(Clone)]
pub struct UpstreamJwtSettings {
    /// RS256, ES256 or EdDSA (see [`UPSTREAM_JWT_ALGORITHMS`]).
    pub algorithm: Algorithm,
    /// The private key as PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`, RS256) or
    /// SEC1 (`EC PRIVATE KEY`, ES256). RSA keys have 2048 to 8192 bits. Never shown by `Debug`.
    pub private_key_pem: String,
    /// The `kid` in every token's header and in the published JWK. Required.
    pub kid: String,
    /// The gateway's name, sent as `iss`. Required.
    pub gateway_name: String,
    /// Token lifetime in seconds: `exp - iat`. Default [`DEFAULT_UPSTREAM_JWT_TTL_SECS`];
    /// [`MIN_UPSTREAM_JWT_TTL_SECS`] to [`MAX_UPSTREAM_JWT_TTL_SECS`].
    pub ttl_secs: u64,
    /// Most tokens kept in the cache. Default [`DEFAULT_UPSTREAM_JWT_MAX_CACHED_TOKENS`].
    pub max_cached_tokens: usize,
}

impl UpstreamJwtSettings {
    /// Settings with the default lifetime and cache bound.
    pub fn new(
        algorithm: Algorithm,
        private_key_pem: impl Into<String>,
        kid: impl Into<String>,
        gateway_name: impl Into<String>,
    ) -> Self {
        Self {
            algorithm,
            private_key_pem: private_key_pem.into(),
            kid: kid.into(),
            gateway_name: gateway_name.into(),
            ttl_secs: DEFAULT_UPSTREAM_JWT_TTL_SECS,
            max_cached_tokens: DEFAULT_UPSTREAM_JWT_MAX_CACHED_TOKENS,
        }
    }
}

impl std::fmt::Debug for UpstreamJwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamJwtSettings")
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &"<redacted>")
            .field("kid", &self.kid)
            .field("gateway_name", &self.gateway_name)
            .field("ttl_secs", &self.ttl_secs)
            .field("max_cached_tokens", &self.max_cached_tokens)
            .finish()
    }
}

/// Who is calling which API: everything a token says, plus what else must not share a token.
/// Empty optional strings count as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamCaller<'a> {
    /// The API being called: `aud`. Must not be empty.
    pub api_id: &'a str,
    /// The caller's identity: `sub`. Must not be empty.
    pub identity: &'a str,
    /// `iss` of the caller's token, when known: `caller_iss`.
    pub issuer: Option<&'a str>,
    /// `client_id` of the caller's token: `client_id`.
    pub client_id: Option<&'a str>,
    /// `scope` of the caller's token, space-delimited: `scope`.
    pub scope: Option<&'a str>,
    /// A fingerprint of the policies applied to the caller. Not a claim; it is part of the
    /// cache key only, so a token is not reused across a change of the caller's policies.
    pub policies_fingerprint: u64,
}

fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

impl UpstreamCaller<'_> {
    fn check(&self) -> Result<(), UpstreamJwtError> {
        if self.api_id.is_empty() {
            return Err(UpstreamJwtError::EmptyCallerField("API id"));
        }
        if self.identity.is_empty() {
            return Err(UpstreamJwtError::EmptyCallerField("identity"));
        }
        Ok(())
    }

    /// SHA-256 over every field, each length-prefixed (and tagged when optional) so that no two
    /// different callers hash the same bytes.
    fn cache_key(&self) -> CacheKey {
        fn field(ctx: &mut digest::Context, value: Option<&str>) {
            match present(value) {
                None => ctx.update(&[0]),
                Some(v) => {
                    ctx.update(&[1]);
                    ctx.update(&(v.len() as u64).to_be_bytes());
                    ctx.update(v.as_bytes());
                }
            }
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(CACHE_KEY_CONTEXT);
        field(&mut ctx, Some(self.api_id));
        field(&mut ctx, Some(self.identity));
        field(&mut ctx, self.issuer);
        field(&mut ctx, self.client_id);
        field(&mut ctx, self.scope);
        ctx.update(&self.policies_fingerprint.to_be_bytes());
        ctx.finish()
            .as_ref()
            .try_into()
            .expect("SHA-256 is 32 bytes")
    }
}

/// Signs upstream JWTs with one key and caches them. Cheap to share (`Arc`), safe to call from
/// many threads: a cache hit locks one of 64 shards briefly and signs nothing.
pub struct UpstreamJwtSigner {
    key: SigningKey,
    gateway_name: String,
    ttl_secs: u64,
    public_jwk: Value,
    cache: TokenCache,
    rng: SystemRandom,
}

impl std::fmt::Debug for UpstreamJwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamJwtSigner")
            .field("algorithm", &self.key.algorithm())
            .field("kid", &self.kid())
            .field("gateway_name", &self.gateway_name)
            .field("ttl_secs", &self.ttl_secs)
            .field("cached_tokens", &self.cached_tokens())
            .finish_non_exhaustive()
    }
}

impl UpstreamJwtSigner {
    /// Checks the settings and loads the key.
    pub fn new(settings: UpstreamJwtSettings) -> Result<Self, UpstreamJwtError> {
        if !UPSTREAM_JWT_ALGORITHMS.contains(&settings.algorithm) {
            return Err(UpstreamJwtError::UnsupportedAlgorithm(settings.algorithm));
        }
        if settings.kid.trim().is_empty() {
            return Err(UpstreamJwtError::MissingKid);
        }
        if settings.gateway_name.trim().is_empty() {
            return Err(UpstreamJwtError::MissingGatewayName);
        }
        if !(MIN_UPSTREAM_JWT_TTL_SECS..=MAX_UPSTREAM_JWT_TTL_SECS).contains(&settings.ttl_secs) {
            return Err(UpstreamJwtError::TtlOutOfRange(settings.ttl_secs));
        }
        if settings.max_cached_tokens == 0 {
            return Err(UpstreamJwtError::NoCacheRoom);
        }
        let key = SigningKey::from_pem(settings.algorithm, &settings.private_key_pem)
            .map_err(UpstreamJwtError::InvalidKey)?
            .with_kid(settings.kid);
        let public_jwk = key.public_jwk().ok_or_else(|| {
            UpstreamJwtError::InvalidKey(KeyError::new("the key has no public half"))
        })?;
        Ok(Self {
            key,
            gateway_name: settings.gateway_name,
            ttl_secs: settings.ttl_secs,
            public_jwk,
            cache: TokenCache::new(settings.max_cached_tokens, settings.ttl_secs),
            rng: SystemRandom::new(),
        })
    }

    /// The token for `caller` at `now_secs` (seconds since the Unix epoch): a cached one while
    /// at least half its lifetime remains, else freshly signed. The bytes are the compact JWS,
    /// ASCII only, ready for a header value.
    pub fn token_for(
        &self,
        caller: &UpstreamCaller<'_>,
        now_secs: u64,
    ) -> Result<Bytes, UpstreamJwtError> {
        caller.check()?;
        let key = caller.cache_key();
        if let Some(token) = self.cache.reusable(&key, now_secs) {
            return Ok(token);
        }
        let token = self.sign_token(caller, now_secs)?;
        self.cache.store(
            key,
            CachedToken {
                token: token.clone(),
                iat: now_secs,
            },
            now_secs,
        );
        Ok(token)
    }

    fn sign_token(
        &self,
        caller: &UpstreamCaller<'_>,
        now_secs: u64,
    ) -> Result<Bytes, UpstreamJwtError> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| UpstreamJwtError::SigningFailed(KeyError::new("no randomness")))?;
        let mut claims = Map::new();
        claims.insert("iss".into(), self.gateway_name.as_str().into());
        claims.insert("aud".into(), caller.api_id.into());
        claims.insert("sub".into(), caller.identity.into());
        for (name, value) in [
            ("caller_iss", caller.issuer),
            ("client_id", caller.client_id),
            ("scope", caller.scope),
        ] {
            if let Some(value) = present(value) {
                claims.insert(name.into(), value.into());
            }
        }
        claims.insert("iat".into(), now_secs.into());
        claims.insert("exp".into(), now_secs.saturating_add(self.ttl_secs).into());
        claims.insert("jti".into(), b64url_encode(&jti).into());
        let token = self
            .key
            .sign_jwt(&claims, &Map::new())
            .map_err(UpstreamJwtError::SigningFailed)?;
        Ok(Bytes::from(token))
    }

    /// This signer's key as a JWKS document: `{"keys": [{kty, …, use: "sig", alg, kid}]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk.clone()] })
    }

    /// The public JWK, with `use: "sig"`, `alg` and `kid`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    pub fn kid(&self) -> &str {
        self.key.kid().expect("set in new")
    }

    /// The `iss` of every token.
    pub fn gateway_name(&self) -> &str {
        &self.gateway_name
    }

    /// Token lifetime, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Tokens currently cached (for metrics and tests; locks every shard in turn).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

/// One JWKS document for the keys of several signers (several APIs may sign with different
/// keys, or with the same key through separate signers). Keys are listed in the order first
/// added, once per `kid`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Jwks {
    keys: Vec<Value>,
}

impl Jwks {
    pub fn new() -> Self {
        Self::default()
    }

    /// The keys of all `signers`, de-duplicated by `kid`.
    pub fn from_signers<'a>(
        signers: impl IntoIterator<Item = &'a UpstreamJwtSigner>,
    ) -> Result<Self, UpstreamJwtError> {
        let mut jwks = Self::new();
        for signer in signers {
            jwks.add(signer)?;
        }
        Ok(jwks)
    }

    /// Adds `signer`'s key. A `kid` already present with the same key is skipped; with a
    /// different key it is an error, since an upstream could not tell which key a token means.
    pub fn add(&mut self, signer: &UpstreamJwtSigner) -> Result<(), UpstreamJwtError> {
        let kid = signer.kid();
        match self.keys.iter().find(|k| k["kid"] == kid) {
            Some(existing) if existing == signer.public_jwk() => Ok(()),
            Some(_) => Err(UpstreamJwtError::KidConflict { kid: kid.into() }),
            None => {
                self.keys.push(signer.public_jwk().clone());
                Ok(())
            }
        }
    }

    /// Keys published.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The document: `{"keys": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys })
    }
}

#[cfg(test)]
mod tests;
