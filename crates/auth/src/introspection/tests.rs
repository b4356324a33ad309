//! The introspector with a shared store: what it reads and what it refuses. (What it writes
//! needs a real IdP: `crates/gateway/tests/shared_introspection.rs`.)

use super::shared::tests::MemoryAnswers;
use super::*;
use portico_core::HttpUrl;
use portico_core::introspection::{ClientAuth, JwtValidation};
use portico_core::jwt::Secret;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

const NOW: u64 = 1_000_000;

/// An endpoint nobody listens on: any call to it is a `connect` failure.
fn spec(client_id: &str, cache: IntrospectionCache) -> IntrospectionSpec {
    IntrospectionSpec {
        endpoint: Some(HttpUrl::try_new("http://127.0.0.1:1/introspect").unwrap()),
        client_id: client_id.into(),
        client_auth: ClientAuth::ClientSecretBasic(Secret::new(b"secret".to_vec())),
        cache,
        timeout_ms: 500,
        grace_secs: 0,
        jwt_validation: JwtValidation::Local,
    }
}

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    shared: AtomicU64,
    rejected: AtomicU64,
}

impl IntrospectionObserver for Counts {
    fn called(&self, _outcome: &'static str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn served_from_shared(&self) {
        self.shared.fetch_add(1, Ordering::SeqCst);
    }
    fn shared_value_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::SeqCst);
    }
}

fn node(spec: &IntrospectionSpec, store: &Arc<MemoryAnswers>) -> (Introspector, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let introspector = Introspector::new(
        spec,
        None,
        http_client(spec, &[]).unwrap(),
        counts.clone(),
        Some(store.clone() as Arc<dyn SharedAnswers>),
    )
    .unwrap();
    (introspector, counts)
}

fn active(exp: u64) -> Answer {
    let claims = json!({"active": true, "sub": "alice", "exp": exp});
    Answer::Active(Arc::new(serde_json::from_value(claims).unwrap()))
}

/// What another node with the same endpoint and credentials would have written.
async fn written_by_another_node(
    spec: &IntrospectionSpec,
    store: &Arc<MemoryAnswers>,
    token: &str,
    answer: Answer,
    fresh_until: u64,
) {
    let (other, _) = node(spec, store);
    let shared = other.shared.as_ref().unwrap();
    shared
        .store(&shared.key(token), &answer, NOW, fresh_until, 60_000)
        .await;
}

#[tokio::test]
async fn an_answer_another_node_shared_is_served_without_asking_and_kept_locally() {
    let store = Arc::new(MemoryAnswers::default());
    let cache = IntrospectionCache::default();
    written_by_another_node(
        &spec("gw", cache),
        &store,
        "tok",
        active(NOW + 3_600),
        NOW + 60,
    )
    .await;
    let (a, counts) = node(&spec("gw", cache), &store);
    let answered = a.introspect("tok", NOW + 10).await.unwrap();
    assert!(matches!(answered.answer, Answer::Active(_)));
    assert_eq!(
        answered.reusable_until,
        NOW + 60,
        "no longer than the writer allowed"
    );
    assert_eq!(
        counts.calls.load(Ordering::SeqCst),
        0,
        "the IdP was not asked"
    );
    assert_eq!(counts.shared.load(Ordering::SeqCst), 1);
    assert_eq!(a.cached(), 1, "kept in the local cache too");
    store.0.lock().clear();
    assert!(
        a.introspect("tok", NOW + 11).await.is_ok(),
        "now from the local cache"
    );
}

#[tokio::test]
async fn the_readers_own_rules_and_exp_bound_a_shared_answer() {
    let store = Arc::new(MemoryAnswers::default());
    let long = IntrospectionCache {
        ttl_secs: 3_600,
        ..IntrospectionCache::default()
    };
    let short = IntrospectionCache {
        ttl_secs: 5,
        ..IntrospectionCache::default()
    };
    written_by_another_node(
        &spec("gw", long),
        &store,
        "t1",
        active(NOW + 7_200),
        NOW + 3_600,
    )
    .await;
    let (a, _) = node(&spec("gw", short), &store);
    let answered = a.introspect("t1", NOW).await.unwrap();
    assert_eq!(answered.reusable_until, NOW + 5, "the reader's TTL");

    // Fresh by its writer's word, but the token has expired: not used, the IdP is asked.
    written_by_another_node(
        &spec("gw", long),
        &store,
        "t2",
        active(NOW - 1),
        NOW + 3_600,
    )
    .await;
    let (b, counts) = node(&spec("gw", long), &store);
    let failure = b.introspect("t2", NOW).await.unwrap_err();
    assert_eq!(failure.kind, "connect");
    assert_eq!(counts.shared.load(Ordering::SeqCst), 0);
    assert_eq!(counts.calls.load(Ordering::SeqCst), 1);

    // Fresh by its writer's word (an hour), but the IdP answered 100 s ago: a reader whose TTL
    // is 5 s asks again, rather than trust an answer older than it allows.
    let (writer, _) = node(&spec("gw", long), &store);
    let shared = writer.shared.as_ref().unwrap();
    shared
        .store(
            &shared.key("t3"),
            &active(NOW + 7_200),
            NOW - 100,
            NOW + 3_500,
            60_000,
        )
        .await;
    let (c, counts) = node(&spec("gw", short), &store);
    assert_eq!(c.introspect("t3", NOW).await.unwrap_err().kind, "connect");
    assert_eq!(counts.shared.load(Ordering::SeqCst), 0);
    // The long-TTL reader takes it, fresh until an hour after the answer.
    let (d, _) = node(&spec("gw", long), &store);
    assert_eq!(
        d.introspect("t3", NOW).await.unwrap().reusable_until,
        NOW + 3_500
    );
}

