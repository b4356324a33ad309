//! Gateway nodes (`portico gateway`) serving what the shared store holds: a change reaches
//! every node within a second, and a node keeps (or starts from) its last good configuration
//! when the store is away.

mod common;
use common::*;

use portico_store::{Expect, Resource, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::postgres::TempDatabase;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn resources(upstream: std::net::SocketAddr, methods: &[&str]) -> Vec<Resource> {
    let key = quickstart().join("keys/demo-public.pem");
    let doc = |kind: &str, name: &str, spec: Value| Resource {
        kind: kind.into(),
        name: name.into(),
        spec,
    };
    vec![
        doc(
            "Issuer",
            "demo",
            json!({ "public_key_file": key, "algorithms": ["RS256"] }),
        ),
        doc(
            "Api",
            "orders",
            json!({
                "listen_path": "/orders",
                "upstream": format!("http://{upstream}"),
                "jwt": { "issuers": ["demo"] },
                "policies": { "scope_map": { "orders:read": ["reader"] } },
            }),
        ),
        reader(methods),
    ]
}

fn reader(methods: &[&str]) -> Resource {
    Resource {
        kind: "Policy".into(),
        name: "reader".into(),
        spec: json!({ "apis": { "orders": { "allow": [{ "path": "/items", "methods": methods }] } } }),
    }
}

async fn seed(store: &Store, upstream: std::net::SocketAddr) {
    for r in resources(upstream, &["GET"]) {
        store.put(r, Expect::Any).await.unwrap();
    }
}

struct Node {
    server: Server,
    _data: TempDir,
}

fn start_node(database: &str, key: &str, data: TempDir) -> Node {
    let server = Server::start_command(
        "gateway",
        &[
            "--database",
            database,
            "--data-dir",
            data.path().to_str().unwrap(),
            "--poll-ms",
            "500",
        ],
        &[("PORTICO_SECRET_KEY", key), ("PORTICO_LOG", "warn")],
    );
    Node {
        server,
        _data: data,
    }
}

/// Waits until every node answers `want`; returns how long that took.
fn until_all(nodes: &[&Node], token: &str, method: &str, want: u16) -> Duration {
    let start = Instant::now();
    wait_for(
        || {
            nodes
                .iter()
                .all(|n| n.server.status("/orders/items", method, token) == want)
        },
        "every node to serve the change",
    );
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_node_follows_the_store() {
    let up = upstream();
    let dir = TempDir::new("node-sqlite");
    let url = format!("sqlite:{}", dir.path().join("portico.db").display());
    let key = SecretKey::generate_base64().unwrap();
    let store = Store::open(
        &StoreSettings::new(url.parse().unwrap()),
        SecretKey::from_base64(&key).unwrap(),
    )
    .await
    .unwrap();
    seed(&store, up).await;

    let node = start_node(&url, &key, TempDir::new("node-sqlite-data"));
    let token = mint(r#"{"sub":"u-1","scope":"orders:read"}"#);
    assert_eq!(node.server.status("/orders/items", "GET", &token), 200);
    assert_eq!(node.server.status("/orders/items", "POST", &token), 403);
    assert_eq!(node.server.status("/orders/items", "GET", "nope"), 401);

    store
        .put(reader(&["GET", "POST"]), Expect::Any)
        .await
        .unwrap();
    let took = until_all(&[&node], &token, "POST", 200);
    eprintln!("sqlite: the change was served after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn three_postgres_nodes_take_a_change_within_a_second_and_keep_serving_without_the_store() {
    let up = upstream();
    let db = TempDatabase::create("nodes").await;
    let key = SecretKey::generate_base64().unwrap();
    let store = Store::open(
        &StoreSettings::new(db.url.parse().unwrap()),
        SecretKey::from_base64(&key).unwrap(),
    )
    .await
    .unwrap();
    seed(&store, up).await;

    let nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&db.url, &key, TempDir::new(&format!("node-pg-{i}"))))
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let token = mint(r#"{"sub":"u-1","scope":"orders:read"}"#);
    until_all(&all, &token, "GET", 200);
    for n in &nodes {
        assert_eq!(n.server.status("/orders/items", "POST", &token), 403);
    }

    store
        .put(reader(&["GET", "POST"]), Expect::Any)
        .await
        .unwrap();
    let took = until_all(&all, &token, "POST", 200);
    eprintln!("postgres: the change was served by all three nodes after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "all three nodes took {took:?}"
    );

    // A node started while the store is unreachable serves its last good configuration.
    let data = TempDir::new("node-pg-restart");
    let first = start_node(&db.url, &key, data);
    until_all(&[&first], &token, "POST", 200);
    let Node { server, _data } = first;
    drop(server);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://postgres@127.0.0.1:{closed_port}/nowhere");
    let again = start_node(&unreachable, &key, _data);
    assert_eq!(again.server.status("/orders/items", "POST", &token), 200);

    // Without any last good configuration, it refuses to start.
    let out = std::process::Command::new(BIN)
        .args([
            "gateway",
            "--database",
            &unreachable,
            "--data-dir",
            TempDir::new("node-empty").path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("PORTICO_SECRET_KEY", &key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no last good configuration"));
}

#[test]
fn a_shared_store_needs_a_secret_key() {
    let out = run(&[
        "gateway",
        "--database",
        "postgres://postgres@127.0.0.1:5432/test",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("PORTICO_SECRET_KEY"),
        "{}",
        text(&out.stderr)
    );
}
