//! What the portal's HTTP tests share: a portal over a SQLite store with the test IdP as
//! its provider, a backend and a web client type, the product `orders` and plans `gold` and
//! `silver`.
#![allow(dead_code)] // each test binary uses its part

use portico_admin::error::FieldError;
use portico_admin::{AdminState, AdminToken};
use portico_config::documents::{self, Document, Kind, Metadata};
use portico_config::env::MapEnv;
use portico_config::portal::{Catalogue, DISCOVERY_SUFFIX};
use portico_portal::api::{PortalState, router};
use portico_portal::workflow::Workflow;
use portico_store::{DatabaseUrl, Expect, Resource, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::idp::{INITIAL_ACCESS_TOKEN, Idp};
use serde_json::json;
use std::sync::Arc;

pub const ADMIN: &str = "portal-test-admin-token-0123456789abcdef";

pub struct Portal {
    pub base: String,
    pub http: reqwest::Client,
    pub idp: Idp,
    pub store: Store,
    _dir: TempDir,
}

/// The admin API's state with the configuration loader's checks of the portal's documents:
/// each spec's shape, and the references between them (as `portico serve` checks them).
fn admin_state(store: &Store) -> AdminState {
    fn document(r: &Resource) -> Option<Document> {
        Some(Document {
            kind: Kind::parse(&r.kind)?,
            metadata: Metadata {
                name: r.name.clone(),
                version: None,
            },
            spec: r.spec.clone(),
        })
    }
    AdminState::new(store.clone(), AdminToken::new(ADMIN).unwrap())
        .with_validate(|r| match document(r) {
            Some(doc) => documents::check(&doc).map_err(|m| vec![FieldError::new("spec", m)]),
            None => Ok(()),
        })
        .with_validate_set(|resources| {
            let docs: Vec<Document> = resources.iter().filter_map(document).collect();
            let (_, problems) = Catalogue::read(&docs, "store");
            match problems.is_empty() {
                true => Ok(()),
                false => Err(problems
                    .into_iter()
                    .map(|p| FieldError::new(p.location, p.message))
                    .collect()),
            }
        })
}

pub async fn start() -> Portal {
    start_with(|state| state).await
}

/// [`start`], with the portal's state changed by `configure` first.
pub async fn start_with(configure: impl FnOnce(PortalState) -> PortalState) -> Portal {
    let idp = Idp::start();
    let dir = TempDir::new("portal-api");
    let key = SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap();
    let store = Store::open(
        &StoreSettings::new(DatabaseUrl::Sqlite(dir.path().join("portico.db"))),
        key,
    )
    .await
    .unwrap();
    let docs = [
        (
            "OAuthProvider",
            "test-idp",
            json!({"wellKnownUrl": format!("{}{DISCOVERY_SUFFIX}", idp.issuer), "initialAccessToken": INITIAL_ACCESS_TOKEN}),
        ),
        (
            "ClientType",
            "backend",
            json!({"provider": "test-idp", "displayName": "Backend service", "grantTypes": ["client_credentials"]}),
        ),
        (
            "ClientType",
            "web",
            json!({"provider": "test-idp", "grantTypes": ["authorization_code"], "responseTypes": ["code"]}),
        ),
        (
            "Product",
            "orders",
            json!({"apis": ["orders"], "scopes": ["orders:read"], "dcr": {"enabled": true, "clientTypes": ["backend", "web"]},
                "docs": {"markdown": "# Orders API\n\nList your orders.\n\n<script>alert('docs')</script>"}}),
        ),
        (
            "Plan",
            "gold",
            json!({"scope": "gold", "rateLimit": {"requests": 100, "per": "60s"}}),
        ),
        ("Plan", "silver", json!({"scope": "silver"})),
    ];
    for (kind, name, spec) in docs {
        let resource = Resource {
            kind: kind.into(),
            name: name.into(),
            spec,
        };
        store.put(resource, Expect::Any).await.unwrap();
    }
    let workflow = Workflow::new(store.clone(), Arc::new(MapEnv::default()), 86_400);
    let state = PortalState::new(workflow, admin_state(&store));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = configure(state);
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Portal {
        base,
        http: reqwest::Client::new(),
        idp,
        store,
        _dir: dir,
    }
}
