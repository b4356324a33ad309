//! Resource documents: the shape `portico apply` reads, the admin API serves and the store
//! keeps — one YAML (or JSON) document per resource,
//!
//! ```yaml
//! kind: Api
//! metadata: { name: payments }
//! spec: { listen_path: /payments, upstream: "http://payments:8080", jwt: { issuers: [corp] } }
//! ---
//! kind: Issuer
//! metadata: { name: corp }
//! spec: { issuer: "https://idp.example", jwks_url: "https://idp.example/jwks", audiences: [payments] }
//! ```
//!
//! A spec is the native file's section of that kind without its `id` (the name is the id):
//! `Api` an entry of `apis`, `Policy` an entry of `policies`, `Issuer` an entry of an API's
//! `jwt.issuers`, which an `Api` then names instead of repeating it. One optional `Settings`
//! document holds the native file's top-level settings (listeners, caches, …). The developer
//! portal's kinds (`OAuthProvider`, `ClientType`, `Product`, `Plan`) are read by
//! [`crate::portal`], which adds what they imply for the gateway.

use crate::env::Env;
use crate::native::{self, ApiSection, FileConfig, IssuerSection, NativeConfig, PolicySection};
use crate::portal;
use portico_core::config::Problem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The kinds of resource documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Api,
    Policy,
    Issuer,
    Settings,
    /// The developer portal's (`crate::portal`).
    OAuthProvider,
    ClientType,
    Product,
    Plan,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Api,
        Kind::Policy,
        Kind::Issuer,
        Kind::Settings,
        Kind::OAuthProvider,
        Kind::ClientType,
        Kind::Product,
        Kind::Plan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "Api",
            Kind::Policy => "Policy",
            Kind::Issuer => "Issuer",
            Kind::Settings => "Settings",
            Kind::OAuthProvider => "OAuthProvider",
            Kind::ClientType => "ClientType",
            Kind::Product => "Product",
            Kind::Plan => "Plan",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub kind: Kind,
    pub metadata: Metadata,
    pub spec: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    /// The stored version (in what `get` prints and the admin API answers; on a write, the
    /// version the writer expects to replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

impl Document {
    /// Where problems of this document are reported: `FILE: Api "payments"`.
    pub fn location(&self, source: &str) -> String {
        format!("{source}: {} {:?}", self.kind, self.metadata.name)
    }
}

/// Whether a YAML text is a file of documents (its first document has a `kind`) rather than
/// a native configuration file.
pub fn is_documents_file(text: &str) -> bool {
    let first: Result<Vec<BTreeMap<String, serde::de::IgnoredAny>>, _> =
        serde_saphyr::from_multiple(text);
    first.is_ok_and(|docs| docs.first().is_some_and(|d| d.contains_key("kind")))
}

/// Every document of a YAML text (`---`-separated), or the problems that stop it.
pub fn parse_yaml(text: &str, source: &str) -> Result<Vec<Document>, Vec<Problem>> {
    let docs: Vec<Document> = serde_saphyr::from_multiple(text)
        .map_err(|e| vec![Problem::error(source, e.to_string())])?;
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let name = &doc.metadata.name;
        if let Some(reason) = portico_core::resource::name_problem(name) {
            problems.push(Problem::error(
                format!("{source}: document {}", i + 1),
                format!("metadata.name {reason}"),
            ));
        }
        if let Some(first) = seen.insert((doc.kind, name.clone()), i + 1) {
            problems.push(Problem::error(
                doc.location(source),
                format!("also defined by document {first}"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(docs)
    } else {
        Err(problems)
    }
}

/// Reads a spec into its section type; the error names the field path, e.g.
/// `spec.jwt.issuers[0].algorithms: invalid type: string "RS256", expected a sequence`.
pub(crate) fn section<T: DeserializeOwned>(spec: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("spec: {inner}")
        } else {
            format!("spec.{path}: {inner}")
        }
    })
}

/// A spec with the document's name as its `id` (a spec giving another `id` is refused).
fn with_id(doc: &Document) -> Result<Value, String> {
    let mut spec = doc.spec.clone();
    let Some(fields) = spec.as_object_mut() else {
        return Err("spec: must be a mapping".into());
    };
    match fields.get("id") {
        Some(Value::String(id)) if *id == doc.metadata.name => {}
        Some(_) => return Err("spec.id: the id is metadata.name; leave it out".into()),
        None => {
            fields.insert("id".into(), Value::String(doc.metadata.name.clone()));
        }
    }
    Ok(spec)
}

