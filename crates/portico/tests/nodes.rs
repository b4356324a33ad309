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

/// A store at `url` holding the demo Issuer, the `orders` API and a GET-only `reader` policy.
async fn seeded_store(url: &str, key: &str, upstream: std::net::SocketAddr) -> Store {
    let store = Store::open(
        &StoreSettings::new(url.parse().unwrap()),
        SecretKey::from_base64(key).unwrap(),
    )
    .await
    .unwrap();
    for r in resources(upstream, &["GET"]) {
        store.put(r, Expect::Any).await.unwrap();
    }
    store
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
    let store = seeded_store(&url, &key, up).await;

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
    let store = seeded_store(&db.url, &key, up).await;

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
    let unreachable = unreachable_postgres();
    let again = start_node(&unreachable, &key, _data);
    assert_eq!(again.server.status("/orders/items", "POST", &token), 200);
    // The last good configuration is its owner's only (written through a temporary file of
    // mode 0600, flushed, renamed).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = again._data.path().join("last-good-config.sealed");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // It says so: in its metrics, and in /ready (still 200: it can serve).
    let revision = store.revision().await.unwrap();
    let admin = &again.server.admin;
    assert_eq!(metric(admin, "portico_config_from_last_good"), Some(1.0));
    assert_eq!(
        metric(admin, "portico_config_revision"),
        Some(revision as f64)
    );
    let (status, ready) = http_get(admin, "/ready");
    assert_eq!(status, 200);
    assert_eq!(
        ready,
        format!(r#"{{"status":"ok","configuration":"last_good","revision":{revision}}}"#)
    );
    // A node that reads the store serves its configuration.
    let (_, ready) = http_get(&nodes[0].server.admin, "/ready");
    assert_eq!(ready, r#"{"status":"ok"}"#);
    assert_eq!(
        metric(&nodes[0].server.admin, "portico_config_from_last_good"),
        Some(0.0)
    );

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
fn a_gateway_node_does_not_migrate_the_store() {
    let dir = TempDir::new("node-no-migrate");
    let empty = dir.write("portico.db", b"");
    let database = format!("sqlite:{}", empty.display());
    let key = SecretKey::generate_base64().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["gateway", "--database", &database, "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("PORTICO_SECRET_KEY", &key)
        .output()
        .unwrap();
    // Without a last good configuration it cannot start, and says why; the file is as it was.
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the store's schema is at 0, this node needs")
            && stderr.contains("run a control plane of this version first"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "nothing written"
    );
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

#[test]
fn apply_get_and_delete_through_a_control_plane() {
    let up = upstream();
    let dir = TempDir::new("control-plane");
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    let token = "an-admin-token-for-this-test-0123456789";
    let server = Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("PORTICO_ADMIN_TOKEN", token), ("PORTICO_LOG", "warn")],
    );
    let admin = format!("http://{}", server.admin);
    let portico = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .args(["--server", &admin])
            .env("PORTICO_ADMIN_TOKEN", token)
            .output()
            .unwrap()
    };
    let key = quickstart().join("keys/demo-public.pem");
    let file = dir.write(
        "resources.yaml",
        format!(
            "kind: Issuer\nmetadata: {{name: demo}}\nspec: {{public_key_file: {key}, algorithms: [RS256]}}\n---\n\
             kind: Api\nmetadata: {{name: orders}}\nspec:\n  listen_path: /orders\n  upstream: http://{up}\n  \
             jwt: {{issuers: [demo]}}\n  policies: {{scope_map: {{orders:read: [reader]}}}}\n---\n\
             kind: Policy\nmetadata: {{name: reader}}\nspec: {{apis: {{orders: {{}}}}}}\n",
            key = key.display()
        ),
    );
    let file = file.to_str().unwrap();

    let dry = portico(&["apply", "-f", file, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stdout).contains("Api \"orders\" created (dry run)"));
    let token_for_api = mint(r#"{"sub":"u-1","scope":"orders:read"}"#);
    assert_eq!(server.status("/orders/items", "GET", &token_for_api), 404);

    let applied = portico(&["apply", "-f", file]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert_eq!(text(&applied.stdout).matches("created").count(), 3);
    wait_for(
        || server.status("/orders/items", "GET", &token_for_api) == 200,
        "the applied API to be served",
    );
    let again = portico(&["apply", "-f", file]);
    assert_eq!(
        text(&again.stdout).matches("unchanged").count(),
        3,
        "{}",
        text(&again.stdout)
    );

    // What `get` prints, `apply` takes back unchanged.
    let got = portico(&["get", "apis"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    let printed = dir.write("printed.yaml", &got.stdout);
    let reapplied = portico(&["apply", "-f", printed.to_str().unwrap()]);
    assert!(
        text(&reapplied.stdout).contains("Api \"orders\" unchanged"),
        "{}{}",
        text(&reapplied.stdout),
        text(&reapplied.stderr)
    );

    // Bad documents are refused with the field, and nothing is written.
    let bad = dir.write(
        "bad.yaml",
        "kind: Policy\nmetadata: {name: reader}\nspec: {rate_limit: {requests: ten, per_secs: 1}}\n",
    );
    let refused = portico(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("spec.rate_limit.requests"),
        "{}",
        text(&refused.stderr)
    );

    // A write that would leave a configuration no node can load is refused before it is
    // written: here, deleting the Issuer the API still names.
    let dangling = portico(&["delete", "Issuer", "demo"]);
    assert_eq!(dangling.status.code(), Some(1));
    assert!(
        text(&dangling.stderr).contains("no Issuer document named \"demo\""),
        "{}",
        text(&dangling.stderr)
    );
    assert_eq!(server.status("/orders/items", "GET", &token_for_api), 200);

    let deleted = portico(&["delete", "Api", "orders"]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    wait_for(
        || server.status("/orders/items", "GET", &token_for_api) == 404,
        "the deleted API to be gone",
    );

    // The admin API refuses a wrong token.
    let wrong = std::process::Command::new(BIN)
        .args(["get", "apis", "--server", &admin])
        .env(
            "PORTICO_ADMIN_TOKEN",
            "not-the-token-not-the-token-not-the-token",
        )
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("401"),
        "{}",
        text(&wrong.stderr)
    );
}

#[test]
fn a_dry_run_prints_the_diff_of_each_document_and_writes_nothing() {
    let dir = TempDir::new("dry-run-diff");
    let database = format!("sqlite:{}", dir.path().join("portico.db").display());
    let token = "an-admin-token-for-this-test-0123456789";
    let server = Server::start_command(
        "serve",
        &[
            "--database",
            &database,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("PORTICO_ADMIN_TOKEN", token), ("PORTICO_LOG", "warn")],
    );
    let admin = format!("http://{}", server.admin);
    let portico = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .args(["--server", &admin])
            .env("PORTICO_ADMIN_TOKEN", token)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // 32 bytes of base64 each: an HMAC secret the diff must never show.
    let (old_secret, new_secret) = (
        "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZC1zZWNyZXQ=",
        "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQ=",
    );
    let resources = |secret: &str, requests: u32| {
        format!(
            "kind: Issuer\nmetadata: {{name: hmac}}\nspec: {{secret_base64: \"{secret}\", algorithms: [HS256]}}\n---\n\
             kind: Policy\nmetadata: {{name: reader}}\nspec:\n  rate_limit: {{requests: {requests}, per_secs: 60}}\n"
        )
    };
    let first = dir.write("first.yaml", resources(old_secret, 10));
    portico(&["apply", "-f", first.to_str().unwrap()]);

    let second = dir.write("second.yaml", resources(new_secret, 20));
    let dry = portico(&["apply", "-f", second.to_str().unwrap(), "--dry-run"]);
    assert!(dry.contains("Policy \"reader\" updated (dry run)"), "{dry}");
    assert!(
        dry.contains("--- Policy/reader version 1 (stored)"),
        "{dry}"
    );
    assert!(dry.contains("-  requests: 10"), "{dry}");
    assert!(dry.contains("+  requests: 20"), "{dry}");
    assert!(
        dry.contains("Issuer \"hmac\" updated (dry run)\n  (only secret fields change)"),
        "{dry}"
    );
    assert!(
        !dry.contains(old_secret) && !dry.contains(new_secret),
        "a secret was printed: {dry}"
    );
    // A new document is all `+`, a pruned one all `-`, an unchanged one its line only.
    let third = dir.write(
        "third.yaml",
        "kind: Policy\nmetadata: {name: writer}\nspec: {rate_limit: {requests: 5, per_secs: 1}}\n",
    );
    let pruned = portico(&[
        "apply",
        "-f",
        third.to_str().unwrap(),
        "--dry-run",
        "--prune",
    ]);
    assert!(pruned.contains("+rate_limit:"), "{pruned}");
    assert!(
        pruned.contains("Policy \"reader\" deleted (dry run)"),
        "{pruned}"
    );
    assert!(pruned.contains("-rate_limit:"), "{pruned}");
    let same = portico(&["apply", "-f", first.to_str().unwrap(), "--dry-run"]);
    assert_eq!(
        same,
        "Issuer \"hmac\" unchanged (dry run)\nPolicy \"reader\" unchanged (dry run)\n"
    );

    // Nothing was written.
    let stored = portico(&["get", "policies", "reader"]);
    assert!(stored.contains("requests: 10"), "{stored}");
    assert!(stored.contains("version: 1"), "{stored}");
}

/// Sends `n` requests round-robin over the nodes; returns (allowed, limited, other).
fn spread(nodes: &[Node], token: &str, n: usize) -> (usize, usize, Vec<u16>) {
    let (mut allowed, mut limited, mut other) = (0, 0, Vec::new());
    for i in 0..n {
        match nodes[i % nodes.len()]
            .server
            .status("/orders/items", "GET", token)
        {
            200 => allowed += 1,
            429 => limited += 1,
            s => other.push(s),
        }
    }
    (allowed, limited, other)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_one_rate_limit_and_one_quota_through_redis() {
    let up = upstream();
    let redis = portico_testkit::redis::RedisServer::start();
    let db = TempDatabase::create("redis_nodes").await;
    let key = SecretKey::generate_base64().unwrap();
    let store = seeded_store(&db.url, &key, up).await;
    let limited = |spec: Value| Resource {
        kind: "Policy".into(),
        name: "reader".into(),
        spec,
    };
    store
        .put(
            limited(json!({ "apis": { "orders": {} }, "rate_limit": { "requests": 100, "per_secs": 60 } })),
            Expect::Any,
        )
        .await
        .unwrap();
    let settings = Resource {
        kind: "Settings".into(),
        name: "gateway".into(),
        spec: json!({ "limits": { "backend": "redis", "redis_url": redis.url(), "nodes": 3 } }),
    };
    store.put(settings, Expect::Any).await.unwrap();

    let nodes: Vec<Node> = (0..3)
        .map(|i| start_node(&db.url, &key, TempDir::new(&format!("node-redis-{i}"))))
        .collect();
    let alice = mint(r#"{"sub":"alice","scope":"orders:read"}"#);
    let (allowed, rejected, other) = spread(&nodes, &alice, 600);
    eprintln!("rate limit 100/min over three nodes: {allowed} allowed, {rejected} limited");
    assert!(other.is_empty(), "unexpected statuses {other:?}");
    assert!((100..=101).contains(&allowed), "{allowed} allowed");

    // The same with a quota (a new identity, so a fresh counter).
    store
        .put(
            limited(
                json!({ "apis": { "orders": {} }, "quota": { "max": 100, "renewal_secs": 3600 } }),
            ),
            Expect::Any,
        )
        .await
        .unwrap();
    let bob = mint(r#"{"sub":"bob","scope":"orders:read"}"#);
    let probe = mint(r#"{"sub":"probe","scope":"orders:read"}"#);
    // Wait until every node has the quota policy (the probe identity spends one request each).
    std::thread::sleep(Duration::from_millis(1500));
    for n in &nodes {
        assert_eq!(n.server.status("/orders/items", "GET", &probe), 200);
    }
    let (allowed, rejected, other) = spread(&nodes, &bob, 600);
    eprintln!("quota 100 over three nodes: {allowed} allowed, {rejected} limited");
    assert!(other.is_empty(), "unexpected statuses {other:?}");
    assert_eq!(allowed, 100);

    // Redis stops: the default rule (fail_open_local) keeps serving, never a 5xx; each node
    // allows its share (floor(100 / 3) of a fresh identity's quota).
    let mut redis = redis;
    redis.stop();
    let carol = mint(r#"{"sub":"carol","scope":"orders:read"}"#);
    let (allowed, _, other) = spread(&nodes, &carol, 300);
    eprintln!("Redis down: {allowed} allowed");
    assert!(other.is_empty(), "unexpected statuses {other:?}");
    assert_eq!(allowed, 3 * 33);
    redis.restart();
    let dave = mint(r#"{"sub":"dave","scope":"orders:read"}"#);
    wait_for(
        || {
            let (allowed, _, _) = spread(&nodes, &dave, 3);
            allowed == 3
        },
        "the nodes to use Redis again",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_keep_serving_while_postgres_is_cut_off_and_catch_up_after() {
    let up = upstream();
    let db = TempDatabase::create("cut").await;
    let key = SecretKey::generate_base64().unwrap();
    let store = seeded_store(&db.url, &key, up).await;
    // The nodes reach PostgreSQL through a forwarder the test can cut; the test's own
    // connection goes straight to the server.
    let forwarder =
        portico_testkit::forwarder::Forwarder::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_forwarder = db
        .url
        .replace("127.0.0.1:5432", &forwarder.addr().to_string());
    let nodes: Vec<Node> = (0..2)
        .map(|i| start_node(&via_forwarder, &key, TempDir::new(&format!("node-cut-{i}"))))
        .collect();
    let all: Vec<&Node> = nodes.iter().collect();
    let token = mint(r#"{"sub":"u-1","scope":"orders:read"}"#);
    until_all(&all, &token, "GET", 200);

    let before = store.revision().await.unwrap();
    for n in &nodes {
        assert_eq!(
            metric(&n.server.admin, "portico_config_revision"),
            Some(before as f64)
        );
    }
    forwarder.cut();
    // A change made while the nodes cannot reach the store.
    store
        .put(reader(&["GET", "POST"]), Expect::Any)
        .await
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    for n in &nodes {
        wait_for(
            || metric(&n.server.admin, "portico_config_from_last_good") == Some(1.0),
            "the node to say it serves its last good configuration",
        );
        assert_eq!(
            metric(&n.server.admin, "portico_config_revision"),
            Some(before as f64)
        );
    }
    for n in &nodes {
        assert_eq!(
            n.server.status("/orders/items", "GET", &token),
            200,
            "still serving"
        );
        assert_eq!(
            n.server.status("/orders/items", "POST", &token),
            403,
            "the old config"
        );
    }

    forwarder.restore();
    let took = until_all(&all, &token, "POST", 200);
    eprintln!("the store back: both nodes caught up after {took:?}");
    let after = store.revision().await.unwrap();
    for n in &nodes {
        wait_for(
            || metric(&n.server.admin, "portico_config_from_last_good") == Some(0.0),
            "the node to serve the store's configuration again",
        );
        assert_eq!(
            metric(&n.server.admin, "portico_config_revision"),
            Some(after as f64)
        );
    }
}
