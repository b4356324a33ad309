//! The portal's JSON APIs, on the portal listener:
//!
//! - for developers, under `/portal/api/`, with a personal access token
//!   (`Authorization: Bearer pat_…`, made by `POST /portal/api/tokens` with the developer's
//!   email and password): the catalogue, their apps, access requests, credentials;
//! - for admins, under `/admin/`, with the admin token: developers, the access-request queue
//!   (approve, reject, revoke).
//!
//! A developer only ever sees their own apps: another developer's app answers 404, as one
//! that does not exist. Errors are `{"error": CODE, "message": TEXT}`.

use crate::mail::Event;
use crate::pages::templates::Templates;
use crate::registration::{discover, http_client};
use crate::workflow::{Workflow, WorkflowError, load_catalogue};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portico_admin::AdminState;
use portico_config::portal::Catalogue;
use portico_store::portal::{AccessRequest, App, Developer, RequestStatus};
use portico_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest request body the portal reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Passwords: at least this long…
pub const MIN_PASSWORD_CHARS: usize = 10;
/// … and at most this many bytes (bounds the hashing work a request can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Apps a developer may have.
pub const MAX_APPS_PER_DEVELOPER: usize = 50;
/// Redirect URIs an app may have.
pub const MAX_REDIRECT_URIS: usize = 10;

#[derive(Clone)]
pub struct PortalState {
    pub store: Store,
    pub workflow: Workflow,
    /// The admin API's state: its token signs admins in, and its checks are the ones every
    /// document the admin pages write goes through.
    pub admin: AdminState,
    /// Password hashes computed at once (each takes ≈ 19 MiB and tens of milliseconds): a
    /// flood of logins waits here instead of exhausting memory.
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// The pages' templates: embedded, or overridden ([`PortalState::with_templates`]).
    pub templates: Templates,
    /// The portal's address as people reach it ([`PortalState::with_public_url`]): forms
    /// must come from its origin, and on `https` cookies are `Secure`.
    pub public_url: Option<String>,
    /// Whether anyone may create an account on the sign-up page (else admins make them).
    pub signup_open: bool,
    /// Signs the CSRF cookie of visitors not signed in, so that a planted cookie is useless.
    pub(crate) csrf_key: Arc<aws_lc_rs::hmac::Key>,
}

/// Password hashes computed at once, at most.
pub const MAX_CONCURRENT_HASHES: usize = 4;

impl PortalState {
    pub fn new(workflow: Workflow, admin: AdminState) -> Self {
        Self {
            store: admin.store.clone(),
            workflow,
            hashing: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES)),
            templates: Templates::embedded(),
            public_url: None,
            signup_open: true,
            csrf_key: Arc::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &admin.token.derive_key("portico/portal/csrf-cookie"),
            )),
            admin,
        }
    }

    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.trim_end_matches('/').to_string());
        self
    }

    pub fn with_signup(mut self, open: bool) -> Self {
        self.signup_open = open;
        self
    }

    /// Whether cookies are sent only over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }

    /// `work` on a blocking thread, one of [`MAX_CONCURRENT_HASHES`].
    pub(crate) async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::internal())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| ApiError::internal())
    }
}

