//! The running gateway's side of the admin API: identity sessions (found by identity or by
//! session id, with the counters they hold per policy and what is left), resetting those
//! counters, and fetching every JWKS now.
//!
//! A session id is derived from the organisation, the trusted issuer and the identity (see
//! `docs/policies.md`), so a lookup by identity needs no record of past requests: it answers
//! with every session tokens naming that identity get at the APIs served, and the counters
//! each has used. With the Redis limiter the counters are those every node shares.

use crate::AdminState;
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use portico_core::SessionId;
use portico_gateway::Gateway;
use portico_gateway::sessions::{PolicyCounters, SessionOf};
use portico_limits::{LimitStatus, LimiterError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// Who to look for.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// The identity, as the identity claim gives it (`sub`, `client_id`, …).
    pub identity: String,
    /// Only sessions of tokens from this issuer (`iss`); all trusted issuers without it.
    pub issuer: Option<String>,
}

/// One limit of a session: what is left now, before its next request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitState {
    /// Requests allowed per window (rate) or per period (quota).
    pub limit: u64,
    /// The window or period, in milliseconds.
    pub window_ms: u64,
    /// Requests still allowed now.
    pub remaining: u64,
    /// Milliseconds until the allowance is full again (rate) or renews (quota).
    pub reset_ms: u64,
}

/// The counters of one policy that supplied a limit to the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyCounterState {
    pub policy: String,
    /// Absent when the policy sets no rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<LimitState>,
    /// Absent when the policy sets no finite quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<LimitState>,
}

/// An identity session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// The session id (32 hex digits), as sent upstream.
    pub id: String,
    /// Who the session belongs to; absent when it was looked up by id (the id does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<SessionIdentity>,
    /// The policies whose counters the session has used, with what is left; empty when it
    /// has made no counted request (or its counters lapsed).
    pub counters: Vec<PolicyCounterState>,
}

/// What makes a session's identity unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionIdentity {
    pub org_id: String,
    /// The trusted issuer; absent for an entry trusted by its key alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The claim that names the caller, and whether it is a JSON number.
    pub identity_claim: String,
    pub numeric: bool,
    pub identity: String,
    /// The APIs where such tokens get this session.
    pub apis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

/// What one key set's refresh did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeySetState {
    /// `issuer https://…` (discovery) or `JWKS https://…`.
    pub source: String,
    /// Whether the fetch succeeded; on failure the keys held before stay (the log says why).
    pub fetched: bool,
    /// Keys held now.
    pub keys: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeySetRefreshReport {
    pub key_sets: Vec<KeySetState>,
}

fn gateway(state: &AdminState) -> Result<&Arc<Gateway>, ApiError> {
    state
        .gateway
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this admin API serves no gateway".into()))
}

fn session_id(path: Result<Path<String>, PathRejection>) -> Result<SessionId, ApiError> {
    let Path(id) = path.map_err(|rejection| {
        ApiError::invalid(
            format!("the URL path cannot be read: {}", rejection.body_text()),
            Vec::new(),
        )
    })?;
    SessionId::from_hex(&id)
        .ok_or_else(|| ApiError::invalid_field("id", "must be a session id: 32 hex digits"))
}

fn limiter_error(e: LimiterError) -> ApiError {
    tracing::warn!(error = %e, "admin API: the limiter's store is unavailable");
    ApiError::Unavailable
}

fn limit_state(status: LimitStatus) -> LimitState {
    LimitState {
        limit: status.limit,
        window_ms: status.window_ms,
        remaining: status.remaining,
        reset_ms: status.reset_ms,
    }
}

fn counter_states(counters: Vec<PolicyCounters>) -> Vec<PolicyCounterState> {
    counters
        .into_iter()
        .map(|c| PolicyCounterState {
            policy: c.policy.to_string(),
            rate: c.rate.map(limit_state),
            quota: c.quota.map(limit_state),
        })
        .collect()
}

async fn session(
    gateway: &Gateway,
    id: SessionId,
    identity: Option<SessionIdentity>,
) -> Result<Session, ApiError> {
    let counters = gateway.session_counters(id).await.map_err(limiter_error)?;
    Ok(Session {
        id: id.to_hex(),
        identity,
        counters: counter_states(counters),
    })
}

