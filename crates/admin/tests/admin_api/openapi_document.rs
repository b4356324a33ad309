//! The generated OpenAPI document: valid JSON, OpenAPI 3.1, every route with its error
//! responses, and the same document whether served or built without a server.

use crate::fixture::Server;
use serde_json::Value;
use std::collections::BTreeSet;

async fn served_document(server: &Server) -> Value {
    let text = server
        .client
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn statuses(operation: &Value) -> BTreeSet<String> {
    operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_with_its_errors() {
    let server = Server::sqlite().await;
    let document = served_document(&server).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Portico admin API");

    let routes: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("get", "/api/v1/{plural}"),
        ("post", "/api/v1/{plural}"),
        ("get", "/api/v1/{plural}/{name}"),
        ("put", "/api/v1/{plural}/{name}"),
        ("delete", "/api/v1/{plural}/{name}"),
        ("post", "/api/v1/apply"),
        ("get", "/api/v1/sessions"),
        ("get", "/api/v1/sessions/{id}"),
        ("post", "/api/v1/sessions/{id}/reset"),
        ("post", "/api/v1/jwks-cache/flush"),
        ("post", "/api/v1/revocations"),
        ("get", "/api/v1/revocations"),
        ("delete", "/api/v1/revocations/{id}"),
        ("get", "/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(routes, expected);

    // Each operation's error responses, beyond the 401/500/503 every guarded one has.
    let specific: [(&str, &str, &[&str]); 13] = [
        ("get", "/api/v1/{plural}", &["200", "404"]),
        (
            "post",
            "/api/v1/{plural}",
            &["201", "400", "404", "409", "413", "415"],
        ),
        ("get", "/api/v1/{plural}/{name}", &["200", "404"]),
        (
            "put",
            "/api/v1/{plural}/{name}",
            &["200", "201", "400", "404", "409", "413", "415"],
        ),
        (
            "delete",
            "/api/v1/{plural}/{name}",
            &["204", "400", "404", "409"],
        ),
        (
            "post",
            "/api/v1/apply",
            &["200", "400", "409", "413", "415"],
        ),
        ("get", "/api/v1/sessions", &["200", "400", "404"]),
        ("get", "/api/v1/sessions/{id}", &["200", "400", "404"]),
        (
            "post",
            "/api/v1/sessions/{id}/reset",
            &["200", "400", "404"],
        ),
        ("post", "/api/v1/jwks-cache/flush", &["200", "404"]),
        ("post", "/api/v1/revocations", &["201", "400", "413", "415"]),
        ("get", "/api/v1/revocations", &["200"]),
        ("delete", "/api/v1/revocations/{id}", &["204", "400", "404"]),
    ];
    for (method, path, codes) in specific {
        let operation = &document["paths"][path][method];
        let mut wanted: BTreeSet<String> = codes.iter().map(|c| c.to_string()).collect();
        wanted.extend(["401", "500", "503"].map(String::from));
        assert_eq!(statuses(operation), wanted, "{method} {path}");
        assert_eq!(
            operation["security"],
            serde_json::json!([{"admin_token": []}]),
            "{method} {path}"
        );
        let unauthorized = &operation["responses"]["401"];
        assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
        assert!(operation["responses"]["503"]["headers"]["Retry-After"].is_object());
        for (code, response) in operation["responses"].as_object().unwrap() {
            if code.starts_with('4') || code.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
        }
    }
    // Structurally valid: operation ids unique, every template variable a required path
    // parameter, every response described.
    let mut operation_ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let variables: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_string()),
                "duplicate operationId {id}"
            );
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .inspect(|p| assert_eq!(p["required"], true, "{method} {path}: {p}"))
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, variables, "{method} {path}");
            for (code, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {code}"
                );
            }
        }
    }

    let plural = document["paths"]["/api/v1/{plural}"]["get"]["parameters"][0].clone();
    assert_eq!(plural["name"], "plural");
    assert_eq!(
        plural["schema"]["enum"],
        serde_json::json!([
            "apis",
            "policies",
            "issuers",
            "settings",
            "oauth-providers",
            "client-types",
            "products",
            "plans"
        ])
    );

    let open = &document["paths"]["/openapi.json"]["get"];
    assert!(
        open.get("security").is_none(),
        "the document itself is open"
    );
    let scheme = &document["components"]["securitySchemes"]["admin_token"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    for schema in [
        "Document",
        "Metadata",
        "ResourceList",
        "ErrorBody",
        "FieldError",
        "ApplyReport",
        "ApplyResult",
        "ApplyOutcome",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    let current = &document["components"]["schemas"]["ApplyResult"]["properties"]["current"];
    assert!(
        current["description"]
            .as_str()
            .is_some_and(|d| d.contains("redacted")),
        "ApplyResult.current is documented: {current}"
    );
}

#[tokio::test]
async fn the_document_is_the_same_without_a_server() {
    let server = Server::sqlite().await;
    let served = served_document(&server).await;
    let built = serde_json::to_value(portico_admin::openapi()).unwrap();
    assert_eq!(served, built);
}
