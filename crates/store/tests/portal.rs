//! The portal's records on both backends: developers, apps, access requests moved by
//! compare-and-set, clients sealed, the registration journal.

mod common;
use common::Fixture;
use portico_store::StoreError;
use portico_store::portal::{Move, RequestStatus, StoredClient};

on_both_backends! {
    developers_and_apps_are_unique_where_they_must_be => developers_and_apps;
    a_request_moves_only_from_the_state_its_mover_saw => request_moves;
    a_client_is_recorded_with_its_request_and_sealed => clients;
    the_journal_keeps_what_is_not_recorded_yet => journal;
    deleting_an_app_deletes_its_requests_and_client => app_deletion;
}

async fn developer_with_app(f: &Fixture) -> (String, String) {
    let dev = f
        .store
        .create_developer("Ada@Example.com ", "Ada", "$argon2id$v=19$…")
        .await
        .unwrap();
    let app = f
        .store
        .create_app(&dev.id, "orders", &["https://app.example/cb".into()])
        .await
        .unwrap();
    (dev.id, app.id)
}

async fn developers_and_apps(f: Fixture) {
    let (dev, app) = developer_with_app(&f).await;
    let found = f
        .store
        .developer_by_email("ada@example.COM")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, dev);
    assert_eq!(found.email, "ada@example.com");
    assert_eq!(f.store.developer(&dev).await.unwrap().unwrap().name, "Ada");
    let again = f
        .store
        .create_developer("ada@example.com", "Other", "h")
        .await;
    assert!(matches!(again, Err(StoreError::Taken(_))), "{again:?}");

    let same_name = f.store.create_app(&dev, "orders", &[]).await;
    assert!(
        matches!(same_name, Err(StoreError::Taken(_))),
        "{same_name:?}"
    );
    let other = f
        .store
        .create_developer("bob@example.com", "Bob", "h")
        .await
        .unwrap();
    f.store.create_app(&other.id, "orders", &[]).await.unwrap();
    let apps = f.store.apps_of(&dev).await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].id, app);
    assert_eq!(apps[0].redirect_uris, ["https://app.example/cb"]);
    f.store
        .create_token(&dev, "hash-1", "laptop")
        .await
        .unwrap();
    assert_eq!(
        f.store
            .developer_by_token("hash-1")
            .await
            .unwrap()
            .unwrap()
            .id,
        dev
    );
    assert_eq!(f.store.developer_by_token("hash-2").await.unwrap(), None);
    let orphan = f.store.create_app("no-such-developer", "x", &[]).await;
    assert!(matches!(orphan, Err(StoreError::Invalid(_))), "{orphan:?}");
}

fn step<'a>(id: &'a str, from: RequestStatus, to: RequestStatus) -> Move<'a> {
    Move {
        id,
        from,
        to,
        reason: None,
        last_error: None,
    }
}

async fn request_moves(f: Fixture) {
    let (_, app) = developer_with_app(&f).await;
    let request = f
        .store
        .create_access_request(&app, "payments", "free", "backend")
        .await
        .unwrap();
    assert_eq!(request.status, RequestStatus::Pending);
    let pending = f
        .store
        .access_requests(Some(RequestStatus::Pending))
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&request.id]
    );

    // Two approvals at once: one takes the request.
    let (a, b) = tokio::join!(
        f.store.move_access_request(step(
            &request.id,
            RequestStatus::Pending,
            RequestStatus::Approving
        )),
        f.store.move_access_request(step(
            &request.id,
            RequestStatus::Pending,
            RequestStatus::Approving
        )),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|t| **t).count(), 1);

    // The IdP failed: back to pending, with its words, not decided.
    let failed = Move {
        last_error: Some("invalid_client_metadata: scope"),
        ..step(
            &request.id,
            RequestStatus::Approving,
            RequestStatus::Pending,
        )
    };
    assert!(f.store.move_access_request(failed).await.unwrap());
    let read = f.store.access_request(&request.id).await.unwrap().unwrap();
    assert_eq!(
        read.last_error.as_deref(),
        Some("invalid_client_metadata: scope")
    );
    assert_eq!(read.decided_at_secs, None);

    let rejected = Move {
        reason: Some("not a partner"),
        ..step(&request.id, RequestStatus::Pending, RequestStatus::Rejected)
    };
    assert!(f.store.move_access_request(rejected).await.unwrap());
    let read = f.store.access_request(&request.id).await.unwrap().unwrap();
    assert_eq!(read.status, RequestStatus::Rejected);
    assert_eq!(read.reason.as_deref(), Some("not a partner"));
    assert_eq!(read.last_error, None);
    assert!(read.decided_at_secs.is_some());
    assert!(
        !f.store
            .move_access_request(step(
                &request.id,
                RequestStatus::Pending,
                RequestStatus::Approving
            ))
            .await
            .unwrap()
    );
    assert!(
        f.store
            .access_requests(Some(RequestStatus::Pending))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.store.access_requests(None).await.unwrap().len(), 1);
}

