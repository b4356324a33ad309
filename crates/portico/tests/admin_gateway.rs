//! The admin API's look into the running gateway, on a control plane (`portico serve
//! --database`): identity sessions found by identity or id with what is left of their limits,
//! a reset, and a JWKS cache flush against the real test IdP.

mod common;
use common::*;

use portico_testkit::TempDir;
use portico_testkit::idp::Idp;
use serde_json::{Value, json};

struct ControlPlane {
    server: Server,
    _dir: TempDir,
}

impl ControlPlane {
    fn start(name: &str) -> Self {
        let dir = TempDir::new(name);
        Self {
            server: control_plane(&dir),
            _dir: dir,
        }
    }

    /// The status and JSON body of an admin call.
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        admin_call(&self.server, method, path, body)
    }

    fn apply(&self, documents: Value) {
        let (status, body) = self.call(reqwest::Method::POST, "/apply", Some(documents));
        assert_eq!(status, 200, "{body}");
    }
}

fn doc(kind: &str, name: &str, spec: Value) -> Value {
    json!({ "kind": kind, "metadata": { "name": name }, "spec": spec })
}

#[test]
fn sessions_are_found_by_identity_show_what_is_left_and_reset() {
    let up = upstream();
    let plane = ControlPlane::start("admin-sessions");
    let key = quickstart().join("keys/demo-public.pem");
    plane.apply(json!([
        doc(
            "Issuer",
            "demo",
            json!({ "public_key_file": key, "algorithms": ["RS256"] })
        ),
        doc(
            "Api",
            "orders",
            json!({
                "listen_path": "/orders",
                "upstream": format!("http://{up}"),
                "jwt": { "issuers": ["demo"] },
                "policies": { "scope_map": { "orders:read": ["reader"] } },
            })
        ),
        doc(
            "Policy",
            "reader",
            json!({
                "apis": { "orders": {} },
                "rate_limit": { "requests": 5, "per_secs": 60 },
                "quota": { "max": 100, "renewal_secs": 3600 },
            })
        ),
    ]));
    let alice = mint(r#"{"sub":"alice","scope":"orders:read"}"#);
    let bob = mint(r#"{"sub":"bob","scope":"orders:read"}"#);
    wait_for(
        || plane.server.status("/orders/items", "GET", &alice) == 200,
        "the applied API to be served",
    );
    for _ in 0..2 {
        assert_eq!(plane.server.status("/orders/items", "GET", &alice), 200);
    }
    for _ in 0..5 {
        assert_eq!(plane.server.status("/orders/items", "GET", &bob), 200);
    }
    assert_eq!(plane.server.status("/orders/items", "GET", &bob), 429);

    // Alice has made three counted requests.
    let (status, found) = plane.call(reqwest::Method::GET, "/sessions?identity=alice", None);
    assert_eq!(status, 200, "{found}");
    let sessions = found["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{found}");
    let session = &sessions[0];
    assert_eq!(session["identity"]["identity"], "alice");
    assert_eq!(session["identity"]["identity_claim"], "sub");
    assert_eq!(session["identity"]["apis"], json!(["orders"]));
    assert!(
        session["identity"].get("issuer").is_none(),
        "a key-only entry names no issuer"
    );
    let counters = &session["counters"];
    assert_eq!(counters.as_array().unwrap().len(), 1, "{counters}");
    assert_eq!(counters[0]["policy"], "reader");
    assert_eq!(counters[0]["rate"]["limit"], 5);
    assert_eq!(counters[0]["rate"]["remaining"], 2);
    assert_eq!(counters[0]["quota"]["remaining"], 97);
    assert_eq!(counters[0]["quota"]["window_ms"], 3_600_000);
    let id = session["id"].as_str().unwrap().to_string();

    // Looking counts nothing; by id gives the same counters.
    let (status, by_id) = plane.call(reqwest::Method::GET, &format!("/sessions/{id}"), None);
    assert_eq!(status, 200, "{by_id}");
    let remaining = |counters: &Value| {
        (
            counters[0]["policy"].clone(),
            counters[0]["rate"]["remaining"].clone(),
            counters[0]["quota"]["remaining"].clone(),
        )
    };
    assert_eq!(remaining(&by_id["counters"]), remaining(counters));
    assert!(by_id.get("identity").is_none());

    // Reset: alice gets five requests again; bob keeps his counters.
    let (status, after) = plane.call(
        reqwest::Method::POST,
        &format!("/sessions/{id}/reset"),
        None,
    );
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["counters"], json!([]));
    for i in 0..5 {
        assert_eq!(
            plane.server.status("/orders/items", "GET", &alice),
            200,
            "request {i} after the reset"
        );
    }
    assert_eq!(plane.server.status("/orders/items", "GET", &alice), 429);
    assert_eq!(plane.server.status("/orders/items", "GET", &bob), 429);

    // An issuer no API trusts has no sessions; bad input is a 400 naming the field.
    let (status, none) = plane.call(
        reqwest::Method::GET,
        "/sessions?identity=alice&issuer=https://elsewhere.example",
        None,
    );
    assert_eq!((status, none), (200, json!({ "sessions": [] })));
    let (status, bad) = plane.call(reqwest::Method::GET, "/sessions/not-a-session-id", None);
    assert_eq!(status, 400);
    assert_eq!(bad["fields"][0]["path"], "id");
    let (status, _) = plane.call(reqwest::Method::GET, "/sessions?identity=", None);
    assert_eq!(status, 400);
    let (status, _) = plane.call(reqwest::Method::GET, "/sessions", None);
    assert_eq!(status, 400);
}

/// The `ok` JWKS fetches the gateway's metrics count.
fn fetches(plane: &ControlPlane) -> u64 {
    let metrics = reqwest::blocking::get(format!("http://{}/metrics", plane.server.admin))
        .unwrap()
        .text()
        .unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("portico_jwks_fetches_total{outcome=\"ok\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn a_jwks_cache_flush_fetches_every_key_set_now() {
    let idp = Idp::start();
    let up = upstream();
    let plane = ControlPlane::start("admin-jwks");
    plane.apply(json!([
        doc("Issuer", "idp", json!({ "issuer": idp.issuer })),
        doc(
            "Api",
            "orders",
            json!({
                "listen_path": "/orders",
                "upstream": format!("http://{up}"),
                "jwt": { "issuers": ["idp"] },
            })
        ),
    ]));
    wait_for(|| fetches(&plane) >= 1, "the IdP's keys to be fetched");
    let before = fetches(&plane);

    let (status, report) = plane.call(reqwest::Method::POST, "/jwks-cache/flush", None);
    assert_eq!(status, 200, "{report}");
    let sets = report["key_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{report}");
    assert_eq!(sets[0]["source"], format!("issuer {}", idp.issuer));
    assert_eq!(sets[0]["fetched"], true);
    assert!(sets[0]["keys"].as_u64().unwrap() >= 1, "{report}");
    // Fetched now, not on its schedule (hours away) nor within the unknown-kid cooldown.
    assert_eq!(fetches(&plane), before + 1);
}
