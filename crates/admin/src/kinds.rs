//! The resource kinds the admin API serves, in one list: a new kind (the portal's products,
//! plans, …) is one line in [`KINDS`], and it gets every route, the OpenAPI path parameter,
//! `apply` and `prune` with it.

use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

/// A kind and the path segment of its collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceKind {
    /// As stored and as written in documents: `Api`.
    pub kind: &'static str,
    /// The URL segment: `/api/v1/apis`.
    pub plural: &'static str,
}

/// Every kind the admin API serves.
pub const KINDS: &[ResourceKind] = &[
    ResourceKind {
        kind: "Api",
        plural: "apis",
    },
    ResourceKind {
        kind: "Policy",
        plural: "policies",
    },
    ResourceKind {
        kind: "Issuer",
        plural: "issuers",
    },
    ResourceKind {
        kind: "Settings",
        plural: "settings",
    },
    ResourceKind {
        kind: "OAuthProvider",
        plural: "oauth-providers",
    },
    ResourceKind {
        kind: "ClientType",
        plural: "client-types",
    },
    ResourceKind {
        kind: "Product",
        plural: "products",
    },
    ResourceKind {
        kind: "Plan",
        plural: "plans",
    },
];

pub fn by_plural(plural: &str) -> Option<ResourceKind> {
    KINDS.iter().copied().find(|k| k.plural == plural)
}

pub fn by_kind(kind: &str) -> Option<ResourceKind> {
    KINDS.iter().copied().find(|k| k.kind == kind)
}

/// `apis, policies, issuers` — for error messages.
pub fn plurals_listed() -> String {
    KINDS
        .iter()
        .map(|k| k.plural)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Api, Policy, Issuer` — for error messages.
pub fn kinds_listed() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// The `{plural}` path parameter in the OpenAPI document: a string, one of [`KINDS`].
pub struct KindPlural;

impl utoipa::PartialSchema for KindPlural {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(KINDS.iter().map(|k| k.plural)))
            .description(Some("The collection: one segment per resource kind."))
            .into()
    }
}

impl utoipa::ToSchema for KindPlural {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KindPlural")
    }
}

/// The `kind` field of a document in the OpenAPI document: a string, one of [`KINDS`].
pub struct KindName;

impl utoipa::PartialSchema for KindName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(KINDS.iter().map(|k| k.kind)))
            .description(Some(
                "The resource kind; on the routes of one collection it must be that collection's kind.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for KindName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KindName")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn kinds_and_plurals_are_unique() {
        let kinds: HashSet<_> = KINDS.iter().map(|k| k.kind).collect();
        let plurals: HashSet<_> = KINDS.iter().map(|k| k.plural).collect();
        assert_eq!(kinds.len(), KINDS.len());
        assert_eq!(plurals.len(), KINDS.len());
        assert!(!plurals.contains("apply"), "`apply` is a route of its own");
        assert_eq!(by_plural("policies").map(|k| k.kind), Some("Policy"));
        assert_eq!(by_kind("Issuer").map(|k| k.plural), Some("issuers"));
        assert_eq!(by_plural("Api"), None);
    }
}
