//! One configuration version, assembled for serving: the route table and, per API, its
//! verifier and settings. Built once per config version and swapped atomically on reload.

use crate::admission::AdmissionCache;
use crate::metrics::{ApiMetrics, GatewayMetrics};
use crate::proxy::{ConnectionPools, Upstream};
use crate::stages::upstream_headers::{IdentityHeaderNames, trusted_header_name};
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use portico_auth::upstream_jwt::{Jwks, UpstreamJwtSettings, UpstreamJwtSigner};
use portico_auth::{JwtVerifier, KeySourceRegistry};
use portico_core::api::ApiAuth;
use portico_core::api::UpstreamJwtSpec;
use portico_core::config::{ConfigError, GatewayConfig, Problem};
use portico_core::net::IpNet;
use portico_core::{ApiSpec, ClaimPath, PolicySet};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// An API ready to serve.
#[derive(Debug)]
pub struct ApiRuntime {
    /// Position in the pipeline; part of the admission cache key.
    pub index: usize,
    pub spec: ApiSpec,
    /// `None` for keyless APIs.
    pub verifier: Option<JwtVerifier>,
    pub scope_claim: ClaimPath,
    pub upstream: Upstream,
    pub identity_headers: IdentityHeaderNames,
    /// Per trusted issuer entry (by `VerifiedToken::issuer_index`): what scopes its sessions.
    pub issuers: Vec<IssuerScope>,
    /// The gateway-signed JWT for the upstream, when configured.
    pub upstream_jwt: Option<UpstreamJwt>,
    pub metrics: ApiMetrics,
}

/// An API's upstream JWT: the header it travels in and the signer (with its token cache).
#[derive(Debug)]
pub struct UpstreamJwt {
    pub header: HeaderName,
    pub signer: UpstreamJwtSigner,
}

/// What makes identities from one trusted issuer entry unique.
#[derive(Debug)]
pub struct IssuerScope {
    /// See `IssuerTrust::session_scope`.
    pub session_scope: String,
    /// The configured issuer (`None` for an entry without one), and as sent upstream.
    pub issuer: Option<String>,
    pub header: Option<HeaderValue>,
}

#[derive(Debug)]
pub struct Pipeline {
    apis: Vec<Arc<ApiRuntime>>,
    /// Listen path -> index into `apis`.
    routes: HashMap<String, usize>,
    pub policies: PolicySet,
    pub admissions: AdmissionCache,
    /// Every identity header name of every API (and the defaults): no client header by one
    /// of these names reaches any upstream.
    identity_header_names: Vec<HeaderName>,
    trusted_proxies: Vec<IpNet>,
    /// The public keys of every API's upstream JWT signer, as a JWKS document.
    jwks: Bytes,
    /// Where the gateway listener serves `jwks` (`None`: only the admin listener does).
    jwks_path: Option<String>,
    /// See `GatewaySettings::max_token_lifetime_secs`.
    pub max_token_lifetime_secs: u64,
}

