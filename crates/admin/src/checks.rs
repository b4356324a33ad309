//! What every write goes through before it reaches the store, for single resources and for
//! `apply` alike: the kind is one the API serves (and the one in the URL), the name is the
//! one in the URL, no redacted placeholder is written back as a secret, and the caller's
//! validator accepts the spec. Problems are reported with their paths, all at once.

use crate::AdminState;
use crate::document::Document;
use crate::error::{ApiError, FieldError};
use crate::kinds::{self, ResourceKind};
use crate::redact::find_placeholders;
use portico_store::resources::ChangeOutcome;
use portico_store::{Resource, ResourceChange, StoreError, StoredResource};

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
    if let Some(reason) = portico_core::resource::name_problem(&document.metadata.name) {
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

/// The message of a 400 carrying `problems`.
pub fn summary(problems: &[FieldError]) -> String {
    match problems {
        [one] => format!("{}: {}", one.path, one.reason),
        many => format!("{} problems; see fields", many.len()),
    }
}

/// How often a write is checked again when another write committed between its check and
/// its commit.
const COMMIT_ATTEMPTS: usize = 3;

/// Writes `changes` if the configuration they leave passes the caller's
/// [`crate::ValidateSet`]: the whole set is checked at one revision and committed only at that
/// revision, so a concurrent write cannot slip in between check and commit (the check runs
/// again on the new state, a few times, before the answer is a 409). A write that would leave a
/// configuration no node can load is refused with 400 and writes nothing.
pub async fn commit(
    state: &AdminState,
    changes: Vec<ResourceChange>,
) -> Result<Vec<ChangeOutcome>, ApiError> {
    let mut attempt = 1;
    loop {
        let snapshot = state.store.snapshot().await?;
        check_resulting_set(state, snapshot.resources, &changes)?;
        match state
            .store
            .apply_at_revision(changes.clone(), snapshot.revision)
            .await
        {
            Err(StoreError::RevisionMoved { .. }) if attempt < COMMIT_ATTEMPTS => attempt += 1,
            Err(e @ StoreError::RevisionMoved { .. }) => {
                return Err(ApiError::Conflict(format!(
                    "{e}; other writes kept committing, try again"
                )));
            }
            other => return Ok(other?),
        }
    }
}

/// Checks what `changes` would leave, writing nothing (a dry run).
pub async fn check_at_current(
    state: &AdminState,
    changes: &[ResourceChange],
) -> Result<(), ApiError> {
    check_resulting_set(state, state.store.snapshot().await?.resources, changes)
}

/// The resources as `changes` would leave them, checked together.
fn check_resulting_set(
    state: &AdminState,
    stored: Vec<StoredResource>,
    changes: &[ResourceChange],
) -> Result<(), ApiError> {
    let mut resources: Vec<Resource> = stored
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
        ApiError::invalid(
            format!("the configuration would not load: {}", summary(&fields)),
            fields,
        )
    })
}
