//! The OpenAPI 3.1 document. Paths, parameters, bodies and their specific responses come from
//! the handlers' `#[utoipa::path]` attributes (collected by `utoipa_axum::routes!`, which also
//! registers the handlers, so a route cannot exist without its entry); what every guarded
//! route shares — the admin token and its 401, the 503 of an unavailable store, the 500 — is
//! added here, to exactly the routes that the token layer guards (everything under
//! [`crate::API_PREFIX`]).

use crate::API_PREFIX;
use crate::error::{ErrorBody, RETRY_AFTER_SECS};
use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref};

/// The name of the admin token's security scheme in the document.
pub const SECURITY_SCHEME: &str = "admin_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Portico admin API",
        description = "Manage Portico's resources (APIs, policies, issuers, settings) and look into the \
                       running gateway (identity sessions, JWKS cache). Every route under \
                       /api/v1/ needs the admin token: `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "resources", description = "One collection per kind."),
        (name = "apply", description = "Declarative, idempotent, transactional writes."),
        (name = "gateway", description = "The running gateway: identity sessions and their counters, the JWKS cache."),
        (name = "meta", description = "This document."),
    )
)]
struct BaseDocument;

/// The document before the handlers' paths are added.
pub fn base() -> OpenApi {
    <BaseDocument as utoipa::OpenApi>::openapi()
}

/// Adds the admin token scheme, and to every operation under [`API_PREFIX`] its security
/// requirement and the responses every guarded route can give.
pub fn finish(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SECURITY_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The admin token (at least 32 bytes), from the configuration or PORTICO_ADMIN_TOKEN."))
                .build(),
        ),
    );
    let guarded = format!("{API_PREFIX}/");
    for (path, item) in document.paths.paths.iter_mut() {
        if !path.starts_with(&guarded) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            add_shared_responses(operation);
        }
    }
}

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

fn string_header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)));
    header.description = Some(description.to_string());
    header
}

fn add_shared_responses(operation: &mut Operation) {
    operation
        .security
        .get_or_insert_with(Vec::new)
        .push(SecurityRequirement::new(
            SECURITY_SCHEME,
            Vec::<String>::new(),
        ));
    let responses = &mut operation.responses.responses;
    responses.insert(
        "401".into(),
        error_response("No, a malformed or a wrong admin token (all answered alike).")
            .header(
                "WWW-Authenticate",
                string_header("`Bearer realm=\"portico-admin\"`"),
            )
            .build()
            .into(),
    );
    responses.insert(
        "503".into(),
        error_response("The store (or, for session counters, the limiter's Redis) is unavailable; retry later.")
            .header(
                "Retry-After",
                string_header(&format!("Seconds to wait: {RETRY_AFTER_SECS}.")),
            )
            .build()
            .into(),
    );
    responses.insert(
        "500".into(),
        error_response(
            "An internal error; the details are in the server's log, never in the body.",
        )
        .build()
        .into(),
    );
}

/// The serialised document, served by [`openapi_json`].
#[derive(Clone)]
pub struct OpenApiJson(pub Bytes);

/// This document
///
/// Open (no token): it describes the API and holds no data.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi_json",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(document): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.0)
}
