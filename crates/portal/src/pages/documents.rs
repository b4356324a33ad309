//! The admin's editors for the catalogue's documents: OAuth providers, client types, products
//! and plans. Each form edits the very document `portico apply` and the admin REST API write:
//! fields the form does not show are kept, a secret left empty keeps the stored one, and a
//! save goes through the admin API's own checks (the document, then the whole configuration
//! it would leave) and is written only at the version the form was read at, so an `apply` or
//! another admin in between is never overwritten unseen.

use super::session::{AdminSignedIn, Visitor};
use super::{error_page, render, render_status, see_other};
use crate::api::PortalState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use portico_admin::checks::{self, Expected};
use portico_admin::document::{Document, Metadata};
use portico_admin::error::{ApiError, FieldError};
use portico_admin::kinds::{self, ResourceKind};
use portico_config::portal::{
    AUTH_METHODS, GRANT_TYPES, OKTA_APPLICATION_TYPES, PROVIDER_TYPES, RESPONSE_TYPES,
};
use portico_store::{Expect, ResourceChange, StoredResource};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The editors' routes, for the admin's signed-in router.
pub(super) fn routes() -> Router<PortalState> {
    Router::new()
        .route("/manage/catalogue", get(list))
        .route("/manage/catalogue/{plural}", get(new_form).post(create))
        .route(
            "/manage/catalogue/{plural}/{name}",
            get(edit_form).post(save),
        )
        .route("/manage/catalogue/{plural}/{name}/delete", post(delete))
}

/// One kind's form.
struct Editor {
    kind: &'static str,
    /// "OAuth provider": what one of them is called on the pages.
    one: &'static str,
    fields: &'static [Field],
}

/// One field of a form: where it lives in the spec (dotted), and how it is entered.
struct Field {
    path: &'static str,
    label: &'static str,
    hint: &'static str,
    input: Input,
}

#[derive(Clone, Copy)]
enum Input {
    /// One line of text; empty removes the field.
    Text,
    /// Several lines of text; empty removes the field.
    Long,
    /// Never shown once stored; empty keeps what is stored, or removes it with "remove".
    /// `${VARIABLE}` references are not secrets and are shown.
    Secret,
    /// A checkbox; unchecked removes the field (every flag defaults to false).
    Flag,
    /// A whole number; empty removes the field.
    Count,
    /// `60s`, `1m`, `24h` or seconds; empty removes the field.
    Duration,
    /// Comma-separated values, as a list.
    List,
    /// One of these, always given.
    OneOf(&'static [&'static str]),
    /// One of these, or none.
    MaybeOneOf(&'static [&'static str]),
    /// Any of these, as a list.
    SomeOf(&'static [&'static str]),
    /// The name of a document of this kind, always given.
    NameOf(&'static str),
    /// Names of documents of this kind, as a list.
    NamesOf(&'static str),
}

impl Input {
    /// The template's name for it.
    fn widget(self) -> &'static str {
        match self {
            Input::Text | Input::Count | Input::Duration | Input::List => "text",
            Input::Long => "long",
            Input::Secret => "secret",
            Input::Flag => "flag",
            Input::OneOf(_) | Input::MaybeOneOf(_) | Input::NameOf(_) => "select",
            Input::SomeOf(_) | Input::NamesOf(_) => "checkboxes",
        }
    }
}

const fn field(path: &'static str, label: &'static str, hint: &'static str, input: Input) -> Field {
    Field {
        path,
        label,
        hint,
        input,
    }
}

