//! Tyk's external OAuth (`external_oauth`): access tokens of third-party IdPs, each provider
//! checking them by signature (`jwt`) or by RFC 7662 introspection (`introspection`).
//!
//! What Tyk does (its `gateway/mw_external_oauth.go`): it uses the first provider only; there,
//! an enabled `jwt` wins over `introspection`; introspection POSTs `token`, `client_id` and
//! `client_secret` as a form; answers are cached in Redis for `cache.timeout` seconds (0: no
//! expiry, but a cached answer past its `exp` is refused); the identity is the provider's
//! `identity_base_field`, else `sub`; and the session it makes applies no policy.
//!
//! Portico makes **every** enabled provider one trusted issuer entry of the API, in the
//! providers' order and without an `iss` check, so a token that any of them validates is
//! admitted (Tyk would ask only the first: a warning says so when that matters).

use super::{Fields, JwtFieldNames, is_set, json_kind, jwt_trust};
use portico_core::config::Problem;
use portico_core::introspection::{
    ClientAuth, DEFAULT_GRACE_SECS, DEFAULT_TIMEOUT_MS, IntrospectionCache, IntrospectionSpec,
    JwtValidation,
};
use portico_core::jwt::{ClaimSkews, IssuerTrust, KeySourceSpec, Secret};
use portico_core::{ClaimPath, HttpUrl, IdentitySpec};
use serde_json::{Map, Value};

const EXTERNAL_OAUTH_FIELDS: &[&str] = &["enabled", "providers"];
const PROVIDER_FIELDS: &[&str] = &["jwt", "introspection"];
const JWT_FIELDS: &[&str] = &[
    "enabled",
    "signing_method",
    "source",
    "identity_base_field",
    "issued_at_validation_skew",
    "not_before_validation_skew",
    "expires_at_validation_skew",
];
const INTROSPECTION_FIELDS: &[&str] = &[
    "enabled",
    "url",
    "client_id",
    "client_secret",
    "identity_base_field",
    "cache",
];
const CACHE_FIELDS: &[&str] = &["enabled", "timeout"];

/// API fields of Tyk's JWT mode that its external OAuth does not read (each provider has its
/// own): ignored, with a warning when set.
const JWT_MODE_FIELDS: &[&str] = &[
    "jwt_signing_method",
    "jwt_source",
    "jwt_identity_base_field",
    "jwt_issued_at_validation_skew",
    "jwt_not_before_validation_skew",
    "jwt_expires_at_validation_skew",
];
/// Policy fields of Tyk's JWT mode: Tyk's external OAuth does not read them, Portico applies
/// them (a warning says so when set).
const POLICY_FIELDS: &[&str] = &[
    "jwt_policy_field_name",
    "jwt_default_policies",
    "jwt_scope_to_policy_mapping",
    "jwt_scope_claim_name",
];

/// How Tyk refers to secrets it resolves when it loads a definition; Portico does not.
const TYK_SECRET_REFERENCES: &[&str] = &[
    "env://",
    "secrets://",
    "consul://",
    "vault://",
    "file://",
    "kv://",
    "$kv{",
];

/// The error for a field Portico does not know inside external OAuth settings: it may be a
/// check a newer Tyk applies, so it is refused rather than ignored.
pub(super) fn unknown_field(at: &str) -> String {
    format!(
        "{at} is not an external OAuth field Portico knows; refused rather than ignored, as it may be a check Tyk applies"
    )
}

/// What an API's external OAuth becomes.
pub(super) struct ExternalOAuth {
    /// One entry per enabled provider, in order.
    pub issuers: Vec<IssuerTrust>,
    pub identity: IdentitySpec,
}

/// `external_oauth.enabled`: `None` when it is not a boolean (an error).
pub(super) fn enabled(
    api: &Map<String, Value>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<bool> {
    let Some(Value::Object(settings)) = api.get("external_oauth") else {
        return Some(false);
    };
    let before = problems.len();
    let on = fields(settings, location, "external_oauth.").flag("enabled", problems);
    (problems.len() == before).then_some(on)
}

fn fields<'a>(obj: &'a Map<String, Value>, location: &'a str, prefix: &'a str) -> Fields<'a> {
    Fields {
        obj,
        location,
        prefix,
    }
}

