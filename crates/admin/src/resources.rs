//! One collection per kind under `/api/v1/{plural}`: list, read, create, create-or-update
//! (conditional on a version), delete. Single resources carry `ETag: "<version>"`.

use crate::body::JsonBody;
use crate::checks::{self, Expected};
use crate::document::{Document, ResourceList};
use crate::error::{ApiError, ErrorBody};
use crate::kinds::{self, KindPlural, ResourceKind};
use crate::{API_PREFIX, AdminState};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portico_store::resources::ChangeOutcome;
use portico_store::{Expect, PutOutcome, Resource, ResourceChange};

fn kind_of(plural: &str) -> Result<ResourceKind, ApiError> {
    kinds::by_plural(plural).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no collection {plural:?}; known: {}",
            kinds::plurals_listed()
        ))
    })
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::invalid(
        format!("the URL path cannot be read: {}", rejection.body_text()),
        Vec::new(),
    )
}

/// `"3"` for version 3.
fn etag(version: i64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The version an `If-Match: "<version>"` names; `None` without the header.
fn if_match_version(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refuse = || {
        ApiError::invalid_field(
            "If-Match",
            "must be one version as a strong entity tag, e.g. \"3\" with the quotes",
        )
    };
    if values.next().is_some() {
        return Err(refuse());
    }
    let text = value.to_str().map_err(|_| refuse())?.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|v| *v >= 1)
        .map(Some)
        .ok_or_else(refuse)
}

fn document_response(status: StatusCode, document: Document, location: Option<String>) -> Response {
    let version = document.metadata.version.unwrap_or(0);
    let mut response = (status, Json(document)).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Writes, then reads back what was written (with its times) for the response.
async fn write_and_read(
    state: &AdminState,
    resource: Resource,
    expect: Expect,
) -> Result<(PutOutcome, Document), ApiError> {
    let (kind, name) = (resource.kind.clone(), resource.name.clone());
    let outcome = match checks::commit(state, vec![ResourceChange::Put(resource, expect)]).await?[..]
    {
        [ChangeOutcome::Put(outcome)] => outcome,
        _ => unreachable!("one put gives one put outcome"),
    };
    let stored = state.store.get(&kind, &name).await?.ok_or_else(|| {
        ApiError::Conflict(format!(
            "{kind} {name:?} was deleted right after this write"
        ))
    })?;
    Ok((outcome, Document::from_stored(stored, &state.redact)))
}

fn resource_url(kind: ResourceKind, name: &str) -> String {
    // Names may hold any printable character; the header needs them percent-encoded.
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{API_PREFIX}/{}/{encoded}", kind.plural)
}

/// List the resources of a kind
///
/// Every resource of the collection, ordered by name, with secrets redacted.
#[utoipa::path(
    get,
    path = "/{plural}",
    tag = "resources",
    operation_id = "list_resources",
    params(("plural" = inline(KindPlural), Path)),
    responses(
        (status = 200, description = "The resources, ordered by name.", body = ResourceList),
        (status = 404, description = "No such collection.", body = ErrorBody),
    )
)]
pub async fn list_resources(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ResourceList>, ApiError> {
    let Path(plural) = path.map_err(path_error)?;
    let kind = kind_of(&plural)?;
    let items = state
        .store
        .list(Some(kind.kind))
        .await?
        .into_iter()
        .map(|stored| Document::from_stored(stored, &state.redact))
        .collect();
    Ok(Json(ResourceList { items }))
}

/// Read one resource
#[utoipa::path(
    get,
    path = "/{plural}/{name}",
    tag = "resources",
    operation_id = "get_resource",
    params(("plural" = inline(KindPlural), Path), ("name" = String, Path, description = "The resource's `metadata.name`.")),
    responses(
        (status = 200, description = "The resource, secrets redacted.", body = Document,
            headers(("ETag" = String, description = "The version, quoted: `\"3\"`."))),
        (status = 404, description = "No such collection or resource.", body = ErrorBody),
    )
)]
pub async fn get_resource(
    State(state): State<AdminState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((plural, name)) = path.map_err(path_error)?;
    let kind = kind_of(&plural)?;
    let stored = state
        .store
        .get(kind.kind, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} {name:?} not found", kind.kind)))?;
    let document = Document::from_stored(stored, &state.redact);
    Ok(document_response(StatusCode::OK, document, None))
}

