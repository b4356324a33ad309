//! The developer portal's documents — `OAuthProvider`, `ClientType`, `Product`, `Plan` — and
//! what they mean for the gateway ([`wire`]): every API of a product with Dynamic Client
//! Registration trusts the issuers of the product's providers (keys by OIDC discovery) and
//! maps scopes to policies made here, never by hand:
//!
//! - a product scope → `product:NAME`, access to every API of the product;
//! - a plan scope → `plan:NAME`, a limits-only policy with the plan's rate limit and quota
//!   (limits-only policies apply to every API the token is granted, `docs/policies.md`).
//!
//! Deleting a product, plan or provider deletes what it implied: the wiring is derived each
//! time the configuration is built, and nothing is stored for it. The portal's runtime (pages,
//! registration at the IdP, the access-request workflow) lives in the `portico-portal` crate.
//!
//! Specs use the field names of the portal's documentation (`wellKnownUrl`, `rateLimit`, …).

use crate::documents::{Document, Kind};
use crate::native::{ApiSection, IssuerSection, OneOrMany, PolicySection};
use portico_core::config::Problem;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Where a standard OIDC discovery document lives, below the issuer.
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// The claim scopes are read from unless a provider or API says otherwise.
const DEFAULT_SCOPE_CLAIM: &str = "scope";
const PRODUCT_PREFIX: &str = "product:";
const PLAN_PREFIX: &str = "plan:";

/// The policy a product's scopes select.
pub fn product_policy(product: &str) -> String {
    format!("{PRODUCT_PREFIX}{product}")
}

/// The policy a plan's scope selects.
pub fn plan_policy(plan: &str) -> String {
    format!("{PLAN_PREFIX}{plan}")
}

/// An IdP the portal registers clients at. `Debug` leaves out the initial access token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OAuthProviderSpec {
    /// Which registration dialect: RFC 7591/7592 as written, or a product's documented quirks.
    #[serde(default, rename = "type")]
    pub kind: ProviderType,
    /// The OIDC discovery document.
    pub well_known_url: String,
    /// The issuer, when it is not `wellKnownUrl` without [`DISCOVERY_SUFFIX`].
    pub issuer: Option<String>,
    /// The initial access token for registration (RFC 7591 §3): a value, or `${VARIABLE}`.
    pub initial_access_token: Option<String>,
    /// Skip TLS verification of the portal's calls to this IdP (tests, never production).
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// The claim the IdP's access tokens carry their scopes in (default `scope`).
    pub scope_claim: Option<String>,
    /// Audiences the gateway requires in this IdP's tokens (default: any).
    #[serde(default)]
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for OAuthProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProviderSpec")
            .field("type", &self.kind)
            .field("well_known_url", &self.well_known_url)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl OAuthProviderSpec {
    /// The issuer the gateway trusts for this provider.
    pub fn issuer(&self) -> Result<String, String> {
        if let Some(issuer) = &self.issuer {
            return Ok(issuer.clone());
        }
        self.well_known_url
            .strip_suffix(DISCOVERY_SUFFIX)
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "spec.issuer: missing, and spec.wellKnownUrl does not end with {DISCOVERY_SUFFIX}"
                )
            })
    }
}

/// The values of [`ProviderType`] as documents write them.
pub const PROVIDER_TYPES: &[&str] = &["generic", "keycloak", "okta", "gluu"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    #[default]
    Generic,
    Keycloak,
    Okta,
    Gluu,
}

/// A kind of OAuth client a developer may register, with the metadata it is registered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientTypeSpec {
    pub provider: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default = "client_secret_basic")]
    pub token_endpoint_auth_method: String,
    /// Okta's `application_type` (`web`, `service`, `native`, `browser`); ignored elsewhere.
    pub okta_application_type: Option<String>,
}

fn client_secret_basic() -> String {
    "client_secret_basic".into()
}

/// The grant types a client type may name.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
];
/// The response types a client type may name (none issues tokens in the front channel).
pub const RESPONSE_TYPES: &[&str] = &["code", "id_token", "code id_token"];
/// Client authentication methods the portal can hand a developer credentials for.
pub const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
/// Okta's application types.
pub const OKTA_APPLICATION_TYPES: &[&str] = &["web", "service", "native", "browser"];

