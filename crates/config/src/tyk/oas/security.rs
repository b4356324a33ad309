//! The `server.authentication` of a Tyk OAS API: the auth modes it enables, and its JWT
//! security scheme as the Classic `jwt_*` fields (its external OAuth scheme: `external_oauth`).

use super::external_oauth::is_external_oauth;
use super::{AUTH, Translation, in_effect};
use crate::tyk::{Fields, json_kind, report_unsupported};
use portico_core::HttpUrl;
use portico_core::config::Problem;
use serde_json::{Map, Value};

/// JWT scheme fields read (the rest are reported as unsupported when set).
const JWT_FIELDS: &[&str] = &[
    "enabled",
    "header",
    "query",
    "cookie",
    "source",
    "jwksURIs",
    "signingMethod",
    "identityBaseField",
    "subjectClaims",
    "policyFieldName",
    "basePolicyClaims",
    "scopes",
    "defaultPolicies",
    "issuedAtValidationSkew",
    "notBeforeValidationSkew",
    "expiresAtValidationSkew",
    "allowedIssuers",
    "allowedAudiences",
    "allowedSubjects",
    "jtiValidation",
    "customClaimValidation",
];
/// JWT scheme fields that make Tyk refuse tokens and that Portico does not enforce.
const JWT_UNENFORCED: &[&str] = &["allowedSubjects", "jtiValidation", "customClaimValidation"];

