//! Revocations: refuse tokens before their `exp` — by the `client_id` they were issued to,
//! their `jti`, or their identity — on every node, from the next request on. Stored, so they
//! survive restarts; they end at `until` (default: now plus `max_token_lifetime_secs`, which
//! outlasts every token they cover). See `docs/revocation.md`.

use crate::AdminState;
use crate::body::JsonBody;
use crate::document::rfc3339_from_ms;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portico_core::revocation::{DEFAULT_MAX_TOKEN_LIFETIME_SECS, Revocation, RevokedBy};
use portico_store::NewRevocation;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// What to revoke: exactly one of `client_id`, `jti` and `identity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// Every token issued to this OAuth client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The one token with this `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Every token naming this identity (the API's identity claim, `sub` unless configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Only tokens of this issuer (as configured, or the token's `iss` for an entry trusted
    /// without one); every issuer without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// RFC 3339; default now plus `max_token_lifetime_secs` (24 hours unless configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// RFC 3339: only tokens issued (`iat`) before this moment, so that the client can carry
    /// on with a new token; a token without `iat` is refused. Every token without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<String>,
    /// Why, for operators; never shown to callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A revocation in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationRecord {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// RFC 3339.
    pub until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationList {
    pub revocations: Vec<RevocationRecord>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    rfc3339_from_ms(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX))
        .unwrap_or_else(|| secs.to_string())
}

fn record(r: Revocation) -> RevocationRecord {
    let named = |by: RevokedBy| (r.by == by).then(|| r.value.clone());
    RevocationRecord {
        id: r.id,
        client_id: named(RevokedBy::ClientId),
        jti: named(RevokedBy::Jti),
        identity: named(RevokedBy::Identity),
        issuer: r.issuer,
        until: rfc3339(r.until_secs),
        issued_before: r.issued_before_secs.map(rfc3339),
        reason: r.reason,
        created_at: rfc3339(r.created_at_secs),
    }
}

/// `field`'s RFC 3339 time in seconds since the epoch (rounded up: a revocation never ends
/// early).
fn parse_time(field: &str, text: &str) -> Result<u64, ApiError> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ApiError::invalid_field(field, "must be an RFC 3339 time, e.g. 2026-12-31T23:00:00Z")
    })?;
    let nanos = at.unix_timestamp_nanos();
    u64::try_from(nanos.div_euclid(1_000_000_000) + i128::from(nanos % 1_000_000_000 != 0))
        .map_err(|_| ApiError::invalid_field(field, "is before 1970"))
}

fn new_revocation(
    request: RevocationRequest,
    max_token_lifetime_secs: u64,
    now: u64,
) -> Result<NewRevocation, ApiError> {
    let named: Vec<(RevokedBy, String)> = [
        (RevokedBy::ClientId, request.client_id),
        (RevokedBy::Jti, request.jti),
        (RevokedBy::Identity, request.identity),
    ]
    .into_iter()
    .filter_map(|(by, value)| value.map(|v| (by, v)))
    .collect();
    let [(by, value)] = <[_; 1]>::try_from(named).map_err(|_| {
        ApiError::invalid(
            "name exactly one of client_id, jti and identity",
            Vec::new(),
        )
    })?;
    let until_secs = match &request.until {
        Some(text) => parse_time("until", text)?,
        None => now.saturating_add(max_token_lifetime_secs),
    };
    let issued_before_secs = request
        .issued_before
        .as_deref()
        .map(|text| parse_time("issued_before", text))
        .transpose()?;
    Revocation::check_request(
        &value,
        request.issuer.as_deref(),
        request.reason.as_deref(),
        until_secs,
        now,
    )
    .map_err(|problem| {
        let (field, reason) = problem.split_once(": ").unwrap_or(("value", &problem));
        let field = if field == "value" { by.as_str() } else { field };
        ApiError::invalid_field(field, reason)
    })?;
    Ok(NewRevocation {
        by,
        value,
        issuer: request.issuer,
        until_secs,
        issued_before_secs,
        reason: request.reason,
    })
}

/// The gateway this process runs enforces the store's revocations now, rather than when its
/// watch next reads them: the next request to this node already sees the change.
async fn enforce_here(state: &AdminState) {
    let Some(gateway) = &state.gateway else {
        return;
    };
    let read = async {
        state
            .store
            .active_revocations(now_secs())
            .await
            .map(|active| active.revocations)
    };
    if let Err(e) = gateway.load_revocations(read).await {
        tracing::warn!(error = %e, "admin API: reading the revocations back; the watch will");
    }
}

