//! The developer's pages: sign up and in, the catalogue, a product, the cart and checkout,
//! the dashboard (apps, requests, personal access tokens) and an app's credentials.

use super::markdown;
use super::session::{
    Current, SESSION_TTL_SECS, SignedIn, Visitor, local_path, random_token, session_cookie,
};
use super::{error_page, failed, render, render_status, see_other};
use crate::api::{
    ApiError, NewAccessRequest, PortalState, RedirectUris, app_view, catalogue_of, check_email,
    check_name, hash_password, new_app, new_token, own_app, token_hash, verify_password,
};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use portico_config::portal::{Catalogue, PlanSpec};
use portico_store::portal::RequestStatus;
use portico_store::portal_sessions::WebSession;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<PortalState> {
    Router::new()
        .route("/", get(catalogue))
        .route("/products/{name}", get(product))
        .route("/products/{name}/openapi", get(product_openapi))
        .route("/signup", get(signup_page).post(signup))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/cart", get(cart).post(add_to_cart))
        .route("/cart/remove", post(remove_from_cart))
        .route("/checkout", post(checkout))
        .route("/dashboard", get(dashboard))
        .route("/dashboard/tokens", post(create_token))
        .route("/apps/{id}", get(app))
        .route("/apps/{id}/reveal", post(reveal_secret))
        .route("/apps/{id}/delete", post(delete_app))
}

fn per_text(per: &portico_config::portal::Duration) -> String {
    match per {
        portico_config::portal::Duration::Text(text) => text.clone(),
        portico_config::portal::Duration::Seconds(secs) => format!("{secs}s"),
    }
}

fn plan_context(name: &str, plan: &PlanSpec) -> Value {
    json!({
        "name": name,
        "title": plan.display_name.clone().unwrap_or_else(|| name.to_string()),
        "description": plan.description,
        "rate": plan.rate_limit.as_ref().map(|r| format!("{} requests per {}", r.requests, per_text(&r.per))),
        "quota": plan.quota.as_ref().map(|q| format!("{} requests per {}", q.max, per_text(&q.per))),
    })
}

fn product_context(catalogue: &Catalogue, name: &str) -> Option<Value> {
    let product = catalogue.products.get(name)?;
    let client_types: Vec<Value> = product
        .dcr
        .client_types
        .iter()
        .filter_map(|t| catalogue.client_types.get(t).map(|spec| (t, spec)))
        .map(|(t, spec)| {
            json!({
                "name": t,
                "title": spec.display_name.clone().unwrap_or_else(|| t.clone()),
                "description": spec.description,
                "needs_redirect_uris": spec.needs_redirect_uris(),
            })
        })
        .collect();
    Some(json!({
        "name": name,
        "title": product.display_name.clone().unwrap_or_else(|| name.to_string()),
        "description": product.description,
        "apis": product.apis,
        "scopes": product.scopes,
        "dcr": product.dcr.enabled,
        "client_types": client_types,
        "has_openapi": product.docs.openapi.is_some(),
    }))
}

fn plans_context(catalogue: &Catalogue) -> Vec<Value> {
    catalogue
        .plans
        .iter()
        .map(|(name, plan)| plan_context(name, plan))
        .collect()
}

async fn catalogue(State(state): State<PortalState>, visitor: Visitor) -> Response {
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    let products: Vec<Value> = catalogue
        .products
        .keys()
        .filter_map(|name| product_context(&catalogue, name))
        .collect();
    render(
        &state,
        &visitor,
        "catalogue.html",
        json!({ "products": products, "plans": plans_context(&catalogue) }),
    )
}

