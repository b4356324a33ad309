//! The external OAuth security scheme of a Tyk OAS API (Tyk's `ExternalOAuth`, in
//! `apidef/oas/security.go`): an `oauth2` scheme with `providers`, read as the Classic
//! `external_oauth` it stands for. The shape is the Classic one with camelCase members; the
//! token sources (`header`, `query`, `cookie`) are read as for a JWT scheme.

use super::{AUTH, Translation};
use crate::tyk::external_oauth::unknown_field;
use crate::tyk::is_set;
use portico_core::config::Problem;
use serde_json::{Map, Value};

/// Members of the scheme itself.
const SCHEME_FIELDS: &[&str] = &["enabled", "header", "query", "cookie", "providers"];
/// Blocks of Tyk's newer `oauth2` scheme, which Tyk reads as that scheme, not as external OAuth.
const OAUTH2_SCHEME_BLOCKS: &[&str] = &["scopeCheck", "protectedResourceMetadata", "tokenExchange"];

/// A member of one of the scheme's objects: its OAS name, its Classic name, and the members of
/// its value when that is an object too.
struct Member {
    oas: &'static str,
    classic: &'static str,
    nested: Option<&'static [Member]>,
}

const fn leaf(oas: &'static str, classic: &'static str) -> Member {
    Member {
        oas,
        classic,
        nested: None,
    }
}

const fn object(oas: &'static str, classic: &'static str, nested: &'static [Member]) -> Member {
    Member {
        oas,
        classic,
        nested: Some(nested),
    }
}

const PROVIDER: &[Member] = &[
    object("jwt", "jwt", JWT),
    object("introspection", "introspection", INTROSPECTION),
];
const JWT: &[Member] = &[
    leaf("enabled", "enabled"),
    leaf("signingMethod", "signing_method"),
    leaf("source", "source"),
    leaf("identityBaseField", "identity_base_field"),
    leaf("issuedAtValidationSkew", "issued_at_validation_skew"),
    leaf("notBeforeValidationSkew", "not_before_validation_skew"),
    leaf("expiresAtValidationSkew", "expires_at_validation_skew"),
];
const INTROSPECTION: &[Member] = &[
    leaf("enabled", "enabled"),
    leaf("url", "url"),
    leaf("clientId", "client_id"),
    leaf("clientSecret", "client_secret"),
    leaf("identityBaseField", "identity_base_field"),
    object("cache", "cache", CACHE),
];
const CACHE: &[Member] = &[leaf("enabled", "enabled"), leaf("timeout", "timeout")];

/// Whether Tyk reads this `oauth2` scheme as external OAuth: it has providers, and none of the
/// newer `oauth2` scheme's blocks. `providers` of another type counts, so that the Classic
/// loader reports it.
pub(super) fn is_external_oauth(scheme: &Map<String, Value>) -> bool {
    let has_providers = match scheme.get("providers") {
        None | Some(Value::Null) => false,
        Some(Value::Array(providers)) => !providers.is_empty(),
        Some(_) => true,
    };
    has_providers && !OAUTH2_SCHEME_BLOCKS.iter().any(|b| scheme.contains_key(*b))
}

impl Translation<'_> {
    /// The enabled external OAuth scheme `name`, as the Classic `external_oauth`.
    pub(super) fn external_oauth(
        &mut self,
        name: &str,
        scheme: &Map<String, Value>,
        problems: &mut Vec<Problem>,
    ) {
        let path = format!("{AUTH}.securitySchemes.{name}");
        for (key, value) in scheme {
            if !SCHEME_FIELDS.contains(&key.as_str()) && is_set(value) {
                self.error(problems, unknown_field(&format!("{path}.{key}")));
            }
        }
        self.token_sources(scheme, &format!("{path}."), problems);
        let providers = match scheme.get("providers") {
            Some(Value::Array(providers)) => Value::Array(
                providers
                    .iter()
                    .enumerate()
                    .map(|(i, provider)| {
                        self.translate(
                            provider,
                            PROVIDER,
                            &format!("{path}.providers[{i}]"),
                            &format!("external_oauth.providers[{i}]"),
                            problems,
                        )
                    })
                    .collect(),
            ),
            // Not an array: the Classic loader says so.
            other => other.cloned().unwrap_or(Value::Null),
        };
        let mut classic = Map::new();
        classic.insert("enabled".into(), Value::Bool(true));
        classic.insert("providers".into(), providers);
        self.set("external_oauth", Value::Object(classic), path.clone());
        for member in ["enabled", "providers"] {
            self.names.push((
                format!("external_oauth.{member}"),
                format!("{path}.{member}"),
            ));
        }
    }

    /// `value` (at `oas`) with its members renamed to the Classic ones, recording each name
    /// (the Classic one is at `classic`). A member Portico does not know is an error here, and
    /// not copied: it may be a Classic name, which Tyk would not read in an OAS document.
    fn translate(
        &mut self,
        value: &Value,
        members: &[Member],
        oas: &str,
        classic: &str,
        problems: &mut Vec<Problem>,
    ) -> Value {
        self.names.push((classic.into(), oas.into()));
        let Value::Object(obj) = value else {
            // The Classic loader reports the wrong type.
            return value.clone();
        };
        let mut out = Map::new();
        for (key, member) in obj {
            let at = format!("{oas}.{key}");
            match members.iter().find(|m| m.oas == key) {
                Some(known) => {
                    let classic_at = format!("{classic}.{}", known.classic);
                    let translated = match known.nested {
                        Some(nested) => self.translate(member, nested, &at, &classic_at, problems),
                        None => {
                            self.names.push((classic_at, at));
                            member.clone()
                        }
                    };
                    out.insert(known.classic.into(), translated);
                }
                None if is_set(member) => self.error(problems, unknown_field(&at)),
                None => {}
            }
        }
        Value::Object(out)
    }
}
