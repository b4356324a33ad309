//! Revocations at the gateway: unexpired JWTs refused on the next request once their
//! `client_id`, `jti` or identity is revoked (admin API and `portico revoke`), others
//! unaffected; stored, so a restart keeps them; ended ones dropped; and on every node of a
//! shared store within moments.

mod common;
use common::*;

use portico_core::revocation::RevokedBy;
use portico_store::{Expect, NewRevocation, Resource, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::postgres::TempDatabase;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn documents(upstream: std::net::SocketAddr) -> Vec<(String, String, Value)> {
    let key = quickstart().join("keys/demo-public.pem");
    vec![
        (
            "Issuer".into(),
            "demo".into(),
            json!({ "public_key_file": key, "algorithms": ["RS256"] }),
        ),
        (
            "Api".into(),
            "orders".into(),
            json!({
                "listen_path": "/orders",
                "upstream": format!("http://{upstream}"),
                "jwt": { "issuers": ["demo"] },
            }),
        ),
    ]
}

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    let admin = format!("http://{}", server.admin);
    std::process::Command::new(BIN)
        .args(args)
        .args(["--server", &admin])
        .env("PORTICO_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap()
}

fn status(server: &Server, token: &str) -> u16 {
    server.status("/orders/items", "GET", token)
}

#[test]
fn revoked_client_ids_jtis_and_identities_are_refused_at_once_and_after_a_restart() {
    let up = upstream();
    let dir = TempDir::new("revocations");
    let plane = control_plane(&dir);
    let docs: Vec<Value> = documents(up)
        .into_iter()
        .map(|(kind, name, spec)| json!({ "kind": kind, "metadata": { "name": name }, "spec": spec }))
        .collect();
    let (code, body) = admin_call(&plane, reqwest::Method::POST, "/apply", Some(json!(docs)));
    assert_eq!(code, 200, "{body}");

    let alice = mint(r#"{"sub":"alice","client_id":"app-a","jti":"t-a"}"#);
    let bob = mint(r#"{"sub":"bob","client_id":"app-b","jti":"t-b"}"#);
    let carol = mint(r#"{"sub":"carol","client_id":"app-c","jti":"t-c"}"#);
    let dave = mint(r#"{"sub":"dave","client_id":"app-d","jti":"t-d"}"#);
    wait_for(|| status(&plane, &alice) == 200, "the API to be served");
    for token in [&alice, &bob, &carol, &dave] {
        assert_eq!(status(&plane, token), 200, "cached now");
    }

    // By client_id, through the admin API: alice's token (cached, unexpired) is refused on
    // the very next request; a new token for that client too; the others pass.
    let (code, revoked) = admin_call(
        &plane,
        reqwest::Method::POST,
        "/revocations",
        Some(json!({ "client_id": "app-a", "reason": "leaked secret" })),
    );
    assert_eq!(code, 201, "{revoked}");
    assert_eq!(revoked["client_id"], "app-a");
    assert!(
        revoked["until"].as_str().unwrap().ends_with('Z'),
        "{revoked}"
    );
    assert_eq!(status(&plane, &alice), 401);
    let alice_again = mint(r#"{"sub":"alice","client_id":"app-a","jti":"t-a2"}"#);
    assert_eq!(status(&plane, &alice_again), 401);
    for token in [&bob, &carol, &dave] {
        assert_eq!(status(&plane, token), 200);
    }

    // By jti and by identity, with the CLI.
    let out = cli(&plane, &["revoke", "--jti", "t-b", "--until", "2h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(r#"jti="t-b""#),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(status(&plane, &bob), 401);
    let bob_new = mint(r#"{"sub":"bob","client_id":"app-b","jti":"t-b2"}"#);
    assert_eq!(status(&plane, &bob_new), 200, "only that one token");
    let out = cli(&plane, &["revoke", "--identity", "carol"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(status(&plane, &carol), 401);
    assert_eq!(status(&plane, &dave), 200);

    // Only tokens issued before a moment: the client carries on with a new token.
    let old = mint(&format!(
        r#"{{"sub":"erin","client_id":"app-e","iat":{}}}"#,
        now() - 600
    ));
    let fresh = mint(&format!(
        r#"{{"sub":"erin","client_id":"app-e","iat":{}}}"#,
        now() - 5
    ));
    let out = cli(
        &plane,
        &["revoke", "--client-id", "app-e", "--issued-before", "1m"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(status(&plane, &old), 401);
    assert_eq!(status(&plane, &fresh), 200);

    // A revocation that ends soon, and one that ended is dropped.
    let until = time_in(2);
    let (code, short) = admin_call(
        &plane,
        reqwest::Method::POST,
        "/revocations",
        Some(json!({ "client_id": "app-d", "until": until })),
    );
    assert_eq!(code, 201, "{short}");
    assert_eq!(status(&plane, &dave), 401);

    // Bad requests name what is wrong.
    for (body, field) in [
        (json!({}), None),
        (json!({ "client_id": "x", "jti": "y" }), None),
        (
            json!({ "client_id": "x", "until": "2000-01-01T00:00:00Z" }),
            Some("until"),
        ),
        (json!({ "client_id": "x", "until": "soon" }), Some("until")),
        (json!({ "identity": "" }), Some("identity")),
        (json!({ "client_id": "x", "issuer": "" }), Some("issuer")),
        (json!({ "client_id": "x", "bogus": 1 }), None),
    ] {
        let (code, error) = admin_call(
            &plane,
            reqwest::Method::POST,
            "/revocations",
            Some(body.clone()),
        );
        assert_eq!(code, 400, "{body} → {error}");
        if let Some(field) = field {
            assert_eq!(error["fields"][0]["path"], field, "{body} → {error}");
        }
    }

    std::thread::sleep(Duration::from_millis(2_600));
    assert_eq!(status(&plane, &dave), 200, "ended");
    let (code, list) = admin_call(&plane, reqwest::Method::GET, "/revocations", None);
    assert_eq!(code, 200);
    let listed = list["revocations"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "the ended one is not listed: {list}");
    assert!(listed.iter().all(|r| r["client_id"] != "app-d"));

    // A restart keeps them: refused from the first request.
    drop(plane);
    let plane = control_plane(&dir);
    assert_eq!(status(&plane, &alice), 401);
    assert_eq!(status(&plane, &bob), 401);
    assert_eq!(status(&plane, &carol), 401);
    assert_eq!(status(&plane, &dave), 200);
    assert_eq!(metric(&plane.admin, "portico_revocations"), Some(4.0));

    // Lifted, alice's client is served again.
    let out = cli(&plane, &["revocations"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let id = listing
        .lines()
        .find(|l| l.contains(r#"client_id="app-a""#))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{listing}"))
        .to_string();
    assert!(listing.contains("(leaked secret)"), "{listing}");
    let out = cli(&plane, &["revocations", "--lift", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(status(&plane, &alice), 200);
    let (code, _) = admin_call(
        &plane,
        reqwest::Method::DELETE,
        &format!("/revocations/{id}"),
        None,
    );
    assert_eq!(code, 404, "lifted already");
}

/// RFC 3339, `secs` from now.
fn time_in(secs: u64) -> String {
    let at = now() + secs;
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{at}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_reaches_every_node_of_a_shared_store_within_a_second() {
    let up = upstream();
    let db = TempDatabase::create("revocations").await;
    let key = SecretKey::generate_base64().unwrap();
    let store = Store::open(
        &StoreSettings::new(db.url.parse().unwrap()),
        SecretKey::from_base64(&key).unwrap(),
    )
    .await
    .unwrap();
    for (kind, name, spec) in documents(up) {
        store
            .put(Resource { kind, name, spec }, Expect::Any)
            .await
            .unwrap();
    }
    let nodes: Vec<(Server, TempDir)> = (0..2)
        .map(|i| {
            let data = TempDir::new(&format!("revocation-node-{i}"));
            let server = Server::start_command(
                "gateway",
                &[
                    "--database",
                    &db.url,
                    "--data-dir",
                    data.path().to_str().unwrap(),
                    "--poll-ms",
                    "5000",
                ],
                &[
                    ("PORTICO_SECRET_KEY", key.as_str()),
                    ("PORTICO_LOG", "warn"),
                ],
            );
            (server, data)
        })
        .collect();
    let token = mint(r#"{"sub":"alice","client_id":"app-a"}"#);
    let other = mint(r#"{"sub":"bob","client_id":"app-b"}"#);
    let all = |want: u16, token: &str| nodes.iter().all(|(n, _)| status(n, token) == want);
    wait_for(|| all(200, &token), "every node to serve");

    let revoked = store
        .revoke(NewRevocation {
            by: RevokedBy::ClientId,
            value: "app-a".into(),
            issuer: None,
            until_secs: now() + 3_600,
            issued_before_secs: None,
            reason: None,
        })
        .await
        .unwrap();
    let start = Instant::now();
    wait_for(
        || all(401, &token),
        "every node to refuse the revoked client",
    );
    let took = start.elapsed();
    eprintln!("a revocation reached both nodes after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "notified, not polled (every 5 s): {took:?}"
    );
    assert!(all(200, &other));

    // A node restarted while the store is unreachable still enforces it.
    let (server, data) = nodes.into_iter().next().unwrap();
    drop(server);
    let unreachable = unreachable_postgres();
    let again = Server::start_command(
        "gateway",
        &[
            "--database",
            &unreachable,
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        &[
            ("PORTICO_SECRET_KEY", key.as_str()),
            ("PORTICO_LOG", "warn"),
        ],
    );
    assert_eq!(status(&again, &token), 401);
    assert_eq!(status(&again, &other), 200);

    assert!(store.lift_revocation(revoked.id).await.unwrap());
    assert!(!store.lift_revocation(revoked.id).await.unwrap());
}