async fn product(
    State(state): State<PortalState>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Response {
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    let Some(mut shown) = product_context(&catalogue, &name) else {
        return error_page(&state, &visitor, StatusCode::NOT_FOUND, "No such product.");
    };
    let in_cart = visitor
        .session
        .as_ref()
        .is_some_and(|c| c.session.cart.contains(&name));
    shown["docs_html"] = json!(
        catalogue.products[&name]
            .docs
            .markdown
            .as_deref()
            .map(markdown::to_html)
    );
    render(
        &state,
        &visitor,
        "product.html",
        json!({ "product": shown, "plans": plans_context(&catalogue), "in_cart": in_cart }),
    )
}

/// A product's OpenAPI document as it was given, to download.
async fn product_openapi(
    State(state): State<PortalState>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Response {
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    match catalogue
        .products
        .get(&name)
        .and_then(|p| p.docs.openapi.clone())
    {
        Some(text) => {
            let json = text.trim_start().starts_with('{');
            (
                [
                    (
                        header::CONTENT_TYPE,
                        if json {
                            "application/json"
                        } else {
                            "application/yaml"
                        },
                    ),
                    (header::CONTENT_DISPOSITION, "attachment"),
                ],
                text,
            )
                .into_response()
        }
        None => error_page(
            &state,
            &visitor,
            StatusCode::NOT_FOUND,
            "This product has no OpenAPI document.",
        ),
    }
}

#[derive(Deserialize, Default)]
struct Next {
    next: Option<String>,
}

async fn login_page(
    State(state): State<PortalState>,
    visitor: Visitor,
    Query(next): Query<Next>,
) -> Response {
    render(
        &state,
        &visitor,
        "login.html",
        json!({ "next": local_path(next.next.as_deref(), "/dashboard") }),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Starts a new session for `developer_id` (or an admin's), answering with its cookie and a
/// redirect to `to`. A new session each time: a cookie planted before signing in is useless.
pub(super) async fn start_session(
    state: &PortalState,
    visitor: &Visitor,
    developer_id: Option<String>,
    to: &str,
) -> Response {
    let token = random_token();
    let session = WebSession {
        admin: developer_id.is_none(),
        developer_id,
        csrf: random_token(),
        cart: Vec::new(),
        expires_at_secs: 0,
    };
    if let Err(e) = state
        .store
        .create_session(&token_hash(&token), &session, SESSION_TTL_SECS)
        .await
    {
        return failed(state, visitor, e.into());
    }
    if let Some(old) = &visitor.session {
        let _ = state.store.delete_session(&old.token_hash).await;
    }
    let mut response = see_other(to);
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(state, Some(&token)));
    response
}

async fn login(
    State(state): State<PortalState>,
    visitor: Visitor,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_path(form.next.as_deref(), "/dashboard");
    let developer = match state.store.developer_by_email(&form.email).await {
        Ok(d) => d,
        Err(e) => return failed(&state, &visitor, e.into()),
    };
    let hash = developer.as_ref().map(|d| d.password_hash.clone());
    let password = form.password;
    let matches = match state
        .hash(move || verify_password(&password, hash.as_deref()))
        .await
    {
        Ok(m) => m,
        Err(e) => return failed(&state, &visitor, e),
    };
    match developer.filter(|_| matches) {
        Some(developer) => start_session(&state, &visitor, Some(developer.id), &next).await,
        None => render_status(
            &state,
            &visitor,
            StatusCode::UNAUTHORIZED,
            "login.html",
            json!({ "next": next, "email": form.email, "error": "Wrong email or password." }),
        ),
    }
}

fn signup_closed(state: &PortalState, visitor: &Visitor) -> Response {
    error_page(
        state,
        visitor,
        StatusCode::NOT_FOUND,
        "Accounts are made by the portal's admins here: ask them for one.",
    )
}

async fn signup_page(State(state): State<PortalState>, visitor: Visitor) -> Response {
    if !state.signup_open {
        return signup_closed(&state, &visitor);
    }
    render(&state, &visitor, "signup.html", json!({}))
}

#[derive(Deserialize)]
struct SignupForm {
    name: String,
    email: String,
    password: String,
}

async fn signup(
    State(state): State<PortalState>,
    visitor: Visitor,
    Form(form): Form<SignupForm>,
) -> Response {
    if !state.signup_open {
        return signup_closed(&state, &visitor);
    }
    let again = |status: StatusCode, error: &str| {
        render_status(
            &state,
            &visitor,
            status,
            "signup.html",
            json!({ "name": form.name, "email": form.email, "error": error }),
        )
    };
    if let Err(e) = check_name("name", &form.name).and(check_email(&form.email)) {
        return again(e.status(), e.message());
    }
    let password = form.password.clone();
    let hash = match state.hash(move || hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => return again(StatusCode::UNPROCESSABLE_ENTITY, &e),
        Err(e) => return failed(&state, &visitor, e),
    };
    match state
        .store
        .create_developer(&form.email, form.name.trim(), &hash)
        .await
    {
        Ok(developer) => start_session(&state, &visitor, Some(developer.id), "/dashboard").await,
        Err(portico_store::StoreError::Taken(_)) => again(
            StatusCode::CONFLICT,
            "An account with this email exists already; sign in instead.",
        ),
        Err(e) => failed(&state, &visitor, e.into()),
    }
}

async fn logout(State(state): State<PortalState>, visitor: Visitor) -> Response {
    if let Some(current) = &visitor.session
        && let Err(e) = state.store.delete_session(&current.token_hash).await
    {
        return failed(&state, &visitor, e.into());
    }
    let mut response = see_other("/");
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, None));
    response
}

/// Largest number of products in a cart.
const MAX_CART: usize = 20;

#[derive(Deserialize)]
struct ProductForm {
    product: String,
}

async fn add_to_cart(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<ProductForm>,
) -> Response {
    let SignedIn {
        visitor, session, ..
    } = signed_in;
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    if !catalogue.products.contains_key(&form.product) {
        return error_page(&state, &visitor, StatusCode::NOT_FOUND, "No such product.");
    }
    let mut cart = session.session.cart.clone();
    if !cart.contains(&form.product) {
        if cart.len() >= MAX_CART {
            return error_page(
                &state,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Your cart is full; check out what is in it first.",
            );
        }
        cart.push(form.product);
    }
    save_cart(&state, &visitor, &session, &cart, "/cart").await
}

async fn save_cart(
    state: &PortalState,
    visitor: &Visitor,
    session: &Current,
    cart: &[String],
    to: &str,
) -> Response {
    match state.store.set_cart(&session.token_hash, cart).await {
        Ok(()) => see_other(to),
        Err(e) => failed(state, visitor, e.into()),
    }
}

async fn remove_from_cart(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<ProductForm>,
) -> Response {
    let cart: Vec<String> = signed_in
        .session
        .session
        .cart
        .iter()
        .filter(|p| **p != form.product)
        .cloned()
        .collect();
    save_cart(
        &state,
        &signed_in.visitor,
        &signed_in.session,
        &cart,
        "/cart",
    )
    .await
}

/// What the cart page shows; `errors` and `form` when a checkout failed.
async fn cart_page(
    state: &PortalState,
    signed_in: &SignedIn,
    status: StatusCode,
    errors: Vec<String>,
    form: Value,
) -> Response {
    let visitor = &signed_in.visitor;
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(state, visitor, e),
    };
    let products: Vec<Value> = signed_in
        .session
        .session
        .cart
        .iter()
        .filter_map(|name| product_context(&catalogue, name))
        .collect();
    // The client types every product in the cart offers.
    let mut client_types: Vec<Value> = products
        .first()
        .map(|p| p["client_types"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    client_types.retain(|t| {
        products.iter().all(|p| {
            p["client_types"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|o| o["name"] == t["name"]))
        })
    });
    let apps = match state.store.apps_of(&signed_in.developer.id).await {
        Ok(apps) => apps,
        Err(e) => return failed(state, visitor, e.into()),
    };
    let apps: Vec<Value> = apps
        .iter()
        .map(|a| json!({"id": a.id, "name": a.name}))
        .collect();
    render_status(
        state,
        visitor,
        status,
        "cart.html",
        json!({
            "products": products,
            "plans": plans_context(&catalogue),
            "client_types": client_types,
            "apps": apps,
            "errors": errors,
            "form": form,
        }),
    )
}

async fn cart(State(state): State<PortalState>, signed_in: SignedIn) -> Response {
    cart_page(&state, &signed_in, StatusCode::OK, Vec::new(), json!({})).await
}

#[derive(Deserialize, serde::Serialize)]
struct CheckoutForm {
    plan: String,
    client_type: String,
    /// An app id, or `new` for the app named by `new_app_name`.
    app: String,
    #[serde(default)]
    new_app_name: String,
    /// Comma-separated.
    #[serde(default)]
    redirect_uris: String,
}

async fn checkout(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<CheckoutForm>,
) -> Response {
    let cart = signed_in.session.session.cart.clone();
    let form_context = json!(form);
    if cart.is_empty() {
        return see_other("/cart");
    }
    let app = if form.app == "new" {
        let uris = RedirectUris::Text(form.redirect_uris.clone()).into_vec();
        new_app(&state, &signed_in.developer, &form.new_app_name, uris).await
    } else {
        own_app(&state, &signed_in.developer, &form.app).await
    };
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            return cart_page(
                &state,
                &signed_in,
                e.status(),
                vec![e.message().to_string()],
                form_context,
            )
            .await;
        }
    };
    let mut errors = Vec::new();
    let mut left = Vec::new();
    for product in cart {
        let request = NewAccessRequest {
            app_id: app.id.clone(),
            product: product.clone(),
            plan: form.plan.clone(),
            client_type: form.client_type.clone(),
        };
        if let Err(e) = crate::api::submit_request(&state, &app, &request).await {
            errors.push(format!("{product}: {}", e.message()));
            left.push(product);
        }
    }
    if let Err(e) = state
        .store
        .set_cart(&signed_in.session.token_hash, &left)
        .await
    {
        return failed(&state, &signed_in.visitor, e.into());
    }
    if errors.is_empty() {
        return see_other(&format!("/apps/{}?requested=1", app.id));
    }
    let mut signed_in = signed_in;
    signed_in.session.session.cart = left;
    let mut form_context = form_context;
    // The app exists now: choose it rather than making another of the same name.
    form_context["app"] = json!(app.id);
    cart_page(
        &state,
        &signed_in,
        StatusCode::UNPROCESSABLE_ENTITY,
        errors,
        form_context,
    )
    .await
}

