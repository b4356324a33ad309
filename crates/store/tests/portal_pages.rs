//! What the portal's pages keep, on both backends: sessions (expiring, capped per developer,
//! admin sessions ended together), the email outbox (taken once per attempt, recipients-less
//! mail never due), usage counts added up per client and minute.

mod common;
use common::Fixture;
use portico_store::portal_sessions::{MAX_SESSIONS_PER_DEVELOPER, WebSession};
use portico_store::usage::UsageMinute;

on_both_backends! {
    sessions_expire_end_and_are_capped_per_developer => sessions;
    the_outbox_hands_each_due_email_to_one_sender => outbox;
    usage_adds_up_per_issuer_client_and_minute => usage;
}

fn session(developer: Option<&str>) -> WebSession {
    WebSession {
        developer_id: developer.map(str::to_string),
        admin: developer.is_none(),
        csrf: "csrf".into(),
        cart: vec![],
        expires_at_secs: 0,
    }
}

async fn sessions(f: Fixture) {
    let dev = f
        .store
        .create_developer("ada@example.com", "Ada", "$argon2id$…")
        .await
        .unwrap();
    f.store
        .create_session("h-dev", &session(Some(&dev.id)), 3600)
        .await
        .unwrap();
    let found = f.store.session("h-dev").await.unwrap().unwrap();
    assert_eq!(found.developer_id.as_deref(), Some(dev.id.as_str()));
    assert!(!found.admin);
    f.store
        .set_cart("h-dev", &["orders".into(), "billing".into()])
        .await
        .unwrap();
    assert_eq!(
        f.store.session("h-dev").await.unwrap().unwrap().cart,
        ["orders", "billing"]
    );
    // Expired: not found.
    f.store
        .create_session("h-old", &session(Some(&dev.id)), 0)
        .await
        .unwrap();
    assert!(f.store.session("h-old").await.unwrap().is_none());
    // Admin sessions end together; developers' stay.
    f.store
        .create_session("h-admin", &session(None), 3600)
        .await
        .unwrap();
    assert!(f.store.session("h-admin").await.unwrap().unwrap().admin);
    f.store.end_admin_sessions().await.unwrap();
    assert!(f.store.session("h-admin").await.unwrap().is_none());
    assert!(f.store.session("h-dev").await.unwrap().is_some());
    // At most MAX_SESSIONS_PER_DEVELOPER: the newest stay.
    for i in 0..MAX_SESSIONS_PER_DEVELOPER + 2 {
        f.store
            .create_session(&format!("h-{i}"), &session(Some(&dev.id)), 3600)
            .await
            .unwrap();
    }
    let last = MAX_SESSIONS_PER_DEVELOPER + 1;
    assert!(
        f.store
            .session(&format!("h-{last}"))
            .await
            .unwrap()
            .is_some()
    );
    let mut alive = 0;
    for name in (0..=last).map(|i| format!("h-{i}")).chain(["h-dev".into()]) {
        alive += i64::from(f.store.session(&name).await.unwrap().is_some());
    }
    assert_eq!(alive, MAX_SESSIONS_PER_DEVELOPER);
    f.store.delete_session(&format!("h-{last}")).await.unwrap();
    assert!(
        f.store
            .session(&format!("h-{last}"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn outbox(f: Fixture) {
    let id = f
        .store
        .queue_mail("approved", "ada@example.com", "Approved", "body")
        .await
        .unwrap();
    f.store
        .queue_mail("submitted", "", "No admin address", "body")
        .await
        .unwrap();
    let due = f.store.due_mails(8, 10).await.unwrap();
    assert_eq!(due.len(), 1, "mail without a recipient is never due");
    assert_eq!(due[0].id, id);
    assert!(f.store.take_mail(&due[0], 60).await.unwrap());
    assert!(
        !f.store.take_mail(&due[0], 60).await.unwrap(),
        "a second sender finds it taken"
    );
    assert!(
        f.store.due_mails(8, 10).await.unwrap().is_empty(),
        "not due again for a minute"
    );
    f.store
        .mail_attempted(&id, Some("SMTP: 451"))
        .await
        .unwrap();
    let recent = f.store.recent_mails(10).await.unwrap();
    let mail = recent.iter().find(|m| m.id == id).unwrap();
    assert_eq!(
        (mail.attempts, mail.last_error.as_deref()),
        (1, Some("SMTP: 451"))
    );
    f.store.mail_attempted(&id, None).await.unwrap();
    let recent = f.store.recent_mails(10).await.unwrap();
    let mail = recent.iter().find(|m| m.id == id).unwrap();
    assert!(mail.sent_at_secs.is_some() && mail.last_error.is_none());
    assert_eq!(recent.len(), 2);
}

async fn usage(f: Fixture) {
    let minute = |minute, ok, rejected| UsageMinute {
        minute,
        ok,
        rejected,
        failed: 0,
    };
    let rows = vec![
        (
            "https://a".to_string(),
            "app".to_string(),
            minute(1000, 3, 1),
        ),
        (
            "https://b".to_string(),
            "app".to_string(),
            minute(1000, 7, 0),
        ),
    ];
    f.store.add_usage(&rows).await.unwrap();
    // Another node's counts for the same minute add up.
    f.store
        .add_usage(&[
            (
                "https://a".to_string(),
                "app".to_string(),
                minute(1000, 2, 2),
            ),
            (
                "https://a".to_string(),
                "app".to_string(),
                minute(1001, 1, 0),
            ),
        ])
        .await
        .unwrap();
    let a = f.store.usage_since("https://a", "app", 1000).await.unwrap();
    assert_eq!(a, [minute(1000, 5, 3), minute(1001, 1, 0)]);
    let b = f.store.usage_since("https://b", "app", 1001).await.unwrap();
    assert!(b.is_empty(), "only minutes from the one asked for");
}
