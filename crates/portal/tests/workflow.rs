//! The access-request workflow against the real test IdP and a real store (SQLite): approve
//! registers one client per app, a second approval updates it, revoking shrinks it and
//! refuses its tokens, deleting the app deletes it; failures leave requests pending with the
//! IdP's words; a crash's journal is finished or undone.

use portico_config::env::MapEnv;
use portico_config::portal::{DISCOVERY_SUFFIX, ProviderType};
use portico_core::revocation::RevokedBy;
use portico_portal::registration::{Registrar, Registration, discover, http_client};
use portico_portal::workflow::{Workflow, WorkflowError};
use portico_store::portal::{Move, RequestStatus};
use portico_store::{DatabaseUrl, Expect, Resource, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::idp::{INITIAL_ACCESS_TOKEN, Idp};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

struct World {
    idp: Idp,
    store: Store,
    workflow: Workflow,
    app: String,
    _dir: TempDir,
}

async fn put(store: &Store, kind: &str, name: &str, spec: Value) {
    store
        .put(
            Resource {
                kind: kind.into(),
                name: name.into(),
                spec,
            },
            Expect::Any,
        )
        .await
        .unwrap();
}

async fn world(env: &[(&str, &str)]) -> World {
    let idp = Idp::start();
    let dir = TempDir::new("portal-workflow");
    let key = SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap();
    let settings = StoreSettings::new(DatabaseUrl::Sqlite(dir.path().join("portico.db")));
    let store = Store::open(&settings, key).await.unwrap();
    let well_known = format!("{}{DISCOVERY_SUFFIX}", idp.issuer);
    put(
        &store,
        "OAuthProvider",
        "test-idp",
        json!({"wellKnownUrl": well_known, "initialAccessToken": "${IDP_IAT}"}),
    )
    .await;
    put(
        &store,
        "ClientType",
        "backend",
        json!({"provider": "test-idp", "grantTypes": ["client_credentials"]}),
    )
    .await;
    put(&store, "ClientType", "web", json!({"provider": "test-idp", "grantTypes": ["authorization_code"], "responseTypes": ["code"]})).await;
    put(&store, "Product", "orders", json!({"apis": ["orders"], "scopes": ["orders:read"], "dcr": {"enabled": true, "clientTypes": ["backend", "web"]}})).await;
    put(&store, "Product", "billing", json!({"apis": ["billing"], "scopes": ["billing:read"], "dcr": {"enabled": true, "clientTypes": ["backend"]}})).await;
    put(
        &store,
        "Plan",
        "gold",
        json!({"scope": "gold", "rateLimit": {"requests": 100, "per": "60s"}}),
    )
    .await;
    let dev = store
        .create_developer("ada@example.com", "Ada", "h")
        .await
        .unwrap();
    let app = store
        .create_app(&dev.id, "orders app", &[])
        .await
        .unwrap()
        .id;
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let workflow = Workflow::new(store.clone(), Arc::new(MapEnv(env)), 86_400);
    World {
        idp,
        store,
        workflow,
        app,
        _dir: dir,
    }
}

const IAT: [(&str, &str); 1] = [("IDP_IAT", INITIAL_ACCESS_TOKEN)];

impl World {
    async fn request(&self, product: &str, client_type: &str) -> String {
        self.store
            .create_access_request(&self.app, product, "gold", client_type)
            .await
            .unwrap()
            .id
    }

    async fn registration(&self) -> Registration {
        let client = self
            .store
            .client_of(&self.app)
            .await
            .unwrap()
            .expect("a client");
        serde_json::from_slice(&client.registration).unwrap()
    }

    /// The scopes of a client_credentials token for `scope`, or the IdP's error.
    async fn token_scopes(&self, client: &Registration, scope: &str) -> Result<String, String> {
        let secret = client.client_secret.as_deref().unwrap_or_default();
        match self
            .idp
            .token_of_client(&client.client_id, secret, scope)
            .await
        {
            Ok(token) => Ok(Idp::claims(&token)["scope"]
                .as_str()
                .unwrap_or("")
                .to_string()),
            Err(answer) => Err(answer["error"].as_str().unwrap_or("?").to_string()),
        }
    }
}

#[tokio::test]
async fn one_app_is_one_client_from_approval_to_deletion() {
    let w = world(&IAT).await;
    let orders = w.request("orders", "backend").await;
    let approved = w.workflow.approve(&orders).await.unwrap();
    assert_eq!(approved.status, RequestStatus::Approved);
    let first = w.registration().await;
    assert_eq!(
        w.token_scopes(&first, "orders:read gold").await.unwrap(),
        "orders:read gold"
    );

    // A second product for the same app: the same client, updated with both products' scopes.
    let billing = w.request("billing", "backend").await;
    w.workflow.approve(&billing).await.unwrap();
    let second = w.registration().await;
    assert_eq!(second.client_id, first.client_id);
    assert_eq!(
        w.store.client_of(&w.app).await.unwrap().unwrap().scope,
        "billing:read gold orders:read"
    );
    assert_eq!(
        w.token_scopes(&second, "orders:read billing:read gold")
            .await
            .unwrap(),
        "orders:read billing:read gold"
    );

    // Revoking billing: the client loses its scope, its current tokens are refused.
    let revoked = w.workflow.revoke(&billing, "contract ended").await.unwrap();
    assert_eq!(revoked.status, RequestStatus::Revoked);
    assert_eq!(revoked.reason.as_deref(), Some("contract ended"));
    let third = w.registration().await;
    assert_eq!(
        w.token_scopes(&third, "orders:read billing:read gold")
            .await
            .unwrap_err(),
        "invalid_scope",
        "the IdP no longer grants the revoked product's scope"
    );
    assert_eq!(
        w.token_scopes(&third, "orders:read gold").await.unwrap(),
        "orders:read gold"
    );
    let active = w.store.active_revocations(now()).await.unwrap().revocations;
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].by, active[0].value.as_str()),
        (RevokedBy::ClientId, first.client_id.as_str())
    );
    assert_eq!(active[0].issuer.as_deref(), Some(w.idp.issuer.as_str()));
    assert!(
        active[0].issued_before_secs.is_some(),
        "tokens issued from now on, with the smaller scope, pass"
    );

    // Deleting the app: the client is gone at the IdP, all its tokens refused.
    w.workflow.delete_app(&w.app).await.unwrap();
    assert_eq!(
        w.token_scopes(&third, "orders:read").await.unwrap_err(),
        "invalid_client"
    );
    let active = w.store.active_revocations(now()).await.unwrap().revocations;
    assert!(
        active
            .iter()
            .any(|r| r.value == first.client_id && r.issued_before_secs.is_none())
    );
    assert_eq!(w.store.app(&w.app).await.unwrap(), None);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn two_approvals_at_once_register_one_client() {
    let w = world(&IAT).await;
    let orders = w.request("orders", "backend").await;
    let (a, b) = tokio::join!(w.workflow.approve(&orders), w.workflow.approve(&orders));
    let outcomes = [a.is_ok(), b.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
    let refused = if a.is_ok() { b } else { a };
    assert!(
        matches!(refused, Err(WorkflowError::WrongState(_))),
        "{refused:?}"
    );
    assert!(w.store.client_of(&w.app).await.unwrap().is_some());
    assert!(matches!(
        w.workflow.approve(&orders).await,
        Err(WorkflowError::WrongState("approved"))
    ));
}

#[tokio::test]
async fn a_failed_approval_stays_pending_with_the_reason_and_a_retry_works() {
    // No initial access token in the environment: refused before the IdP is asked.
    let w = world(&[]).await;
    let orders = w.request("orders", "backend").await;
    let failed = w.workflow.approve(&orders).await.unwrap_err();
    assert!(
        failed.to_string().contains("IDP_IAT is not set"),
        "{failed}"
    );
    let request = w.store.access_request(&orders).await.unwrap().unwrap();
    assert_eq!(request.status, RequestStatus::Pending);
    assert!(request.last_error.unwrap().contains("IDP_IAT is not set"));

    // The IdP's own refusal, in its words: a code-flow client without redirect URIs.
    let w = world(&IAT).await;
    let web = w.request("orders", "web").await;
    let failed = w.workflow.approve(&web).await.unwrap_err();
    let request = w.store.access_request(&web).await.unwrap().unwrap();
    assert_eq!(request.status, RequestStatus::Pending);
    let shown = request.last_error.unwrap();
    assert!(shown.contains("invalid_redirect_uri"), "{shown} / {failed}");
    assert_eq!(w.store.client_of(&w.app).await.unwrap(), None);

    // A product that does not offer the client type is refused without calling the IdP.
    let wrong = w
        .store
        .create_access_request(&w.app, "billing", "gold", "web")
        .await
        .unwrap()
        .id;
    let failed = w.workflow.approve(&wrong).await.unwrap_err();
    assert!(
        failed
            .to_string()
            .contains("does not offer the client type \"web\""),
        "{failed}"
    );

    // Retried once the cause is fixed: approved.
    let backend = w.request("orders", "backend").await;
    assert_eq!(
        w.workflow.approve(&backend).await.unwrap().status,
        RequestStatus::Approved
    );
}

async fn registrar(w: &World) -> Registrar {
    let http = http_client(false).unwrap();
    let found = discover(&http, &format!("{}{DISCOVERY_SUFFIX}", w.idp.issuer))
        .await
        .unwrap();
    Registrar::new(
        http,
        found.registration_endpoint.unwrap(),
        Some(INITIAL_ACCESS_TOKEN.into()),
        ProviderType::Generic,
    )
}

#[tokio::test]
async fn recovery_finishes_a_journaled_approval_and_undoes_an_orphan() {
    let w = world(&IAT).await;
    let registrar = registrar(&w).await;
    let metadata = portico_portal::registration::ClientMetadata {
        client_name: "orders app".into(),
        grant_types: vec!["client_credentials".into()],
        response_types: vec![],
        redirect_uris: vec![],
        token_endpoint_auth_method: "client_secret_basic".into(),
        scope: "orders:read gold".into(),
        application_type: None,
    };
    // As if the portal died after the IdP answered and the journal was written.
    let orders = w.request("orders", "backend").await;
    let take = Move {
        id: &orders,
        from: RequestStatus::Pending,
        to: RequestStatus::Approving,
        reason: None,
        last_error: None,
    };
    assert!(w.store.move_access_request(take).await.unwrap());
    let registered = registrar.register(&metadata).await.unwrap();
    w.store
        .journal_registration(
            &w.app,
            &orders,
            "test-idp",
            &serde_json::to_vec(&registered).unwrap(),
        )
        .await
        .unwrap();
    // And a registration whose request was decided meanwhile: an orphan.
    let orphan = registrar.register(&metadata).await.unwrap();
    w.store
        .journal_registration(
            &w.app,
            "no-such-request",
            "test-idp",
            &serde_json::to_vec(&orphan).unwrap(),
        )
        .await
        .unwrap();
    // And a request left approving with nothing journaled.
    let billing = w.request("billing", "backend").await;
    let take = Move {
        id: &billing,
        from: RequestStatus::Pending,
        to: RequestStatus::Approving,
        reason: None,
        last_error: None,
    };
    assert!(w.store.move_access_request(take).await.unwrap());

    w.workflow.recover().await.unwrap();
    assert_eq!(
        w.store
            .access_request(&orders)
            .await
            .unwrap()
            .unwrap()
            .status,
        RequestStatus::Approved
    );
    assert_eq!(w.registration().await.client_id, registered.client_id);
    assert_eq!(
        w.token_scopes(&orphan, "orders:read").await.unwrap_err(),
        "invalid_client",
        "the orphan is deleted at the IdP"
    );
    assert!(w.token_scopes(&registered, "orders:read").await.is_ok());
    assert!(w.store.journal().await.unwrap().is_empty());
    let billing = w.store.access_request(&billing).await.unwrap().unwrap();
    assert_eq!(billing.status, RequestStatus::Pending);
    assert!(billing.last_error.unwrap().contains("interrupted"));
}
