//! One collection per kind: CRUD with versions and ETags, conditional writes, the 4xx answers
//! with their field paths, the body limit, redaction, and an unavailable store.

use crate::fixture::{Backend, Server, document, field_paths, read};
use portico_admin::FieldError;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn crud_with_versions_and_etags_on_sqlite() {
    crud_with_versions_and_etags(Server::start(Backend::Sqlite, |s| s).await).await;
}

#[tokio::test]
async fn crud_with_versions_and_etags_on_postgres() {
    crud_with_versions_and_etags(Server::start(Backend::Postgres, |s| s).await).await;
}

async fn crud_with_versions_and_etags(server: Server) {
    let payments = document(
        "Api",
        "payments",
        json!({"listen_path": "/pay", "upstream": "http://a"}),
    );

    let response = server
        .send_json(Method::POST, "/api/v1/apis", &payments)
        .await;
    assert_eq!(response.headers()["location"], "/api/v1/apis/payments");
    let (status, etag, body) = read(response).await;
    assert_eq!((status, etag.as_deref()), (201, Some("\"1\"")));
    assert_eq!(body["kind"], "Api");
    assert_eq!(body["metadata"]["name"], "payments");
    assert_eq!(body["metadata"]["version"], 1);
    assert!(
        body["metadata"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(body["spec"], payments["spec"]);

    let (status, _, body) = read(
        server
            .send_json(Method::POST, "/api/v1/apis", &payments)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_exists"))
    );

    let (status, etag, got) = read(server.get("/api/v1/apis/payments").await).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"1\"")));

    // What GET prints, PUT accepts: the same document back changes nothing.
    let (status, etag, _) = read(
        server
            .send_json(Method::PUT, "/api/v1/apis/payments", &got)
            .await,
    )
    .await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"1\"")));

    let changed = document(
        "Api",
        "payments",
        json!({"listen_path": "/pay", "upstream": "http://b"}),
    );
    let response = server
        .request(Method::PUT, "/api/v1/apis/payments")
        .header("if-match", "\"1\"")
        .json(&changed)
        .send()
        .await
        .unwrap();
    let (status, etag, body) = read(response).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"2\"")));
    assert_eq!(body["spec"]["upstream"], "http://b");
    assert_eq!(body["metadata"]["version"], 2);

    // Stale versions, in the header or the body, are refused and change nothing.
    let stale_header = server
        .request(Method::PUT, "/api/v1/apis/payments")
        .header("if-match", "\"1\"")
        .json(&payments)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(stale_header).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    let mut stale_body = payments.clone();
    stale_body["metadata"]["version"] = json!(1);
    let (status, _, _) = read(
        server
            .send_json(Method::PUT, "/api/v1/apis/payments", &stale_body)
            .await,
    )
    .await;
    assert_eq!(status, 409);
    let (_, etag, body) = read(server.get("/api/v1/apis/payments").await).await;
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(body["spec"]["upstream"], "http://b");

    // Without a version PUT is an unconditional upsert: it creates.
    let orders = document("Api", "orders", json!({"listen_path": "/orders"}));
    let (status, etag, _) = read(
        server
            .send_json(Method::PUT, "/api/v1/apis/orders", &orders)
            .await,
    )
    .await;
    assert_eq!((status, etag.as_deref()), (201, Some("\"1\"")));

    let (status, _, list) = read(server.get("/api/v1/apis").await).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders", "payments"]);
    let (_, _, policies) = read(server.get("/api/v1/policies").await).await;
    assert_eq!(
        policies,
        json!({"items": []}),
        "kinds are separate collections"
    );

    let stale_delete = server
        .request(Method::DELETE, "/api/v1/apis/payments")
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 409);
    let delete = server
        .request(Method::DELETE, "/api/v1/apis/payments")
        .header("if-match", "\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(server.get("/api/v1/apis/payments").await.status(), 404);
    let again = server
        .request(Method::DELETE, "/api/v1/apis/payments")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let unconditional = server
        .request(Method::DELETE, "/api/v1/apis/orders")
        .send()
        .await
        .unwrap();
    assert_eq!(unconditional.status(), 204);
}

#[tokio::test]
async fn concurrent_puts_of_one_version_have_exactly_one_winner_on_sqlite() {
    concurrent_puts(Server::start(Backend::Sqlite, |s| s).await).await;
}

#[tokio::test]
async fn concurrent_puts_of_one_version_have_exactly_one_winner_on_postgres() {
    concurrent_puts(Server::start(Backend::Postgres, |s| s).await).await;
}