/// Revoke tokens
///
/// Refuses, from the next request on and on every node, the tokens issued to a `client_id`,
/// the token with a `jti`, or the tokens naming an identity — self-contained JWTs and cached
/// introspection answers alike — until `until`.
#[utoipa::path(
    post,
    path = "/revocations",
    tag = "revocations",
    operation_id = "revoke",
    request_body = RevocationRequest,
    responses(
        (status = 201, description = "In force.", body = RevocationRecord),
        (status = 400, description = "Not exactly one of client_id, jti and identity; a time that is not RFC 3339 or an end in the past.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AdminState>,
    JsonBody(request): JsonBody<RevocationRequest>,
) -> Result<Response, ApiError> {
    let lifetime = state
        .gateway
        .as_ref()
        .map_or(DEFAULT_MAX_TOKEN_LIFETIME_SECS, |g| {
            g.max_token_lifetime_secs()
        });
    let new = new_revocation(request, lifetime, now_secs())?;
    let stored = state.store.revoke(new).await?;
    tracing::info!(
        id = stored.id,
        by = %stored.by,
        until = stored.until_secs,
        "admin API: revoked"
    );
    enforce_here(&state).await;
    Ok((StatusCode::CREATED, Json(record(stored))).into_response())
}

/// List the revocations in force
#[utoipa::path(
    get,
    path = "/revocations",
    tag = "revocations",
    operation_id = "list_revocations",
    responses(
        (status = 200, description = "Oldest first; ended ones are not listed.", body = RevocationList),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    )
)]
pub async fn list_revocations(
    State(state): State<AdminState>,
) -> Result<Json<RevocationList>, ApiError> {
    let active = state.store.active_revocations(now_secs()).await?;
    Ok(Json(RevocationList {
        revocations: active.revocations.into_iter().map(record).collect(),
    }))
}

/// Lift a revocation
#[utoipa::path(
    delete,
    path = "/revocations/{id}",
    tag = "revocations",
    operation_id = "lift_revocation",
    params(("id" = i64, Path, description = "The revocation's id.")),
    responses(
        (status = 204, description = "Lifted: its tokens are accepted again from the next request on."),
        (status = 400, description = "Not a revocation id.", body = ErrorBody),
        (status = 404, description = "No revocation has this id (it may have ended).", body = ErrorBody),
        (status = 503, description = "The store is unavailable.", body = ErrorBody),
    )
)]
pub async fn lift_revocation(
    State(state): State<AdminState>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::invalid_field("id", "must be a revocation id"))?;
    if !state.store.lift_revocation(id).await? {
        return Err(ApiError::NotFound(format!("no revocation {id}")));
    }
    tracing::info!(id, "admin API: revocation lifted");
    enforce_here(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> Result<NewRevocation, ApiError> {
        new_revocation(serde_json::from_value(json).unwrap(), 3_600, 1_000)
    }

    #[test]
    fn exactly_one_target_and_sane_times() {
        let r = request(serde_json::json!({"client_id": "app"})).unwrap();
        assert_eq!(
            (r.by, r.value.as_str(), r.until_secs),
            (RevokedBy::ClientId, "app", 4_600)
        );
        assert!(request(serde_json::json!({})).is_err());
        assert!(request(serde_json::json!({"jti": "a", "identity": "b"})).is_err());
        assert!(request(serde_json::json!({"jti": ""})).is_err());
        assert!(request(serde_json::json!({"jti": "a", "until": "tomorrow"})).is_err());
        assert!(request(serde_json::json!({"jti": "a", "until": "1970-01-01T00:10:00Z"})).is_err());
        let later = request(serde_json::json!({
            "identity": "alice", "until": "1970-01-01T01:00:00.5Z",
            "issued_before": "1970-01-01T00:20:00Z", "issuer": "https://idp"
        }))
        .unwrap();
        assert_eq!(later.until_secs, 3_601, "rounded up");
        assert_eq!(later.issued_before_secs, Some(1_200));
        assert_eq!(later.issuer.as_deref(), Some("https://idp"));
    }

    #[test]
    fn records_name_what_was_revoked() {
        let r = record(Revocation {
            id: 7,
            by: RevokedBy::Jti,
            value: "t".into(),
            issuer: None,
            until_secs: 1_764_583_200,
            issued_before_secs: None,
            reason: None,
            created_at_secs: 0,
        });
        assert_eq!(r.jti.as_deref(), Some("t"));
        assert!(r.client_id.is_none() && r.identity.is_none());
        assert_eq!(r.until, "2025-12-01T10:00:00Z");
    }
}
