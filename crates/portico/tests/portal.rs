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
use portico_testkit::idp::{INITIAL_ACCESS_TOKEN, Idp};
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
spec: {{ provider: test-idp, displayName: Backend service, grantTypes: [client_credentials], responseTypes: [] }}
---
kind: Product
metadata: {{ name: orders }}
spec:
  displayName: Orders
  description: Payments and refunds of your orders.
  apis: [payments, refunds]
  scopes: ["orders:read"]
  dcr: {{ enabled: true, clientTypes: [backend] }}
  docs: {{ markdown: "Pay and refund orders: `GET /payments/{{id}}`, `POST /refunds`." }}
---
kind: Plan
metadata: {{ name: gold }}
spec: {{ scope: gold, displayName: Gold, rateLimit: {{ requests: 3, per: 60s }} }}
"#,
        issuer = idp.issuer
    )
}

async fn token(idp: &Idp, client: &Registration, scope: &str) -> String {
    let secret = client.client_secret.as_deref().unwrap_or_default();
    idp.token_of_client(&client.client_id, secret, scope)
        .await
        .unwrap_or_else(|answer| panic!("no token: {answer}"))
}

/// A call to the portal's JSON APIs with a bearer token: the status and the JSON answer.
fn portal_call(
    portal: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .request(method, format!("{portal}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
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

/// The whole path through the binary: a control plane with the portal, the real IdP, an
/// approval over the portal's APIs, a token that reaches the API, and the app's deletion
/// refusing that still-valid token at the gateway.
#[test]
fn the_control_plane_serves_the_portal_from_request_to_revocation() {
    use common::{ADMIN_TOKEN, admin_call, wait_for};
    use reqwest::Method;
    let idp = Idp::start();
    let dir = TempDir::new("portal-control-plane");
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    let server = Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--portal-listen",
            "127.0.0.1:0",
        ],
        &[
            ("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PORTICO_LOG", "warn"),
            ("IDP_IAT", INITIAL_ACCESS_TOKEN),
        ],
    );
    let portal = format!("http://{}", server.announced("portal"));
    let documents =
        portico_config::documents::parse_yaml(&documents(&idp, upstream()), "test").unwrap();
    let (status, body) = admin_call(
        &server,
        Method::POST,
        "/apply",
        Some(serde_json::to_value(&documents).unwrap()),
    );
    assert_eq!(status, 200, "{body}");

    let call =
        |method, path: &str, token: &str, body| portal_call(&portal, method, path, token, body);
    let password = "correct horse battery";
    let (status, _) = call(
        Method::POST,
        "/admin/developers",
        ADMIN_TOKEN,
        Some(serde_json::json!({"email": "ada@example.com", "name": "Ada", "password": password})),
    );
    assert_eq!(status, 201);
    let (_, pat) = call(
        Method::POST,
        "/portal/api/tokens",
        "",
        Some(serde_json::json!({"email": "ada@example.com", "password": password})),
    );
    let pat = pat["token"].as_str().unwrap().to_string();
    let (_, app) = call(
        Method::POST,
        "/portal/api/apps",
        &pat,
        Some(serde_json::json!({"name": "orders app"})),
    );
    let app_id = app["id"].as_str().unwrap().to_string();
    let (status, request) = call(
        Method::POST,
        "/portal/api/access-requests",
        &pat,
        Some(
            serde_json::json!({"app_id": app_id, "product": "orders", "plan": "gold", "client_type": "backend"}),
        ),
    );
    assert_eq!(status, 201, "{request}");
    let (status, approved) = call(
        Method::POST,
        &format!(
            "/admin/access-requests/{}/approve",
            request["id"].as_str().unwrap()
        ),
        ADMIN_TOKEN,
        None,
    );
    assert_eq!(status, 200, "{approved}");

    let (_, shown) = call(
        Method::GET,
        &format!("/portal/api/apps/{app_id}"),
        &pat,
        None,
    );
    assert_eq!(shown["token_endpoint"], format!("{}/token", idp.issuer));
    let token = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(idp.token_of_client(
            shown["client_id"].as_str().unwrap(),
            shown["client_secret"].as_str().unwrap(),
            "orders:read gold",
        ))
        .unwrap();
    // The control plane's gateway follows the store (within its poll interval).
    wait_for(
        || server.status("/payments/x", "GET", &token) == 200,
        "the applied API serving the token",
    );

    let (status, _) = call(
        Method::DELETE,
        &format!("/portal/api/apps/{app_id}"),
        &pat,
        None,
    );
    assert_eq!(status, 204);
    // On the very next request: the portal loads the revocation into its own gateway before
    // it answers (the store poll is a second away).
    assert_eq!(server.status("/payments/x", "GET", &token), 401);
}

/// The portal as a person uses it, in headless Chromium (`tests/browser/portal.mjs`, driven by
/// playwright-core): sign up, catalogue, cart, checkout; the admin approves on the queue page;
/// the developer reveals the credentials, and the page's curl gets a token that the gateway
/// lets through.
/// Screenshots of the key pages are saved in `target/portal-screenshots/`.
#[test]
fn a_person_clicks_through_the_portal_in_a_real_browser() {
    use common::{ADMIN_TOKEN, admin_call, wait_for};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/browser/portal.mjs");
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/browser (scripts/test.sh does it)"
    );
    let idp = Idp::start();
    let dir = TempDir::new("portal-browser");
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    let server = Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--portal-listen",
            "127.0.0.1:0",
        ],
        &[
            ("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PORTICO_LOG", "warn"),
            ("IDP_IAT", INITIAL_ACCESS_TOKEN),
        ],
    );
    let portal = format!("http://{}", server.announced("portal"));
    let documents =
        portico_config::documents::parse_yaml(&documents(&idp, upstream()), "test").unwrap();
    let (status, body) = admin_call(
        &server,
        reqwest::Method::POST,
        "/apply",
        Some(serde_json::to_value(&documents).unwrap()),
    );
    assert_eq!(status, 200, "{body}");

    let screenshots = root.join("target/portal-screenshots");
    let browse = |step: &str| -> Value {
        let output = std::process::Command::new("node")
            .arg(&script)
            .env("PORTAL_URL", &portal)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SCREENSHOTS", &screenshots)
            .env("PRODUCT", "Orders")
            .env("STEP", step)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the browser run ({step}) failed (screenshots in {}):\n{stdout}\n{}",
            screenshots.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {stdout}"))
    };
    let shown = browse("flow");
    assert_eq!(shown["tokenEndpoint"], format!("{}/token", idp.issuer));
    let client_id = shown["clientId"].as_str().unwrap();
    assert!(
        shown["curl"].as_str().unwrap().contains(client_id),
        "{shown}"
    );
    for page in [
        "01-catalogue",
        "04-checkout",
        "06-admin-queue",
        "10-secret-revealed",
    ] {
        assert!(screenshots.join(format!("{page}.png")).is_file(), "{page}");
    }

    // The curl the page shows, as the developer would paste it, gets the token.
    let curl = std::process::Command::new("sh")
        .arg("-c")
        .arg(shown["curl"].as_str().unwrap())
        .output()
        .expect("sh runs");
    let answer: Value = serde_json::from_slice(&curl.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&curl.stdout)));
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {answer}"))
        .to_string();
    wait_for(
        || server.status("/payments/x", "GET", &token) == 200,
        "the browser-made client's token reaching the API",
    );
    // The gold plan allows 3 a minute: the rest are 429s, counted as rejections.
    let statuses: Vec<u16> = (0..4)
        .map(|_| server.status("/payments/x", "GET", &token))
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let chart = browse("usage");
    assert!(chart["ok"].as_u64().unwrap() >= 1, "{chart}");
    assert!(chart["rejected"].as_u64().unwrap() >= 1, "{chart}");
    assert!(screenshots.join("12-usage-chart.png").is_file());
}