/// Create a resource
///
/// Refused with 409 if a resource of that kind and name exists. `metadata.version` is
/// ignored.
#[utoipa::path(
    post,
    path = "/{plural}",
    tag = "resources",
    operation_id = "create_resource",
    params(("plural" = inline(KindPlural), Path)),
    request_body = Document,
    responses(
        (status = 201, description = "Created, at version 1.", body = Document,
            headers(("ETag" = String, description = "The version, quoted."),
                    ("Location" = String, description = "The resource's URL."))),
        (status = 400, description = "Invalid document; `fields` names each problem.", body = ErrorBody),
        (status = 404, description = "No such collection.", body = ErrorBody),
        (status = 409, description = "It exists already.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
pub async fn create_resource(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    JsonBody(document): JsonBody<Document>,
) -> Result<Response, ApiError> {
    let Path(plural) = path.map_err(path_error)?;
    let kind = kind_of(&plural)?;
    let expected = Expected {
        kind: Some(kind),
        name: None,
    };
    let resource = checks::check_write(&state, document, expected, "")
        .map_err(|problems| ApiError::invalid(checks::summary(&problems), problems))?;
    let location = resource_url(kind, &resource.name);
    let (_, document) = write_and_read(&state, resource, Expect::Absent).await?;
    Ok(document_response(
        StatusCode::CREATED,
        document,
        Some(location),
    ))
}

/// Create or update a resource
///
/// With `If-Match: "<version>"` or `metadata.version` (they must agree if both are given)
/// the write happens only if the resource is at that version, else 409. Without either it is
/// an unconditional create-or-update. Writing the spec that is stored already changes
/// nothing and keeps the version.
#[utoipa::path(
    put,
    path = "/{plural}/{name}",
    tag = "resources",
    operation_id = "put_resource",
    params(
        ("plural" = inline(KindPlural), Path),
        ("name" = String, Path, description = "Must equal the body's `metadata.name`."),
        ("If-Match" = Option<String>, Header, description = "Write only if the resource is at this version: `\"3\"`."),
    ),
    request_body = Document,
    responses(
        (status = 200, description = "Updated (or unchanged).", body = Document,
            headers(("ETag" = String, description = "The version, quoted."))),
        (status = 201, description = "Created, at version 1.", body = Document,
            headers(("ETag" = String, description = "The version, quoted."))),
        (status = 400, description = "Invalid document, a kind or name that differs from the URL, or a malformed If-Match.", body = ErrorBody),
        (status = 404, description = "No such collection.", body = ErrorBody),
        (status = 409, description = "The resource is not at the version named.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    )
)]
pub async fn put_resource(
    State(state): State<AdminState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    JsonBody(document): JsonBody<Document>,
) -> Result<Response, ApiError> {
    let Path((plural, name)) = path.map_err(path_error)?;
    let kind = kind_of(&plural)?;
    let expect = match (if_match_version(&headers)?, document.metadata.version) {
        (Some(header), Some(body)) if header != body => {
            return Err(ApiError::invalid_field(
                "metadata.version",
                format!("is {body}, but If-Match names version {header}"),
            ));
        }
        (Some(version), _) | (None, Some(version)) => Expect::Version(version),
        (None, None) => Expect::Any,
    };
    let expected = Expected {
        kind: Some(kind),
        name: Some(&name),
    };
    let resource = checks::check_write(&state, document, expected, "")
        .map_err(|problems| ApiError::invalid(checks::summary(&problems), problems))?;
    let (outcome, document) = write_and_read(&state, resource, expect).await?;
    let status = match outcome {
        PutOutcome::Created { .. } => StatusCode::CREATED,
        PutOutcome::Updated { .. } | PutOutcome::Unchanged { .. } => StatusCode::OK,
    };
    Ok(document_response(status, document, None))
}

/// Delete a resource
///
/// With `If-Match: "<version>"` only if the resource is at that version, else 409.
#[utoipa::path(
    delete,
    path = "/{plural}/{name}",
    tag = "resources",
    operation_id = "delete_resource",
    params(
        ("plural" = inline(KindPlural), Path),
        ("name" = String, Path),
        ("If-Match" = Option<String>, Header, description = "Delete only if the resource is at this version: `\"3\"`."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "A malformed If-Match.", body = ErrorBody),
        (status = 404, description = "No such collection or resource.", body = ErrorBody),
        (status = 409, description = "The resource is not at the version named.", body = ErrorBody),
    )
)]
pub async fn delete_resource(
    State(state): State<AdminState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Path((plural, name)) = path.map_err(path_error)?;
    let kind = kind_of(&plural)?;
    let expect = match if_match_version(&headers)? {
        Some(version) => Expect::Version(version),
        None => Expect::Any,
    };
    let change = ResourceChange::Delete {
        kind: kind.kind.to_string(),
        name: name.clone(),
        expect,
    };
    checks::commit(&state, vec![change]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn if_match_names_one_strong_version() {
        assert_eq!(if_match_version(&headers(&[])).unwrap(), None);
        assert_eq!(if_match_version(&headers(&["\"3\""])).unwrap(), Some(3));
        for bad in ["3", "W/\"3\"", "*", "\"x\"", "\"0\"", "\"1\", \"2\""] {
            assert!(if_match_version(&headers(&[bad])).is_err(), "{bad}");
        }
        assert!(if_match_version(&headers(&["\"1\"", "\"2\""])).is_err());
    }

    #[test]
    fn etags_and_locations_are_valid_headers() {
        assert_eq!(etag(12), "\"12\"");
        let api = kinds::by_kind("Api").unwrap();
        assert_eq!(resource_url(api, "a b/c"), "/api/v1/apis/a%20b%2Fc");
    }
}