/// Every route of the portal: both JSON APIs and the pages.
pub fn router(state: PortalState) -> Router {
    // Every admin route behind the admin token, whether or not its handler asks for it.
    let admin = Router::new()
        .route("/admin/developers", post(create_developer))
        .route("/admin/access-requests", get(list_requests))
        .route("/admin/access-requests/{id}/approve", post(approve))
        .route("/admin/access-requests/{id}/reject", post(reject))
        .route("/admin/access-requests/{id}/revoke", post(revoke))
        .route_layer(axum::middleware::from_extractor_with_state::<AdminAuth, _>(
            state.clone(),
        ));
    Router::new()
        .route("/portal/api/tokens", post(create_token))
        .route("/portal/api/catalogue", get(catalogue))
        .route("/portal/api/apps", get(list_apps).post(create_app))
        .route("/portal/api/apps/{id}", get(show_app).delete(delete_app))
        .route("/portal/api/access-requests", post(request_access))
        .merge(admin)
        .merge(crate::pages::router(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What is wrong, in words for the person who sent the request.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token>",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Taken(what) => Self::new(
                StatusCode::CONFLICT,
                "exists",
                format!("{what} exists already"),
            ),
            StoreError::Invalid(message) => Self::invalid(message),
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "portal: store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; try again",
                )
            }
            other => {
                tracing::error!(error = %other, "portal: store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::NotFound(what) => Self::not_found(&what),
            WorkflowError::WrongState(state) => Self::new(
                StatusCode::CONFLICT,
                "wrong_state",
                format!("the access request is {state}"),
            ),
            WorkflowError::Catalogue(message) => Self::invalid(message),
            // The IdP's own words, for the admin to act on.
            WorkflowError::Idp(e) => Self::new(StatusCode::BAD_GATEWAY, "idp_error", e.to_string()),
            WorkflowError::Store(e) => e.into(),
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The developer a personal access token belongs to.
pub struct DeveloperAuth(pub Developer);

impl FromRequestParts<PortalState> for DeveloperAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let developer = state
            .store
            .developer_by_token(&token_hash(token))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(DeveloperAuth(developer))
    }
}

/// A request with the admin token.
pub struct AdminAuth;

impl FromRequestParts<PortalState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(token) if state.admin.token.matches(token.as_bytes()) => Ok(AdminAuth),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

pub(crate) fn token_hash(token: &str) -> String {
    digest(&SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new personal access token: `pat_` and 32 random bytes, URL-safe base64.
pub(crate) fn new_token() -> String {
    format!("pat_{}", crate::pages::session::random_token())
}

/// An Argon2id hash (PHC string) of `password`, checked for length first.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password: at most {MAX_PASSWORD_BYTES} bytes"));
    }
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches `hash`; with no account (`None`), a hash is still computed so
/// that the answer takes as long either way.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let dummy =
        DUMMY.get_or_init(|| hash_password("no account has this password").unwrap_or_default());
    let parsed = PasswordHash::new(hash.unwrap_or(dummy));
    let matches = parsed.is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    });
    matches && hash.is_some()
}

/// The shape of the store's ids (32 lowercase hex digits): anything else names nothing, and
/// is never sent to the database (a NUL byte is an error on PostgreSQL, not on SQLite).
pub(crate) fn is_record_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn request_id(id: &str) -> Result<&str, ApiError> {
    if is_record_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found("access request"))
    }
}

pub(crate) fn check_email(email: &str) -> Result<(), ApiError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        // What the mailer can send to: one plain address.
        && email.parse::<lettre::Address>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("email: not an email address"))
    }
}

pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field}: 1 to 200 characters, no control characters"
        )));
    }
    Ok(())
}

/// A redirect URI: absolute https, or http on a loopback host (native apps, RFC 8252); no
/// fragment.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(uri).map_err(|e| format!("{uri:?}: {e}"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("{uri:?}: must be https (or http on localhost)")),
    }
    if url.fragment().is_some() {
        return Err(format!("{uri:?}: must not have a fragment"));
    }
    Ok(())
}

pub(crate) async fn catalogue_of(store: &Store) -> Result<Catalogue, ApiError> {
    Ok(load_catalogue(store).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_token(
    State(state): State<PortalState>,
    Json(body): Json<TokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let developer = state.store.developer_by_email(&body.email).await?;
    let password = body.password;
    let hash = developer.as_ref().map(|d| d.password_hash.clone());
    let matches = state
        .hash(move || verify_password(&password, hash.as_deref()))
        .await?;
    let Some(developer) = developer.filter(|_| matches) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong email or password",
        ));
    };
    let token = new_token();
    let name = body.name.unwrap_or_else(|| "api".into());
    check_name("name", &name)?;
    state
        .store
        .create_token(&developer.id, &token_hash(&token), &name)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

