//! Tyk OAS API definitions: an OpenAPI document whose `x-tyk-api-gateway` extension holds the
//! gateway settings. Tyk itself reads them by converting the extension to a Classic definition;
//! so does Portico: `info`, `upstream`, `server` and the JWT or external OAuth security scheme
//! become the Classic fields they stand for and go through the Classic loader (same checks,
//! same refusals), with problems naming the OAS fields. `middleware` becomes the API's
//! endpoint rules here, with the Classic loader's verdict on each middleware.

mod external_oauth;
mod middleware;
mod security;

use super::restrictions::flag;
use super::{TykOptions, is_set, json_kind, report_unsupported};
use portico_core::api::ApiAuth;
use portico_core::config::Problem;
use portico_core::jwt::KeySourceSpec;
use portico_core::policy::EndpointRules;
use portico_core::{ApiSpec, ClaimPath, HttpUrl, IdentitySpec};
use serde_json::{Map, Value};

const EXT: &str = "x-tyk-api-gateway";
const AUTH: &str = "x-tyk-api-gateway.server.authentication";

/// Whether a definition is an OpenAPI document (a Classic one has neither member).
pub(super) fn is_oas_document(obj: &Map<String, Value>) -> bool {
    obj.contains_key("openapi") || obj.contains_key(EXT)
}

/// Whether a Tyk OAS setting is in effect: an object with `enabled` is on when that is not
/// `false` (a mistyped flag counts as on, so a restriction is not dropped), one with `plugins`
/// when a plugin is; an array when any entry is; anything else when set.
fn in_effect(value: &Value) -> bool {
    match value {
        Value::Object(o) if o.contains_key("enabled") => flag(o, "enabled"),
        Value::Object(o) if o.contains_key("plugins") => o.get("plugins").is_some_and(in_effect),
        Value::Array(items) => items.iter().any(in_effect),
        other => is_set(other),
    }
}

/// The Classic definition an OAS document stands for, the OAS name of each Classic field set,
/// and what the Classic shape has no room for.
struct Translation<'a> {
    doc: &'a Map<String, Value>,
    location: &'a str,
    classic: Map<String, Value>,
    /// Classic field -> OAS field, for problems found by the Classic loader.
    names: Vec<(String, String)>,
    rules: EndpointRules,
    ignore_case: bool,
    allowed_issuers: Vec<String>,
    allowed_audiences: Vec<String>,
    /// `jwksURIs` after the first (which is `jwt_source`).
    extra_jwks: Vec<HttpUrl>,
    /// `subjectClaims` with more than one claim (a single one is `jwt_identity_base_field`).
    subject_claims: Vec<String>,
}

impl<'a> Translation<'a> {
    fn error(&self, problems: &mut Vec<Problem>, message: String) {
        problems.push(Problem::error(self.location, message));
    }