async fn concurrent_puts(server: Server) {
    let first = document("Policy", "gold", json!({"rate": 0}));
    assert_eq!(
        server
            .send_json(Method::POST, "/api/v1/policies", &first)
            .await
            .status(),
        201
    );
    let writers = (1..=8).map(|rate| {
        let request = server
            .request(Method::PUT, "/api/v1/policies/gold")
            .header("if-match", "\"1\"")
            .json(&document("Policy", "gold", json!({"rate": rate})));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures_join_all(writers).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    let (_, etag, _) = read(server.get("/api/v1/policies/gold").await).await;
    assert_eq!(etag.as_deref(), Some("\"2\""));
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<u16>
where
    F: std::future::Future<Output = u16> + Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// A validator like the config crate's: the JWKS URL of each issuer must be https.
fn https_jwks(resource: &portico_store::Resource) -> Result<(), Vec<FieldError>> {
    let issuers = resource.spec["jwt"]["issuers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let problems: Vec<FieldError> = issuers
        .iter()
        .enumerate()
        .filter(|(_, issuer)| {
            !issuer["jwks_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://"))
        })
        .map(|(i, _)| {
            FieldError::new(
                format!("spec.jwt.issuers[{i}].jwks_url"),
                "must be an https URL",
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[tokio::test]
async fn invalid_documents_get_400_with_the_field_paths() {
    let server = Server::start(Backend::Sqlite, |s| s.with_validate(https_jwks)).await;
    let spec = json!({"jwt": {"issuers": [{"jwks_url": "https://idp/jwks"}, {"jwks_url": "http://idp/jwks"}]}});

    let (status, _, body) = read(
        server
            .send_json(
                Method::POST,
                "/api/v1/apis",
                &document("Api", "a", spec.clone()),
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert_eq!(field_paths(&body), ["spec.jwt.issuers[1].jwks_url"]);
    assert_eq!(body["fields"][0]["reason"], "must be an https URL");
    assert_eq!(
        server.get("/api/v1/apis/a").await.status(),
        404,
        "nothing written"
    );
    let (status, _, _) = read(
        server
            .send_json(Method::PUT, "/api/v1/apis/a", &document("Api", "a", spec))
            .await,
    )
    .await;
    assert_eq!(status, 400);

    let long_name = "n".repeat(257);
    let cases: [(Method, &str, Value, &str); 8] = [
        (
            Method::POST,
            "/api/v1/apis",
            document("Api", "", json!({})),
            "metadata.name",
        ),
        (
            Method::POST,
            "/api/v1/apis",
            document("Api", &long_name, json!({})),
            "metadata.name",
        ),
        (
            Method::POST,
            "/api/v1/apis",
            json!({"kind": "Api", "metadata": {"name": 3}, "spec": {}}),
            "metadata.name",
        ),
        (
            Method::POST,
            "/api/v1/apis",
            json!({"kind": "Api", "metadata": {"name": "a"}, "spec": {}, "extra": 1}),
            "extra",
        ),
        (
            Method::POST,
            "/api/v1/apis",
            json!({"kind": "Api", "metadata": {"name": "a", "version": "one"}, "spec": {}}),
            "metadata.version",
        ),
        (
            Method::POST,
            "/api/v1/policies",
            document("Api", "a", json!({})),
            "kind",
        ),
        (
            Method::PUT,
            "/api/v1/apis/b",
            document("Api", "a", json!({})),
            "metadata.name",
        ),
        (
            Method::POST,
            "/api/v1/apis",
            document("Api", "a", json!({"auth": {"hmac_secret": "<redacted>"}})),
            "spec.auth.hmac_secret",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, _, answer) = read(server.send_json(method.clone(), path, &body).await).await;
        assert_eq!(status, 400, "{method} {path} {body}: {answer}");
        assert_eq!(field_paths(&answer), [field], "{body}: {answer}");
    }

    let bad_if_match = server
        .request(Method::PUT, "/api/v1/apis/a")
        .header("if-match", "W/\"1\"")
        .json(&document("Api", "a", json!({})))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(bad_if_match).await;
    assert_eq!(
        (status, field_paths(&body)),
        (400, vec!["If-Match".to_string()])
    );

    let broken = server
        .request(Method::POST, "/api/v1/apis")
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(broken).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let not_json = server
        .request(Method::POST, "/api/v1/apis")
        .header("content-type", "text/plain")
        .body("kind: Api")
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(not_json).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
}

#[tokio::test]
async fn unknown_collections_and_names_are_404() {
    let server = Server::sqlite().await;
    for path in [
        "/api/v1/widgets",
        "/api/v1/widgets/a",
        "/api/v1/apis/nobody",
    ] {
        let (status, _, body) = read(server.get(path).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let create = server
        .send_json(
            Method::POST,
            "/api/v1/widgets",
            &document("Api", "a", json!({})),
        )
        .await;
    assert_eq!(create.status(), 404);
}

#[tokio::test]
async fn bodies_over_one_mib_are_refused_with_413() {
    let server = Server::sqlite().await;
    let limit = portico_admin::MAX_BODY_BYTES;
    let skeleton = document("Api", "big", json!({"blob": ""}))
        .to_string()
        .len();
    let fits = document("Api", "big", json!({"blob": "x".repeat(limit - skeleton)}));
    assert_eq!(fits.to_string().len(), limit);
    assert_eq!(
        server
            .send_json(Method::POST, "/api/v1/apis", &fits)
            .await
            .status(),
        201
    );

    let too_big = document(
        "Api",
        "bigger",
        json!({"blob": "x".repeat(limit - skeleton + 1)}),
    );
    let (status, _, body) = read(
        server
            .send_json(Method::POST, "/api/v1/apis", &too_big)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let apply = server
        .send_json(Method::POST, "/api/v1/apply", &json!([too_big]))
        .await;
    assert_eq!(apply.status(), 413);
    assert_eq!(server.get("/api/v1/apis/bigger").await.status(), 404);
}

#[tokio::test]
async fn secrets_are_redacted_in_every_response_and_kept_in_the_store() {
    let server = Server::sqlite().await;
    let spec = json!({"jwt": {"hmac_secret": "s3cr3t", "issuer": "https://idp"}, "upstream": {"private_key_pem": "-----BEGIN KEY"}});
    let (_, _, created) = read(
        server
            .send_json(
                Method::POST,
                "/api/v1/issuers",
                &document("Issuer", "idp", spec.clone()),
            )
            .await,
    )
    .await;
    let (_, _, got) = read(server.get("/api/v1/issuers/idp").await).await;
    let (_, _, list) = read(server.get("/api/v1/issuers").await).await;
    let update = document(
        "Issuer",
        "idp",
        json!({"jwt": {"hmac_secret": "n3w"}, "password": "pw"}),
    );
    let (_, _, updated) = read(
        server
            .send_json(Method::PUT, "/api/v1/issuers/idp", &update)
            .await,
    )
    .await;
    for answer in [&created, &got, &list["items"][0], &updated] {
        let text = answer.to_string();
        for secret in ["s3cr3t", "BEGIN KEY", "n3w", "\"pw\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert_eq!(got["spec"]["jwt"]["hmac_secret"], "<redacted>");
    assert_eq!(got["spec"]["jwt"]["issuer"], "https://idp");
    assert_eq!(updated["spec"]["password"], "<redacted>");
    let stored = server.store.get("Issuer", "idp").await.unwrap().unwrap();
    assert_eq!(stored.spec["jwt"]["hmac_secret"], "n3w");
}

#[tokio::test]
async fn the_caller_redaction_replaces_the_default() {
    let server = Server::start(Backend::Sqlite, |s| {
        s.with_redact(|kind, spec| {
            if kind == "Api"
                && let Some(map) = spec.as_object_mut()
            {
                map.remove("signing_key");
            }
        })
    })
    .await;
    let doc = document("Api", "a", json!({"signing_key": "k", "listen_path": "/a"}));
    let (_, _, created) = read(server.send_json(Method::POST, "/api/v1/apis", &doc).await).await;
    assert_eq!(created["spec"], json!({"listen_path": "/a"}));
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after() {
    let server = Server::sqlite().await;
    server.store.close().await;
    let response = server.get("/api/v1/apis").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "2");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], "unavailable");
    assert!(
        !text.to_lowercase().contains("pool"),
        "internal detail in {text}"
    );
    // The token is still checked first.
    let anonymous = server
        .client
        .get(format!("{}/api/v1/apis", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// Two writes that each pass the whole-configuration check but together would not (here: at
/// most one API) cannot both land, however they interleave: the check and the commit happen
/// at one revision, and the loser is checked again on the winner's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_checked_together_cannot_both_slip_past_the_check() {
    let server = std::sync::Arc::new(
        Server::start(Backend::Sqlite, |s| {
            s.with_validate_set(|resources| {
                // Slow enough that both writes are inside the check at once.
                std::thread::sleep(std::time::Duration::from_millis(300));
                let apis = resources.iter().filter(|r| r.kind == "Api").count();
                if apis > 1 {
                    Err(vec![FieldError::new("kind", "at most one API")])
                } else {
                    Ok(())
                }
            })
        })
        .await,
    );
    let writes: Vec<_> = ["payments", "orders"]
        .into_iter()
        .map(|name| {
            let server = server.clone();
            tokio::spawn(async move {
                let body = document("Api", name, json!({ "listen_path": format!("/{name}") }));
                read(server.send_json(Method::POST, "/api/v1/apis", &body).await)
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for w in writes {
        statuses.push(w.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 400]);
    assert_eq!(server.store.list(Some("Api")).await.unwrap().len(), 1);
}
