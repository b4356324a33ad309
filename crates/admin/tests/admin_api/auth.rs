//! Every route in the generated OpenAPI document refuses a missing or wrong admin token, so a
//! route added later cannot forget it; and every refusal looks the same.

use crate::fixture::{Server, TOKEN, document};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

/// Every (method, concrete path) of the document's guarded operations: `{plural}` takes each
/// value its parameter schema lists, `{name}` is `x`, a session `{id}` 32 zeros.
fn guarded_operations(openapi: &Value) -> Vec<(Method, String)> {
    let mut operations = Vec::new();
    for (template, item) in openapi["paths"].as_object().unwrap() {
        if !template.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let plurals: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "plural")
                .map(|p| {
                    p["schema"]["enum"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_else(|| vec![String::new()]);
            for plural in plurals {
                let path = template
                    .replace("{plural}", &plural)
                    .replace("{name}", "x")
                    .replace("{id}", &"0".repeat(32));
                assert!(!path.contains('{'), "unexpanded parameter in {path}");
                operations.push((method.clone(), path));
            }
        }
    }
    operations
}

fn with_body(request: RequestBuilder, method: &Method) -> RequestBuilder {
    if matches!(*method, Method::POST | Method::PUT) {
        request.json(&document("Api", "x", serde_json::json!({})))
    } else {
        request
    }
}

#[tokio::test]
async fn every_documented_route_refuses_a_missing_or_wrong_token() {
    let server = Server::sqlite().await;
    let openapi: Value = server
        .client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations = guarded_operations(&openapi);
    // 8 kinds × (list, create, get, put, delete) + apply + sessions (find, get, reset) +
    // the JWKS cache flush + revocations (revoke, list, lift).
    assert_eq!(operations.len(), 48, "{operations:?}");

    let wrong_same_length = format!("{}X", &TOKEN[..TOKEN.len() - 1]);
    let refusals: [(&str, Option<String>); 6] = [
        ("missing", None),
        (
            "wrong, same length",
            Some(format!("Bearer {wrong_same_length}")),
        ),
        ("wrong, longer", Some(format!("Bearer {TOKEN}0"))),
        (
            "prefix of the token",
            Some(format!("Bearer {}", &TOKEN[..10])),
        ),
        ("another scheme", Some(format!("Basic {TOKEN}"))),
        ("no scheme", Some(TOKEN.to_string())),
    ];
    let mut first_body: Option<Value> = None;
    for (method, path) in &operations {
        let url = format!("{}{path}", server.base);
        for (case, authorization) in &refusals {
            let mut request = server.client.request(method.clone(), &url);
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = with_body(request, method).send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} ({case})");
            let challenge = response.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized");
            // Nothing tells the cases (or the routes) apart.
            assert_eq!(first_body.get_or_insert_with(|| body.clone()), &body);
        }
        // And the right token gets past the guard, so the route is really there.
        let request = server
            .client
            .request(method.clone(), &url)
            .bearer_auth(TOKEN);
        let response = with_body(request, method).send().await.unwrap();
        assert_ne!(response.status(), 401, "{method} {path} with the token");
        assert_ne!(response.status(), 405, "{method} {path} is not routed");
    }
}

#[tokio::test]
async fn unknown_paths_under_the_api_need_the_token_too() {
    let server = Server::sqlite().await;
    let url = format!("{}/api/v1/no-such-thing/at/all", server.base);
    let anonymous = server.client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_token = server
        .client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 404);
    let body: Value = with_token.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_checked_then_405() {
    let server = Server::sqlite().await;
    let url = format!("{}/api/v1/apis", server.base);
    let anonymous = server.client.patch(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let with_token = server
        .client
        .patch(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 405);
    assert!(
        with_token.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let body: Value = with_token.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

#[tokio::test]
async fn the_router_merges_with_a_listener_that_has_its_own_fallback() {
    use axum::routing::get;
    let server = Server::sqlite().await;
    let state = portico_admin::AdminState::new(
        server.store.clone(),
        portico_admin::AdminToken::new(TOKEN).unwrap(),
    );
    let listener_routes = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "listener's own 404") })
        .merge(portico_admin::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, listener_routes).await.unwrap() });
    let client = reqwest::Client::new();
    let status = |path: &'static str, token: bool| {
        let mut request = client.get(format!("{base}{path}"));
        if token {
            request = request.bearer_auth(TOKEN);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/health", false).await, 200);
    assert_eq!(status("/elsewhere", false).await, 404);
    assert_eq!(status("/api/v1/apis", false).await, 401);
    assert_eq!(status("/api/v1/apis", true).await, 200);
    assert_eq!(status("/api/v1/unknown/path", false).await, 401);
    task.abort();
}

#[tokio::test]
async fn the_openapi_document_is_open() {
    let server = Server::sqlite().await;
    let response = server
        .client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
}
