//! Portico's admin REST API, as a library: [`router`] gives an axum `Router` to mount on the
//! admin listener. Resources (APIs, policies, issuers, settings) are read and written as documents —
//! the shape `portico apply` reads and `portico get` prints — through the store, with
//! versions for optimistic concurrency; `apply` writes many in one transaction.
//!
//! - [`auth`]: the admin token, required on every route under `/api/v1/`.
//! - [`kinds`]: the kinds served, in one list.
//! - [`resources`]: list, get, create, put, delete of one kind.
//! - [`apply`]: declarative, transactional, idempotent writes; dry run and prune.
//! - [`sessions`]: the running gateway's identity sessions and JWKS cache.
//! - [`revocations`]: tokens refused before their `exp`, on every node.
//! - [`document`]: the JSON shape of a resource.
//! - [`redact`]: secrets never leave in a response.
//! - [`error`]: the one error shape, and the status codes.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers, at `/openapi.json`.
//!
//! See `docs/admin-api.md`.

#![forbid(unsafe_code)]

pub mod apply;
pub mod auth;
mod body;
pub mod checks;
pub mod document;
pub mod error;
pub mod kinds;
pub mod openapi;
pub mod redact;
pub mod resources;
pub mod revocations;
pub mod sessions;

pub use auth::{AdminToken, AdminTokenError};
pub use document::{Document, Metadata};
pub use error::{ErrorBody, FieldError};

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use portico_store::{Resource, Store};
use std::fmt;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the guarded routes live.
pub const API_PREFIX: &str = "/api/v1";

/// The largest request body accepted, in bytes (1 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Checks a resource before it is written; the errors name fields from the document's root
/// (`spec.jwt.issuers[0].jwks_url`). Supplied by the caller (the config crate knows specs).
pub type Validate = Arc<dyn Fn(&Resource) -> Result<(), Vec<FieldError>> + Send + Sync>;

/// Checks every resource a write would leave in the store, together (references between them,
/// duplicate listen paths, …), before the write. Supplied by the caller.
pub type ValidateSet = Arc<dyn Fn(&[Resource]) -> Result<(), Vec<FieldError>> + Send + Sync>;

/// Removes secrets from a spec (given its kind) before it is returned. Applied to every spec
/// the API answers with. Default: [`redact::redact_secret_fields`].
pub type Redact = Arc<dyn Fn(&str, &mut serde_json::Value) + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub token: AdminToken,
    pub validate: Validate,
    pub validate_set: ValidateSet,
    pub redact: Redact,
    /// The gateway this process runs, for the session and JWKS routes (`None`: they answer
    /// 404).
    pub gateway: Option<Arc<portico_gateway::Gateway>>,
}

impl AdminState {
    /// With a validator that accepts every spec and the default redaction; replace them with
    /// [`AdminState::with_validate`] and [`AdminState::with_redact`].
    pub fn new(store: Store, token: AdminToken) -> Self {
        Self {
            store,
            token,
            validate: Arc::new(|_| Ok(())),
            validate_set: Arc::new(|_| Ok(())),
            redact: Arc::new(redact::redact_secret_fields),
            gateway: None,
        }
    }

    pub fn with_gateway(mut self, gateway: Arc<portico_gateway::Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    pub fn with_validate(
        mut self,
        validate: impl Fn(&Resource) -> Result<(), Vec<FieldError>> + Send + Sync + 'static,
    ) -> Self {
        self.validate = Arc::new(validate);
        self
    }

    pub fn with_validate_set(
        mut self,
        validate_set: impl Fn(&[Resource]) -> Result<(), Vec<FieldError>> + Send + Sync + 'static,
    ) -> Self {
        self.validate_set = Arc::new(validate_set);
        self
    }

    pub fn with_redact(
        mut self,
        redact: impl Fn(&str, &mut serde_json::Value) + Send + Sync + 'static,
    ) -> Self {
        self.redact = Arc::new(redact);
        self
    }
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("store", &self.store)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The routes that need the admin token, relative to [`API_PREFIX`].
fn guarded_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(
            resources::list_resources,
            resources::create_resource
        ))
        .routes(routes!(
            resources::get_resource,
            resources::put_resource,
            resources::delete_resource
        ))
        .routes(routes!(apply::apply_documents))
        .routes(routes!(sessions::find_sessions))
        .routes(routes!(sessions::get_session))
        .routes(routes!(sessions::reset_session))
        .routes(routes!(sessions::flush_jwks_cache))
        .routes(routes!(revocations::revoke, revocations::list_revocations))
        .routes(routes!(revocations::lift_revocation))
}

/// Everything, documented; `guarded` is mounted at [`API_PREFIX`].
fn assemble(guarded: OpenApiRouter<AdminState>) -> (Router<AdminState>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::base())
        .nest(API_PREFIX, guarded)
        .routes(routes!(openapi::openapi_json))
        .split_for_parts();
    openapi::finish(&mut document);
    (router, document)
}

/// The OpenAPI document of [`router`], without building a server.
pub fn openapi() -> utoipa::openapi::OpenApi {
    assemble(guarded_routes()).1
}

/// The admin API: every route under `/api/v1/` behind the admin token (unknown paths there
/// too, so they cannot be probed without it), `/openapi.json` open. Bodies are limited to
/// [`MAX_BODY_BYTES`]. It has no fallback outside `/api/v1/`: merge it with the listener's
/// other routes (`Router::merge`), which may have one.
pub fn router(state: AdminState) -> Router {
    let guarded =
        guarded_routes()
            .fallback(unknown_route)
            .layer(axum::middleware::from_fn_with_state(
                state.token.clone(),
                auth::require_admin_token,
            ));
    let (router, document) = assemble(guarded);
    let json = match serde_json::to_vec(&document) {
        Ok(json) => json,
        Err(e) => {
            // Serialising plain structs cannot fail; if it ever does, say so and serve `{}`.
            tracing::error!(error = %e, "admin API: the OpenAPI document does not serialise");
            b"{}".to_vec()
        }
    };
    // No fallback of its own outside /api/v1, so the binary can merge this router with the
    // admin listener's other routes (axum refuses to merge two fallbacks).
    router
        .layer(axum::middleware::map_response(error::shape_bare_errors))
        .layer(Extension(openapi::OpenApiJson(json.into())))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn unknown_route() -> error::ApiError {
    error::ApiError::NotFound("no such route; see /openapi.json".to_string())
}