const EDITORS: &[Editor] = &[
    Editor {
        kind: "OAuthProvider",
        one: "OAuth provider",
        fields: &[
            field(
                "type",
                "Type",
                "generic is RFC 7591/7592 as written; the others add their product's documented quirks.",
                Input::OneOf(PROVIDER_TYPES),
            ),
            field(
                "wellKnownUrl",
                "Discovery URL",
                "The IdP's OpenID configuration: https://idp.example/.well-known/openid-configuration",
                Input::Text,
            ),
            field(
                "issuer",
                "Issuer",
                "Only when it is not the discovery URL without /.well-known/openid-configuration.",
                Input::Text,
            ),
            field(
                "initialAccessToken",
                "Initial access token",
                "The bearer token registration needs (RFC 7591 §3): the token itself (stored encrypted) or ${VARIABLE} to read it from the environment.",
                Input::Secret,
            ),
            field(
                "scopeClaim",
                "Scope claim",
                "The claim the IdP's access tokens carry their scopes in; default scope.",
                Input::Text,
            ),
            field(
                "audiences",
                "Audiences",
                "Comma-separated; the gateway requires one of them in this IdP's tokens. Empty: any.",
                Input::List,
            ),
            field(
                "insecureSkipTlsVerify",
                "Skip TLS verification",
                "For tests only: the portal's calls to this IdP accept any certificate.",
                Input::Flag,
            ),
        ],
    },
    Editor {
        kind: "ClientType",
        one: "client type",
        fields: &[
            field(
                "provider",
                "Provider",
                "The OAuth provider its clients are registered at.",
                Input::NameOf("OAuthProvider"),
            ),
            field(
                "displayName",
                "Display name",
                "What developers see; default the name.",
                Input::Text,
            ),
            field("description", "Description", "", Input::Long),
            field(
                "grantTypes",
                "Grant types",
                "implicit and password are unsafe and not offered.",
                Input::SomeOf(GRANT_TYPES),
            ),
            field(
                "responseTypes",
                "Response types",
                "code goes with the authorization_code grant.",
                Input::SomeOf(RESPONSE_TYPES),
            ),
            field(
                "tokenEndpointAuthMethod",
                "Client authentication",
                "none only for public clients, never with client_credentials.",
                Input::OneOf(AUTH_METHODS),
            ),
            field(
                "oktaApplicationType",
                "Okta application type",
                "Sent to Okta only.",
                Input::MaybeOneOf(OKTA_APPLICATION_TYPES),
            ),
        ],
    },
    Editor {
        kind: "Product",
        one: "product",
        fields: &[
            field(
                "displayName",
                "Display name",
                "What developers see; default the name.",
                Input::Text,
            ),
            field("description", "Description", "", Input::Long),
            field(
                "apis",
                "APIs",
                "Comma-separated gateway API ids.",
                Input::List,
            ),
            field(
                "scopes",
                "Scopes",
                "Comma-separated; a token with one of them may call the product's APIs.",
                Input::List,
            ),
            field(
                "dcr.enabled",
                "Offered for sign-up",
                "Developers may request access, and approved apps get a client registered at the IdP.",
                Input::Flag,
            ),
            field(
                "dcr.clientTypes",
                "Client types",
                "The kinds of client developers may register for it.",
                Input::NamesOf("ClientType"),
            ),
            field(
                "docs.markdown",
                "Documentation",
                "Markdown, shown on the product's page (HTML in it is shown as text).",
                Input::Long,
            ),
            field(
                "docs.openapi",
                "OpenAPI document",
                "YAML or JSON text, offered for download.",
                Input::Long,
            ),
        ],
    },
    Editor {
        kind: "Plan",
        one: "plan",
        fields: &[
            field(
                "displayName",
                "Display name",
                "What developers see; default the name.",
                Input::Text,
            ),
            field("description", "Description", "", Input::Long),
            field(
                "scope",
                "Scope",
                "The scope a token carries for this plan's limits.",
                Input::Text,
            ),
            field(
                "rateLimit.requests",
                "Rate limit: requests",
                "Empty: no rate limit.",
                Input::Count,
            ),
            field(
                "rateLimit.per",
                "Rate limit: per",
                "60s, 1m, 1h.",
                Input::Duration,
            ),
            field(
                "quota.max",
                "Quota: requests",
                "Empty: no quota.",
                Input::Count,
            ),
            field("quota.per", "Quota: per", "24h, 30d.", Input::Duration),
        ],
    },
];

/// The editor behind a collection's URL name (`oauth-providers`, as in the REST API).
fn editor_of(plural: &str) -> Option<(&'static Editor, ResourceKind)> {
    let kind = kinds::by_plural(plural)?;
    let editor = EDITORS.iter().find(|e| e.kind == kind.kind)?;
    Some((editor, kind))
}

