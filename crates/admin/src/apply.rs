//! `POST /api/v1/apply`: a list of documents applied in one store transaction, idempotently
//! (a second run of the same list reports every document `unchanged`). `dry_run` reports
//! what would happen and writes nothing; `prune` also deletes the resources of the kinds the
//! list names that it does not list.

use crate::AdminState;
use crate::body::JsonBody;
use crate::checks::{self, Expected};
use crate::document::Document;
use crate::error::{ApiError, ErrorBody, FieldError};
use crate::kinds::{self, ResourceKind};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use portico_store::resources::ChangeOutcome;
use portico_store::{Expect, PutOutcome, Resource, ResourceChange, StoredResource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};

/// The options of `apply`, in the query string.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyOptions {
    /// Report what would change, write nothing (default false).
    #[serde(default)]
    pub dry_run: bool,
    /// Also delete every resource of the kinds in the list that the list does not name
    /// (default false). Kinds the list does not mention are left alone.
    #[serde(default)]
    pub prune: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

/// What happened (or, in a dry run, would happen) to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyResult {
    pub kind: String,
    pub name: String,
    pub outcome: ApplyOutcome,
    /// The version after the change; for `deleted`, the version that was deleted.
    pub version: i64,
    /// Dry run only, for `updated` and `deleted`: the stored spec as it is now, secrets
    /// redacted like every spec the API returns, so that a client can show what would change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub current: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplyReport {
    pub dry_run: bool,
    /// The documents in the order given, then the pruned resources by kind and name.
    pub results: Vec<ApplyResult>,
}

/// One planned change with what it is expected to do.
struct Planned {
    change: ResourceChange,
    /// Filled in from the current state when that was read (dry run or prune).
    predicted: Option<Predicted>,
}

/// What a change will do, from the state read before it.
struct Predicted {
    outcome: ApplyOutcome,
    version: i64,
    /// The stored spec it changes or deletes (unredacted; redacted when reported).
    current: Option<Value>,
}