impl Pipeline {
    /// Builds every API's runtime; all failures are reported together.
    pub fn build(
        config: &GatewayConfig,
        key_sources: &KeySourceRegistry,
        connections: &ConnectionPools,
        metrics: &GatewayMetrics,
    ) -> Result<Self, ConfigError> {
        let mut problems = config.check(&[]);
        problems.retain(|p| p.severity == portico_core::config::Severity::Error);
        let mut apis = Vec::with_capacity(config.apis.len());
        let mut routes = HashMap::with_capacity(config.apis.len());
        let mut jwks = Jwks::new();
        let mut identity_header_names: Vec<HeaderName> =
            IdentityHeaderNames::try_new(&portico_core::UpstreamHeaders::default())
                .expect("the default names are valid")
                .names()
                .cloned()
                .collect();
        for spec in &config.apis {
            let verifier = match &spec.auth {
                ApiAuth::Keyless => None,
                ApiAuth::Jwt(jwt) => {
                    match JwtVerifier::build(jwt, key_sources, &config.settings.jwks) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            problems
                                .push(Problem::error(format!("API {:?}", spec.id), e.to_string()));
                            continue;
                        }
                    }
                }
            };
            let identity_headers = match IdentityHeaderNames::try_new(&spec.upstream_headers) {
                Ok(h) => h,
                Err(e) => {
                    problems.push(Problem::error(
                        format!("API {:?}: upstream headers", spec.id),
                        e,
                    ));
                    continue;
                }
            };
            let upstream = match Upstream::try_new(
                &spec.upstream,
                &spec.upstream_tls,
                spec.connections,
                connections,
            ) {
                Ok(u) => u,
                Err(e) => {
                    problems.push(Problem::error(format!("API {:?}: upstream", spec.id), e));
                    continue;
                }
            };
            let issuers = match &spec.auth {
                ApiAuth::Keyless => Vec::new(),
                ApiAuth::Jwt(jwt) => jwt
                    .issuers
                    .iter()
                    .map(|trust| IssuerScope {
                        session_scope: trust.session_scope(),
                        issuer: trust.issuer.clone(),
                        header: trust
                            .issuer
                            .as_deref()
                            .and_then(|i| HeaderValue::from_str(i).ok()),
                    })
                    .collect(),
            };
            let upstream_jwt = match spec
                .upstream_jwt
                .as_ref()
                .map(|j| build_upstream_jwt(j, &config.settings.gateway_name))
            {
                None => None,
                Some(Ok(j)) => {
                    if let Err(e) = jwks.add(&j.signer) {
                        problems.push(Problem::error(
                            format!("API {:?}: upstream_jwt", spec.id),
                            e.to_string(),
                        ));
                    }
                    Some(j)
                }
                Some(Err(e)) => {
                    problems.push(Problem::error(
                        format!("API {:?}: upstream_jwt", spec.id),
                        e,
                    ));
                    continue;
                }
            };
            let upstream_jwt_header = upstream_jwt.as_ref().map(|j| j.header.clone());
            if let Err(e) = identity_headers.check_distinct(upstream_jwt_header.as_ref()) {
                problems.push(Problem::error(
                    format!("API {:?}: upstream_jwt.header", spec.id),
                    e,
                ));
                continue;
            }
            for name in identity_headers.names().chain(&upstream_jwt_header) {
                if !identity_header_names.contains(name) {
                    identity_header_names.push(name.clone());
                }
            }
            routes.insert(spec.listen_path.as_str().to_string(), apis.len());
            apis.push(Arc::new(ApiRuntime {
                index: apis.len(),
                scope_claim: spec.policies.scope_claim(),
                upstream,
                identity_headers,
                issuers,
                upstream_jwt,
                metrics: ApiMetrics::new(metrics, spec.id.clone()),
                verifier,
                spec: spec.clone(),
            }));
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Self {
            apis,
            routes,
            policies: config.policies.clone(),
            admissions: AdmissionCache::new(config.settings.token_cache),
            identity_header_names,
            trusted_proxies: config.settings.trusted_proxies.clone(),
            jwks: Bytes::from(jwks.to_json().to_string()),
            jwks_path: config.settings.jwks_path.clone(),
            max_token_lifetime_secs: config.settings.max_token_lifetime_secs,
        })
    }

    /// The API whose listen path is the longest prefix of `path` on a segment boundary, and
    /// the rest of the path below it. One hash lookup per path segment, whatever the number of
    /// APIs.
    pub fn route<'p>(&self, path: &'p str) -> Option<(&Arc<ApiRuntime>, &'p str)> {
        let mut candidate = path.trim_end_matches('/');
        loop {
            let key = if candidate.is_empty() { "/" } else { candidate };
            if let Some(&i) = self.routes.get(key) {
                let api = &self.apis[i];
                return api.spec.listen_path.strip(path).map(|rest| (api, rest));
            }
            if candidate.is_empty() {
                return None;
            }
            candidate = &candidate[..candidate.rfind('/')?];
        }
    }

    /// The upstream JWT signers' public keys, as a JWKS document.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Whether the gateway listener serves the JWKS at `path`.
    pub fn serves_jwks_at(&self, path: &str) -> bool {
        self.jwks_path.as_deref() == Some(path)
    }

    /// Whether `peer`'s forwarding headers are kept (`trusted_proxies`).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        !self.trusted_proxies.is_empty() && self.trusted_proxies.iter().any(|n| n.contains(peer))
    }

    pub fn identity_header_names(&self) -> &[HeaderName] {
        &self.identity_header_names
    }

    pub fn apis(&self) -> &[Arc<ApiRuntime>] {
        &self.apis
    }
}

fn build_upstream_jwt(spec: &UpstreamJwtSpec, gateway_name: &str) -> Result<UpstreamJwt, String> {
    let header = trusted_header_name(&spec.header)?;
    let mut settings = UpstreamJwtSettings::new(
        spec.algorithm,
        spec.private_key_pem.clone(),
        spec.kid.clone(),
        gateway_name,
    );
    settings.ttl_secs = spec.ttl_secs;
    let signer = UpstreamJwtSigner::new(settings).map_err(|e| e.to_string())?;
    Ok(UpstreamJwt { header, signer })
}