/// Percent-encodes a name for a path segment (names may hold spaces, `/`, any printable).
fn segment(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn edit_url(kind: ResourceKind, name: &str) -> String {
    format!("/manage/catalogue/{}/{}", kind.plural, segment(name))
}

// ---- the spec as a form, and a form as a spec ----------------------------------------------

fn at<'a>(spec: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(spec, |v, key| v.get(key))
}

/// Sets (`Some`) or removes (`None`) the value at a dotted path; objects made on the way, or
/// left empty by a removal, come and go with it.
fn set_at(spec: &mut Value, path: &str, value: Option<Value>) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    let Value::Object(map) = spec else { return };
    match (rest, value) {
        (None, Some(value)) => {
            map.insert(head.to_string(), value);
        }
        (None, None) => {
            map.remove(head);
        }
        (Some(rest), value) => {
            if value.is_none() && !map.contains_key(head) {
                return;
            }
            let child = map
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            set_at(child, rest, value);
            if child.as_object().is_some_and(Map::is_empty) {
                map.remove(head);
            }
        }
    }
}

/// Whether a value only names an environment variable: `${IDP_IAT}`.
fn is_reference(text: &str) -> bool {
    text.strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn text_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| text_of(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

fn listed(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(|i| text_of(Some(i))).collect(),
        _ => Vec::new(),
    }
}

/// What a form's fields are made from: the names documents of other kinds may be chosen from.
type Names = std::collections::BTreeMap<&'static str, Vec<String>>;

/// The form's fields, filled from `spec`, with `problems` by the fields they are about.
fn fields_context(
    editor: &Editor,
    spec: &Value,
    names: &Names,
    problems: &[FieldError],
) -> Vec<Value> {
    editor
        .fields
        .iter()
        .map(|f| {
            let value = at(spec, f.path);
            let options = |choices: Vec<String>, chosen: &[String]| -> Vec<Value> {
                choices
                    .into_iter()
                    .map(|c| json!({"selected": chosen.contains(&c), "value": c}))
                    .collect()
            };
            let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let mut shown = json!({
                "name": f.path,
                "id": format!("f-{}", f.path.replace('.', "-")),
                "label": f.label,
                "hint": f.hint,
                "widget": f.input.widget(),
                "problem": problem_of(f, problems),
            });
            match f.input {
                Input::Secret => {
                    let text = text_of(value);
                    let reference = is_reference(&text);
                    shown["value"] = json!(if reference {
                        text.clone()
                    } else {
                        String::new()
                    });
                    shown["stored"] = json!(!text.is_empty() && !reference);
                }
                Input::Flag => shown["checked"] = json!(value == Some(&Value::Bool(true))),
                Input::OneOf(list) | Input::MaybeOneOf(list) | Input::SomeOf(list) => {
                    let chosen = match value {
                        Some(Value::Array(_)) => listed(value),
                        _ => vec![text_of(value)],
                    };
                    shown["optional"] = json!(matches!(f.input, Input::MaybeOneOf(_)));
                    shown["options"] = json!(options(owned(list), &chosen));
                }
                Input::NameOf(kind) | Input::NamesOf(kind) => {
                    let chosen = match value {
                        Some(Value::Array(_)) => listed(value),
                        _ => vec![text_of(value)],
                    };
                    let mut choices = names.get(kind).cloned().unwrap_or_default();
                    // A name that no longer exists stays visible, so that saving does not drop it
                    // unseen (the checks then say it is unknown).
                    for c in &chosen {
                        if !c.is_empty() && !choices.contains(c) {
                            choices.push(c.clone());
                        }
                    }
                    shown["optional"] = json!(false);
                    shown["options"] = json!(options(choices, &chosen));
                }
                _ => shown["value"] = json!(text_of(value)),
            }
            shown
        })
        .collect()
}

/// The problem about `field`, if one is: `spec.rateLimit.per`, `spec.grantTypes[1]`, …
fn problem_of(field: &Field, problems: &[FieldError]) -> Option<String> {
    problems
        .iter()
        .find(|p| {
            let path = p.path.strip_prefix("spec.").unwrap_or(&p.path);
            let path = path.split('[').next().unwrap_or(path);
            path == field.path || path.starts_with(&format!("{}.", field.path))
        })
        .map(|p| p.reason.clone())
}

/// The spec the form makes from the stored one (kept where the form has no field) and what
/// was posted; problems the form itself can tell (a count that is not a number).
fn spec_from_form(
    editor: &Editor,
    stored: &Value,
    posted: &[(String, String)],
) -> (Value, Vec<FieldError>) {
    let mut spec = if stored.is_object() {
        stored.clone()
    } else {
        Value::Object(Map::new())
    };
    let mut problems = Vec::new();
    let values = |name: &str| -> Vec<&str> {
        posted
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |name: &str| {
        values(name)
            .first()
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    for f in editor.fields {
        let text = one(f.path);
        let value = match f.input {
            Input::Text | Input::OneOf(_) | Input::MaybeOneOf(_) | Input::NameOf(_) => {
                (!text.is_empty()).then(|| json!(text))
            }
            Input::Long => {
                let raw = values(f.path)
                    .first()
                    .map(|v| v.replace("\r\n", "\n"))
                    .unwrap_or_default();
                (!raw.trim().is_empty()).then(|| json!(raw))
            }
            Input::Secret => {
                if !one(&format!("{}.remove", f.path)).is_empty() {
                    None
                } else if text.is_empty() {
                    // Kept as stored.
                    continue;
                } else {
                    Some(json!(text))
                }
            }
            Input::Flag => (!text.is_empty()).then_some(json!(true)),
            Input::Count => match text.parse::<u64>() {
                _ if text.is_empty() => None,
                Ok(n) => Some(json!(n)),
                Err(_) => {
                    problems.push(FieldError::new(
                        format!("spec.{}", f.path),
                        "must be a whole number, like 100",
                    ));
                    Some(json!(text))
                }
            },
            Input::Duration => match text.parse::<u64>() {
                _ if text.is_empty() => None,
                Ok(n) => Some(json!(n)),
                Err(_) => Some(json!(text)),
            },
            Input::List => Some(json!(
                text.split([',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            )),
            Input::SomeOf(_) | Input::NamesOf(_) => Some(json!(
                values(f.path)
                    .into_iter()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            )),
        };
        set_at(&mut spec, f.path, value);
    }
    (spec, problems)
}

// ---- pages ----------------------------------------------------------------------------------

/// What the last form did, for the list to say: `?kind=plans&saved=gold`.
#[derive(Deserialize, Default)]
struct Done {
    kind: Option<String>,
    saved: Option<String>,
    deleted: Option<String>,
}

/// Back to the list, saying what was done to which document.
fn done(kind: ResourceKind, what: &str, name: &str) -> Response {
    let query =
        serde_urlencoded::to_string([("kind", kind.plural), (what, name)]).unwrap_or_default();
    see_other(&format!("/manage/catalogue?{query}"))
}

/// Every document of the four kinds, with links to their editors.
async fn list(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Query(last): Query<Done>,
) -> Response {
    let mut sections = Vec::new();
    let mut said = None;
    for editor in EDITORS {
        let Some(kind) = kinds::by_kind(editor.kind) else {
            continue;
        };
        let stored = match state.store.list(Some(editor.kind)).await {
            Ok(s) => s,
            Err(e) => return super::failed(&state, &visitor, e.into()),
        };
        if last.kind.as_deref() == Some(kind.plural) {
            // Said only when true, so that a link cannot make the page claim anything.
            let exists = |n: &String| stored.iter().any(|r| &r.name == n);
            said = match (&last.saved, &last.deleted) {
                (Some(n), _) if exists(n) => Some(format!("Saved the {} {n:?}.", editor.one)),
                (_, Some(n)) if !exists(n) => Some(format!("Deleted the {} {n:?}.", editor.one)),
                _ => None,
            };
        }
        let items: Vec<Value> = stored
            .into_iter()
            .map(|r| {
                let mut spec = r.spec;
                (state.admin.redact)(editor.kind, &mut spec);
                json!({
                    "name": r.name,
                    "url": edit_url(kind, &r.name),
                    "test_url": format!("/manage/providers/{}/test", segment(&r.name)),
                    "version": r.version,
                    "document": serde_json::to_string_pretty(&spec).unwrap_or_default(),
                })
            })
            .collect();
        sections.push(json!({
            "kind": editor.kind,
            "one": editor.one,
            "new_url": format!("/manage/catalogue/{}", kind.plural),
            "items": items,
        }));
    }
    render(
        &state,
        &visitor,
        "manage/catalogue.html",
        json!({ "sections": sections, "done": said }),
    )
}

/// The names of the documents forms may choose from.
async fn names(state: &PortalState) -> Result<Names, ApiError> {
    let mut names = Names::new();
    for kind in ["OAuthProvider", "ClientType"] {
        let stored = state.store.list(Some(kind)).await.map_err(ApiError::from)?;
        names.insert(kind, stored.into_iter().map(|r| r.name).collect());
    }
    Ok(names)
}

/// What the editor page shows: the document's form, and what went wrong last time.
struct FormPage<'a> {
    editor: &'static Editor,
    kind: ResourceKind,
    /// `None`: a new document.
    name: Option<&'a str>,
    /// The name typed for a new document.
    new_name: &'a str,
    version: Option<i64>,
    spec: &'a Value,
    message: Option<String>,
    problems: &'a [FieldError],
}

async fn form_page(
    state: &PortalState,
    visitor: &Visitor,
    status: StatusCode,
    page: FormPage<'_>,
) -> Response {
    let names = match names(state).await {
        Ok(n) => n,
        Err(e) => return api_failed(state, visitor, e),
    };
    let action = match page.name {
        Some(name) => edit_url(page.kind, name),
        None => format!("/manage/catalogue/{}", page.kind.plural),
    };
    let name_problem = page
        .problems
        .iter()
        .find(|p| p.path == "metadata.name")
        .map(|p| p.reason.clone());
    render_status(
        state,
        visitor,
        status,
        "manage/document.html",
        json!({
            "kind": page.editor.kind,
            "one": page.editor.one,
            "name": page.name,
            "new_name": page.new_name,
            "name_problem": name_problem,
            "version": page.version,
            "action": action,
            "delete_url": page.name.map(|n| format!("{}/delete", edit_url(page.kind, n))),
            "test_url": (page.editor.kind == "OAuthProvider").then(|| page.name.map(|n| format!("/manage/providers/{}/test", segment(n)))).flatten(),
            "fields": fields_context(page.editor, page.spec, &names, page.problems),
            "message": page.message,
            "problems": page.problems.iter().map(|p| format!("{}: {}", p.path, p.reason)).collect::<Vec<_>>(),
        }),
    )
}

/// A failure of the admin API's checks or store, as a page.
fn api_failed(state: &PortalState, visitor: &Visitor, e: ApiError) -> Response {
    let status = e.status();
    error_page(state, visitor, status, &e.into_body().message)
}

fn no_such_collection(state: &PortalState, visitor: &Visitor) -> Response {
    error_page(
        state,
        visitor,
        StatusCode::NOT_FOUND,
        "No such part of the catalogue.",
    )
}

async fn new_form(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(plural): Path<String>,
) -> Response {
    let Some((editor, kind)) = editor_of(&plural) else {
        return no_such_collection(&state, &visitor);
    };
    let page = FormPage {
        editor,
        kind,
        name: None,
        new_name: "",
        version: None,
        spec: &json!({}),
        message: None,
        problems: &[],
    };
    form_page(&state, &visitor, StatusCode::OK, page).await
}

async fn stored(
    state: &PortalState,
    kind: ResourceKind,
    name: &str,
) -> Result<Option<StoredResource>, ApiError> {
    state
        .store
        .get(kind.kind, name)
        .await
        .map_err(ApiError::from)
}

async fn edit_form(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path((plural, name)): Path<(String, String)>,
) -> Response {
    let Some((editor, kind)) = editor_of(&plural) else {
        return no_such_collection(&state, &visitor);
    };
    let found = match stored(&state, kind, &name).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return error_page(
                &state,
                &visitor,
                StatusCode::NOT_FOUND,
                &format!("There is no {} {name:?}.", editor.one),
            );
        }
        Err(e) => return api_failed(&state, &visitor, e),
    };
    let page = FormPage {
        editor,
        kind,
        name: Some(&name),
        new_name: "",
        version: Some(found.version),
        spec: &found.spec,
        message: None,
        problems: &[],
    };
    form_page(&state, &visitor, StatusCode::OK, page).await
}

/// A posted form's fields; `None` when it cannot be read.
fn posted(body: &Bytes) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body).ok()
}

fn unreadable(state: &PortalState, visitor: &Visitor) -> Response {
    error_page(
        state,
        visitor,
        StatusCode::BAD_REQUEST,
        "That form could not be read.",
    )
}

fn value_of<'a>(posted: &'a [(String, String)], name: &str) -> Option<&'a str> {
    posted
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn create(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path(plural): Path<String>,
    body: Bytes,
) -> Response {
    let Some((editor, kind)) = editor_of(&plural) else {
        return no_such_collection(&state, &visitor);
    };
    let Some(posted) = posted(&body) else {
        return unreadable(&state, &visitor);
    };
    let name = value_of(&posted, "name").unwrap_or("").trim().to_string();
    write(
        &state,
        &visitor,
        editor,
        kind,
        &name,
        None,
        &json!({}),
        &posted,
    )
    .await
}

async fn save(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some((editor, kind)) = editor_of(&plural) else {
        return no_such_collection(&state, &visitor);
    };
    let Some(posted) = posted(&body) else {
        return unreadable(&state, &visitor);
    };
    let Some(version) = value_of(&posted, "version").and_then(|v| v.parse::<i64>().ok()) else {
        return error_page(
            &state,
            &visitor,
            StatusCode::BAD_REQUEST,
            "The form does not say which version it edits.",
        );
    };
    // The fields the form has no input for are kept as they are now; the version check below
    // refuses the write if "now" is not the version the form was read at.
    let current = match stored(&state, kind, &name).await {
        Ok(Some(found)) => found.spec,
        Ok(None) => {
            return error_page(
                &state,
                &visitor,
                StatusCode::NOT_FOUND,
                &format!("The {} {name:?} was deleted meanwhile.", editor.one),
            );
        }
        Err(e) => return api_failed(&state, &visitor, e),
    };
    write(
        &state,
        &visitor,
        editor,
        kind,
        &name,
        Some(version),
        &current,
        &posted,
    )
    .await
}

/// Checks and writes the document the form makes; on any problem, the form again with the
/// problems by their fields and what was typed kept (secrets excepted).
#[allow(clippy::too_many_arguments)]
async fn write(
    state: &PortalState,
    visitor: &Visitor,
    editor: &'static Editor,
    kind: ResourceKind,
    name: &str,
    version: Option<i64>,
    current: &Value,
    posted: &[(String, String)],
) -> Response {
    let (spec, mut problems) = spec_from_form(editor, current, posted);
    let mut message = None;
    let mut status = StatusCode::BAD_REQUEST;
    if problems.is_empty() {
        let document = Document {
            kind: editor.kind.to_string(),
            metadata: Metadata {
                name: name.to_string(),
                version,
                created_at: None,
                updated_at: None,
            },
            spec: spec.clone(),
        };
        let expected = Expected {
            kind: Some(kind),
            name: Some(name),
        };
        match checks::check_write(&state.admin, document, expected, "") {
            Err(found) => problems = found,
            Ok(resource) => {
                let expect = version.map_or(Expect::Absent, Expect::Version);
                match checks::commit(&state.admin, vec![ResourceChange::Put(resource, expect)])
                    .await
                {
                    Ok(_) => return done(kind, "saved", name),
                    Err(e) => {
                        // 409 when the document exists already or changed meanwhile.
                        status = e.status();
                        let body = e.into_body();
                        message = Some(body.message);
                        problems = body.fields;
                    }
                }
            }
        }
    }
    let page = FormPage {
        editor,
        kind,
        name: version.map(|_| name),
        new_name: name,
        version,
        spec: &spec,
        message: message.or_else(|| Some(checks::summary(&problems))),
        problems: &problems,
    };
    form_page(state, visitor, status, page).await
}

async fn delete(
    State(state): State<PortalState>,
    AdminSignedIn { visitor }: AdminSignedIn,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some((editor, kind)) = editor_of(&plural) else {
        return no_such_collection(&state, &visitor);
    };
    let Some(posted) = posted(&body) else {
        return unreadable(&state, &visitor);
    };
    let Some(version) = value_of(&posted, "version").and_then(|v| v.parse::<i64>().ok()) else {
        return error_page(
            &state,
            &visitor,
            StatusCode::BAD_REQUEST,
            "The form does not say which version it deletes.",
        );
    };
    let change = ResourceChange::Delete {
        kind: editor.kind.to_string(),
        name: name.clone(),
        expect: Expect::Version(version),
    };
    match checks::commit(&state.admin, vec![change]).await {
        Ok(_) => done(kind, "deleted", &name),
        Err(e) => {
            // Back to the form, with why (another document still names this one, …).
            let body = e.into_body();
            let current = match stored(&state, kind, &name).await {
                Ok(Some(found)) => found,
                Ok(None) => return see_other("/manage/catalogue"),
                Err(e) => return api_failed(&state, &visitor, e),
            };
            let page = FormPage {
                editor,
                kind,
                name: Some(&name),
                new_name: "",
                version: Some(current.version),
                spec: &current.spec,
                message: Some(format!("Not deleted: {}", body.message)),
                problems: &body.fields,
            };
            form_page(&state, &visitor, StatusCode::CONFLICT, page).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn editor(kind: &str) -> &'static Editor {
        EDITORS.iter().find(|e| e.kind == kind).unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_editor_is_a_collection_of_the_rest_api() {
        for e in EDITORS {
            let kind = kinds::by_kind(e.kind).unwrap();
            assert!(editor_of(kind.plural).is_some(), "{}", e.kind);
        }
        assert!(
            editor_of("apis").is_none(),
            "APIs are not the catalogue's to edit"
        );
    }

    #[test]
    fn fields_the_form_does_not_show_are_kept_and_empty_ones_removed() {
        let stored = json!({"scope": "gold", "displayName": "Gold", "rateLimit": {"requests": 5, "per": "1s"}, "future": 1});
        let (spec, problems) = spec_from_form(
            editor("Plan"),
            &stored,
            &form(&[
                ("scope", " gold "),
                ("displayName", ""),
                ("rateLimit.requests", ""),
                ("rateLimit.per", ""),
                ("quota.max", "1000"),
                ("quota.per", "86400"),
            ]),
        );
        assert!(problems.is_empty());
        assert_eq!(
            spec,
            json!({"scope": "gold", "quota": {"max": 1000, "per": 86400}, "future": 1})
        );
    }

    #[test]
    fn a_count_that_is_not_a_number_is_said_and_kept_as_typed() {
        let (spec, problems) = spec_from_form(
            editor("Plan"),
            &json!({}),
            &form(&[
                ("scope", "s"),
                ("rateLimit.requests", "ten"),
                ("rateLimit.per", "1m"),
            ]),
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.rateLimit.requests");
        assert_eq!(spec["rateLimit"], json!({"requests": "ten", "per": "1m"}));
        let shown = fields_context(editor("Plan"), &spec, &Names::new(), &problems);
        let requests = shown
            .iter()
            .find(|f| f["name"] == "rateLimit.requests")
            .unwrap();
        assert_eq!(requests["value"], "ten");
        assert_eq!(requests["problem"], "must be a whole number, like 100");
    }

    #[test]
    fn a_secret_left_empty_is_kept_never_shown_and_removed_only_when_asked() {
        let stored = json!({"wellKnownUrl": "https://idp/.well-known/openid-configuration", "initialAccessToken": "s3cret"});
        let provider = editor("OAuthProvider");
        let base = [
            ("type", "generic"),
            (
                "wellKnownUrl",
                "https://idp/.well-known/openid-configuration",
            ),
        ];
        let (kept, _) = spec_from_form(
            provider,
            &stored,
            &form(&[&base[..], &[("initialAccessToken", "")]].concat()),
        );
        assert_eq!(kept["initialAccessToken"], "s3cret");
        let (changed, _) = spec_from_form(
            provider,
            &stored,
            &form(&[&base[..], &[("initialAccessToken", "new")]].concat()),
        );
        assert_eq!(changed["initialAccessToken"], "new");
        let (removed, _) = spec_from_form(
            provider,
            &stored,
            &form(&[&base[..], &[("initialAccessToken.remove", "on")]].concat()),
        );
        assert!(removed.get("initialAccessToken").is_none());

        let shown = fields_context(provider, &stored, &Names::new(), &[]);
        let secret = shown
            .iter()
            .find(|f| f["name"] == "initialAccessToken")
            .unwrap();
        assert_eq!(
            secret["value"], "",
            "a stored secret is never put in the page"
        );
        assert_eq!(secret["stored"], true);
        let by_reference = json!({"initialAccessToken": "${IDP_IAT}"});
        let shown = fields_context(provider, &by_reference, &Names::new(), &[]);
        let secret = shown
            .iter()
            .find(|f| f["name"] == "initialAccessToken")
            .unwrap();
        assert_eq!(
            secret["value"], "${IDP_IAT}",
            "a variable's name is not a secret"
        );
    }

    #[test]
    fn lists_checkboxes_and_flags() {
        let (spec, _) = spec_from_form(
            editor("Product"),
            &json!({"dcr": {"enabled": true, "clientTypes": ["old"]}}),
            &form(&[
                ("apis", "orders, payments,\n refunds"),
                ("scopes", "orders"),
                ("dcr.clientTypes", "backend"),
                ("dcr.clientTypes", "web"),
            ]),
        );
        assert_eq!(spec["apis"], json!(["orders", "payments", "refunds"]));
        assert_eq!(
            spec["dcr"],
            json!({"clientTypes": ["backend", "web"]}),
            "unchecked: not offered"
        );
        let names = Names::from([("ClientType", vec!["backend".to_string()])]);
        let shown = fields_context(editor("Product"), &spec, &names, &[]);
        let types = shown
            .iter()
            .find(|f| f["name"] == "dcr.clientTypes")
            .unwrap();
        assert_eq!(
            types["options"],
            json!([{"value": "backend", "selected": true}, {"value": "web", "selected": true}]),
            "a name no longer there stays visible"
        );
    }

    #[test]
    fn problems_land_by_their_fields() {
        let plan = editor("Plan");
        let problems = vec![
            FieldError::new("spec.rateLimit.per", "unknown unit"),
            FieldError::new("spec.grantTypes[1]", "unsafe"),
        ];
        let per = plan
            .fields
            .iter()
            .find(|f| f.path == "rateLimit.per")
            .unwrap();
        assert_eq!(problem_of(per, &problems).as_deref(), Some("unknown unit"));
        let grants = editor("ClientType")
            .fields
            .iter()
            .find(|f| f.path == "grantTypes")
            .unwrap();
        assert_eq!(problem_of(grants, &problems).as_deref(), Some("unsafe"));
    }

    #[test]
    fn every_editor_s_form_renders_each_field_labelled() {
        let templates = crate::pages::templates::Templates::embedded();
        let names = Names::from([("OAuthProvider", vec!["idp".to_string()])]);
        for e in EDITORS {
            let context = json!({
                "visitor": {"csrf": "x"}, "kind": e.kind, "one": e.one, "name": "n", "version": 3,
                "fields": fields_context(e, &json!({"initialAccessToken": "s3cret"}), &names, &[]),
                "problems": [],
            });
            let html = templates.render("manage/document.html", &context).unwrap();
            for f in e.fields {
                let id = format!("f-{}", f.path.replace('.', "-"));
                let labelled = html.contains(&format!(r#"for="{id}""#))
                    || html.contains(&format!("<legend>{}</legend>", f.label));
                assert!(labelled, "{} {}", e.kind, f.path);
            }
            assert!(!html.contains("s3cret"));
        }
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