    /// `parent[key]` as an object: `None` when absent or null; an error for another type.
    fn object<'b>(
        &self,
        parent: &'b Map<String, Value>,
        key: &str,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<&'b Map<String, Value>> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.error(
                    problems,
                    format!("{path}{key} must be an object, not {}", json_kind(other)),
                );
                None
            }
        }
    }

    /// Sets the Classic field `to` (`proxy.x` for a member of `proxy`) to `value`.
    fn set(&mut self, to: &str, value: Value, oas_name: String) {
        match to.split_once('.') {
            Some((outer, inner)) => {
                let outer_value = self
                    .classic
                    .entry(outer)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(o) = outer_value {
                    match inner.split_once('.') {
                        Some((middle, last)) => {
                            let middle_value =
                                o.entry(middle).or_insert_with(|| Value::Object(Map::new()));
                            if let Value::Object(m) = middle_value {
                                m.insert(last.into(), value);
                            }
                        }
                        None => {
                            o.insert(inner.into(), value);
                        }
                    }
                }
            }
            None => {
                self.classic.insert(to.into(), value);
            }
        }
        self.names.push((to.into(), oas_name));
    }

    /// Copies `src[from]`, when present, to the Classic field `to`.
    fn copy(&mut self, src: &Map<String, Value>, from: &str, to: &str, path: &str) {
        if let Some(value) = src.get(from) {
            self.set(to, value.clone(), format!("{path}{from}"));
        }
    }

    fn info(&mut self, ext: &Map<String, Value>, problems: &mut Vec<Problem>) {
        let path = format!("{EXT}.info.");
        let Some(info) = self.object(ext, "info", &format!("{EXT}."), problems) else {
            self.error(problems, format!("{EXT}.info is required"));
            return;
        };
        // Tyk's schema requires it: a document without it is not one Tyk serves.
        if info
            .get("state")
            .and_then(|s| s.get("active"))
            .is_none_or(Value::is_null)
        {
            self.error(problems, format!("{path}state.active is required"));
        }
        report_unsupported(
            info,
            &[&[
                "id",
                "dbId",
                "orgId",
                "name",
                "expiration",
                "state",
                "versioning",
            ]],
            self.location,
            &path,
            problems,
        );
        self.copy(info, "id", "api_id", &path);
        self.copy(info, "name", "name", &path);
        self.copy(info, "orgId", "org_id", &path);
        self.copy(info, "expiration", "expiration", &path);
        if let Some(state) = self.object(info, "state", &path, problems) {
            let path = format!("{path}state.");
            report_unsupported(
                state,
                &[&["active", "internal"]],
                self.location,
                &path,
                problems,
            );
            self.copy(state, "active", "active", &path);
            self.copy(state, "internal", "internal", &path);
        }
        if let Some(versioning) = self.object(info, "versioning", &path, problems)
            && in_effect(&Value::Object(versioning.clone()))
        {
            self.error(
                problems,
                format!("{path}versioning: Portico serves one version of an API and does not route requests by version"),
            );
        }
    }

    fn upstream(&mut self, ext: &Map<String, Value>, problems: &mut Vec<Problem>) {
        let path = format!("{EXT}.upstream.");
        let Some(upstream) = self.object(ext, "upstream", &format!("{EXT}."), problems) else {
            return;
        };
        report_unsupported(
            upstream,
            &[&["url", "tlsTransport", "rateLimit"]],
            self.location,
            &path,
            problems,
        );
        self.copy(upstream, "url", "proxy.target_url", &path);
        if let Some(tls) = self.object(upstream, "tlsTransport", &path, problems) {
            let path = format!("{path}tlsTransport.");
            report_unsupported(
                tls,
                &[&["insecureSkipVerify"]],
                self.location,
                &path,
                problems,
            );
            self.copy(
                tls,
                "insecureSkipVerify",
                "proxy.transport.ssl_insecure_skip_verify",
                &path,
            );
        }
        if upstream.get("rateLimit").is_some_and(in_effect) {
            self.error(
                problems,
                format!("{path}rateLimit: an API-wide rate limit is not supported; set the limit in a policy"),
            );
        }
    }

    fn server(&mut self, ext: &Map<String, Value>, problems: &mut Vec<Problem>) {
        let path = format!("{EXT}.server.");
        let Some(server) = self.object(ext, "server", &format!("{EXT}."), problems) else {
            // No authentication: keyless, as in Tyk.
            self.set("use_keyless", Value::Bool(true), format!("{AUTH}.enabled"));
            return;
        };
        report_unsupported(
            server,
            &[&[
                "listenPath",
                "authentication",
                "customDomain",
                "clientCertificates",
            ]],
            self.location,
            &path,
            problems,
        );
        if let Some(listen) = self.object(server, "listenPath", &path, problems) {
            let path = format!("{path}listenPath.");
            report_unsupported(
                listen,
                &[&["value", "strip"]],
                self.location,
                &path,
                problems,
            );
            self.copy(listen, "value", "proxy.listen_path", &path);
            self.copy(listen, "strip", "proxy.strip_listen_path", &path);
        }
        if let Some(domain) = self.object(server, "customDomain", &path, problems)
            && flag(domain, "enabled")
        {
            // The Classic check refuses it: Tyk serves the API on that host only.
            if let Some(name) = domain.get("name") {
                self.set("domain", name.clone(), format!("{path}customDomain.name"));
            }
        }
        if server.get("clientCertificates").is_some_and(in_effect) {
            self.set(
                "use_mutual_tls_auth",
                Value::Bool(true),
                format!("{path}clientCertificates"),
            );
        }
        match self.object(server, "authentication", &path, problems) {
            Some(auth) => self.authentication(auth, problems),
            None => self.set("use_keyless", Value::Bool(true), format!("{AUTH}.enabled")),
        }
    }
}

