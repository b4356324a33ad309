//! What every write goes through before it reaches the store, for single resources and for
//! `apply` alike: the kind is one the API serves (and the one in the URL), the name is the
//! one in the URL, no redacted placeholder is written back as a secret, and the caller's
//! validator accepts the spec. Problems are reported with their paths, all at once.

use crate::AdminState;
use crate::document::Document;
use crate::error::FieldError;
use crate::kinds::{self, ResourceKind};
use crate::redact::find_placeholders;
use portico_store::{Resource, ResourceChange};

/// What the URL says the document must be.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    pub kind: Option<ResourceKind>,
    pub name: Option<&'a str>,
}

/// The document as a resource, or every problem found in it; paths start with `prefix`
/// (`""` for a single document, `"[3]."` in `apply`).
pub fn check_write(
    state: &AdminState,
    document: Document,
    expected: Expected<'_>,
    prefix: &str,
) -> Result<Resource, Vec<FieldError>> {
    let mut problems = Vec::new();
    let kind = match (kinds::by_kind(&document.kind), expected.kind) {
        (None, _) => {
            problems.push(FieldError::new(
                format!("{prefix}kind"),
                format!(
                    "unknown kind {:?}; known: {}",
                    document.kind,
                    kinds::kinds_listed()
                ),
            ));
            None
        }
        (Some(found), Some(wanted)) if found != wanted => {
            problems.push(FieldError::new(
                format!("{prefix}kind"),
                format!(
                    "is {:?}, but the URL is the collection of {:?}",
                    found.kind, wanted.kind
                ),
            ));
            None
        }
        (Some(found), _) => Some(found),
    };
    if let Some(wanted) = expected.name
        && document.metadata.name != wanted
    {
        problems.push(FieldError::new(
            format!("{prefix}metadata.name"),
            format!(
                "is {:?}, but the URL names {wanted:?}",
                document.metadata.name
            ),
        ));
    }
    if let Some(reason) = name_problem(&document.metadata.name) {
        problems.push(FieldError::new(format!("{prefix}metadata.name"), reason));
    }
    find_placeholders(&format!("{prefix}spec"), &document.spec, &mut problems);
    let Some(kind) = kind else {
        return Err(problems);
    };
    let resource = Resource {
        kind: kind.kind.to_string(),
        name: document.metadata.name,
        spec: document.spec,
    };
    if let Err(found) = (state.validate)(&resource) {
        problems.extend(found.into_iter().map(|f| FieldError {
            path: format!("{prefix}{}", f.path),
            reason: f.reason,
        }));
    }
    if problems.is_empty() {
        Ok(resource)
    } else {
        Err(problems)
    }
}

/// The longest name, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// The store's rule for names (it enforces it too), checked here so that the answer names the
/// field and, in `apply`, the document.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        Some(format!(
            "must be 1 to {MAX_NAME_BYTES} bytes without control characters"
        ))
    } else {
        None
    }
}

/// The message of a 400 carrying `problems`.
pub fn summary(problems: &[FieldError]) -> String {
    match problems {
        [one] => format!("{}: {}", one.path, one.reason),
        many => format!("{} problems; see fields", many.len()),
    }
}

/// The store's resources as `changes` would leave them, checked together by the caller's
/// [`crate::ValidateSet`]: a write that would leave a configuration no node can load is
/// refused with 400 before anything is written. (A concurrent write between this read and the
/// commit is not covered; nodes still refuse a configuration that does not load.)
pub async fn check_resulting_set(
    state: &crate::AdminState,
    changes: &[ResourceChange],
) -> Result<(), crate::error::ApiError> {
    let mut resources: Vec<Resource> = state
        .store
        .list(None)
        .await?
        .into_iter()
        .map(|r| Resource {
            kind: r.kind,
            name: r.name,
            spec: r.spec,
        })
        .collect();
    for change in changes {
        match change {
            ResourceChange::Put(resource, _) => {
                match resources
                    .iter_mut()
                    .find(|r| r.kind == resource.kind && r.name == resource.name)
                {
                    Some(existing) => existing.spec = resource.spec.clone(),
                    None => resources.push(resource.clone()),
                }
            }
            ResourceChange::Delete { kind, name, .. } => {
                resources.retain(|r| !(r.kind == *kind && r.name == *name));
            }
        }
    }
    (state.validate_set)(&resources).map_err(|fields| {
        crate::error::ApiError::invalid(
            format!("the configuration would not load: {}", summary(&fields)),
            fields,
        )
    })
}