/// An error for each member of `obj` that is set and not in `known`.
fn refuse_unknown(
    obj: &Map<String, Value>,
    known: &[&str],
    location: &str,
    prefix: &str,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in obj {
        if !known.contains(&key.as_str()) && is_set(value) {
            problems.push(Problem::error(
                location,
                unknown_field(&format!("{prefix}{key}")),
            ));
        }
    }
}

/// `parent[key]` as an object: `None` when absent or null; an error for another type.
fn object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    at: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    match parent.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(other) => {
            problems.push(Problem::error(
                location,
                format!("{at}.{key} must be an object, not {}", json_kind(other)),
            ));
            None
        }
    }
}

/// The enabled providers of an API whose `external_oauth.enabled` is true, as trusted issuer
/// entries, and the identity they agree on. `None` after an error.
pub(super) fn convert(
    api: &Map<String, Value>,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<ExternalOAuth> {
    let before = problems.len();
    let empty = Map::new();
    let settings = match api.get("external_oauth") {
        Some(Value::Object(settings)) => settings,
        _ => &empty,
    };
    refuse_unknown(
        settings,
        EXTERNAL_OAUTH_FIELDS,
        location,
        "external_oauth.",
        problems,
    );
    report_jwt_mode_fields(api, location, problems);
    let providers: &[Value] = match settings.get("providers") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(providers)) => providers,
        Some(other) => {
            problems.push(Problem::error(
                location,
                format!(
                    "external_oauth.providers must be an array, not {}",
                    json_kind(other)
                ),
            ));
            return None;
        }
    };
    let mut issuers = Vec::new();
    let mut used = Vec::new();
    // (field, claim): where each enabled provider names the identity.
    let mut identities: Vec<(String, Option<String>)> = Vec::new();
    for (i, provider) in providers.iter().enumerate() {
        let at = format!("external_oauth.providers[{i}]");
        let Some(provider) = provider.as_object() else {
            problems.push(Problem::error(
                location,
                format!("{at} must be an object, not {}", json_kind(provider)),
            ));
            continue;
        };
        refuse_unknown(
            provider,
            PROVIDER_FIELDS,
            location,
            &format!("{at}."),
            problems,
        );
        let jwt = object(provider, "jwt", &at, location, problems);
        let introspection = object(provider, "introspection", &at, location, problems);
        let jwt_prefix = format!("{at}.jwt.");
        let introspection_prefix = format!("{at}.introspection.");
        let jwt_on =
            jwt.is_some_and(|j| fields(j, location, &jwt_prefix).flag("enabled", problems));
        let introspection_on = introspection
            .is_some_and(|j| fields(j, location, &introspection_prefix).flag("enabled", problems));
        let converted = match (jwt, introspection) {
            (Some(jwt), _) if jwt_on => {
                if introspection_on {
                    problems.push(Problem::warning(
                        location,
                        format!("{at}: jwt and introspection are both enabled; Tyk then checks tokens with jwt only, and so does Portico (introspection is not used)"),
                    ));
                }
                jwt_provider(jwt, &jwt_prefix, location, problems)
            }
            (_, Some(introspection)) if introspection_on => {
                introspection_provider(introspection, &introspection_prefix, location, problems)
            }
            // Disabled: skipped.
            _ => continue,
        };
        used.push(i);
        if let Some((trust, identity)) = converted {
            issuers.push(trust);
            identities.push(identity);
        }
    }
    match used.as_slice() {
        [] if !super::has_errors(&problems[before..]) => {
            problems.push(Problem::error(
                location,
                "external_oauth is enabled, but no provider enables jwt or introspection: Tyk refuses every request",
            ));
            return None;
        }
        [0] | [] => {}
        [first, ..] if *first != 0 => {
            // Tyk reads providers[0] only: with it disabled, Tyk refuses every request.
            problems.push(Problem::error(
                location,
                format!(
                    "external_oauth.providers[0] enables neither jwt nor introspection: Tyk, which reads only providers[0], refuses every request; Portico would serve with external_oauth.providers[{first}]. Enable providers[0] or remove it"
                ),
            ));
        }
        _ => {
            let list: Vec<String> = used
                .iter()
                .map(|i| format!("external_oauth.providers[{i}]"))
                .collect();
            problems.push(Problem::warning(
                location,
                format!(
                    "Tyk checks tokens with external_oauth.providers[0] only; Portico admits a token that any enabled provider validates, in order: {}",
                    list.join(", ")
                ),
            ));
        }
    }
    let introspected = issuers.iter().any(|t| t.introspection.is_some());
    let identity = agreed_identity(&identities, introspected, location, problems);
    if super::has_errors(&problems[before..]) {
        return None;
    }
    Some(ExternalOAuth {
        issuers,
        identity: identity?,
    })
}