fn status_label(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Pending => "Pending approval",
        RequestStatus::Approving => "Being approved",
        RequestStatus::Approved => "Approved",
        RequestStatus::Rejected => "Rejected",
        RequestStatus::Revoked => "Revoked",
    }
}

/// Requests as the pages show them.
pub(super) fn requests_context(requests: &[portico_store::portal::AccessRequest]) -> Vec<Value> {
    requests
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "product": r.product,
                "plan": r.plan,
                "client_type": r.client_type,
                "status": r.status.as_str(),
                "status_label": status_label(r.status),
                "reason": r.reason,
                "last_error": r.last_error,
            })
        })
        .collect()
}

async fn dashboard_page(
    state: &PortalState,
    signed_in: &SignedIn,
    new_token: Option<&str>,
) -> Response {
    let visitor = &signed_in.visitor;
    let apps = match state.store.apps_of(&signed_in.developer.id).await {
        Ok(apps) => apps,
        Err(e) => return failed(state, visitor, e.into()),
    };
    let mut shown = Vec::new();
    for app in &apps {
        let requests = match state.store.access_requests_of(&app.id).await {
            Ok(r) => r,
            Err(e) => return failed(state, visitor, e.into()),
        };
        shown.push(json!({
            "id": app.id,
            "name": app.name,
            "requests": requests_context(&requests),
        }));
    }
    render(
        state,
        visitor,
        if new_token.is_some() {
            "token.html"
        } else {
            "dashboard.html"
        },
        json!({ "apps": shown, "token": new_token }),
    )
}

