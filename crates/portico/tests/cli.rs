//! The `portico` binary as a user runs it: validate, token verify/mint, serve with Tyk files
//! and live reload.

use portico_testkit::TempDir;
use portico_testkit::idp::{Idp, POST_CLIENT_ID, POST_CLIENT_SECRET};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
use common::*;

#[test]
fn validate_accepts_the_quickstart_example() {
    let out = run(&[
        "validate",
        "--config",
        quickstart().join("portico.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 APIs, 2 policies"));
}

#[test]
fn validate_lists_every_problem_with_its_location() {
    let dir = TempDir::new("validate");
    let cfg = dir.write(
        "bad.yaml",
        "apis:\n  - id: a\n    listen_path: a\n    upstream: http://127.0.0.1:1\n    jwt:\n      issuers:\n        - issuer: https://i\n          algorithms: [none]\n    policies:\n      defaults: [ghost]\n",
    );
    let out = run(&["validate", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("apis[0] (a).listen_path"), "{err}");
    assert!(err.contains("unsupported algorithm \"none\""), "{err}");
    let unparsable = dir.write("broken.yaml", "apis: [\n");
    let out = run(&["validate", "--config", unparsable.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("broken.yaml"));
    let out = run(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn token_verify_explains_verdicts() {
    let key = quickstart().join("keys/demo-public.pem");
    let key = key.to_str().unwrap();
    let good = mint(r#"{"sub":"alice","iss":"https://demo.portico.local","aud":"demo-api"}"#);
    let out = run(&[
        "token",
        "verify",
        "--token",
        &good,
        "--key",
        key,
        "--iss",
        "https://demo.portico.local",
        "--aud",
        "demo-api",
        "--alg",
        "RS256",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["claims"]["sub"], "alice");
    assert_eq!(verdict["header"]["alg"], "RS256");

    let out = run(&[
        "token", "verify", "--token", &good, "--key", key, "--aud", "other",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["reason"], "wrong_audience");

    let expired = mint(r#"{"sub":"a","exp":1000}"#);
    let verdict: serde_json::Value = serde_json::from_slice(
        &run(&["token", "verify", "--token", &expired, "--key", key]).stdout,
    )
    .unwrap();
    assert_eq!(verdict["reason"], "expired");

    assert_eq!(
        run(&["token", "verify", "--token", &good]).status.code(),
        Some(2),
        "no key source is a usage error"
    );
    assert_eq!(
        run(&[
            "token",
            "verify",
            "--token",
            &good,
            "--key",
            "/nonexistent.pem"
        ])
        .status
        .code(),
        Some(2)
    );
    let secret = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
    let hs = text(
        &run(&[
            "token",
            "mint",
            "--secret-base64",
            secret,
            "--alg",
            "HS256",
            "--claims",
            r#"{"sub":"b"}"#,
        ])
        .stdout,
    );
    assert_eq!(
        run(&[
            "token",
            "verify",
            "--token",
            hs.trim(),
            "--secret-base64",
            secret
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        run(&["token", "verify", "--token", hs.trim(), "--key", key])
            .status
            .code(),
        Some(1),
        "HS256 against an RSA key"
    );
}

fn tyk_api(upstream: SocketAddr) -> String {
    let public = std::fs::read_to_string(quickstart().join("keys/demo-public.pem")).unwrap();
    let source = base64_encode(public.as_bytes());
    format!(
        r#"{{"name": "Orders", "api_id": "orders", "org_id": "acme", "active": true, "use_keyless": false,
  "enable_jwt": true, "jwt_signing_method": "rsa", "jwt_source": "{source}",
  "jwt_identity_base_field": "user_id", "jwt_scope_claim_name": "scp",
  "jwt_scope_to_policy_mapping": {{"orders:read": "reader"}},
  "jwt_expires_at_validation_skew": 5, "enable_ip_whitelisting": true,
  "proxy": {{"listen_path": "/orders/", "target_url": "http://{upstream}", "strip_listen_path": true, "preserve_host_header": false}}}}"#
    )
}

fn tyk_policies(methods: &str) -> String {
    format!(
        r#"{{"reader": {{"name": "Reader", "rate": 100, "per": 1, "quota_max": -1, "quota_renewal_rate": 0,
  "access_rights": {{"orders": {{"api_id": "orders", "versions": ["Default"], "allowed_urls": [{{"url": "/items", "methods": {methods}}}]}}}}}}}}"#
    )
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn tyk_files_load_and_report_unsupported_fields() {
    let dir = TempDir::new("tyk-validate");
    dir.write("apps/orders.json", tyk_api("127.0.0.1:1".parse().unwrap()));
    dir.write("apps/basic.json", r#"{"api_id": "legacy", "use_basic_auth": true, "proxy": {"listen_path": "/legacy", "target_url": "http://127.0.0.1:1"}}"#);
    let policies = dir.write("policies.json", tyk_policies(r#"["GET"]"#));
    let apps = dir.path().join("apps");
    let out = run(&[
        "validate",
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("basic.json")
            && err.contains(r#"API "legacy" uses auth mode basic (use_basic_auth)"#),
        "{err}"
    );
    assert!(
        err.contains("enable_ip_whitelisting is not supported"),
        "{err}"
    );
    assert!(
        !err.contains("preserve_host_header"),
        "fields left at their default are not reported: {err}"
    );
    // With --tyk-skip-unsupported the rest is valid, and the skipped API is named.
    let out = run(&[
        "validate",
        "--tyk-skip-unsupported",
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(r#"API "legacy" skipped (--tyk-skip-unsupported): auth mode basic"#),
        "{err}"
    );
    assert!(text(&out.stdout).contains("1 APIs, 1 policies"));
    std::fs::remove_file(apps.join("basic.json")).unwrap();
    let out = run(&[
        "validate",
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning"),
        "unsupported fields are still listed"
    );
}

#[test]
fn serve_tyk_files_and_reload_policy_edits_live() {
    let up = upstream();
    let dir = TempDir::new("tyk-serve");
    dir.write("apps/orders.json", tyk_api(up));
    let policies = dir.write("policies.json", tyk_policies(r#"["GET"]"#));
    let apps = dir.path().join("apps");
    let server = Server::start(&[
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ]);
    let token = mint(r#"{"user_id":"u-1","scp":["orders:read"]}"#);
    assert_eq!(server.status("/orders/items", "GET", &token), 200);
    assert_eq!(server.status("/orders/items", "POST", &token), 403);
    assert_eq!(server.status("/orders/other", "GET", &token), 403);

    // Edit the policy file: the running gateway picks it up without a restart.
    std::fs::write(&policies, tyk_policies(r#"["GET", "POST"]"#)).unwrap();
    wait_for(
        || server.status("/orders/items", "POST", &token) == 200,
        "the policy edit to apply",
    );

    // A broken edit is rejected and the last good config keeps serving, also on SIGHUP.
    std::fs::write(&policies, "{ not json").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.status("/orders/items", "POST", &token), 200);
    assert!(Path::new(&policies).exists());
}

#[test]
fn serve_a_file_of_resource_documents() {
    let up = upstream();
    let dir = TempDir::new("documents");
    let public_key = quickstart().join("keys/demo-public.pem");
    let docs = dir.write(
        "resources.yaml",
        format!(
            "kind: Issuer\nmetadata: {{name: demo}}\nspec: {{public_key_file: {key}, algorithms: [RS256]}}\n---\n\
             kind: Api\nmetadata: {{name: orders}}\nspec:\n  listen_path: /orders\n  upstream: http://{up}\n  \
             jwt: {{issuers: [demo]}}\n  policies: {{scope_map: {{orders:read: [reader]}}}}\n---\n\
             kind: Policy\nmetadata: {{name: reader}}\nspec: {{apis: {{orders: {{allow: [{{path: /items, methods: [GET]}}]}}}}}}\n",
            key = public_key.display()
        ),
    );
    let out = run(&["validate", "--config", docs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let server = Server::start(&["--config", docs.to_str().unwrap()]);
    let token = mint(r#"{"sub":"u-1","scope":"orders:read"}"#);
    assert_eq!(server.status("/orders/items", "GET", &token), 200);
    assert_eq!(server.status("/orders/items", "POST", &token), 403);
    assert_eq!(server.status("/orders/items", "GET", "not-a-token"), 401);

    let broken = dir.write(
        "broken.yaml",
        "kind: Api\nmetadata: {name: orders}\nspec: {listen_path: /orders, upstream: 'http://x', jwt: {issuers: [nobody]}}\n",
    );
    let out = run(&["validate", "--config", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("Api \"orders\": spec.jwt.issuers[0]: no Issuer document named \"nobody\""),
        "{}",
        text(&out.stderr)
    );
}

/// The Tyk OAS fixture of the config crate, proxying to `upstream`.
fn tyk_oas_api(upstream: SocketAddr) -> String {
    let fixture = repo().join("crates/config/testdata/tyk-oas/catalog.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    doc["x-tyk-api-gateway"]["upstream"]["url"] = format!("http://{upstream}").into();
    doc.to_string()
}

#[test]
fn serve_a_tyk_oas_jwt_api_beside_a_classic_one_and_skip_unsupported_ones() {
    let up = upstream();
    let dir = TempDir::new("tyk-oas");
    dir.write("apps/orders.json", tyk_api(up));
    dir.write("apps/catalog.json", tyk_oas_api(up));
    dir.write("apps/legacy.json", r#"{"api_id": "legacy", "enable_signature_checking": true, "proxy": {"listen_path": "/legacy/", "target_url": "http://127.0.0.1:1"}}"#);
    let policies = dir.write(
        "policies.json",
        r#"{"reader": {"rate": 100, "per": 1, "access_rights": {"orders": {"allowed_urls": [{"url": "/items", "methods": ["GET"]}]}}},
            "catalog-reader": {"access_rights": {"catalog": {}}},
            "legacy-user": {"access_rights": {"legacy": {}}}}"#,
    );
    let apps = dir.path().join("apps");
    let args = [
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ];
    // Refused by default, naming the API and its mode.
    let mut refused = vec!["serve"];
    refused.extend(args);
    let out = run(&refused);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(r#"API "legacy" uses auth mode HMAC (enable_signature_checking)"#),
        "{err}"
    );
    let mut skipping = args.to_vec();
    skipping.push("--tyk-skip-unsupported");
    let log = dir.path().join("serve.log");
    let server = Server::start_logged(&skipping, &log);
    // The skipped API is logged once, with its mode.
    let logged = std::fs::read_to_string(&log).unwrap();
    let skipped: Vec<&str> = logged.lines().filter(|l| l.contains("skipped")).collect();
    assert_eq!(skipped.len(), 1, "{logged}");
    assert!(
        skipped[0].contains("WARN")
            && skipped[0].contains("legacy.json")
            && skipped[0].contains(
                r#"API "legacy" skipped (--tyk-skip-unsupported): auth mode HMAC (enable_signature_checking)"#
            ),
        "{logged}"
    );
    let token = mint(r#"{"user_id":"u-1","scp":["orders:read","catalog:read"]}"#);
    assert_eq!(server.status("/orders/items", "GET", &token), 200);
    assert_eq!(server.status("/catalog/items", "GET", &token), 200);
    assert_eq!(server.status("/catalog/items/7", "GET", &token), 200);
    // Not in the OAS document's allow list.
    assert_eq!(server.status("/catalog/items/7", "DELETE", &token), 403);
    assert_eq!(server.status("/catalog/items", "GET", "not-a-token"), 401);
    let orders_only = mint(r#"{"user_id":"u-2","scp":["orders:read"]}"#);
    assert_eq!(server.status("/catalog/items", "GET", &orders_only), 403);
    // The skipped API is not routed.
    assert_eq!(server.status("/legacy/x", "GET", &token), 404);
}

/// The external OAuth fixture of the config crate, introspecting at `idp` with its
/// client_secret_post client (Tyk sends the secret in the form body) and proxying to `upstream`.
fn tyk_oas_external_oauth_api(upstream: SocketAddr, idp: &Idp) -> String {
    let fixture = repo().join("crates/config/testdata/tyk-oas/ledger.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let ext = &mut doc["x-tyk-api-gateway"];
    ext["upstream"]["url"] = format!("http://{upstream}").into();
    let introspection = &mut ext["server"]["authentication"]["securitySchemes"]["partnerOAuth"]["providers"]
        [0]["introspection"];
    introspection["url"] = format!("{}/token/introspection", idp.issuer).into();
    introspection["clientId"] = POST_CLIENT_ID.into();
    introspection["clientSecret"] = POST_CLIENT_SECRET.into();
    doc.to_string()
}

#[test]
fn serve_tyk_external_oauth_apis_with_every_provider_against_the_real_idp() {
    let idp = Idp::start();
    let up = upstream();
    let dir = TempDir::new("tyk-external-oauth");
    // Two providers: JWTs by the IdP's JWKS, opaque tokens by introspection at the IdP.
    let classic = serde_json::json!({
        "api_id": "partners", "org_id": "acme", "active": true,
        "use_keyless": false, "enable_jwt": false,
        "external_oauth": {"enabled": true, "providers": [
            {"jwt": {"enabled": true, "signing_method": "rsa",
                "source": format!("{}/jwks", idp.issuer)}},
            {"introspection": {"enabled": true,
                "url": format!("{}/token/introspection", idp.issuer),
                "client_id": POST_CLIENT_ID, "client_secret": POST_CLIENT_SECRET,
                "cache": {"enabled": true, "timeout": 0}}}
        ]},
        "proxy": {"listen_path": "/partners/", "target_url": format!("http://{up}"), "strip_listen_path": true}
    });
    dir.write("apps/partners.json", classic.to_string());
    dir.write("apps/ledger.json", tyk_oas_external_oauth_api(up, &idp));
    let apps = dir.path().join("apps");
    let server = Server::start(&["--tyk-apps", apps.to_str().unwrap()]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opaque = runtime.block_on(idp.opaque_token("orders:read"));
    let jwt = runtime.block_on(idp.client_credentials_token("orders:read"));
    assert!(!opaque.contains('.'), "an opaque token: {opaque}");
    assert_eq!(jwt.split('.').count(), 3, "a JWT: {jwt}");
    // Opaque tokens are introspected, on the Classic API and the OAS one.
    assert_eq!(server.status("/partners/x", "GET", &opaque), 200);
    assert_eq!(server.status("/ledger/entries", "GET", &opaque), 200);
    // The Classic API's jwt provider verifies the IdP's JWTs.
    assert_eq!(server.status("/partners/x", "GET", &jwt), 200);
    // Neither provider admits what its IdP did not issue.
    let foreign = mint(r#"{"sub":"u-1"}"#);
    assert_eq!(server.status("/partners/x", "GET", &foreign), 401);
    for path in ["/partners/x", "/ledger/entries"] {
        assert_eq!(server.status(path, "GET", "not-a-token"), 401, "{path}");
    }
}

#[test]
fn tyk_per_api_limits_count_each_api_on_its_own() {
    let up = upstream();
    let dir = TempDir::new("tyk-per-api");
    dir.write("apps/orders.json", tyk_api(up));
    // Both APIs map their scope to the one per_api policy "reader".
    let mut catalog: serde_json::Value = serde_json::from_str(&tyk_oas_api(up)).unwrap();
    catalog["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"]["catalogJwt"]["scopes"]
        ["scopeToPolicyMapping"][0]["policyId"] = "reader".into();
    dir.write("apps/catalog.json", catalog.to_string());
    let policies = dir.write(
        "policies.json",
        r#"{"reader": {"rate": 100, "per": 1, "partitions": {"per_api": true}, "access_rights": {
            "orders": {"allowed_urls": [{"url": "/items", "methods": ["GET"]}], "limit": {"rate": 1, "per": 60}},
            "catalog": {"limit": {"rate": 1, "per": 60}}}}}"#,
    );
    let apps = dir.path().join("apps");
    let server = Server::start(&[
        "--tyk-apps",
        apps.to_str().unwrap(),
        "--tyk-policies",
        policies.to_str().unwrap(),
    ]);
    let token = mint(r#"{"user_id":"u-1","scp":["orders:read","catalog:read"]}"#);
    assert_eq!(server.status("/orders/items", "GET", &token), 200);
    assert_eq!(server.status("/orders/items", "GET", &token), 429);
    // One counter per API, as in Tyk: the catalog's allowance is untouched.
    assert_eq!(server.status("/catalog/items", "GET", &token), 200);
    assert_eq!(server.status("/catalog/items", "GET", &token), 429);
    // The per-API policy keeps the API's allowed_urls.
    assert_eq!(server.status("/orders/other", "GET", &token), 403);
}
