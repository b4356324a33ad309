//! The portal's web pages, server-rendered: for developers at `/` (catalogue, cart and
//! checkout, dashboard, app credentials) and for admins at `/manage` (the access-request
//! queue, developers, apps, the catalogue's documents, a provider's connection test).
//!
//! Every page is a template ([`templates`]), embedded in the binary and overridable by a file
//! of the same name in a folder. Sessions and CSRF protection are [`session`]'s: every form
//! posts a CSRF token that [`session::guard`] checks before any handler runs.

mod admin;
mod developer;
mod documents;
mod markdown;
pub mod session;
pub mod templates;
mod usage;

use crate::api::PortalState;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;
use session::Visitor;

/// The stylesheet every page links.
const STYLESHEET: &str = include_str!("../../templates/portal.css");

/// The pages' routes; merged with the JSON APIs by [`crate::api::router`].
pub fn router(state: PortalState) -> Router<PortalState> {
    Router::new()
        .merge(developer::routes())
        .merge(admin::routes(state.clone()))
        // On the pages' routes only (not on the listener's fallback, nor on the JSON APIs,
        // nor on the stylesheet, which needs no session).
        .route_layer(axum::middleware::from_fn_with_state(state, session::guard))
        .route("/static/portal.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// A rendered page, or the error page when the template fails (which the log explains).
fn render(state: &PortalState, visitor: &Visitor, name: &str, context: Value) -> Response {
    render_status(state, visitor, StatusCode::OK, name, context)
}

fn render_status(
    state: &PortalState,
    visitor: &Visitor,
    status: StatusCode,
    name: &str,
    mut context: Value,
) -> Response {
    if let Value::Object(map) = &mut context {
        map.insert("visitor".into(), visitor.context());
        map.insert("signup_open".into(), state.signup_open.into());
        if name.starts_with("manage/") {
            map.insert("area".into(), "admin".into());
        }
    }
    match state.templates.render(name, &context) {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "portal: a page template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The page could not be rendered; the server log says why.",
            )
                .into_response()
        }
    }
}

/// The error page: `message` in words, with `status`.
fn error_page(
    state: &PortalState,
    visitor: &Visitor,
    status: StatusCode,
    message: &str,
) -> Response {
    render_status(
        state,
        visitor,
        status,
        "error.html",
        serde_json::json!({ "status": status.as_u16(), "message": message }),
    )
}

/// A failure as a page: the message in words, the status it had.
fn failed(state: &PortalState, visitor: &Visitor, e: crate::api::ApiError) -> Response {
    error_page(state, visitor, e.status(), e.message())
}

/// After a form: back to a page (303, so that a reload does not post again).
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}
