//! `POST /api/v1/apply`: idempotent, one transaction, dry run writes nothing, prune deletes
//! only what the listed kinds no longer list.

use crate::fixture::{Backend, Server, document, field_paths, read};
use portico_admin::FieldError;
use reqwest::Method;
use serde_json::{Value, json};

fn outcomes(report: &Value) -> Vec<(String, String, String, i64)> {
    report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {report}"))
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn row(kind: &str, name: &str, outcome: &str, version: i64) -> (String, String, String, i64) {
    (kind.into(), name.into(), outcome.into(), version)
}

async fn apply(server: &Server, query: &str, documents: &Value) -> (u16, Value) {
    let (status, _, body) = read(
        server
            .send_json(Method::POST, &format!("/api/v1/apply{query}"), documents)
            .await,
    )
    .await;
    (status, body)
}

fn three_documents(rate: i64) -> Value {
    json!([
        document("Api", "payments", json!({"listen_path": "/pay"})),
        document("Policy", "gold", json!({"rate": rate})),
        document("Issuer", "idp", json!({"issuer": "https://idp"})),
    ])
}

#[tokio::test]
async fn apply_is_idempotent_on_sqlite() {
    apply_is_idempotent(Server::start(Backend::Sqlite, |s| s).await).await;
}

#[tokio::test]
async fn apply_is_idempotent_on_postgres() {
    apply_is_idempotent(Server::start(Backend::Postgres, |s| s).await).await;
}

async fn apply_is_idempotent(server: Server) {
    let (status, report) = apply(&server, "", &three_documents(10)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        outcomes(&report),
        [
            row("Api", "payments", "created", 1),
            row("Policy", "gold", "created", 1),
            row("Issuer", "idp", "created", 1)
        ]
    );
    let revision = server.store.revision().await.unwrap();

    let (_, again) = apply(&server, "", &three_documents(10)).await;
    assert_eq!(
        outcomes(&again),
        [
            row("Api", "payments", "unchanged", 1),
            row("Policy", "gold", "unchanged", 1),
            row("Issuer", "idp", "unchanged", 1)
        ]
    );
    assert_eq!(
        server.store.revision().await.unwrap(),
        revision,
        "nothing written"
    );

    let (_, changed) = apply(&server, "", &three_documents(20)).await;
    assert_eq!(outcomes(&changed)[1], row("Policy", "gold", "updated", 2));

    // What GET prints (with version and times) is what apply accepts.
    let (_, _, got) = read(server.get("/api/v1/policies/gold").await).await;
    let (status, report) = apply(&server, "", &json!([got])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(outcomes(&report), [row("Policy", "gold", "unchanged", 2)]);
}

#[tokio::test]
async fn a_dry_run_reports_and_writes_nothing() {
    let server = Server::sqlite().await;
    apply(
        &server,
        "",
        &json!([
            document(
                "Policy",
                "gold",
                json!({"rate": 10, "client_secret": "s3cr3t"})
            ),
            document("Policy", "old", json!({"password": "hunter2"}))
        ]),
    )
    .await;
    let revision = server.store.revision().await.unwrap();

    let documents = json!([
        document(
            "Policy",
            "gold",
            json!({"rate": 20, "client_secret": "s3cr3t"})
        ),
        document("Api", "new", json!({"listen_path": "/new"})),
    ]);
    let (status, report) = apply(&server, "?dry_run=true&prune=true", &documents).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        outcomes(&report),
        [
            row("Policy", "gold", "updated", 2),
            row("Api", "new", "created", 1),
            row("Policy", "old", "deleted", 1)
        ]
    );
    // What is stored now comes with what would change or go, its secrets redacted; a
    // created document has nothing stored.
    let results = report["results"].as_array().unwrap();
    assert_eq!(
        results[0]["current"],
        json!({"rate": 10, "client_secret": "<redacted>"})
    );
    assert!(results[1].get("current").is_none(), "{report}");
    assert_eq!(results[2]["current"], json!({"password": "<redacted>"}));
    assert!(!report.to_string().contains("s3cr3t") && !report.to_string().contains("hunter2"));
    assert_eq!(server.store.revision().await.unwrap(), revision);
    let (_, _, gold) = read(server.get("/api/v1/policies/gold").await).await;
    assert_eq!(gold["spec"]["rate"], 10);
    assert_eq!(server.get("/api/v1/apis/new").await.status(), 404);
    assert_eq!(server.get("/api/v1/policies/old").await.status(), 200);
}

#[tokio::test]
async fn prune_deletes_what_the_listed_kinds_no_longer_list() {
    let server = Server::sqlite().await;
    let everything = json!([
        document("Api", "a", json!({})),
        document("Api", "b", json!({})),
        document("Policy", "p", json!({})),
    ]);
    apply(&server, "", &everything).await;

    let (_, without_prune) = apply(
        &server,
        "?prune=false",
        &json!([document("Api", "a", json!({}))]),
    )
    .await;
    assert_eq!(outcomes(&without_prune), [row("Api", "a", "unchanged", 1)]);
    assert_eq!(server.get("/api/v1/apis/b").await.status(), 200);

    let (status, report) = apply(
        &server,
        "?prune=true",
        &json!([document("Api", "a", json!({}))]),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        outcomes(&report),
        [
            row("Api", "a", "unchanged", 1),
            row("Api", "b", "deleted", 1)
        ]
    );
    assert_eq!(server.get("/api/v1/apis/b").await.status(), 404);
    assert_eq!(
        server.get("/api/v1/policies/p").await.status(),
        200,
        "Policy is not a listed kind"
    );
}

fn positive_rate(resource: &portico_store::Resource) -> Result<(), Vec<FieldError>> {
    match resource.spec.get("rate").and_then(Value::as_i64) {
        Some(rate) if rate <= 0 => Err(vec![FieldError::new("spec.rate", "must be positive")]),
        _ => Ok(()),
    }
}

#[tokio::test]
async fn one_invalid_document_writes_nothing_and_names_its_index() {
    let server = Server::start(Backend::Sqlite, |s| s.with_validate(positive_rate)).await;
    let documents = json!([
        document("Policy", "fine", json!({"rate": 1})),
        document("Policy", "broken", json!({"rate": 0})),
        document("Widget", "w", json!({})),
        document("Policy", "fine", json!({"rate": 2})),
    ]);
    let (status, body) = apply(&server, "", &documents).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        field_paths(&body),
        ["[1].spec.rate", "[2].kind", "[3].metadata.name"]
    );
    assert_eq!(server.get("/api/v1/policies/fine").await.status(), 404);

    let (status, body) = apply(&server, "?dry_run=maybe", &json!([])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let (status, body) = apply(&server, "", &json!({"kind": "Policy"})).await;
    assert_eq!(status, 400, "a list is expected: {body}");
}