fn client(app: &str, secret: &str) -> StoredClient {
    let secret = format!("secret-{secret}-x");
    StoredClient {
        app_id: app.into(),
        provider: "corp-idp".into(),
        client_type: "backend".into(),
        client_id: "client-1".into(),
        scope: "product_payments free_plan".into(),
        registration: format!(r#"{{"client_id":"client-1","client_secret":"{secret}"}}"#)
            .into_bytes(),
    }
}

async fn clients(f: Fixture) {
    let (_, app) = developer_with_app(&f).await;
    assert_eq!(f.store.client_of(&app).await.unwrap(), None);
    let request = f
        .store
        .create_access_request(&app, "payments", "free", "backend")
        .await
        .unwrap();
    let approving = step(
        &request.id,
        RequestStatus::Pending,
        RequestStatus::Approving,
    );
    assert!(f.store.move_access_request(approving).await.unwrap());
    let journal = f
        .store
        .journal_registration(&app, &request.id, "corp-idp", b"{}")
        .await
        .unwrap();

    // A request no longer approving cannot be recorded against: nothing is written.
    let wrong = step(&request.id, RequestStatus::Pending, RequestStatus::Approved);
    assert!(
        !f.store
            .record_client(&client(&app, "s1"), true, wrong, Some(&journal))
            .await
            .unwrap()
    );
    assert_eq!(f.store.client_of(&app).await.unwrap(), None);
    assert_eq!(f.store.journal().await.unwrap().len(), 1);

    let approved = step(
        &request.id,
        RequestStatus::Approving,
        RequestStatus::Approved,
    );
    assert!(
        f.store
            .record_client(&client(&app, "s1"), true, approved, Some(&journal))
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.client_of(&app).await.unwrap(),
        Some(client(&app, "s1"))
    );
    assert!(f.store.journal().await.unwrap().is_empty());
    assert_eq!(
        f.store
            .access_request(&request.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        RequestStatus::Approved
    );

    // Sealed at rest: the secret is nowhere in SQLite's files.
    if let portico_store::DatabaseUrl::Sqlite(path) = &f.settings.url {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        assert!(
            !bytes.windows(10).any(|w| w == b"secret-s1-"),
            "a client secret in the clear"
        );
    }
    let reopened = f.reopen().await;
    assert_eq!(
        reopened.client_of(&app).await.unwrap(),
        Some(client(&app, "s1"))
    );
    let second = f
        .store
        .create_access_request(&app, "refunds", "free", "backend")
        .await
        .unwrap();
    f.store
        .move_access_request(step(
            &second.id,
            RequestStatus::Pending,
            RequestStatus::Approving,
        ))
        .await
        .unwrap();
    let updated = step(
        &second.id,
        RequestStatus::Approving,
        RequestStatus::Approved,
    );
    // A new registration never replaces the recorded client (it would be left at the IdP)…
    assert!(
        !f.store
            .record_client(&client(&app, "s2"), true, updated.clone(), None)
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.client_of(&app).await.unwrap(),
        Some(client(&app, "s1"))
    );
    // …an update does.
    assert!(
        f.store
            .record_client(&client(&app, "s2"), false, updated, None)
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.client_of(&app).await.unwrap(),
        Some(client(&app, "s2"))
    );
    // A newer answer for the same client replaces the registration; for another, nothing.
    assert!(
        f.store
            .replace_registration(&app, "client-1", b"{}")
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .replace_registration(&app, "client-2", b"{\"x\": 1}")
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.client_of(&app).await.unwrap().unwrap().registration,
        b"{}"
    );
    f.store.delete_client(&app).await.unwrap();
    assert_eq!(f.store.client_of(&app).await.unwrap(), None);
}

async fn journal(f: Fixture) {
    let id = f
        .store
        .journal_registration("app-1", "req-1", "corp-idp", b"{\"client_id\":\"c\"}")
        .await
        .unwrap();
    let entries = f.reopen().await.journal().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    assert_eq!(entries[0].registration, b"{\"client_id\":\"c\"}");
    assert_eq!(entries[0].request_id, "req-1");
    f.store.clear_journal(&id).await.unwrap();
    assert!(f.store.journal().await.unwrap().is_empty());
}

async fn app_deletion(f: Fixture) {
    let (dev, app) = developer_with_app(&f).await;
    let request = f
        .store
        .create_access_request(&app, "payments", "free", "backend")
        .await
        .unwrap();
    f.store
        .move_access_request(step(
            &request.id,
            RequestStatus::Pending,
            RequestStatus::Approving,
        ))
        .await
        .unwrap();
    f.store
        .record_client(
            &client(&app, "s"),
            true,
            step(
                &request.id,
                RequestStatus::Approving,
                RequestStatus::Approved,
            ),
            None,
        )
        .await
        .unwrap();
    assert!(f.store.delete_app(&app).await.unwrap());
    assert!(!f.store.delete_app(&app).await.unwrap());
    assert_eq!(f.store.client_of(&app).await.unwrap(), None);
    assert_eq!(f.store.access_request(&request.id).await.unwrap(), None);
    assert!(f.store.apps_of(&dev).await.unwrap().is_empty());
}
