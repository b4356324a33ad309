//! One suite, both backends: every test runs against SQLite (a file in a temp folder) and
//! PostgreSQL (a fresh database on the machine's server).

use portico_store::{
    DatabaseUrl, Expect, PutOutcome, Resource, ResourceChange, SchemaMode, SecretKey, Store,
    StoreError, StoreSettings,
};
use portico_testkit::TempDir;
use portico_testkit::postgres::TempDatabase;
use serde_json::json;

mod common;
use common::{Fixture, new_key};
use std::time::{Duration, Instant};

on_both_backends! {
    resources_are_created_read_updated_and_deleted_with_versions => crud_with_versions;
    writes_say_what_they_expect => expectations;
    a_batch_is_all_or_nothing => batch_is_atomic;
    concurrent_updates_of_one_version_have_one_winner => concurrent_updates;
    specs_are_sealed_with_the_key => sealed_with_the_key;
    migrations_apply_once_and_data_survives_reopening => reopen;
    a_change_reaches_a_revision_watcher_within_a_second => watch_sees_changes;
    bad_names_are_refused => bad_names;
    a_write_at_a_revision_fails_once_another_write_committed => writes_at_a_revision;
    concurrent_creations_of_one_name_never_fail_with_any => concurrent_upserts;
    batches_naming_resources_in_opposite_orders_do_not_deadlock => opposite_orders;
    a_node_that_may_not_migrate_only_checks_the_schema => schema_checked_not_changed;
    revocations_are_kept_listed_lifted_and_dropped_once_ended => revocations;
}

fn api(name: &str, upstream: &str) -> Resource {
    Resource {
        kind: "Api".into(),
        name: name.into(),
        spec: json!({ "listen_path": format!("/{name}"), "upstream": upstream }),
    }
}