/// Warnings for the JWT mode's fields set on an external OAuth API: the key and identity
/// fields are not read (each provider has its own); the policy fields Tyk does not read, and
/// Portico applies.
fn report_jwt_mode_fields(api: &Map<String, Value>, location: &str, problems: &mut Vec<Problem>) {
    for (key, value) in api {
        if !is_set(value) {
            continue;
        }
        if JWT_MODE_FIELDS.contains(&key.as_str()) {
            problems.push(Problem::warning(
                location,
                format!("{key} is read with enable_jwt only; Tyk's external OAuth takes its settings from each provider, so it is ignored"),
            ));
        } else if POLICY_FIELDS.contains(&key.as_str()) {
            problems.push(Problem::warning(
                location,
                format!("{key}: Tyk's external OAuth does not read it (every valid token may call the API, without a policy); Portico applies it to this API's tokens, which can limit or refuse tokens Tyk admits"),
            ));
        }
    }
}

/// A `jwt` provider: keys and algorithms as `enable_jwt` reads them.
fn jwt_provider(
    jwt: &Map<String, Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<(IssuerTrust, (String, Option<String>))> {
    refuse_unknown(jwt, JWT_FIELDS, location, prefix, problems);
    let f = fields(jwt, location, prefix);
    let method = f.text("signing_method", problems).unwrap_or("");
    let source = f.text("source", problems);
    let skew = ClaimSkews {
        exp_secs: f.seconds("expires_at_validation_skew", problems),
        nbf_secs: f.seconds("not_before_validation_skew", problems),
        iat_secs: f.seconds("issued_at_validation_skew", problems),
    };
    let identity = f.text("identity_base_field", problems).map(str::to_string);
    let source_field = format!("{prefix}source");
    let names = JwtFieldNames {
        source: &source_field,
        signing_method: &format!("{prefix}signing_method"),
    };
    let Some(source) = source else {
        problems.push(Problem::error(
            location,
            format!("{source_field} is required: a JWKS URL, or base64 of a JWKS URL, of a PEM public key or of an HMAC secret"),
        ));
        return None;
    };
    let trust = jwt_trust(method, source, skew, &names, location, problems)?;
    Some((trust, (format!("{prefix}identity_base_field"), identity)))
}

/// An `introspection` provider: no local keys, every token introspected at `url`.
fn introspection_provider(
    introspection: &Map<String, Value>,
    prefix: &str,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<(IssuerTrust, (String, Option<String>))> {
    let before = problems.len();
    refuse_unknown(
        introspection,
        INTROSPECTION_FIELDS,
        location,
        prefix,
        problems,
    );
    let f = fields(introspection, location, prefix);
    let refuse = |problems: &mut Vec<Problem>, message: String| {
        problems.push(Problem::error(location, message));
    };
    let endpoint = match f.text("url", problems) {
        // A URL with user info is not quoted: it may hold a password.
        Some(url) => HttpUrl::try_new(url)
            .map_err(|e| match url.contains('@') {
                true => refuse(
                    problems,
                    format!("{prefix}url is not an http(s) URL without user info"),
                ),
                false => refuse(problems, format!("{prefix}url: {e}")),
            })
            .ok(),
        None => {
            refuse(problems, format!("{prefix}url is required"));
            None
        }
    };
    let client_id = f.text("client_id", problems);
    if client_id.is_none() {
        refuse(problems, format!("{prefix}client_id is required"));
    }
    // Never quoted in a problem: it is a secret.
    let secret = f.text("client_secret", problems);
    match secret {
        None => refuse(
            problems,
            format!(
                "{prefix}client_secret is required: Tyk sends it with client_id to the endpoint, and so does Portico"
            ),
        ),
        Some(secret) if TYK_SECRET_REFERENCES.iter().any(|r| secret.contains(r)) => refuse(
            problems,
            format!(
                "{prefix}client_secret is a Tyk secret reference ({}), which Portico does not resolve: give the secret itself, or configure the API in Portico's own file, where client_secret_env reads it from the environment",
                TYK_SECRET_REFERENCES.join(", ")
            ),
        ),
        Some(_) => {}
    }
    let identity = f.text("identity_base_field", problems).map(str::to_string);
    let defaults = IntrospectionCache::default();
    // Tyk's default (no `cache`): no caching, every request introspected.
    let mut cache = IntrospectionCache {
        enabled: false,
        ..defaults
    };
    let cache_prefix = format!("{prefix}cache.");
    if let Some(settings) = object(
        introspection,
        "cache",
        prefix.trim_end_matches('.'),
        location,
        problems,
    ) {
        refuse_unknown(settings, CACHE_FIELDS, location, &cache_prefix, problems);
        let c = fields(settings, location, &cache_prefix);
        cache.enabled = c.flag("enabled", problems);
        // Tyk's 0 keeps an answer without expiry yet refuses it once the token's `exp` has
        // passed; Portico's 0 keeps it until `exp` (and not at all without one): the same
        // tokens are admitted, and a revoked one stops working no later than in Tyk.
        cache.ttl_secs = c.seconds("timeout", problems);
    }
    if super::has_errors(&problems[before..]) {
        return None;
    }
    let mut trust = IssuerTrust::new(None, KeySourceSpec::None);
    // Tyk reads `active` and nothing else from a fresh answer.
    trust.require_exp = false;
    trust.introspection = Some(IntrospectionSpec {
        endpoint,
        client_id: client_id?.to_string(),
        // Tyk puts client_id and client_secret in the form body.
        client_auth: ClientAuth::ClientSecretPost(Secret::new(secret?.as_bytes().to_vec())),
        cache,
        timeout_ms: DEFAULT_TIMEOUT_MS,
        grace_secs: DEFAULT_GRACE_SECS,
        jwt_validation: JwtValidation::Local,
    });
    Some((trust, (format!("{prefix}identity_base_field"), identity)))
}

/// The API's identity claims: the claim every provider names (empty is Tyk's default `sub`),
/// then `sub`, then — with introspection, whose answers for client_credentials tokens often
/// carry no `sub` — `client_id`. Providers naming different claims are an error: Portico has
/// one identity per API.
fn agreed_identity(
    identities: &[(String, Option<String>)],
    introspected: bool,
    location: &str,
    problems: &mut Vec<Problem>,
) -> Option<IdentitySpec> {
    let describe = |claim: &Option<String>| match claim {
        Some(claim) => format!("{claim:?}"),
        None => "empty (Tyk's default \"sub\")".to_string(),
    };
    let claim_of = |claim: &Option<String>| claim.clone().unwrap_or_else(|| "sub".into());
    let (first_field, first_claim) = identities.first()?;
    for (field, claim) in &identities[1..] {
        if claim_of(claim) != claim_of(first_claim) {
            problems.push(Problem::error(
                location,
                format!(
                    "{first_field} is {} but {field} is {}: Portico has one identity claim per API, so the providers must name the same one",
                    describe(first_claim),
                    describe(claim)
                ),
            ));
            return None;
        }
    }
    let mut claims: Vec<ClaimPath> = Vec::new();
    let fallbacks: &[&str] = if introspected {
        &["sub", "client_id"]
    } else {
        &["sub"]
    };
    let named = claim_of(first_claim);
    for name in std::iter::once(named.as_str()).chain(fallbacks.iter().copied()) {
        match ClaimPath::try_new(name) {
            Ok(path) if !claims.contains(&path) => claims.push(path),
            Ok(_) => {}
            Err(e) => {
                problems.push(Problem::error(location, format!("{first_field}: {e}")));
                return None;
            }
        }
    }
    IdentitySpec::try_new(claims)
        .map_err(|e| problems.push(Problem::error(location, e)))
        .ok()
}

#[cfg(test)]
mod tests;
