//! The admin's pages under `/manage`: sign in with the admin token, the access-request queue
//! (approve, reject or revoke with a reason), developers, apps and their clients' state, the
//! catalogue's documents, and a provider's connection test.

use super::developer::{requests_context, start_session};
use super::session::{AdminSignedIn, Visitor};
use super::{error_page, failed, render, render_status, see_other};
use crate::api::{ApiError, PortalState, catalogue_of, check_reason, is_record_id};
use crate::registration::{discover, http_client};
use crate::workflow::WorkflowError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use portico_store::portal::{AccessRequest, RequestStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The admin pages; all but the sign-in behind an admin session, as a layer, whatever a
/// handler asks for.
pub fn routes(state: PortalState) -> Router<PortalState> {
    let signed_in = Router::new()
        .route("/manage", get(queue))
        .route("/manage/requests/{id}/approve", post(approve))
        .route("/manage/requests/{id}/reject", post(reject))
        .route("/manage/requests/{id}/revoke", post(revoke))
        .route("/manage/developers", get(developers))
        .route("/manage/apps", get(apps))
        .route("/manage/apps/{id}", get(app))
        .route("/manage/providers/{name}/test", post(test_provider))
        .route("/manage/outbox", get(outbox))
        .merge(super::documents::routes())
        .route_layer(axum::middleware::from_extractor_with_state::<
            AdminSignedIn,
            _,
        >(state));
    Router::new()
        .route("/manage/login", get(login_page).post(login))
        .merge(signed_in)
}

async fn login_page(State(state): State<PortalState>, visitor: Visitor) -> Response {
    render(&state, &visitor, "manage/login.html", json!({}))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<PortalState>,
    visitor: Visitor,
    Form(form): Form<LoginForm>,
) -> Response {
    if state.admin.token.matches(form.token.trim().as_bytes()) {
        start_session(&state, &visitor, None, "/manage").await
    } else {
        render_status(
            &state,
            &visitor,
            StatusCode::UNAUTHORIZED,
            "manage/login.html",
            json!({ "error": "That is not the admin token." }),
        )
    }
}

/// Requests with their app's and developer's names, for the admin's lists.
async fn described(
    state: &PortalState,
    requests: &[AccessRequest],
) -> Result<Vec<Value>, ApiError> {
    let mut shown = requests_context(requests);
    let mut apps = BTreeMap::new();
    for (request, view) in requests.iter().zip(shown.iter_mut()) {
        if !apps.contains_key(&request.app_id) {
            let app = state.store.app(&request.app_id).await?;
            let developer = match &app {
                Some(app) => state.store.developer(&app.developer_id).await?,
                None => None,
            };
            apps.insert(request.app_id.clone(), (app, developer));
        }
        let (app, developer) = &apps[&request.app_id];
        view["app_id"] = json!(request.app_id);
        view["app_name"] = json!(app.as_ref().map(|a| a.name.clone()));
        view["developer"] = json!(developer.as_ref().map(|d| d.email.clone()));
    }
    Ok(shown)
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn queue_page(
    state: &PortalState,
    visitor: &Visitor,
    status: StatusCode,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let mut lists = serde_json::Map::new();
    for (key, status) in [
        ("pending", RequestStatus::Pending),
        ("approving", RequestStatus::Approving),
        ("approved", RequestStatus::Approved),
    ] {
        let requests = match state.store.access_requests(Some(status)).await {
            Ok(r) => r,
            Err(e) => return failed(state, visitor, e.into()),
        };
        match described(state, &requests).await {
            Ok(shown) => lists.insert(key.into(), json!(shown)),
            Err(e) => return failed(state, visitor, e),
        };
    }
    let done = done.filter(|d| ["approved", "rejected", "revoked"].contains(&d.as_str()));
    lists.insert("error".into(), json!(error));
    lists.insert("done".into(), json!(done));
    render_status(
        state,
        visitor,
        status,
        "manage/queue.html",
        Value::Object(lists),
    )
}

async fn queue(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Query(done): Query<Done>,
) -> Response {
    queue_page(&state, &visitor, StatusCode::OK, None, done.done).await
}

/// After a workflow step: the queue, with the step's error (the IdP's words) if it failed.
async fn after_step(
    state: &PortalState,
    visitor: &Visitor,
    outcome: Result<Result<AccessRequest, WorkflowError>, tokio::task::JoinError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(Ok(_)) => see_other(&format!("/manage?done={done}")),
        Ok(Err(e)) => {
            let e = ApiError::from(e);
            queue_page(
                state,
                visitor,
                e.status(),
                Some(e.message().to_string()),
                None,
            )
            .await
        }
        Err(_) => failed(state, visitor, ApiError::internal()),
    }
}

fn no_such_request(state: &PortalState, visitor: &Visitor) -> Response {
    error_page(
        state,
        visitor,
        StatusCode::NOT_FOUND,
        "No such access request.",
    )
}

async fn approve(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(id): Path<String>,
) -> Response {
    if !is_record_id(&id) {
        return no_such_request(&state, &visitor);
    }
    let workflow = state.workflow.clone();
    // Spawned: a browser that goes away does not cut an approval half-way.
    let outcome = tokio::spawn(async move { workflow.approve(&id).await }).await;
    after_step(&state, &visitor, outcome, "approved").await
}

#[derive(Deserialize)]
struct ReasonForm {
    reason: String,
}

async fn reject(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    if !is_record_id(&id) {
        return no_such_request(&state, &visitor);
    }
    if let Err(e) = check_reason(&form.reason) {
        return queue_page(&state, &visitor, e.status(), Some(e.message().into()), None).await;
    }
    let workflow = state.workflow.clone();
    let reason = form.reason.trim().to_string();
    let outcome = tokio::spawn(async move { workflow.reject(&id, &reason).await }).await;
    after_step(&state, &visitor, outcome, "rejected").await
}

async fn revoke(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(id): Path<String>,
    Form(form): Form<ReasonForm>,
) -> Response {
    if !is_record_id(&id) {
        return no_such_request(&state, &visitor);
    }
    if let Err(e) = check_reason(&form.reason) {
        return queue_page(&state, &visitor, e.status(), Some(e.message().into()), None).await;
    }
    let workflow = state.workflow.clone();
    let reason = form.reason.trim().to_string();
    let outcome = tokio::spawn(async move { workflow.revoke(&id, &reason).await }).await;
    after_step(&state, &visitor, outcome, "revoked").await
}

async fn developers(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
) -> Response {
    let (developers, apps) = match (state.store.developers().await, state.store.apps().await) {
        (Ok(d), Ok(a)) => (d, a),
        (Err(e), _) | (_, Err(e)) => return failed(&state, &visitor, e.into()),
    };
    let shown: Vec<Value> = developers
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "email": d.email,
                "created_at": d.created_at_secs,
                "apps": apps.iter().filter(|a| a.developer_id == d.id).map(|a| json!({"id": a.id, "name": a.name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    render(
        &state,
        &visitor,
        "manage/developers.html",
        json!({ "developers": shown }),
    )
}

async fn apps(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
) -> Response {
    let (developers, apps) = match (state.store.developers().await, state.store.apps().await) {
        (Ok(d), Ok(a)) => (d, a),
        (Err(e), _) | (_, Err(e)) => return failed(&state, &visitor, e.into()),
    };
    let mut shown = Vec::new();
    for app in &apps {
        let client = match state.store.client_of(&app.id).await {
            Ok(c) => c,
            Err(e) => return failed(&state, &visitor, e.into()),
        };
        shown.push(json!({
            "id": app.id,
            "name": app.name,
            "developer": developers.iter().find(|d| d.id == app.developer_id).map(|d| d.email.clone()),
            "client_id": client.as_ref().map(|c| c.client_id.clone()),
            "scopes": client.as_ref().map(|c| c.scope.split(' ').collect::<Vec<_>>()),
        }));
    }
    render(
        &state,
        &visitor,
        "manage/apps.html",
        json!({ "apps": shown }),
    )
}

async fn app(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(id): Path<String>,
) -> Response {
    let found = if is_record_id(&id) {
        state.store.app(&id).await
    } else {
        Ok(None)
    };
    let app = match found {
        Ok(Some(app)) => app,
        Ok(None) => return error_page(&state, &visitor, StatusCode::NOT_FOUND, "No such app."),
        Err(e) => return failed(&state, &visitor, e.into()),
    };
    let (developer, requests, client) = match (
        state.store.developer(&app.developer_id).await,
        state.store.access_requests_of(&app.id).await,
        state.store.client_of(&app.id).await,
    ) {
        (Ok(d), Ok(r), Ok(c)) => (d, r, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return failed(&state, &visitor, e.into());
        }
    };
    // The client's state, never its secret or registration access token.
    let client = client.map(|c| {
        json!({
            "client_id": c.client_id,
            "provider": c.provider,
            "client_type": c.client_type,
            "scopes": c.scope.split(' ').collect::<Vec<_>>(),
        })
    });
    render(
        &state,
        &visitor,
        "manage/app.html",
        json!({
            "app": {"id": app.id, "name": app.name, "redirect_uris": app.redirect_uris},
            "developer": developer.map(|d| json!({"name": d.name, "email": d.email})),
            "requests": requests_context(&requests),
            "client": client,
            "usage": super::usage::of_app(&state, &app.id).await,
        }),
    )
}

/// Fetches the provider's discovery document and says what it found, or exactly what is
/// wrong.
async fn test_provider(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(name): Path<String>,
) -> Response {
    let catalogue = match catalogue_of(&state.store).await {
        Ok(c) => c,
        Err(e) => return failed(&state, &visitor, e),
    };
    let Some(provider) = catalogue.providers.get(&name) else {
        return error_page(&state, &visitor, StatusCode::NOT_FOUND, "No such provider.");
    };
    let mut problems = Vec::new();
    let found = match http_client(provider.insecure_skip_tls_verify) {
        Ok(http) => match discover(&http, &provider.well_known_url).await {
            Ok(found) => Some(found),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if let Some(found) = &found {
        match provider.issuer() {
            Ok(expected) if found.issuer != expected => problems.push(format!(
                "the discovery document names the issuer {:?}, but the provider's issuer is {expected:?}",
                found.issuer
            )),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
        if found.registration_endpoint.is_none() {
            problems.push(
                "the discovery document has no registration_endpoint: this IdP does not offer dynamic client registration".into(),
            );
        }
        if found.token_endpoint.is_none() {
            problems.push("the discovery document has no token_endpoint".into());
        }
        if found.jwks_uri.is_none() {
            problems.push("the discovery document has no jwks_uri: the gateway cannot check this IdP's tokens".into());
        }
    }
    render(
        &state,
        &visitor,
        "manage/provider_test.html",
        json!({
            "name": name,
            "well_known_url": provider.well_known_url,
            "found": found.map(|f| json!({
                "issuer": f.issuer,
                "registration_endpoint": f.registration_endpoint,
                "token_endpoint": f.token_endpoint,
                "jwks_uri": f.jwks_uri,
                "auth_methods": f.token_endpoint_auth_methods_supported,
                "grant_types": f.grant_types_supported,
                "scopes": f.scopes_supported,
            })),
            "problems": problems,
        }),
    )
}

/// Emails shown on the outbox page, newest first.
const OUTBOX_PAGE: u32 = 200;

async fn outbox(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
) -> Response {
    let mails = match state.store.recent_mails(OUTBOX_PAGE).await {
        Ok(m) => m,
        Err(e) => return failed(&state, &visitor, e.into()),
    };
    let shown: Vec<Value> = mails
        .iter()
        .map(|m| {
            json!({
                "event": m.event,
                "recipient": m.recipient,
                "subject": m.subject,
                "body": m.body,
                "sent": m.sent_at_secs.is_some(),
                "attempts": m.attempts,
                "last_error": m.last_error,
            })
        })
        .collect();
    render(
        &state,
        &visitor,
        "manage/outbox.html",
        json!({ "mails": shown, "smtp": state.workflow.mailer().sends() }),
    )
}