/// The emails of the workflow reach a real SMTP server: the admins hear of a request, the
/// developer of its approval and of a rejection with its reason.
#[test]
fn the_workflow_s_emails_reach_a_real_smtp_server() {
    use common::{ADMIN_TOKEN, admin_call};
    use reqwest::Method;
    let smtp = portico_testkit::smtp::SmtpSink::start();
    let idp = Idp::start();
    let dir = TempDir::new("portal-emails");
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    let server = Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--portal-listen",
            "127.0.0.1:0",
            "--portal-url",
            "https://portal.example",
            "--smtp",
            &smtp.url(),
            "--mail-from",
            "Portico <portal@example.com>",
            "--notify",
            "api-team@example.com",
        ],
        &[
            ("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN),
            ("PORTICO_LOG", "warn"),
            ("IDP_IAT", INITIAL_ACCESS_TOKEN),
        ],
    );
    let portal = format!("http://{}", server.announced("portal"));
    let mut documents = documents(&idp, upstream());
    documents.push_str("---\nkind: Product\nmetadata: { name: extras }\nspec: { apis: [extras], scopes: [\"orders:write\"], dcr: { enabled: true, clientTypes: [backend] } }\n---\nkind: Api\nmetadata: { name: extras }\nspec: { listen_path: /extras, upstream: \"http://127.0.0.1:9\" }\n");
    let documents = portico_config::documents::parse_yaml(&documents, "test").unwrap();
    let (status, body) = admin_call(
        &server,
        Method::POST,
        "/apply",
        Some(serde_json::to_value(&documents).unwrap()),
    );
    assert_eq!(status, 200, "{body}");
    let call =
        |method, path: &str, token: &str, body| portal_call(&portal, method, path, token, body);
    let password = "correct horse battery";
    call(
        Method::POST,
        "/admin/developers",
        ADMIN_TOKEN,
        Some(serde_json::json!({"email": "ada@example.com", "name": "Ada", "password": password})),
    );
    let (_, pat) = call(
        Method::POST,
        "/portal/api/tokens",
        "",
        Some(serde_json::json!({"email": "ada@example.com", "password": password})),
    );
    let pat = pat["token"].as_str().unwrap().to_string();
    let (_, app) = call(
        Method::POST,
        "/portal/api/apps",
        &pat,
        Some(serde_json::json!({"name": "ledger"})),
    );
    let app_id = app["id"].as_str().unwrap().to_string();
    let mut requests = Vec::new();
    for product in ["orders", "extras"] {
        let (status, request) = call(
            Method::POST,
            "/portal/api/access-requests",
            &pat,
            Some(
                serde_json::json!({"app_id": app_id, "product": product, "plan": "gold", "client_type": "backend"}),
            ),
        );
        assert_eq!(status, 201, "{request}");
        requests.push(request["id"].as_str().unwrap().to_string());
    }
    let submitted = smtp.wait_for("to the admins", |m| {
        m["to"][0] == "api-team@example.com"
            && m["subject"] == "Access requested: orders for ledger"
    });
    assert_eq!(submitted["from"], "portal@example.com");
    assert!(
        submitted["body"]
            .as_str()
            .unwrap()
            .contains("https://portal.example/manage"),
        "{submitted}"
    );

    let (status, _) = call(
        Method::POST,
        &format!("/admin/access-requests/{}/approve", requests[0]),
        ADMIN_TOKEN,
        None,
    );
    assert_eq!(status, 200);
    let approved = smtp.wait_for("of the approval", |m| {
        m["to"][0] == "ada@example.com" && m["subject"] == "Access approved: orders for ledger"
    });
    let body = approved["body"].as_str().unwrap();
    assert!(
        body.contains(&format!("https://portal.example/apps/{app_id}")),
        "{body}"
    );

    let (status, _) = call(
        Method::POST,
        &format!("/admin/access-requests/{}/reject", requests[1]),
        ADMIN_TOKEN,
        Some(serde_json::json!({"reason": "extras are for partners only"})),
    );
    assert_eq!(status, 200);
    let rejected = smtp.wait_for("of the rejection", |m| {
        m["to"][0] == "ada@example.com" && m["subject"] == "Access not granted: extras for ledger"
    });
    assert!(
        rejected["body"]
            .as_str()
            .unwrap()
            .contains("Reason: extras are for partners only"),
        "{rejected}"
    );
}