async fn dashboard(State(state): State<PortalState>, signed_in: SignedIn) -> Response {
    dashboard_page(&state, &signed_in, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
}

async fn create_token(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Form(form): Form<TokenForm>,
) -> Response {
    let name = if form.name.trim().is_empty() {
        "dashboard".to_string()
    } else {
        form.name.trim().to_string()
    };
    if let Err(e) = check_name("name", &name) {
        return failed(&state, &signed_in.visitor, e);
    }
    let token = new_token();
    if let Err(e) = state
        .store
        .create_token(&signed_in.developer.id, &token_hash(&token), &name)
        .await
    {
        return failed(&state, &signed_in.visitor, e.into());
    }
    dashboard_page(&state, &signed_in, Some(&token)).await
}

#[derive(Deserialize, Default)]
struct AppQuery {
    requested: Option<String>,
}

/// An app's page; the client secret only when `reveal` (a POST, never a link).
async fn app_page(
    state: &PortalState,
    signed_in: &SignedIn,
    id: &str,
    reveal: bool,
    requested: bool,
) -> Response {
    let visitor = &signed_in.visitor;
    let app = match own_app(state, &signed_in.developer, id).await {
        Ok(app) => app,
        Err(e) => return failed(state, visitor, e),
    };
    let mut view = match app_view(state, &app).await {
        Ok(v) => v,
        Err(e) => return failed(state, visitor, e),
    };
    let catalogue = catalogue_of(&state.store).await.ok();
    let requests = match state.store.access_requests_of(&app.id).await {
        Ok(r) => r,
        Err(e) => return failed(state, visitor, e.into()),
    };
    // The type the client was registered as (not a request's: one may be rejected).
    let client_type = view["client_type"]
        .as_str()
        .and_then(|t| catalogue.as_ref().and_then(|c| c.client_types.get(t)));
    let secret = view["client_secret"].as_str().map(str::to_string);
    let curl = match (&view["client_id"], &view["token_endpoint"], client_type) {
        (Value::String(client_id), Value::String(endpoint), Some(spec))
            if spec.grant_types.iter().any(|g| g == "client_credentials") =>
        {
            // Quoted for a POSIX shell; the secret, until revealed, is a variable to set.
            let secret_text = match (&secret, reveal) {
                (Some(secret), true) => shell_quote(secret),
                _ => "\"$CLIENT_SECRET\"".to_string(),
            };
            let scope = view["scopes"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let (endpoint, client_id, scope) = (
                shell_quote(endpoint),
                shell_quote(client_id),
                shell_quote(&scope),
            );
            Some(if spec.token_endpoint_auth_method == "client_secret_post" {
                format!(
                    "curl -s {endpoint} \\\n  -d grant_type=client_credentials \\\n  --data-urlencode client_id={client_id} \\\n  --data-urlencode client_secret={secret_text} \\\n  --data-urlencode scope={scope}"
                )
            } else {
                format!(
                    "curl -s {endpoint} \\\n  -u {client_id}:{secret_text} \\\n  -d grant_type=client_credentials \\\n  --data-urlencode scope={scope}"
                )
            })
        }
        _ => None,
    };
    view["has_secret"] = json!(secret.is_some());
    if !reveal {
        view["client_secret"] = Value::Null;
    }
    render(
        state,
        visitor,
        "app.html",
        json!({
            "app": view,
            "requests": requests_context(&requests),
            "revealed": reveal,
            "curl": curl,
            "requested": requested,
            "usage": super::usage::of_app(state, &app.id).await,
        }),
    )
}

async fn app(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(query): Query<AppQuery>,
) -> Response {
    app_page(&state, &signed_in, &id, false, query.requested.is_some()).await
}

async fn reveal_secret(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    app_page(&state, &signed_in, &id, true, false).await
}

async fn delete_app(
    State(state): State<PortalState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let app = match own_app(&state, &signed_in.developer, &id).await {
        Ok(app) => app,
        Err(e) => return failed(&state, &signed_in.visitor, e),
    };
    let workflow = state.workflow.clone();
    let deleted = tokio::spawn(async move { workflow.delete_app(&app.id).await }).await;
    match deleted {
        Ok(Ok(())) => see_other("/dashboard"),
        Ok(Err(e)) => failed(&state, &signed_in.visitor, e.into()),
        Err(_) => failed(&state, &signed_in.visitor, ApiError::internal()),
    }
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}