async fn catalogue(
    State(state): State<PortalState>,
    DeveloperAuth(_): DeveloperAuth,
) -> Result<Json<Value>, ApiError> {
    let catalogue = catalogue_of(&state.store).await?;
    let products: Vec<Value> = catalogue
        .products
        .iter()
        .map(|(name, p)| {
            let client_types: Vec<Value> = p
                .dcr
                .client_types
                .iter()
                .filter_map(|t| catalogue.client_types.get(t).map(|spec| (t, spec)))
                .map(|(t, spec)| {
                    json!({
                        "name": t,
                        "displayName": spec.display_name,
                        "description": spec.description,
                        "grantTypes": spec.grant_types,
                        "needsRedirectUris": spec.needs_redirect_uris(),
                    })
                })
                .collect();
            json!({
                "name": name,
                "displayName": p.display_name,
                "description": p.description,
                "apis": p.apis,
                "scopes": p.scopes,
                "dcr": p.dcr.enabled,
                "clientTypes": client_types,
                "docs": { "markdown": p.docs.markdown, "openapi": p.docs.openapi },
            })
        })
        .collect();
    let plans: Vec<Value> = catalogue
        .plans
        .iter()
        .map(|(name, p)| {
            json!({
                "name": name,
                "displayName": p.display_name,
                "description": p.description,
                "scope": p.scope,
                "rateLimit": p.rate_limit,
                "quota": p.quota,
            })
        })
        .collect();
    Ok(Json(json!({ "products": products, "plans": plans })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApp {
    name: String,
    #[serde(default)]
    redirect_uris: RedirectUris,
}

/// A list, or one comma-separated string (as a form field gives it).
#[derive(Deserialize, Default)]
#[serde(untagged)]
pub(crate) enum RedirectUris {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl RedirectUris {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            RedirectUris::None => Vec::new(),
            RedirectUris::List(list) => list,
            RedirectUris::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

fn app_json(app: &App) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "redirect_uris": app.redirect_uris,
        "created_at": app.created_at_secs,
    })
}

/// A request as shown: the IdP's words on a failed approval (`last_error`) only to admins.
fn request_json(request: &AccessRequest, for_admin: bool) -> Value {
    let mut shown = json!({
        "id": request.id,
        "app_id": request.app_id,
        "product": request.product,
        "plan": request.plan,
        "client_type": request.client_type,
        "status": request.status.as_str(),
        "reason": request.reason,
        "created_at": request.created_at_secs,
        "decided_at": request.decided_at_secs,
    });
    if for_admin {
        shown["last_error"] = json!(request.last_error);
    }
    shown
}

async fn create_app(
    State(state): State<PortalState>,
    DeveloperAuth(developer): DeveloperAuth,
    Json(body): Json<NewApp>,
) -> Result<impl IntoResponse, ApiError> {
    let app = new_app(
        &state,
        &developer,
        &body.name,
        body.redirect_uris.into_vec(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(app_json(&app))))
}

/// A new app of `developer`, its name and redirect URIs checked.
pub(crate) async fn new_app(
    state: &PortalState,
    developer: &Developer,
    name: &str,
    uris: Vec<String>,
) -> Result<App, ApiError> {
    check_name("name", name)?;
    if state.store.apps_of(&developer.id).await?.len() >= MAX_APPS_PER_DEVELOPER {
        return Err(ApiError::invalid(format!(
            "a developer has at most {MAX_APPS_PER_DEVELOPER} apps: delete one first"
        )));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(ApiError::invalid(format!(
            "redirect_uris: at most {MAX_REDIRECT_URIS}"
        )));
    }
    for uri in &uris {
        check_redirect_uri(uri).map_err(|e| ApiError::invalid(format!("redirect_uris: {e}")))?;
    }
    Ok(state
        .store
        .create_app(&developer.id, name.trim(), &uris)
        .await?)
}

async fn list_apps(
    State(state): State<PortalState>,
    DeveloperAuth(developer): DeveloperAuth,
) -> Result<Json<Value>, ApiError> {
    let apps = state.store.apps_of(&developer.id).await?;
    Ok(Json(
        json!({ "items": apps.iter().map(app_json).collect::<Vec<_>>() }),
    ))
}

/// `id`, if it is an app of `developer`: another developer's app is "not found".
pub(crate) async fn own_app(
    state: &PortalState,
    developer: &Developer,
    id: &str,
) -> Result<App, ApiError> {
    if !is_record_id(id) {
        return Err(ApiError::not_found("app"));
    }
    match state.store.app(id).await? {
        Some(app) if app.developer_id == developer.id => Ok(app),
        _ => Err(ApiError::not_found("app")),
    }
}

async fn show_app(
    State(state): State<PortalState>,
    DeveloperAuth(developer): DeveloperAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = own_app(&state, &developer, &id).await?;
    Ok(Json(app_view(&state, &app).await?))
}

/// An app as its developer sees it: its access requests and, once registered, its client's
/// credentials (with the secret) and token endpoint.
pub(crate) async fn app_view(state: &PortalState, app: &App) -> Result<Value, ApiError> {
    let requests = state.store.access_requests_of(&app.id).await?;
    let mut shown = app_json(app);
    shown["access"] = requests.iter().map(|r| request_json(r, false)).collect();
    if let Some(client) = state.store.client_of(&app.id).await? {
        let registration: Value =
            serde_json::from_slice(&client.registration).unwrap_or(Value::Null);
        shown["client_id"] = json!(client.client_id);
        shown["client_type"] = json!(client.client_type);
        shown["client_secret"] = registration["client_secret"].clone();
        shown["scopes"] = json!(client.scope.split(' ').collect::<Vec<_>>());
        shown["token_endpoint"] = match token_endpoint(state, &client.provider).await {
            Some(endpoint) => json!(endpoint),
            None => Value::Null,
        };
    }
    Ok(shown)
}

/// The provider's token endpoint, by discovery (`None` when it cannot be found now).
async fn token_endpoint(state: &PortalState, provider: &str) -> Option<String> {
    let catalogue = catalogue_of(&state.store).await.ok()?;
    let provider = catalogue.providers.get(provider)?;
    let http = http_client(provider.insecure_skip_tls_verify).ok()?;
    discover(&http, &provider.well_known_url)
        .await
        .ok()?
        .token_endpoint
}

async fn delete_app(
    State(state): State<PortalState>,
    DeveloperAuth(developer): DeveloperAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = own_app(&state, &developer, &id).await?;
    let workflow = state.workflow.clone();
    tokio::spawn(async move { workflow.delete_app(&app.id).await })
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccessRequest {
    pub(crate) app_id: String,
    pub(crate) product: String,
    pub(crate) plan: String,
    pub(crate) client_type: String,
}

async fn request_access(
    State(state): State<PortalState>,
    DeveloperAuth(developer): DeveloperAuth,
    Json(body): Json<NewAccessRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let app = own_app(&state, &developer, &body.app_id).await?;
    let request = submit_request(&state, &app, &body).await?;
    Ok((StatusCode::CREATED, Json(request_json(&request, false))))
}

/// A new access request of `app`, checked against the catalogue and the app's other requests.
pub(crate) async fn submit_request(
    state: &PortalState,
    app: &App,
    body: &NewAccessRequest,
) -> Result<AccessRequest, ApiError> {
    let catalogue = catalogue_of(&state.store).await?;
    let product = catalogue
        .products
        .get(&body.product)
        .ok_or_else(|| ApiError::invalid(format!("product: no product {:?}", body.product)))?;
    if !catalogue.plans.contains_key(&body.plan) {
        return Err(ApiError::invalid(format!("plan: no plan {:?}", body.plan)));
    }
    if !product.dcr.enabled || !product.dcr.client_types.contains(&body.client_type) {
        return Err(ApiError::invalid(format!(
            "client_type: product {:?} offers {}",
            body.product,
            if product.dcr.enabled {
                product.dcr.client_types.join(", ")
            } else {
                "no client registration".into()
            }
        )));
    }
    let client_type = catalogue
        .client_types
        .get(&body.client_type)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "client_type: no client type {:?}",
                body.client_type
            ))
        })?;
    if client_type.needs_redirect_uris() && app.redirect_uris.is_empty() {
        return Err(ApiError::invalid(format!(
            "client_type: {:?} clients need redirect URIs; give the app some first",
            body.client_type
        )));
    }
    // One app is one client, under one plan: its scopes are the union of what it is granted,
    // so a second plan would lend its limits to every product of the app.
    let live = state.store.access_requests_of(&app.id).await?;
    for other in live.iter().filter(|r| {
        matches!(
            r.status,
            RequestStatus::Pending | RequestStatus::Approving | RequestStatus::Approved
        )
    }) {
        if other.client_type != body.client_type {
            return Err(ApiError::invalid(format!(
                "client_type: this app is a {:?} client; use another app for another client type",
                other.client_type
            )));
        }
        if other.plan != body.plan {
            return Err(ApiError::invalid(format!(
                "plan: this app is on the {:?} plan; use another app for another plan",
                other.plan
            )));
        }
        if other.product == body.product {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "exists",
                format!(
                    "this app has a {} request for {:?} already",
                    other.status.as_str(),
                    body.product
                ),
            ));
        }
    }
    let request = state
        .store
        .create_access_request(&app.id, &body.product, &body.plan, &body.client_type)
        .await?;
    state.workflow.tell(Event::Submitted, &request).await;
    Ok(request)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDeveloper {
    email: String,
    name: String,
    password: String,
}

