//! What the portal's HTTP tests share: a portal over a SQLite store with the test IdP as
//! its provider, a backend and a web client type, the product `orders` and plans `gold` and
//! `silver`.
#![allow(dead_code)] // each test binary uses its part

use portico_admin::AdminToken;
use portico_config::env::MapEnv;
use portico_config::portal::DISCOVERY_SUFFIX;
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
    let state = PortalState::new(store.clone(), workflow, AdminToken::new(ADMIN).unwrap());
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