impl Translation<'_> {
    pub(super) fn authentication(
        &mut self,
        auth: &Map<String, Value>,
        problems: &mut Vec<Problem>,
    ) {
        let path = format!("{AUTH}.");
        let fields = Fields {
            obj: auth,
            location: self.location,
            prefix: &path,
        };
        if !fields.flag("enabled", problems) {
            self.set("use_keyless", Value::Bool(true), format!("{path}enabled"));
            return;
        }
        report_unsupported(
            auth,
            &[&[
                "enabled",
                "stripAuthorizationData",
                "baseIdentityProvider",
                "hmac",
                "oidc",
                "custom",
                "certificateAuth",
                "securitySchemes",
                "securityProcessingMode",
                "security",
            ]],
            self.location,
            &path,
            problems,
        );
        self.copy(auth, "stripAuthorizationData", "strip_auth_data", &path);
        for (member, classic) in [
            ("hmac", "enable_signature_checking"),
            ("oidc", "use_openid"),
            ("custom", "enable_coprocess_auth"),
            ("certificateAuth", "use_mutual_tls_auth"),
        ] {
            if auth.get(member).is_some_and(in_effect) {
                self.set(classic, Value::Bool(true), format!("{path}{member}"));
            }
        }
        // Tyk applies the schemes of the document's first security requirement only, unless
        // in "compliant" mode, where any one requirement may pass.
        let requirements = match self.doc.get("security") {
            Some(Value::Array(reqs)) => reqs.as_slice(),
            _ => &[],
        };
        let compliant = fields.text("securityProcessingMode", problems) == Some("compliant");
        let extra = auth
            .get("security")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if compliant && requirements.len() + extra > 1 {
            self.error(
                problems,
                format!("{path}securityProcessingMode \"compliant\" with several security requirements (any one of which admits a request) is not supported"),
            );
            return;
        }
        let first: Vec<&str> = requirements
            .first()
            .and_then(Value::as_object)
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let Some(schemes) = self.object(auth, "securitySchemes", &path, problems) else {
            return;
        };
        let components = self
            .doc
            .get("components")
            .and_then(|c| c.get("securitySchemes"))
            .and_then(Value::as_object);
        let mut jwt_seen = false;
        let mut external_oauth_seen = false;
        for (name, scheme) in schemes {
            let at = format!("{path}securitySchemes.{name}");
            let Some(scheme) = scheme.as_object() else {
                self.error(
                    problems,
                    format!("{at} must be an object, not {}", json_kind(scheme)),
                );
                continue;
            };
            if !(Fields {
                obj: scheme,
                location: self.location,
                prefix: &format!("{at}."),
            })
            .flag("enabled", problems)
            {
                continue;
            }
            if !first.contains(&name.as_str()) {
                problems.push(Problem::warning(
                    self.location,
                    format!("{at} is enabled but not in the document's first security requirement, so Tyk does not apply it"),
                ));
                continue;
            }
            let Some(component) = components
                .and_then(|c| c.get(name))
                .and_then(Value::as_object)
            else {
                self.error(
                    problems,
                    format!(
                        "{at}: components.securitySchemes.{name} is missing, so its type is unknown"
                    ),
                );
                continue;
            };
            let text = |key: &str| component.get(key).and_then(Value::as_str).unwrap_or("");
            match (text("type"), text("scheme"), text("bearerFormat")) {
                ("apiKey", _, _) => self.set("use_standard_auth", Value::Bool(true), at),
                ("http", "basic", _) => self.set("use_basic_auth", Value::Bool(true), at),
                // Tyk reads an oauth2 scheme with providers (and none of the newer oauth2
                // scheme's blocks) as external OAuth, any other one as its own OAuth 2.0.
                ("oauth2", _, _) if is_external_oauth(scheme) && external_oauth_seen => self
                    .error(
                        problems,
                        format!("{at}: a second external OAuth scheme is not supported"),
                    ),
                ("oauth2", _, _) if is_external_oauth(scheme) => {
                    external_oauth_seen = true;
                    self.external_oauth(name, scheme, problems);
                }
                ("oauth2", _, _) => self.set("use_oauth2", Value::Bool(true), at),
                ("http", "bearer", "JWT") if jwt_seen => self.error(
                    problems,
                    format!("{at}: a second JWT scheme is not supported"),
                ),
                ("http", "bearer", "JWT") => {
                    jwt_seen = true;
                    self.jwt(name, scheme, problems);
                }
                (kind, scheme_name, _) => self.error(
                    problems,
                    format!(
                        "{at}: components.securitySchemes.{name} (type {kind:?}, scheme {scheme_name:?}) is not an auth mode Tyk applies; Portico does not guess one"
                    ),
                ),
            }
        }
    }

    fn jwt(&mut self, name: &str, scheme: &Map<String, Value>, problems: &mut Vec<Problem>) {
        let path = format!("{AUTH}.securitySchemes.{name}.");
        report_unsupported(scheme, &[JWT_FIELDS], self.location, &path, problems);
        self.set("enable_jwt", Value::Bool(true), format!("{path}enabled"));
        for (from, to) in [
            ("source", "jwt_source"),
            ("signingMethod", "jwt_signing_method"),
            ("identityBaseField", "jwt_identity_base_field"),
            ("policyFieldName", "jwt_policy_field_name"),
            ("defaultPolicies", "jwt_default_policies"),
            ("issuedAtValidationSkew", "jwt_issued_at_validation_skew"),
            ("notBeforeValidationSkew", "jwt_not_before_validation_skew"),
            ("expiresAtValidationSkew", "jwt_expires_at_validation_skew"),
        ] {
            self.copy(scheme, from, to, &path);
        }
        // Newer list forms of single fields: one entry is that field.
        // Several JWKS endpoints: the first is `jwt_source`, each other one a trusted issuer
        // entry of its own with the same settings (a token verifies against any of them).
        let several_jwks = scheme
            .get("jwksURIs")
            .and_then(Value::as_array)
            .is_some_and(|uris| uris.len() > 1)
            && scheme.get("source").is_none_or(|s| s.is_null() || s == "");
        if several_jwks {
            let uris = scheme
                .get("jwksURIs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for (i, uri) in uris.enumerate() {
                let at = format!("{path}jwksURIs[{i}].url");
                match uri.get("url").and_then(Value::as_str).map(HttpUrl::try_new) {
                    Some(Ok(url)) if i == 0 => {
                        self.set("jwt_source", Value::String(url.as_str().into()), at)
                    }
                    Some(Ok(url)) => self.extra_jwks.push(url),
                    Some(Err(e)) => self.error(problems, format!("{at}: {e}")),
                    None => self.error(problems, format!("{at} must be a string (a URL)")),
                }
            }
        } else {
            self.one_of_list(scheme, "jwksURIs", "source", "jwt_source", &path, problems);
        }
        // Several subject claims: the first present one is the identity, as Portico's
        // identity claims are (then `sub`).
        let subjects = self.strings(scheme, "subjectClaims", &path, problems);
        if subjects.len() > 1 && scheme.get("identityBaseField").is_none_or(Value::is_null) {
            self.subject_claims = subjects;
        } else {
            self.one_of_list(
                scheme,
                "subjectClaims",
                "identityBaseField",
                "jwt_identity_base_field",
                &path,
                problems,
            );
        }
        self.one_of_list(
            scheme,
            "basePolicyClaims",
            "policyFieldName",
            "jwt_policy_field_name",
            &path,
            problems,
        );
        self.token_sources(scheme, &path, problems);
        for field in JWT_UNENFORCED {
            if scheme.get(*field).is_some_and(in_effect) {
                self.error(
                    problems,
                    format!("{path}{field}: Tyk refuses tokens that fail it; Portico does not enforce it"),
                );
            }
        }
        self.allowed_issuers = self.strings(scheme, "allowedIssuers", &path, problems);
        self.allowed_audiences = self.strings(scheme, "allowedAudiences", &path, problems);
        if let Some(scopes) = self.object(scheme, "scopes", &path, problems) {
            self.scopes(scopes, &format!("{path}scopes."), problems);
        }
    }

    /// `header`, `query` and `cookie` of a scheme (`path` ends with `.`): where Tyk looks for
    /// the token. Portico reads it from the Authorization header only.
    pub(super) fn token_sources(
        &self,
        scheme: &Map<String, Value>,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        if let Some(header) = self.object(scheme, "header", path, problems) {
            if header.get("enabled") == Some(&Value::Bool(false)) {
                self.error(
                    problems,
                    format!("{path}header.enabled is false: Tyk then ignores a token in the Authorization header, where Portico reads it"),
                );
            }
            if let Some(header_name) = header.get("name").and_then(Value::as_str)
                && !header_name.is_empty()
                && !header_name.eq_ignore_ascii_case("authorization")
            {
                problems.push(Problem::warning(
                    self.location,
                    format!("{path}header.name {header_name:?}: Portico reads the token from the Authorization header only"),
                ));
            }
        }
        for source in ["query", "cookie"] {
            if scheme.get(source).is_some_and(in_effect) {
                problems.push(Problem::warning(
                    self.location,
                    format!(
                        "{path}{source}: Portico reads the token from the Authorization header only"
                    ),
                ));
            }
        }
    }

    /// A list of strings; absent or null is empty.
    fn strings(
        &self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Vec<String> {
        match obj.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(other) => {
                self.error(
                    problems,
                    format!(
                        "{path}{key} must be an array of strings, not {}",
                        json_kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// `list` (a newer list form of the single field `single`): one entry stands for `single`;
    /// more than one, or one besides a different `single`, is an error. `jwksURIs` entries are
    /// objects with a `url`.
    fn one_of_list(
        &mut self,
        obj: &Map<String, Value>,
        list: &str,
        single: &str,
        classic: &str,
        path: &str,
        problems: &mut Vec<Problem>,
    ) {
        let entries: Vec<String> = match obj.get(list) {
            Some(Value::Array(items)) if list == "jwksURIs" => {
                let urls: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.get("url").and_then(Value::as_str).map(str::to_string))
                    .collect();
                let Some(urls) = urls else {
                    self.error(
                        problems,
                        format!("{path}{list} must be an array of objects with a url"),
                    );
                    return;
                };
                urls
            }
            _ => self.strings(obj, list, path, problems),
        };
        let current = obj
            .get(single)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        match entries.as_slice() {
            [] => {}
            [one] if current.is_none_or(|c| c == one) => {
                self.set(classic, Value::String(one.clone()), format!("{path}{list}"));
            }
            _ if current.is_some() => self.error(
                problems,
                format!("{path}{list} and {path}{single} differ; set one of them"),
            ),
            _ => self.error(
                problems,
                format!("{path}{list}: more than one entry is not supported yet; give one"),
            ),
        }
    }

    fn scopes(&mut self, scopes: &Map<String, Value>, path: &str, problems: &mut Vec<Problem>) {
        report_unsupported(
            scopes,
            &[&["claimName", "claims", "scopeToPolicyMapping"]],
            self.location,
            path,
            problems,
        );
        self.copy(scopes, "claimName", "jwt_scope_claim_name", path);
        self.one_of_list(
            scopes,
            "claims",
            "claimName",
            "jwt_scope_claim_name",
            path,
            problems,
        );
        let mapping = match scopes.get("scopeToPolicyMapping") {
            None | Some(Value::Null) => return,
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                self.error(
                    problems,
                    format!(
                        "{path}scopeToPolicyMapping must be an array, not {}",
                        json_kind(other)
                    ),
                );
                return;
            }
        };
        let mut map = Map::new();
        for (i, entry) in mapping.iter().enumerate() {
            let at = format!("{path}scopeToPolicyMapping[{i}]");
            let scope = entry.get("scope").and_then(Value::as_str);
            let policy = entry.get("policyId").and_then(Value::as_str);
            let (Some(scope), Some(policy)) = (scope, policy) else {
                self.error(
                    problems,
                    format!("{at} must be an object with the strings scope and policyId"),
                );
                continue;
            };
            if map
                .insert(scope.into(), Value::String(policy.into()))
                .is_some()
            {
                self.error(
                    problems,
                    format!("{at}: scope {scope:?} is mapped twice; Portico does not guess which policy Tyk would take"),
                );
            }
        }
        self.set(
            "jwt_scope_to_policy_mapping",
            Value::Object(map),
            format!("{path}scopeToPolicyMapping"),
        );
    }
}