/// An `Api` spec whose `jwt.issuers` entries that name an `Issuer` document are replaced by
/// that document's spec.
fn resolve_issuers(spec: &mut Value, issuers: &BTreeMap<&str, &Value>) -> Result<(), String> {
    let Some(entries) = spec
        .get_mut("jwt")
        .and_then(|jwt| jwt.get_mut("issuers"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    for (i, entry) in entries.iter_mut().enumerate() {
        if let Value::String(name) = entry {
            let Some(issuer) = issuers.get(name.as_str()) else {
                return Err(format!(
                    "spec.jwt.issuers[{i}]: no Issuer document named {name:?}"
                ));
            };
            *entry = (*issuer).clone();
        }
    }
    Ok(())
}

/// Checks one document on its own (the admin API's validation): its spec has the shape of
/// its kind. References between documents are checked by [`to_native`].
pub fn check(doc: &Document) -> Result<(), String> {
    match doc.kind {
        Kind::Api => {
            let mut spec = with_id(doc)?;
            // Named issuers are resolved later; here any name passes.
            if let Some(entries) = spec
                .get_mut("jwt")
                .and_then(|jwt| jwt.get_mut("issuers"))
                .and_then(Value::as_array_mut)
            {
                entries.retain(|e| !e.is_string());
                if entries.is_empty() {
                    entries.push(serde_json::json!({ "secret_base64": "" }));
                }
            }
            section::<ApiSection>(spec).map(drop)
        }
        Kind::Policy => section::<PolicySection>(with_id(doc)?).map(drop),
        Kind::Issuer => section::<IssuerSection>(doc.spec.clone()).map(drop),
        Kind::Settings => {
            // Shared through the store, they would apply to every node at once: what belongs
            // to one process is set on its command line instead.
            for local in PROCESS_LOCAL {
                if doc.spec.get(local).is_some() {
                    return Err(format!(
                        "spec.{local}: set on each node's command line, not in the store"
                    ));
                }
            }
            settings(doc).map(drop)
        }
        Kind::OAuthProvider | Kind::ClientType | Kind::Product | Kind::Plan => {
            crate::portal::check(doc)
        }
    }
}

/// Settings of one process, never shared through the store.
const PROCESS_LOCAL: [&str; 6] = [
    "listen",
    "admin_listen",
    "listen_tls",
    "data_dir",
    "worker_threads",
    "log",
];

fn settings(doc: &Document) -> Result<FileConfig, String> {
    let file: FileConfig = section(doc.spec.clone())?;
    if !file.apis.is_empty() || !file.policies.is_empty() {
        return Err(
            "spec: APIs and policies are documents of their own (kind: Api, kind: Policy)".into(),
        );
    }
    Ok(file)
}

/// Converts a set of documents into the native configuration they describe: the same checks,
/// defaults and problems as a native file. `source` names where they came from (a file, or
/// the store) in every problem.
pub fn to_native(docs: &[Document], source: &str, base_dir: &Path, env: &dyn Env) -> NativeConfig {
    let mut problems = Vec::new();
    let mut file = FileConfig::default();
    let issuers: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|d| d.kind == Kind::Issuer)
        .map(|d| (d.metadata.name.as_str(), &d.spec))
        .collect();
    let mut settings_seen = false;
    for doc in docs {
        let converted = match doc.kind {
            Kind::Api => with_id(doc).and_then(|mut spec| {
                resolve_issuers(&mut spec, &issuers)?;
                file.apis.push(section(spec)?);
                Ok(())
            }),
            Kind::Policy => with_id(doc).and_then(|spec| {
                file.policies.push(section(spec)?);
                Ok(())
            }),
            Kind::Issuer => section::<IssuerSection>(doc.spec.clone()).map(drop),
            Kind::Settings if settings_seen => Err("only one Settings document is allowed".into()),
            Kind::Settings => settings(doc).map(|s| {
                settings_seen = true;
                let (apis, policies) = (
                    std::mem::take(&mut file.apis),
                    std::mem::take(&mut file.policies),
                );
                file = FileConfig {
                    apis,
                    policies,
                    ..s
                };
            }),
            // Read below, once every API is in.
            Kind::OAuthProvider | Kind::ClientType | Kind::Product | Kind::Plan => Ok(()),
        };
        if let Err(e) = converted {
            problems.push(Problem::error(doc.location(source), e));
        }
    }
    let (catalogue, mut portal_problems) = portal::Catalogue::read(docs, source);
    problems.append(&mut portal_problems);
    problems.append(&mut portal::wire(
        &catalogue,
        &mut file.apis,
        &mut file.policies,
        source,
    ));
    let mut native = native::convert(file, source, base_dir, env);
    problems.append(&mut native.problems);
    native.problems = problems;
    native
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::MapEnv;

    const DOCS: &str = r#"
kind: Issuer
metadata: { name: corp }
spec: { issuer: "https://idp.example", secret_base64: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", algorithms: [HS256] }
---
kind: Api
metadata: { name: payments }
spec:
  listen_path: /payments
  upstream: "http://127.0.0.1:9000"
  jwt: { issuers: [corp] }
  policies: { scope_map: { pay: [gold] } }
---
kind: Policy
metadata: { name: gold }
spec: { apis: { payments: {} }, rate_limit: { requests: 10, per_secs: 1 } }
---
kind: Settings
metadata: { name: gateway }
spec: { listen: "127.0.0.1:18090" }
"#;

    #[test]
    fn documents_become_the_configuration_they_describe() {
        assert!(is_documents_file(DOCS));
        assert!(!is_documents_file("listen: 127.0.0.1:8080\napis: []\n"));
        let docs = parse_yaml(DOCS, "docs.yaml").unwrap();
        assert_eq!(docs.len(), 4);
        let native = to_native(&docs, "docs.yaml", Path::new("."), &MapEnv::default());
        assert!(native.problems.is_empty(), "{:?}", native.problems);
        let api = &native.gateway.apis[0];
        assert_eq!(&*api.id, "payments");
        assert!(native.gateway.policies.get("gold").is_some());
        assert_eq!(native.process.listen.port(), 18090);
    }

    #[test]
    fn problems_name_the_document_and_the_field() {
        let docs = parse_yaml(
            "kind: Api\nmetadata: {name: payments}\nspec: {listen_path: /p, upstream: 'http://x', jwt: {issuers: [nobody]}}\n---\n\
             kind: Policy\nmetadata: {name: gold}\nspec: {rate_limit: {requests: ten, per_secs: 1}}\n",
            "docs.yaml",
        )
        .unwrap();
        let native = to_native(&docs, "docs.yaml", Path::new("."), &MapEnv::default());
        let shown: Vec<String> = native
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.location, p.message))
            .collect();
        assert!(
            shown.iter().any(|p| p.starts_with("docs.yaml: Api \"payments\": spec.jwt.issuers[0]: no Issuer document named \"nobody\"")),
            "{shown:?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p.starts_with("docs.yaml: Policy \"gold\": spec.rate_limit.requests:")),
            "{shown:?}"
        );
        let policy = &docs[1];
        assert!(
            check(policy)
                .unwrap_err()
                .starts_with("spec.rate_limit.requests:")
        );
    }

    #[test]
    fn bad_document_files_are_refused() {
        assert!(parse_yaml("kind: Widget\nmetadata: {name: x}\nspec: {}\n", "f").is_err());
        assert!(parse_yaml("kind: Api\nmetadata: {name: x}\nspec: {}\nextra: 1\n", "f").is_err());
        let twice = "kind: Policy\nmetadata: {name: x}\nspec: {}\n---\nkind: Policy\nmetadata: {name: x}\nspec: {}\n";
        assert!(
            parse_yaml(twice, "f").unwrap_err()[0]
                .message
                .contains("also defined")
        );
        let id = Document {
            kind: Kind::Api,
            metadata: Metadata {
                name: "a".into(),
                version: None,
            },
            spec: serde_json::json!({"id": "b", "listen_path": "/a", "upstream": "http://x"}),
        };
        assert!(check(&id).unwrap_err().contains("spec.id"));
    }
}
