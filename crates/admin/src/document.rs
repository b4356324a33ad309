//! The JSON shape of a resource: the document `portico apply` reads from YAML and
//! `portico get` prints, so what one prints the other accepts.
//!
//! ```json
//! { "kind": "Api",
//!   "metadata": { "name": "payments", "version": 3,
//!                 "created_at": "2026-12-01T10:00:00.000Z", "updated_at": "2026-12-02T09:30:00.000Z" },
//!   "spec": { "listen_path": "/payments" } }
//! ```

use crate::kinds::KindName;
use portico_store::StoredResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// A resource document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// `Api`, `Policy`, `Issuer`.
    #[schema(schema_with = <KindName as utoipa::PartialSchema>::schema)]
    pub kind: String,
    pub metadata: Metadata,
    /// The kind's settings; checked by the validator the admin API was given. Values of secret
    /// fields are shown as `"<redacted>"`.
    #[schema(value_type = Object)]
    pub spec: Value,
}

/// Name and version of a resource; the version and the times are set by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique within the kind; 1 to 256 bytes, not blank, without control characters
    /// (`portico_core::resource::name_problem`).
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    /// Grows by one with each change. On `PUT`, a version given here (or in `If-Match`)
    /// makes the write conditional; `apply` ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// RFC 3339, UTC; ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_at: Option<String>,
    /// RFC 3339, UTC; ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_at: Option<String>,
}

/// A page of resources of one kind, ordered by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceList {
    pub items: Vec<Document>,
}

impl Document {
    /// The stored resource as a document, its spec passed through `redact`.
    pub fn from_stored(stored: StoredResource, redact: &crate::Redact) -> Self {
        let mut spec = stored.spec;
        redact(&stored.kind, &mut spec);
        Document {
            kind: stored.kind,
            metadata: Metadata {
                name: stored.name,
                version: Some(stored.version),
                created_at: rfc3339_from_ms(stored.created_at_ms),
                updated_at: rfc3339_from_ms(stored.updated_at_ms),
            },
            spec,
        }
    }
}

/// `2026-12-01T10:00:00.123Z`, or `None` for a time `time` cannot represent.
pub(crate) fn rfc3339_from_ms(ms: i64) -> Option<String> {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(
            rfc3339_from_ms(1_764_583_200_123).as_deref(),
            Some("2025-12-01T10:00:00.123Z")
        );
        assert_eq!(rfc3339_from_ms(i64::MAX), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let typo = serde_json::json!({"kind": "Api", "metadata": {"name": "a"}, "specs": {}});
        assert!(serde_json::from_value::<Document>(typo).is_err());
    }
}