impl ClientTypeSpec {
    /// Refuses metadata an IdP may accept but that is unsafe or cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.grant_types.is_empty() {
            return Err("spec.grantTypes: give at least one grant type".into());
        }
        for (i, grant) in self.grant_types.iter().enumerate() {
            if grant == "implicit" || grant == "password" {
                return Err(format!(
                    "spec.grantTypes[{i}]: {grant:?} is unsafe (OAuth 2.0 Security BCP, RFC 9700) and not offered"
                ));
            }
            if !GRANT_TYPES.contains(&grant.as_str()) {
                return Err(format!(
                    "spec.grantTypes[{i}]: unknown grant type {grant:?}; one of {}",
                    GRANT_TYPES.join(", ")
                ));
            }
        }
        for (i, response) in self.response_types.iter().enumerate() {
            if response.split(' ').any(|part| part == "token") {
                return Err(format!(
                    "spec.responseTypes[{i}]: {response:?} issues tokens in the front channel (implicit flow), which is unsafe and not offered"
                ));
            }
            if !RESPONSE_TYPES.contains(&response.as_str()) {
                return Err(format!(
                    "spec.responseTypes[{i}]: unknown response type {response:?}; one of {}",
                    RESPONSE_TYPES.join(", ")
                ));
            }
        }
        let method = self.token_endpoint_auth_method.as_str();
        if !AUTH_METHODS.contains(&method) {
            return Err(format!(
                "spec.tokenEndpointAuthMethod: {method:?} is not supported; one of {}",
                AUTH_METHODS.join(", ")
            ));
        }
        let grants = |g: &str| self.grant_types.iter().any(|x| x == g);
        if method == "none" && grants("client_credentials") {
            return Err(
                "spec.tokenEndpointAuthMethod: \"none\" with the client_credentials grant \
                 would give tokens to anyone who knows the client_id; use client_secret_basic or \
                 client_secret_post"
                    .into(),
            );
        }
        let code = self.response_types.iter().any(|r| r.contains("code"));
        if grants("authorization_code") != code {
            return Err(
                "spec.responseTypes: the authorization_code grant and the `code` response type \
                 go together (give both or neither)"
                    .into(),
            );
        }
        if let Some(kind) = &self.okta_application_type
            && !OKTA_APPLICATION_TYPES.contains(&kind.as_str())
        {
            return Err(format!(
                "spec.oktaApplicationType: {kind:?}; one of {}",
                OKTA_APPLICATION_TYPES.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether clients of this type need redirect URIs (they use the authorization code flow).
    pub fn needs_redirect_uris(&self) -> bool {
        self.grant_types.iter().any(|g| g == "authorization_code")
    }
}

/// APIs offered together, with the scopes that grant them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProductSpec {
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// The gateway's API ids.
    pub apis: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub dcr: DcrSpec,
    /// Documentation shown in the catalogue.
    #[serde(default)]
    pub docs: ProductDocs,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DcrSpec {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub client_types: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProductDocs {
    /// Markdown text.
    pub markdown: Option<String>,
    /// An OpenAPI document (YAML or JSON text).
    pub openapi: Option<String>,
}

/// Limits a developer picks for an app, granted by a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanSpec {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub scope: String,
    pub rate_limit: Option<PlanRate>,
    pub quota: Option<PlanQuota>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRate {
    pub requests: u64,
    /// A duration: `60s`, `1m`, `500ms`, or seconds as a number.
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuota {
    pub max: u64,
    pub per: Duration,
}

/// A duration as written in a document: a number of seconds, or a number with `ms`, `s`, `m`,
/// `h` or `d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Duration {
    Seconds(f64),
    Text(String),
}

impl Duration {
    pub fn as_secs(&self) -> Result<f64, String> {
        let secs = match self {
            Duration::Seconds(s) => *s,
            Duration::Text(text) => {
                let text = text.trim();
                let split = text
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(text.len());
                let (number, unit) = text.split_at(split);
                let number: f64 = number
                    .parse()
                    .map_err(|_| format!("{text:?} is not a duration (e.g. 60s, 1m, 24h)"))?;
                let scale = match unit.trim() {
                    "ms" => 0.001,
                    "" | "s" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    "d" => 86400.0,
                    other => return Err(format!("unknown unit {other:?} (ms, s, m, h, d)")),
                };
                number * scale
            }
        };
        if secs.is_finite() && secs > 0.0 {
            Ok(secs)
        } else {
            Err("must be more than zero".into())
        }
    }
}

/// A scope as OAuth writes it (RFC 6749 §3.3): printable ASCII without space, `"` or `\`.
fn scope_problem(scope: &str) -> Option<&'static str> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    (!ok).then_some("is not a scope token (printable ASCII, no spaces, quotes or backslashes)")
}

/// Whether `kind` is one of the portal's.
pub fn is_portal_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::OAuthProvider | Kind::ClientType | Kind::Product | Kind::Plan
    )
}