/// Find the sessions of an identity
///
/// Every session tokens naming `identity` get at the APIs served (one per organisation,
/// trusted issuer and identity claim), whether or not one has called yet, with the counters
/// each has used.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "gateway",
    operation_id = "find_sessions",
    params(SessionQuery),
    responses(
        (status = 200, description = "The sessions (empty when no API could admit such a token).", body = SessionList),
        (status = 400, description = "`identity` is missing or empty.", body = ErrorBody),
        (status = 404, description = "This admin API serves no gateway.", body = ErrorBody),
    )
)]
pub async fn find_sessions(
    State(state): State<AdminState>,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<Json<SessionList>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(
            format!("the query string cannot be read: {}", rejection.body_text()),
            Vec::new(),
        )
    })?;
    if query.identity.is_empty() {
        return Err(ApiError::invalid_field("identity", "must not be empty"));
    }
    let gateway = gateway(&state)?;
    let mut sessions = Vec::new();
    for found in gateway.sessions_of(&query.identity, query.issuer.as_deref()) {
        let SessionOf {
            session: id,
            org_id,
            issuer,
            identity_claim,
            numeric,
            apis,
        } = found;
        let identity = SessionIdentity {
            org_id,
            issuer,
            identity_claim,
            numeric,
            identity: query.identity.clone(),
            apis,
        };
        sessions.push(session(gateway, id, Some(identity)).await?);
    }
    Ok(Json(SessionList { sessions }))
}

/// Read a session's counters
///
/// Any well-formed session id has a session; one that has made no counted request has no
/// counters.
#[utoipa::path(
    get,
    path = "/sessions/{id}",
    tag = "gateway",
    operation_id = "get_session",
    params(("id" = String, Path, description = "The session id: 32 hex digits.")),
    responses(
        (status = 200, description = "The session's counters.", body = Session),
        (status = 400, description = "Not a session id.", body = ErrorBody),
        (status = 404, description = "This admin API serves no gateway.", body = ErrorBody),
    )
)]
pub async fn get_session(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Session>, ApiError> {
    let id = session_id(path)?;
    Ok(Json(session(gateway(&state)?, id, None).await?))
}

/// Reset a session's counters
///
/// Forgets every rate and quota counter of the session (with the Redis limiter, for every
/// node): its next request starts from full allowances. Answers with the counters after.
#[utoipa::path(
    post,
    path = "/sessions/{id}/reset",
    tag = "gateway",
    operation_id = "reset_session",
    params(("id" = String, Path, description = "The session id: 32 hex digits.")),
    responses(
        (status = 200, description = "Reset; the counters now.", body = Session),
        (status = 400, description = "Not a session id.", body = ErrorBody),
        (status = 404, description = "This admin API serves no gateway.", body = ErrorBody),
    )
)]
pub async fn reset_session(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Session>, ApiError> {
    let id = session_id(path)?;
    let gateway = gateway(&state)?;
    gateway.reset_session(id).await.map_err(limiter_error)?;
    tracing::info!(session = %id, "admin API: session counters reset");
    Ok(Json(session(gateway, id, None).await?))
}

/// Flush the JWKS cache
///
/// Fetches every remote key set (JWKS URLs, OIDC discovery) now, whatever its schedule, and
/// forgets every cached token verification, so that each token's next request is verified
/// with the keys as the IdP publishes them now. A failed fetch keeps the keys held before.
#[utoipa::path(
    post,
    path = "/jwks-cache/flush",
    tag = "gateway",
    operation_id = "flush_jwks_cache",
    responses(
        (status = 200, description = "What each key set's fetch did.", body = KeySetRefreshReport),
        (status = 404, description = "This admin API serves no gateway.", body = ErrorBody),
    )
)]
pub async fn flush_jwks_cache(
    State(state): State<AdminState>,
) -> Result<Json<KeySetRefreshReport>, ApiError> {
    let refreshed = gateway(&state)?.refresh_key_sets().await;
    tracing::info!(key_sets = refreshed.len(), "admin API: JWKS cache flushed");
    Ok(Json(KeySetRefreshReport {
        key_sets: refreshed
            .into_iter()
            .map(|r| KeySetState {
                source: r.source,
                fetched: r.fetched,
                keys: r.keys,
            })
            .collect(),
    }))
}