/// Apply a list of documents
///
/// Create-or-update every document (`metadata.version` is ignored: the list is the truth),
/// in one transaction: all of it or, on any error, nothing. Every document is checked before
/// anything is written; problems are reported all at once, their paths prefixed with the
/// document's index (`[2].spec.rate`).
#[utoipa::path(
    post,
    path = "/apply",
    tag = "apply",
    operation_id = "apply_documents",
    params(ApplyOptions),
    request_body(content = Vec<Document>, description = "The documents, as `portico apply` reads them from YAML."),
    responses(
        (status = 200, description = "What each document did (or would do).", body = ApplyReport),
        (status = 400, description = "Invalid documents, unknown kinds, a name given twice, or bad options.", body = ErrorBody),
        (status = 409, description = "A resource changed while the change was being applied; nothing was written.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
pub async fn apply_documents(
    State(state): State<AdminState>,
    options: Result<Query<ApplyOptions>, QueryRejection>,
    JsonBody(documents): JsonBody<Vec<Document>>,
) -> Result<Json<ApplyReport>, ApiError> {
    let Query(options) = options.map_err(|rejection| {
        ApiError::invalid(
            format!("the query string cannot be read: {}", rejection.body_text()),
            Vec::new(),
        )
    })?;
    let resources = check_all(&state, documents)?;
    let mut listed_kinds: Vec<ResourceKind> = Vec::new();
    for resource in &resources {
        if let Some(kind) = kinds::by_kind(&resource.kind)
            && !listed_kinds.contains(&kind)
        {
            listed_kinds.push(kind);
        }
    }
    let current = if options.dry_run || options.prune {
        Some(current_state(&state, &listed_kinds).await?)
    } else {
        None
    };
    let planned = plan(resources, current.as_ref(), options.prune);
    let results = if options.dry_run {
        let changes: Vec<ResourceChange> = planned.iter().map(|p| p.change.clone()).collect();
        checks::check_at_current(&state, &changes).await?;
        planned
            .into_iter()
            .filter_map(|p| {
                let (kind, name) = target(&p.change);
                p.predicted.map(|predicted| ApplyResult {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    outcome: predicted.outcome,
                    version: predicted.version,
                    current: predicted.current.map(|mut spec| {
                        (state.redact)(kind, &mut spec);
                        spec
                    }),
                })
            })
            .collect()
    } else {
        let targets: Vec<(String, String)> = planned
            .iter()
            .map(|p| {
                let (kind, name) = target(&p.change);
                (kind.to_string(), name.to_string())
            })
            .collect();
        let outcomes =
            checks::commit(&state, planned.into_iter().map(|p| p.change).collect()).await?;
        targets
            .into_iter()
            .zip(outcomes)
            .map(|((kind, name), outcome)| {
                let (outcome, version) = match outcome {
                    ChangeOutcome::Put(PutOutcome::Created { version }) => {
                        (ApplyOutcome::Created, version)
                    }
                    ChangeOutcome::Put(PutOutcome::Updated { version }) => {
                        (ApplyOutcome::Updated, version)
                    }
                    ChangeOutcome::Put(PutOutcome::Unchanged { version }) => {
                        (ApplyOutcome::Unchanged, version)
                    }
                    ChangeOutcome::Deleted { version } => (ApplyOutcome::Deleted, version),
                };
                ApplyResult {
                    kind,
                    name,
                    outcome,
                    version,
                    current: None,
                }
            })
            .collect()
    };
    Ok(Json(ApplyReport {
        dry_run: options.dry_run,
        results,
    }))
}

/// Every document checked; a kind and name given twice is refused.
fn check_all(state: &AdminState, documents: Vec<Document>) -> Result<Vec<Resource>, ApiError> {
    let mut problems: Vec<FieldError> = Vec::new();
    let mut resources = Vec::with_capacity(documents.len());
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (index, document) in documents.into_iter().enumerate() {
        let key = (document.kind.clone(), document.metadata.name.clone());
        if let Some(first) = seen.get(&key) {
            problems.push(FieldError::new(
                format!("[{index}].metadata.name"),
                format!("{} {:?} is also document [{first}]", key.0, key.1),
            ));
            continue;
        }
        seen.insert(key, index);
        match checks::check_write(state, document, Expected::default(), &format!("[{index}].")) {
            Ok(resource) => resources.push(resource),
            Err(found) => problems.extend(found),
        }
    }
    if problems.is_empty() {
        Ok(resources)
    } else {
        Err(ApiError::invalid(checks::summary(&problems), problems))
    }
}

type Current = BTreeMap<(String, String), StoredResource>;

/// Every stored resource of the kinds given.
async fn current_state(state: &AdminState, kinds: &[ResourceKind]) -> Result<Current, ApiError> {
    let mut current = BTreeMap::new();
    for kind in kinds {
        for stored in state.store.list(Some(kind.kind)).await? {
            current.insert((stored.kind.clone(), stored.name.clone()), stored);
        }
    }
    Ok(current)
}

/// The changes in order: a put per document, then (with `prune`) a delete per stored resource
/// the documents do not name, each conditional on the version seen so a resource changed
/// meanwhile is not deleted unseen.
fn plan(resources: Vec<Resource>, current: Option<&Current>, prune: bool) -> Vec<Planned> {
    let mut named: HashSet<(String, String)> = HashSet::with_capacity(resources.len());
    let mut planned = Vec::with_capacity(resources.len());
    for resource in resources {
        let key = (resource.kind.clone(), resource.name.clone());
        let predicted = current.map(|current| match current.get(&key) {
            None => Predicted {
                outcome: ApplyOutcome::Created,
                version: 1,
                current: None,
            },
            Some(stored) if stored.spec == resource.spec => Predicted {
                outcome: ApplyOutcome::Unchanged,
                version: stored.version,
                current: None,
            },
            Some(stored) => Predicted {
                outcome: ApplyOutcome::Updated,
                version: stored.version + 1,
                current: Some(stored.spec.clone()),
            },
        });
        named.insert(key);
        planned.push(Planned {
            change: ResourceChange::Put(resource, Expect::Any),
            predicted,
        });
    }
    if let (true, Some(current)) = (prune, current) {
        for (key, stored) in current {
            if named.contains(key) {
                continue;
            }
            planned.push(Planned {
                change: ResourceChange::Delete {
                    kind: stored.kind.clone(),
                    name: stored.name.clone(),
                    expect: Expect::Version(stored.version),
                },
                predicted: Some(Predicted {
                    outcome: ApplyOutcome::Deleted,
                    version: stored.version,
                    current: Some(stored.spec.clone()),
                }),
            });
        }
    }
    planned
}

fn target(change: &ResourceChange) -> (&str, &str) {
    match change {
        ResourceChange::Put(resource, _) => (&resource.kind, &resource.name),
        ResourceChange::Delete { kind, name, .. } => (kind, name),
    }
}
