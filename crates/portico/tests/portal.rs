//! The portal's documents drive the gateway, end to end against the real test IdP: a client
//! registered by DCR gets tokens whose product scope opens the product's APIs and whose plan
//! scope brings the plan's limits, shared by every API of the product.

mod common;

use common::{Server, upstream};
use portico_config::portal::{DISCOVERY_SUFFIX, ProviderType};
use portico_portal::registration::{
    ClientMetadata, Registrar, Registration, discover, http_client,
};
use portico_testkit::TempDir;
use portico_testkit::idp::{INITIAL_ACCESS_TOKEN, Idp, JWT_RESOURCE};
use serde_json::Value;

fn documents(idp: &Idp, upstream: std::net::SocketAddr) -> String {
    format!(
        r#"
kind: Api
metadata: {{ name: payments }}
spec: {{ listen_path: /payments, upstream: "http://{upstream}" }}
---
kind: Api
metadata: {{ name: refunds }}
spec: {{ listen_path: /refunds, upstream: "http://{upstream}" }}
---
kind: OAuthProvider
metadata: {{ name: test-idp }}
spec: {{ wellKnownUrl: "{issuer}{DISCOVERY_SUFFIX}", initialAccessToken: "${{IDP_IAT}}" }}
---
kind: ClientType
metadata: {{ name: backend }}
spec: {{ provider: test-idp, grantTypes: [client_credentials], responseTypes: [] }}
---
kind: Product
metadata: {{ name: orders }}
spec: {{ apis: [payments, refunds], scopes: ["orders:read"], dcr: {{ enabled: true, clientTypes: [backend] }} }}
---
kind: Plan
metadata: {{ name: gold }}
spec: {{ scope: gold, rateLimit: {{ requests: 3, per: 60s }} }}
"#,
        issuer = idp.issuer
    )
}

async fn token(idp: &Idp, client: &Registration, scope: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/token", idp.issuer))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("resource", JWT_RESOURCE),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"))
        .to_string()
}

#[test]
fn a_registered_client_reaches_the_product_under_its_plan() {
    let idp = Idp::start();
    let dir = TempDir::new("portal-wiring");
    dir.write("portal.yaml", documents(&idp, upstream()));
    let config = dir.path().join("portal.yaml");
    let server = Server::start(&["--config", config.to_str().unwrap()]);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, full, plan_only) = runtime.block_on(async {
        let http = http_client(false).unwrap();
        let found = discover(&http, &format!("{}{DISCOVERY_SUFFIX}", idp.issuer))
            .await
            .unwrap();
        let registrar = Registrar::new(
            http,
            found.registration_endpoint.unwrap(),
            Some(INITIAL_ACCESS_TOKEN.into()),
            ProviderType::Generic,
        );
        let client = registrar
            .register(&ClientMetadata {
                client_name: "orders app".into(),
                grant_types: vec!["client_credentials".into()],
                response_types: vec![],
                redirect_uris: vec![],
                token_endpoint_auth_method: "client_secret_basic".into(),
                scope: "orders:read gold".into(),
                application_type: None,
            })
            .await
            .unwrap();
        let full = token(&idp, &client, "orders:read gold").await;
        let plan_only = token(&idp, &client, "gold").await;
        (client, full, plan_only)
    });
    assert!(!client.client_id.is_empty());

    // No product scope: the plan alone grants nothing.
    assert_eq!(server.status("/payments/x", "GET", &plan_only), 403);
    // The product's two APIs, under the plan's 3 requests a minute, counted together.
    assert_eq!(server.status("/payments/x", "GET", &full), 200);
    assert_eq!(server.status("/refunds/x", "GET", &full), 200);
    assert_eq!(server.status("/payments/x", "GET", &full), 200);
    assert_eq!(server.status("/refunds/x", "GET", &full), 429);
    assert_eq!(server.status("/payments/x", "GET", &full), 429);
}