#[tokio::test]
async fn tampered_or_foreign_entries_are_not_trusted() {
    let store = Arc::new(MemoryAnswers::default());
    let cache = IntrospectionCache::default();
    written_by_another_node(
        &spec("gw", cache),
        &store,
        "tok",
        active(NOW + 3_600),
        NOW + 60,
    )
    .await;
    for value in store.0.lock().values_mut() {
        let last = value.len() - 1;
        value[last] ^= 0x01;
    }
    let (a, counts) = node(&spec("gw", cache), &store);
    assert_eq!(a.introspect("tok", NOW).await.unwrap_err().kind, "connect");
    assert_eq!(counts.rejected.load(Ordering::SeqCst), 1);
    assert_eq!(counts.calls.load(Ordering::SeqCst), 1, "the IdP was asked");

    // Another client of the same endpoint never reads this client's entries.
    store.0.lock().clear();
    written_by_another_node(
        &spec("gw", cache),
        &store,
        "tok",
        active(NOW + 3_600),
        NOW + 60,
    )
    .await;
    let (other_client, counts) = node(&spec("other", cache), &store);
    assert!(other_client.introspect("tok", NOW).await.is_err());
    assert_eq!(counts.shared.load(Ordering::SeqCst), 0);
    assert_eq!(
        counts.rejected.load(Ordering::SeqCst),
        0,
        "a miss, not a forgery"
    );
}

#[tokio::test]
async fn with_the_cache_off_nothing_is_shared() {
    let store = Arc::new(MemoryAnswers::default());
    let on = IntrospectionCache::default();
    let off = IntrospectionCache {
        enabled: false,
        ..on
    };
    written_by_another_node(
        &spec("gw", on),
        &store,
        "tok",
        active(NOW + 3_600),
        NOW + 60,
    )
    .await;
    let (a, counts) = node(&spec("gw", off), &store);
    assert!(a.shared.is_none());
    assert!(a.introspect("tok", NOW).await.is_err(), "asked the IdP");
    assert_eq!(counts.shared.load(Ordering::SeqCst), 0);
}

#[test]
fn store_lifetimes_end_by_the_freshness() {
    // 12.250 s into the epoch, `now` = 12: 10 s of freshness left by the second count,
    // 9.75 s in fact.
    assert_eq!(remaining_ms(22, 12, 12_250), 9_750);
    assert_eq!(remaining_ms(22, 12, 12_000), 10_000);
    assert_eq!(remaining_ms(12, 12, 12_250), 0);
    assert_eq!(remaining_ms(10, 12, 12_250), 0);
    // A `now` far from the clock (tests): at most one second taken off.
    assert_eq!(remaining_ms(22, 12, 99_999_999), 9_001);
    assert_eq!(remaining_ms(22, 12, 0), 10_000);
}

#[test]
fn sharing_identities_differ_by_endpoint_client_and_credentials_not_by_settings() {
    let cache = IntrospectionCache::default();
    let base = spec("gw", cache);
    let id = sharing_identity(&base, None);
    let mut other_endpoint = base.clone();
    other_endpoint.endpoint = Some(HttpUrl::try_new("http://127.0.0.1:2/introspect").unwrap());
    let mut other_secret = base.clone();
    other_secret.client_auth = ClientAuth::ClientSecretBasic(Secret::new(b"other".to_vec()));
    let mut other_method = base.clone();
    other_method.client_auth = ClientAuth::ClientSecretPost(Secret::new(b"secret".to_vec()));
    let mut discovered = base.clone();
    discovered.endpoint = None;
    for different in [
        sharing_identity(&spec("gw2", cache), None),
        sharing_identity(&other_endpoint, None),
        sharing_identity(&other_secret, None),
        sharing_identity(&other_method, None),
        sharing_identity(&discovered, Some("https://idp")),
    ] {
        assert_ne!(different, id);
    }
    let mut other_settings = base.clone();
    other_settings.cache.ttl_secs = 1;
    other_settings.grace_secs = 30;
    assert_eq!(sharing_identity(&other_settings, None), id);
}

#[tokio::test]
async fn askers_that_go_away_mid_call_leave_nothing_behind_and_calls_are_bounded() {
    // An endpoint that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut silent_spec = spec("gateway", IntrospectionCache::default());
    silent_spec.endpoint = Some(HttpUrl::try_new(&url).unwrap());
    silent_spec.timeout_ms = 5_000;
    let counts = Arc::new(Counts::default());
    let introspector = Arc::new(
        Introspector::new(
            &silent_spec,
            None,
            http_client(&silent_spec, &[]).unwrap(),
            counts.clone(),
            None,
        )
        .unwrap(),
    );
    let askers: Vec<_> = (0..200)
        .map(|i| {
            let introspector = introspector.clone();
            // Two askers per token: a shared flight, abandoned by both.
            tokio::spawn(async move { introspector.introspect(&format!("t-{}", i / 2), NOW).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(introspector.inflight.lock().len(), 100);
    assert_eq!(
        introspector.calls.available_permits(),
        0,
        "at most {MAX_CONCURRENT_CALLS} calls at once"
    );
    for asker in &askers {
        asker.abort();
    }
    for asker in askers {
        let _ = asker.await;
    }
    assert_eq!(introspector.inflight.lock().len(), 0, "no cell left behind");
    assert_eq!(introspector.calls.available_permits(), MAX_CONCURRENT_CALLS);
    held.abort();
}