async fn crud_with_versions(f: Fixture) {
    let s = &f.store;
    assert_eq!(s.revision().await.unwrap(), 0);
    assert_eq!(s.get("Api", "payments").await.unwrap(), None);

    let created = s
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    assert_eq!(created, PutOutcome::Created { version: 1 });
    assert_eq!(s.revision().await.unwrap(), 1);

    let unchanged = s
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    assert_eq!(unchanged, PutOutcome::Unchanged { version: 1 });
    assert_eq!(
        s.revision().await.unwrap(),
        1,
        "nothing written, no new revision"
    );

    let updated = s
        .put(api("payments", "http://b"), Expect::Version(1))
        .await
        .unwrap();
    assert_eq!(updated, PutOutcome::Updated { version: 2 });
    let got = s.get("Api", "payments").await.unwrap().unwrap();
    assert_eq!(got.version, 2);
    assert_eq!(got.spec["upstream"], "http://b");
    assert!(got.updated_at_ms >= got.created_at_ms);

    s.put(api("orders", "http://o"), Expect::Absent)
        .await
        .unwrap();
    let gold = Resource {
        kind: "Policy".into(),
        name: "gold".into(),
        spec: json!({"rate": 10}),
    };
    s.put(gold, Expect::Any).await.unwrap();
    let apis: Vec<String> = s
        .list(Some("Api"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(apis, ["orders", "payments"]);
    assert_eq!(s.list(None).await.unwrap().len(), 3);

    assert_eq!(
        s.delete("Api", "payments", Expect::Version(2))
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.get("Api", "payments").await.unwrap(), None);
    assert_eq!(s.revision().await.unwrap(), 5);
}

async fn expectations(f: Fixture) {
    let s = &f.store;
    s.put(api("payments", "http://a"), Expect::Absent)
        .await
        .unwrap();
    assert!(matches!(
        s.put(api("payments", "http://b"), Expect::Absent).await,
        Err(StoreError::Exists { found: 1, .. })
    ));
    assert!(matches!(
        s.put(api("payments", "http://b"), Expect::Version(7)).await,
        Err(StoreError::Conflict {
            expected: 7,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        s.put(api("unknown", "http://b"), Expect::Version(1)).await,
        Err(StoreError::Conflict { found: 0, .. })
    ));
    assert!(matches!(
        s.delete("Api", "payments", Expect::Version(2)).await,
        Err(StoreError::Conflict {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        s.delete("Api", "unknown", Expect::Any).await,
        Err(StoreError::NotFound { .. })
    ));
    let kept = s.get("Api", "payments").await.unwrap().unwrap();
    assert_eq!(kept.spec["upstream"], "http://a");
    assert_eq!(
        s.revision().await.unwrap(),
        1,
        "failed writes leave no revision"
    );
}

async fn batch_is_atomic(f: Fixture) {
    let s = &f.store;
    s.put(api("orders", "http://o"), Expect::Any).await.unwrap();
    let delete_orders = |expect| ResourceChange::Delete {
        kind: "Api".into(),
        name: "orders".into(),
        expect,
    };
    let failing = vec![
        ResourceChange::Put(api("payments", "http://a"), Expect::Absent),
        delete_orders(Expect::Any),
        ResourceChange::Put(api("orders", "http://again"), Expect::Version(1)),
    ];
    assert!(matches!(
        s.apply(failing).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        s.get("Api", "payments").await.unwrap(),
        None,
        "first change rolled back"
    );
    let orders = s.get("Api", "orders").await.unwrap().unwrap();
    assert_eq!(orders.version, 1, "second change rolled back too");
    assert_eq!(s.revision().await.unwrap(), 1);

    let fine = vec![
        ResourceChange::Put(api("payments", "http://a"), Expect::Absent),
        delete_orders(Expect::Version(1)),
    ];
    assert_eq!(s.apply(fine).await.unwrap().len(), 2);
    assert_eq!(s.revision().await.unwrap(), 2, "one revision per batch");
}

async fn concurrent_updates(f: Fixture) {
    f.store
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let s = f.store.clone();
            tokio::spawn(async move {
                s.put(api("payments", &format!("http://{i}")), Expect::Version(1))
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for w in writers {
        match w.await.unwrap() {
            Ok(PutOutcome::Updated { version: 2 }) => won += 1,
            Err(StoreError::Conflict { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let got = f.store.get("Api", "payments").await.unwrap().unwrap();
    assert_eq!(got.version, 2);
}

async fn writes_at_a_revision(f: Fixture) {
    let empty = f.store.snapshot().await.unwrap();
    assert_eq!((empty.revision, empty.resources.len()), (0, 0));
    f.store
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    let seen = f.store.snapshot().await.unwrap();
    assert_eq!(seen.revision, 1);
    assert_eq!(seen.resources.len(), 1);
    // Someone else writes after the snapshot: a write at the snapshot's revision is refused.
    f.store
        .put(api("orders", "http://b"), Expect::Any)
        .await
        .unwrap();
    let late = f
        .store
        .apply_at_revision(
            vec![ResourceChange::Put(api("billing", "http://c"), Expect::Any)],
            seen.revision,
        )
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::RevisionMoved {
                expected: 1,
                found: 2
            })
        ),
        "{late:?}"
    );
    assert!(f.store.get("Api", "billing").await.unwrap().is_none());
    // At the current revision it goes through.
    let now = f.store.snapshot().await.unwrap().revision;
    f.store
        .apply_at_revision(
            vec![ResourceChange::Put(api("billing", "http://c"), Expect::Any)],
            now,
        )
        .await
        .unwrap();
    assert_eq!(f.store.revision().await.unwrap(), 3);
}

/// `apply` creates-or-updates (`Expect::Any`): two nodes applying the same new name at once
/// must both succeed, never fail with "already exists".
async fn concurrent_upserts(f: Fixture) {
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let s = f.store.clone();
            tokio::spawn(async move {
                s.put(api("payments", &format!("http://{i}")), Expect::Any)
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    assert!(f.store.get("Api", "payments").await.unwrap().is_some());
}

async fn opposite_orders(f: Fixture) {
    for name in ["a", "b"] {
        f.store
            .put(api(name, "http://0"), Expect::Any)
            .await
            .unwrap();
    }
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let s = f.store.clone();
            let order = if i % 2 == 0 { ["a", "b"] } else { ["b", "a"] };
            tokio::spawn(async move {
                s.apply(
                    order
                        .iter()
                        .map(|n| ResourceChange::Put(api(n, &format!("http://{i}")), Expect::Any))
                        .collect(),
                )
                .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
}

async fn sealed_with_the_key(f: Fixture) {
    let secret = "hmac-secret-that-must-not-be-stored-in-clear";
    let issuer = Resource {
        kind: "Issuer".into(),
        name: "corp".into(),
        spec: json!({ "secret": secret }),
    };
    f.store.put(issuer, Expect::Any).await.unwrap();
    if let DatabaseUrl::Sqlite(path) = &f.settings.url {
        let wal = path.with_extension("db-wal");
        for file in [path, &wal] {
            let bytes = std::fs::read(file).unwrap_or_default();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the secret in clear",
                file.display()
            );
        }
    }
    assert!(matches!(
        Store::open(&f.settings, new_key()).await,
        Err(StoreError::WrongKey)
    ));
    let same_key = f.reopen().await;
    let got = same_key.get("Issuer", "corp").await.unwrap().unwrap();
    assert_eq!(got.spec["secret"], secret);
}

async fn reopen(f: Fixture) {
    f.store
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    f.store.close().await;
    let again = f.reopen().await;
    let got = again.get("Api", "payments").await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(again.revision().await.unwrap(), 1);
}

/// Runs one statement on the fixture's database behind the store's back (the way another
/// version of Portico would have left it).
async fn execute_directly(url: &DatabaseUrl, sql: &'static str, blobs: &[&[u8]]) {
    use sqlx::Connection;
    match url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            let mut query = sqlx::query(sql);
            for blob in blobs {
                query = query.bind(blob.to_vec());
            }
            query.execute(&mut conn).await.unwrap();
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let mut query = sqlx::query(sql);
            for blob in blobs {
                query = query.bind(blob.to_vec());
            }
            query.execute(&mut conn).await.unwrap();
        }
    }
}

/// The newest migration's version: the number its file name starts with.
fn newest_migration(url: &DatabaseUrl) -> i64 {
    let folder = match url {
        DatabaseUrl::Sqlite(_) => "sqlite",
        DatabaseUrl::Postgres(_) => "postgres",
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split('_').next()?.parse::<i64>().ok()
        })
        .max()
        .unwrap()
}

/// A database of the fixture's backend with nothing in it.
async fn empty_database(f: &Fixture) -> (StoreSettings, Option<TempDatabase>) {
    match &f.settings.url {
        DatabaseUrl::Sqlite(path) => {
            let empty = path.with_file_name("empty.db");
            std::fs::write(&empty, b"").unwrap();
            (StoreSettings::new(DatabaseUrl::Sqlite(empty)), None)
        }
        DatabaseUrl::Postgres(_) => {
            let db = TempDatabase::create("store_empty").await;
            (StoreSettings::new(db.url.parse().unwrap()), Some(db))
        }
    }
}

async fn schema_checked_not_changed(f: Fixture) {
    let key = || SecretKey::from_base64(&f.key).unwrap();
    let require_current = |settings: &StoreSettings| StoreSettings {
        schema: SchemaMode::RequireCurrent,
        ..settings.clone()
    };
    let expected = newest_migration(&f.settings.url);
    if let Err(e) = Store::open(&require_current(&f.settings), key()).await {
        panic!("a migrated store opens without migrating: {e}");
    }

    // An empty database: refused, and left empty; a control plane then migrates it.
    let (empty, _db) = empty_database(&f).await;
    let refused = Store::open(&require_current(&empty), key())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::SchemaMismatch { found: 0, expected: e } if e == expected),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "the store's schema is at 0, this node needs {expected}; run a control plane of \
             this version first"
        )
    );
    let again = Store::open(&require_current(&empty), key())
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::SchemaMismatch { found: 0, .. }),
        "still empty: {again:?}"
    );
    Store::open(&empty, key()).await.unwrap();
    Store::open(&require_current(&empty), key()).await.unwrap();

    // A store left behind by an older version (its latest migration not applied).
    execute_directly(
        &f.settings.url,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
        &[],
    )
    .await;
    let older = Store::open(&require_current(&f.settings), key())
        .await
        .unwrap_err();
    assert!(
        matches!(older, StoreError::SchemaMismatch { found, expected: e } if found == expected - 1 && e == expected),
        "{older:?}"
    );

    // One migrated by a newer version.
    execute_directly(
        &f.settings.url,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer Portico', TRUE, $1, 0)",
        &[&[0u8]],
    )
    .await;
    let newer = Store::open(&require_current(&f.settings), key())
        .await
        .unwrap_err();
    assert_eq!(
        newer.to_string(),
        format!(
            "the store's schema is at 9999, this node needs {expected}; this node is older \
             than the store: upgrade it"
        )
    );
}

#[tokio::test]
async fn a_missing_sqlite_file_is_not_created_by_a_node_that_may_not_migrate() {
    let dir = TempDir::new("store-missing");
    let path = dir.path().join("portico.db");
    let mut settings = StoreSettings::new(DatabaseUrl::Sqlite(path.clone()));
    settings.schema = SchemaMode::RequireCurrent;
    let opened = Store::open(&settings, new_key()).await;
    assert!(
        matches!(opened, Err(StoreError::Unavailable(_))),
        "{opened:?}"
    );
    assert!(!path.exists());
}

async fn watch_sees_changes(f: Fixture) {
    // PostgreSQL is told by NOTIFY, so its poll is slow here on purpose; SQLite polls.
    let poll = match f.store.backend_name() {
        "postgres" => Duration::from_secs(30),
        _ => Duration::from_millis(200),
    };
    let mut seen = f.store.watch_revision(poll);
    tokio::time::timeout(
        Duration::from_secs(5),
        seen.wait_for(|r| r.revision == Some(0)),
    )
    .await
    .expect("first read")
    .unwrap();
    // The listener subscribes right after the first read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writer = f.reopen().await;
    let start = Instant::now();
    writer
        .put(api("payments", "http://a"), Expect::Any)
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(1),
        seen.wait_for(|r| r.revision == Some(1)),
    )
    .await
    .expect("the change is seen within a second")
    .unwrap();
    eprintln!(
        "{}: change seen after {:?}",
        f.store.backend_name(),
        start.elapsed()
    );
}

async fn bad_names(f: Fixture) {
    for (kind, name) in [("Api", ""), ("", "x"), ("Api", "a\nb")] {
        let r = Resource {
            kind: kind.into(),
            name: name.into(),
            spec: json!({}),
        };
        assert!(matches!(
            f.store.put(r, Expect::Any).await,
            Err(StoreError::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_within_the_timeout() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let mut settings = StoreSettings::new(url.parse().unwrap());
    settings.timeout_ms = 500;
    let start = Instant::now();
    let opened = Store::open(&settings, new_key()).await;
    assert!(
        matches!(opened, Err(StoreError::Unavailable(_))),
        "{opened:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

async fn revocations(f: Fixture) {
    use portico_core::revocation::RevokedBy;
    use portico_store::{Counter, NewRevocation};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let new = |by, value: &str, until_secs| NewRevocation {
        by,
        value: value.into(),
        issuer: Some("https://idp".into()),
        until_secs,
        issued_before_secs: Some(now - 5),
        reason: Some("test".into()),
    };
    let poll = Duration::from_millis(200);
    let mut seen = f.store.watch(Counter::REVOCATIONS, poll);
    let config_before = f.store.revision().await.unwrap();

    let app = f
        .store
        .revoke(new(RevokedBy::ClientId, "app", now + 3_600))
        .await
        .unwrap();
    assert_eq!(app.by, RevokedBy::ClientId);
    assert_eq!(app.issued_before_secs, Some(now - 5));
    assert!(app.created_at_secs >= now);
    let short = f
        .store
        .revoke(new(RevokedBy::Jti, "t-1", now + 30))
        .await
        .unwrap();
    let active = f.store.active_revocations(now).await.unwrap();
    assert_eq!(active.revocations, vec![app.clone(), short.clone()]);
    assert_eq!(active.revision, 2);
    assert_eq!(
        f.store.revision().await.unwrap(),
        config_before,
        "a revocation does not move the configuration revision"
    );
    tokio::time::timeout(
        Duration::from_secs(5),
        seen.wait_for(|r| r.revision == Some(2)),
    )
    .await
    .expect("the revocation counter is watched")
    .unwrap();

    // Ended ones are not listed.
    let later = f.store.active_revocations(now + 30).await.unwrap();
    assert_eq!(later.revocations, vec![app.clone()]);
    assert!(
        f.store
            .revoke(new(RevokedBy::Identity, "x", now))
            .await
            .is_err(),
        "an end that is not in the future"
    );
    assert!(
        f.store
            .revoke(new(RevokedBy::Identity, "", now + 9))
            .await
            .is_err()
    );

    // They survive reopening; lifting moves the counter; a second lift finds nothing.
    let reopened = f.reopen().await;
    assert_eq!(
        reopened.active_revocations(now).await.unwrap().revocations,
        vec![app.clone(), short]
    );
    assert!(reopened.lift_revocation(app.id).await.unwrap());
    assert!(!reopened.lift_revocation(app.id).await.unwrap());
    let after = reopened.active_revocations(now).await.unwrap();
    assert_eq!(after.revision, 3);
    assert_eq!(after.revocations.len(), 1);
}
