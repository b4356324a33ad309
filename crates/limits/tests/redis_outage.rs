//! Redis away: a stopped server (connections refused) and a frozen one (connections accepted,
//! nothing answered). Each call is bounded by the timeouts, the configured rule decides, and
//! the limiter goes back to Redis by itself once it answers, reporting both transitions.

use parking_lot::Mutex;
use portico_core::config::{LimiterBackend, LimiterSettings, RedisFailureRule, SessionSettings};
use portico_core::policy::{Quota, RateLimit};
use portico_core::{RedisUrl, SessionId};
use portico_limits::{
    Decision, Limiter, LimiterError, LimiterObserver, Limits, RedisLimiter, Verdict,
};
use portico_testkit::redis::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 50;
const CONNECT_TIMEOUT_MS: u64 = 200;
/// Scheduling slack on a busy 2-core machine: generous on purpose.
const MARGIN_MS: u64 = 500;
/// Longest any call may take: a probe pays a connect and a script call.
const BOUND: Duration = Duration::from_millis(CONNECT_TIMEOUT_MS + TIMEOUT_MS + MARGIN_MS);

#[derive(Default)]
struct Recorder {
    transitions: Mutex<Vec<bool>>,
    without_redis: AtomicUsize,
}

impl LimiterObserver for Recorder {
    fn backend_changed(&self, up: bool) {
        self.transitions.lock().push(up);
    }

    fn decided_without_backend(&self, _rule: RedisFailureRule) {
        self.without_redis.fetch_add(1, Ordering::Relaxed);
    }
}

fn limiter(
    redis: &RedisServer,
    rule: RedisFailureRule,
    nodes: u32,
) -> (RedisLimiter, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        timeout_ms: TIMEOUT_MS,
        connect_timeout_ms: CONNECT_TIMEOUT_MS,
        on_redis_failure: rule,
        nodes,
    };
    let limiter =
        RedisLimiter::new(&settings, SessionSettings::default(), recorder.clone()).unwrap();
    (limiter, recorder)
}

fn rate(requests: u64) -> Limits {
    Limits {
        rate: Some((1, RateLimit::try_new(requests, 60_000).unwrap())),
        quota: None,
    }
}

/// One check, timed; panics when it takes longer than [`BOUND`].
async fn timed_check(
    limiter: &RedisLimiter,
    session: SessionId,
    limits: &Limits,
) -> Result<Decision, LimiterError> {
    let started = Instant::now();
    let result = limiter.check(session, limits).await;
    let took = started.elapsed();
    assert!(took <= BOUND, "a call took {took:?}, more than {BOUND:?}");
    result
}

/// Checks every 100 ms until the limiter is back on Redis; panics after 20 s.
async fn wait_until_back(limiter: &RedisLimiter, session: SessionId, limits: &Limits) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !limiter.is_up() {
        assert!(
            Instant::now() < deadline,
            "the limiter did not go back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = timed_check(limiter, session, limits).await;
    }
}

async fn count_allowed(
    limiter: &RedisLimiter,
    session: SessionId,
    limits: &Limits,
    n: usize,
) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        let decision = timed_check(limiter, session, limits)
            .await
            .expect("a decision");
        if decision.verdict == Verdict::Allowed {
            allowed += 1;
        }
    }
    allowed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_within_the_timeout_and_recovers_by_itself() {
    let mut redis = RedisServer::start();
    let (limiter, recorder) = limiter(&redis, RedisFailureRule::FailClosed, 1);
    let session = SessionId::from_label("closed");
    let limits = rate(1_000);
    assert!(timed_check(&limiter, session, &limits).await.is_ok());

    redis.stop();
    for _ in 0..20 {
        let result = timed_check(&limiter, session, &limits).await;
        assert!(
            matches!(result, Err(LimiterError::Unavailable(_))),
            "fail_closed refuses while Redis is down: {result:?}"
        );
    }
    assert!(!limiter.is_up());
    assert_eq!(
        *recorder.transitions.lock(),
        [false],
        "one transition, however many requests"
    );
    assert_eq!(recorder.without_redis.load(Ordering::Relaxed), 20);

    redis.restart();
    wait_until_back(&limiter, session, &limits).await;
    assert!(timed_check(&limiter, session, &limits).await.is_ok());
    assert_eq!(*recorder.transitions.lock(), [false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_local_allows_each_nodes_share_and_goes_back_to_redis() {
    let mut redis = RedisServer::start();
    let (limiter, recorder) = limiter(&redis, RedisFailureRule::FailOpenLocal, 2);
    let ten_per_minute = rate(10);
    let quota = Limits {
        rate: None,
        quota: Some((2, Quota::limited(7, 3_600_000).unwrap())),
    };
    assert!(
        timed_check(&limiter, SessionId::from_label("warm"), &ten_per_minute)
            .await
            .is_ok()
    );

    redis.stop();
    assert_eq!(
        count_allowed(
            &limiter,
            SessionId::from_label("open-rate"),
            &ten_per_minute,
            20
        )
        .await,
        5,
        "10 per minute over 2 nodes: 5 on this one"
    );
    assert_eq!(
        count_allowed(&limiter, SessionId::from_label("open-quota"), &quota, 20).await,
        3,
        "a quota of 7 over 2 nodes: 3 on this one (rounded down)"
    );
    assert_eq!(*recorder.transitions.lock(), [false]);
    assert!(recorder.without_redis.load(Ordering::Relaxed) >= 40);

    redis.restart();
    wait_until_back(&limiter, SessionId::from_label("probe"), &ten_per_minute).await;
    assert_eq!(*recorder.transitions.lock(), [false, true]);
    let without_before = recorder.without_redis.load(Ordering::Relaxed);
    assert_eq!(
        count_allowed(&limiter, SessionId::from_label("back"), &ten_per_minute, 20).await,
        10,
        "back on Redis: the whole limit, not a node's share"
    );
    assert_eq!(
        recorder.without_redis.load(Ordering::Relaxed),
        without_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_no_call_more_than_the_timeouts() {
    let redis = RedisServer::start();
    let (limiter, recorder) = limiter(&redis, RedisFailureRule::FailOpenLocal, 1);
    let session = SessionId::from_label("frozen");
    let limits = rate(1_000);
    assert!(timed_check(&limiter, session, &limits).await.is_ok());

    redis.freeze();
    // Through the first timeout, the back-off and at least one probe (after 1 s).
    let until = Instant::now() + Duration::from_millis(1_600);
    let mut calls = 0;
    while Instant::now() < until {
        let decision = timed_check(&limiter, session, &limits).await;
        assert!(
            decision.is_ok(),
            "fail_open_local decides in-process: {decision:?}"
        );
        calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(calls > 10, "only {calls} calls: they were not cut short");
    assert_eq!(*recorder.transitions.lock(), [false]);

    redis.thaw();
    wait_until_back(&limiter, session, &limits).await;
    assert_eq!(*recorder.transitions.lock(), [false, true]);
}