/// `message` with the Classic field names it mentions replaced by the OAS fields they came
/// from. Names with `_` or `.` are replaced wherever they stand alone; plain words (`active`,
/// `internal`, …) only at the start, where the Classic loader names its field.
fn rename_fields(message: &str, names: &[(String, String)]) -> String {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out = message.to_string();
    let mut names: Vec<&(String, String)> = names.iter().collect();
    names.sort_by_key(|(classic, _)| std::cmp::Reverse(classic.len()));
    for (classic, oas) in names {
        let anywhere = classic.contains('_') || classic.contains('.');
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let mut at_start = true;
        while let Some(i) = rest.find(classic.as_str()) {
            let before_ok = rest[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !is_name_char(c));
            let after = &rest[i + classic.len()..];
            let after_ok = after.chars().next().is_none_or(|c| !is_name_char(c));
            let here_ok = anywhere || (at_start && i == 0);
            result.push_str(&rest[..i]);
            if before_ok && after_ok && here_ok {
                result.push_str(oas);
            } else {
                result.push_str(classic);
            }
            rest = after;
            at_start = false;
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// Converts a Tyk OAS API definition, as Tyk does: through the Classic definition it stands
/// for. Problems name the OAS fields.
pub(super) fn convert_oas_api(
    doc: &Map<String, Value>,
    location: &str,
    options: TykOptions,
    problems: &mut Vec<Problem>,
) -> Option<ApiSpec> {
    let ext = match doc.get(EXT) {
        Some(Value::Object(ext)) => ext,
        None => {
            problems.push(Problem::error(
                location,
                format!("an OpenAPI document without {EXT} is not a Tyk API definition"),
            ));
            return None;
        }
        Some(other) => {
            problems.push(Problem::error(
                location,
                format!("{EXT} must be an object, not {}", json_kind(other)),
            ));
            return None;
        }
    };
    if !doc.get("openapi").is_some_and(Value::is_string) {
        problems.push(Problem::error(
            location,
            "openapi (the OpenAPI version, e.g. \"3.0.3\") is required beside x-tyk-api-gateway",
        ));
        return None;
    }
    let start = problems.len();
    let mut t = Translation {
        doc,
        location,
        classic: Map::new(),
        names: Vec::new(),
        rules: EndpointRules::default(),
        ignore_case: false,
        allowed_issuers: Vec::new(),
        allowed_audiences: Vec::new(),
        subject_claims: Vec::new(),
        extra_jwks: Vec::new(),
    };
    report_unsupported(
        ext,
        &[&["info", "upstream", "server", "middleware"]],
        location,
        &format!("{EXT}."),
        problems,
    );
    let own = problems.len();
    t.info(ext, problems);
    t.upstream(ext, problems);
    t.server(ext, problems);
    t.middleware(ext, problems);
    let own_errors = super::has_errors(&problems[own..]);
    let mark = problems.len();
    let spec = super::convert_api(&t.classic, location, options, problems);
    for problem in &mut problems[mark..] {
        problem.message = rename_fields(&problem.message, &t.names);
    }
    if spec.is_none() && !super::has_errors(&problems[mark..]) {
        // Not loaded (inactive, internal, or skipped): what else it says does not matter.
        problems.drain(start..mark);
        return None;
    }
    let mut spec = spec?;
    if own_errors {
        return None;
    }
    spec.endpoints = t.rules;
    if !t.subject_claims.is_empty() {
        let at = format!("{AUTH}.securitySchemes: subjectClaims");
        let claims: Result<Vec<ClaimPath>, String> = t
            .subject_claims
            .iter()
            .map(String::as_str)
            .chain(["sub"])
            .map(ClaimPath::try_new)
            .collect();
        match claims.and_then(|mut claims| {
            claims.dedup();
            IdentitySpec::try_new(claims)
        }) {
            Ok(identity) => spec.identity = identity,
            Err(e) => {
                problems.push(Problem::error(location, format!("{at}: {e}")));
                return None;
            }
        }
    }
    if let ApiAuth::Jwt(jwt) = &mut spec.auth {
        for trust in &mut jwt.issuers {
            trust.audiences = t.allowed_audiences.clone();
        }
        if let Some(first) = jwt.issuers.first().cloned() {
            jwt.issuers.extend(t.extra_jwks.iter().map(|url| {
                let mut trust = first.clone();
                trust.keys = KeySourceSpec::JwksUrl(url.clone());
                trust
            }));
        }
        // Tyk admits a token from any allowed issuer: one trusted issuer each, same keys.
        if !t.allowed_issuers.is_empty() {
            jwt.issuers = jwt
                .issuers
                .iter()
                .flat_map(|trust| {
                    t.allowed_issuers.iter().map(|iss| {
                        let mut trust = trust.clone();
                        trust.issuer = Some(iss.clone());
                        trust
                    })
                })
                .collect();
        }
    }
    Some(spec)
}

#[cfg(test)]
mod tests;