async fn create_developer(
    State(state): State<PortalState>,
    _: AdminAuth,
    Json(body): Json<NewDeveloper>,
) -> Result<impl IntoResponse, ApiError> {
    check_email(&body.email)?;
    check_name("name", &body.name)?;
    let password = body.password;
    let hash = state
        .hash(move || hash_password(&password))
        .await?
        .map_err(ApiError::invalid)?;
    let developer = state
        .store
        .create_developer(&body.email, body.name.trim(), &hash)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": developer.id, "email": developer.email, "name": developer.name })),
    ))
}

#[derive(Deserialize)]
struct StatusFilter {
    status: Option<String>,
}

async fn list_requests(
    State(state): State<PortalState>,
    _: AdminAuth,
    Query(filter): Query<StatusFilter>,
) -> Result<Json<Value>, ApiError> {
    let status = match filter.status.as_deref() {
        None => None,
        Some(text) => Some(RequestStatus::parse(text).ok_or_else(|| {
            ApiError::invalid("status: one of pending, approving, approved, rejected, revoked")
        })?),
    };
    let requests = state.store.access_requests(status).await?;
    Ok(Json(
        json!({ "items": requests.iter().map(|r| request_json(r, true)).collect::<Vec<_>>() }),
    ))
}

async fn approve(
    State(state): State<PortalState>,
    _: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = request_id(&id)?.to_string();
    let workflow = state.workflow.clone();
    // Spawned: a client that disconnects does not cut an approval half-way.
    let request = tokio::spawn(async move { workflow.approve(&id).await })
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(Json(request_json(&request, true)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

pub(crate) fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() || reason.len() > 2000 {
        return Err(ApiError::invalid("reason: 1 to 2000 characters"));
    }
    Ok(())
}

async fn reject(
    State(state): State<PortalState>,
    _: AdminAuth,
    Path(id): Path<String>,
    Json(body): Json<Reason>,
) -> Result<Json<Value>, ApiError> {
    check_reason(&body.reason)?;
    let request = state
        .workflow
        .reject(request_id(&id)?, body.reason.trim())
        .await?;
    Ok(Json(request_json(&request, true)))
}

async fn revoke(
    State(state): State<PortalState>,
    _: AdminAuth,
    Path(id): Path<String>,
    Json(body): Json<Reason>,
) -> Result<Json<Value>, ApiError> {
    check_reason(&body.reason)?;
    let (id, reason) = (request_id(&id)?.to_string(), body.reason.trim().to_string());
    let workflow = state.workflow.clone();
    let request = tokio::spawn(async move { workflow.revoke(&id, &reason).await })
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(Json(request_json(&request, true)))
}