fn spec<T: serde::de::DeserializeOwned>(doc: &Document) -> Result<T, String> {
    crate::documents::section(doc.spec.clone())
}

/// Checks one portal document on its own: its spec's shape and values. References between
/// documents are checked by [`wire`].
pub fn check(doc: &Document) -> Result<(), String> {
    match doc.kind {
        Kind::OAuthProvider => {
            let provider: OAuthProviderSpec = spec(doc)?;
            portico_core::url::HttpUrl::try_new(&provider.well_known_url)
                .map_err(|e| format!("spec.wellKnownUrl: {e}"))?;
            provider.issuer().map(drop)
        }
        Kind::ClientType => spec::<ClientTypeSpec>(doc)?.check(),
        Kind::Product => {
            let product: ProductSpec = spec(doc)?;
            if product.apis.is_empty() {
                return Err("spec.apis: a product bundles at least one API".into());
            }
            if product.scopes.is_empty() {
                return Err("spec.scopes: a product needs at least one scope".into());
            }
            for (i, scope) in product.scopes.iter().enumerate() {
                if let Some(problem) = scope_problem(scope) {
                    return Err(format!("spec.scopes[{i}]: {scope:?} {problem}"));
                }
            }
            if product.dcr.enabled && product.dcr.client_types.is_empty() {
                return Err("spec.dcr.clientTypes: with DCR enabled, name at least one".into());
            }
            Ok(())
        }
        Kind::Plan => {
            let plan: PlanSpec = spec(doc)?;
            if let Some(problem) = scope_problem(&plan.scope) {
                return Err(format!("spec.scope: {:?} {problem}", plan.scope));
            }
            if let Some(rate) = &plan.rate_limit {
                rate.per
                    .as_secs()
                    .map_err(|e| format!("spec.rateLimit.per: {e}"))?;
                if rate.requests == 0 {
                    return Err("spec.rateLimit.requests: must be at least 1".into());
                }
            }
            if let Some(quota) = &plan.quota {
                quota
                    .per
                    .as_secs()
                    .map_err(|e| format!("spec.quota.per: {e}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The portal's documents of a set, each read into its spec.
#[derive(Debug, Default)]
pub struct Catalogue {
    pub providers: BTreeMap<String, OAuthProviderSpec>,
    pub client_types: BTreeMap<String, ClientTypeSpec>,
    pub products: BTreeMap<String, ProductSpec>,
    pub plans: BTreeMap<String, PlanSpec>,
}

impl Catalogue {
    /// Reads the portal documents of `docs` (others are skipped); a document that does not
    /// pass [`check`] is a problem and left out.
    pub fn read(docs: &[Document], source: &str) -> (Catalogue, Vec<Problem>) {
        let mut catalogue = Catalogue::default();
        let mut problems = Vec::new();
        for doc in docs.iter().filter(|d| is_portal_kind(d.kind)) {
            let name = doc.metadata.name.clone();
            let read = check(doc).and_then(|()| match doc.kind {
                Kind::OAuthProvider => spec(doc).map(|s| {
                    catalogue.providers.insert(name, s);
                }),
                Kind::ClientType => spec(doc).map(|s| {
                    catalogue.client_types.insert(name, s);
                }),
                Kind::Product => spec(doc).map(|s| {
                    catalogue.products.insert(name, s);
                }),
                Kind::Plan => spec(doc).map(|s| {
                    catalogue.plans.insert(name, s);
                }),
                _ => Ok(()),
            });
            if let Err(e) = read {
                problems.push(Problem::error(doc.location(source), e));
            }
        }
        (catalogue, problems)
    }

    /// The providers of a product's client types (each once, by name).
    pub fn providers_of(&self, product: &ProductSpec) -> BTreeSet<&str> {
        product
            .dcr
            .client_types
            .iter()
            .filter_map(|t| self.client_types.get(t))
            .map(|t| t.provider.as_str())
            .collect()
    }
}

/// Adds to `apis` and `policies` what the portal's documents imply (see the module's
/// documentation); problems name the portal document at fault.
pub fn wire(
    catalogue: &Catalogue,
    apis: &mut [ApiSection],
    policies: &mut Vec<PolicySection>,
    source: &str,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |kind: &str, name: &str| format!("{source}: {kind} {name:?}");
    for (name, client_type) in &catalogue.client_types {
        if !catalogue.providers.contains_key(&client_type.provider) {
            problems.push(Problem::error(
                at("ClientType", name),
                format!(
                    "spec.provider: no OAuthProvider named {:?}",
                    client_type.provider
                ),
            ));
        }
    }
    let taken: BTreeSet<String> = policies.iter().map(|p| p.id.clone()).collect();
    let mut scope_owner: BTreeMap<&str, String> = BTreeMap::new();
    for (name, plan) in &catalogue.plans {
        let id = plan_policy(name);
        if taken.contains(&id) {
            problems.push(Problem::error(
                at("Plan", name),
                format!("a Policy named {id:?} exists; that name belongs to this plan"),
            ));
            continue;
        }
        if let Some(owner) = scope_owner.insert(&plan.scope, format!("Plan {name:?}")) {
            problems.push(Problem::error(
                at("Plan", name),
                format!("spec.scope: {:?} is also the scope of {owner}", plan.scope),
            ));
        }
        let mut policy = json!({ "id": id, "name": plan.display_name.as_deref().unwrap_or(name) });
        if let Some(rate) = &plan.rate_limit {
            policy["rate_limit"] =
                json!({ "requests": rate.requests, "per_secs": rate.per.as_secs().unwrap_or(1.0) });
        }
        if let Some(quota) = &plan.quota {
            policy["quota"] = json!({ "max": quota.max, "renewal_secs": quota.per.as_secs().unwrap_or(1.0).ceil() as u64 });
        }
        match serde_json::from_value(policy) {
            Ok(policy) => policies.push(policy),
            Err(e) => problems.push(Problem::error(at("Plan", name), e.to_string())),
        }
    }
    for (name, product) in &catalogue.products {
        let id = product_policy(name);
        if taken.contains(&id) {
            problems.push(Problem::error(
                at("Product", name),
                format!("a Policy named {id:?} exists; that name belongs to this product"),
            ));
            continue;
        }
        for scope in product.scopes.iter().collect::<BTreeSet<_>>() {
            if let Some(owner) = scope_owner.insert(scope, format!("Product {name:?}")) {
                problems.push(Problem::error(
                    at("Product", name),
                    format!("spec.scopes: {scope:?} is also a scope of {owner}"),
                ));
            }
        }
        for (i, client_type) in product.dcr.client_types.iter().enumerate() {
            if !catalogue.client_types.contains_key(client_type) {
                problems.push(Problem::error(
                    at("Product", name),
                    format!("spec.dcr.clientTypes[{i}]: no ClientType named {client_type:?}"),
                ));
            }
        }
        let access: serde_json::Map<String, serde_json::Value> = product
            .apis
            .iter()
            .map(|api| (api.clone(), json!({})))
            .collect();
        let policy = json!({ "id": id, "name": product.display_name.as_deref().unwrap_or(name), "apis": access });
        match serde_json::from_value(policy) {
            Ok(policy) => policies.push(policy),
            Err(e) => problems.push(Problem::error(at("Product", name), e.to_string())),
        }
        for (i, api_id) in product.apis.iter().enumerate() {
            let Some(api) = apis.iter_mut().find(|a| a.id == *api_id) else {
                problems.push(Problem::error(
                    at("Product", name),
                    format!("spec.apis[{i}]: no API with the id {api_id:?}"),
                ));
                continue;
            };
            if let Err(e) = wire_api(catalogue, name, product, api) {
                problems.push(Problem::error(
                    at("Product", name),
                    format!("spec.apis[{i}] ({api_id}): {e}"),
                ));
            }
        }
    }
    problems
}

/// One API of a product: the product's providers trusted, its scopes and every plan's scope
/// mapped.
fn wire_api(
    catalogue: &Catalogue,
    product_name: &str,
    product: &ProductSpec,
    api: &mut ApiSection,
) -> Result<(), String> {
    if api.keyless {
        return Err("the API is keyless: a product's API must check tokens".into());
    }
    // Only the portal's scopes may grant a product's API: a policy claim or default policies
    // would grant it to any token of the product's IdP, approved or not.
    if api.policies.claim.is_some() {
        return Err("the API takes policies from a claim (policies.claim); a product's API is granted by its scopes only".into());
    }
    if !api.policies.defaults.is_empty() {
        return Err("the API has default policies (policies.defaults); a product's API is granted by its scopes only".into());
    }
    if product.dcr.enabled {
        for provider_name in catalogue.providers_of(product) {
            let Some(provider) = catalogue.providers.get(provider_name) else {
                continue; // reported with the client type
            };
            let issuer = provider.issuer()?;
            let jwt = api.jwt.get_or_insert_with(|| crate::native::JwtSection {
                max_token_bytes: None,
                issuers: Vec::new(),
            });
            if !jwt
                .issuers
                .iter()
                .any(|i| i.issuer.as_deref() == Some(issuer.as_str()))
            {
                let section: IssuerSection = serde_json::from_value(json!({
                    "issuer": issuer,
                    "audiences": provider.audiences,
                }))
                .map_err(|e| e.to_string())?;
                jwt.issuers.push(section);
            }
            let claim = provider
                .scope_claim
                .as_deref()
                .unwrap_or(DEFAULT_SCOPE_CLAIM);
            let existing = api
                .policies
                .scope_claim
                .as_deref()
                .unwrap_or(DEFAULT_SCOPE_CLAIM);
            if existing != claim {
                return Err(format!(
                    "the API reads scopes from {existing:?}, provider {provider_name:?} puts them in {claim:?}"
                ));
            }
            if provider.scope_claim.is_some() {
                api.policies.scope_claim = Some(claim.to_string());
            }
        }
    }
    // A scope the API maps by hand as well would mix the portal's grants with others.
    for scope in product
        .scopes
        .iter()
        .chain(catalogue.plans.values().map(|p| &p.scope))
    {
        if let Some(mapped) = api.policies.scope_map.get(scope) {
            let names: Vec<&String> = match mapped {
                OneOrMany::One(name) => vec![name],
                OneOrMany::Many(names) => names.iter().collect(),
            };
            let by_hand: Vec<&String> = names
                .into_iter()
                .filter(|p| !p.starts_with(PRODUCT_PREFIX) && !p.starts_with(PLAN_PREFIX))
                .collect();
            if !by_hand.is_empty() {
                return Err(format!(
                    "the API maps the portal's scope {scope:?} to {by_hand:?} too; leave the portal's scopes to the portal"
                ));
            }
        }
    }
    let mut map = |scope: &str, policy: String| {
        let entry = api
            .policies
            .scope_map
            .entry(scope.to_string())
            .or_insert_with(|| OneOrMany::Many(Vec::new()));
        let mut list = std::mem::replace(entry, OneOrMany::Many(Vec::new())).into_vec();
        if !list.contains(&policy) {
            list.push(policy);
        }
        *entry = OneOrMany::Many(list);
    };
    for scope in &product.scopes {
        map(scope, product_policy(product_name));
    }
    for (plan_name, plan) in &catalogue.plans {
        map(&plan.scope, plan_policy(plan_name));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
