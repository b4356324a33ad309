//! One table of request sequences, run through both backends: the in-process limiter under
//! paused time (exact) and the Redis limiter against a real `redis-server` in real time. This
//! is what keeps the Lua script (`src/redis/decide.lua`) equal to `gcra.rs` and `quota.rs`.
//!
//! Verdicts and remaining counts must match exactly; millisecond values (retry-after, reset)
//! within [`MS_TOLERANCE`], since Redis's clock runs on while the test sleeps between steps.
//! Step times keep well away from every boundary, so that slack cannot flip a verdict.

use portico_core::RedisUrl;
use portico_core::SessionId;
use portico_core::config::{LimiterBackend, LimiterSettings, RedisFailureRule, SessionSettings};
use portico_core::policy::{Quota, RateLimit};
use portico_limits::{
    Decision, IgnoreEvictions, Limiter, Limits, LocalLimiter, RedisLimiter, Verdict,
};
use portico_testkit::redis::RedisServer;
use std::sync::Arc;
use std::time::Duration;

const MS_TOLERANCE: u64 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allowed,
    RateLimited,
    QuotaExceeded,
}

/// What one request must get: verdict, retry-after (ms), and (remaining, reset ms) per limit.
#[derive(Debug, Clone, Copy)]
struct Expect {
    kind: Kind,
    retry_ms: u64,
    rate: Option<(u64, u64)>,
    quota: Option<(u64, u64)>,
}

struct Step {
    at_ms: u64,
    expect: Expect,
}

struct Scenario {
    name: &'static str,
    limits: Limits,
    steps: Vec<Step>,
}

fn step(
    at_ms: u64,
    kind: Kind,
    retry_ms: u64,
    rate: Option<(u64, u64)>,
    quota: Option<(u64, u64)>,
) -> Step {
    Step {
        at_ms,
        expect: Expect {
            kind,
            retry_ms,
            rate,
            quota,
        },
    }
}

fn rate(key: u64, requests: u64, per_ms: u64) -> Option<(u64, RateLimit)> {
    Some((key, RateLimit::try_new(requests, per_ms).unwrap()))
}

fn quota(key: u64, max: u64, renewal_ms: u64) -> Option<(u64, Quota)> {
    Some((key, Quota::limited(max, renewal_ms).unwrap()))
}

fn scenarios() -> Vec<Scenario> {
    use Kind::*;
    vec![
        Scenario {
            // 3 per 3 s: interval 1 s, burst tolerance 2 s.
            name: "rate: burst, rejections consume nothing, full recovery",
            limits: Limits {
                rate: rate(11, 3, 3_000),
                quota: Some((12, Quota::Unlimited)),
            },
            steps: vec![
                step(0, Allowed, 0, Some((2, 1_000)), None),
                step(0, Allowed, 0, Some((1, 2_000)), None),
                step(0, Allowed, 0, Some((0, 3_000)), None),
                step(0, RateLimited, 1_000, Some((0, 3_000)), None),
                step(500, RateLimited, 500, Some((0, 2_500)), None),
                step(600, RateLimited, 400, Some((0, 2_400)), None),
                // Had the rejections counted, this would be refused too.
                step(1_500, Allowed, 0, Some((0, 2_500)), None),
                step(1_600, RateLimited, 400, Some((0, 2_400)), None),
                step(5_000, Allowed, 0, Some((2, 1_000)), None),
            ],
        },
        Scenario {
            name: "quota: counts to max, rejections free, the next period starts at the next request",
            limits: Limits {
                rate: None,
                quota: quota(21, 3, 2_000),
            },
            steps: vec![
                step(0, Allowed, 0, None, Some((2, 2_000))),
                step(0, Allowed, 0, None, Some((1, 2_000))),
                step(300, Allowed, 0, None, Some((0, 1_700))),
                step(600, QuotaExceeded, 1_400, None, Some((0, 1_400))),
                step(900, QuotaExceeded, 1_100, None, Some((0, 1_100))),
                // The period ended at 2 000; a new one starts here, not at 2 000.
                step(2_500, Allowed, 0, None, Some((2, 2_000))),
                step(3_000, Allowed, 0, None, Some((1, 1_500))),
            ],
        },
        Scenario {
            // Rate 2 per 2 s (interval 1 s, tolerance 1 s); quota 3 per 10 s.
            name: "rate and quota: a rejection by either consumes neither",
            limits: Limits {
                rate: rate(31, 2, 2_000),
                quota: quota(32, 3, 10_000),
            },
            steps: vec![
                step(0, Allowed, 0, Some((1, 1_000)), Some((2, 10_000))),
                step(0, Allowed, 0, Some((0, 2_000)), Some((1, 10_000))),
                // Rate-limited: the quota status shows what it would have been, but nothing is spent.
                step(0, RateLimited, 1_000, Some((0, 2_000)), Some((0, 10_000))),
                step(1_500, Allowed, 0, Some((0, 1_500)), Some((0, 8_500))),
                step(
                    3_500,
                    QuotaExceeded,
                    6_500,
                    Some((1, 1_000)),
                    Some((0, 6_500)),
                ),
                // Had the quota rejection spent rate, 1 would not remain.
                step(
                    3_600,
                    QuotaExceeded,
                    6_400,
                    Some((1, 1_000)),
                    Some((0, 6_400)),
                ),
            ],
        },
        Scenario {
            name: "rate: one per window renews after the window",
            limits: Limits {
                rate: rate(41, 1, 1_000),
                quota: None,
            },
            steps: vec![
                step(0, Allowed, 0, Some((0, 1_000)), None),
                step(500, RateLimited, 500, Some((0, 500)), None),
                step(1_300, Allowed, 0, Some((0, 1_000)), None),
            ],
        },
        Scenario {
            name: "quota: zero allows nothing and a refused request starts no period",
            limits: Limits {
                rate: None,
                quota: quota(51, 0, 1_000),
            },
            steps: vec![
                step(0, QuotaExceeded, 1_000, None, Some((0, 1_000))),
                step(400, QuotaExceeded, 1_000, None, Some((0, 1_000))),
            ],
        },
    ]
}

fn kind(decision: &Decision) -> (Kind, u64) {
    match decision.verdict {
        Verdict::Allowed => (Kind::Allowed, 0),
        Verdict::RateLimited { retry_after_ms } => (Kind::RateLimited, retry_after_ms),
        Verdict::QuotaExceeded { retry_after_ms } => (Kind::QuotaExceeded, retry_after_ms),
    }
}

/// Checks `got` against `want`: counts exactly, milliseconds within `tolerance_ms`. Returns the
/// differences found, each naming the scenario and step.
fn compare(
    name: &str,
    i: usize,
    limits: &Limits,
    want: &Expect,
    got: &Decision,
    tolerance_ms: u64,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let near = |a: u64, b: u64| a.abs_diff(b) <= tolerance_ms;
    let (got_kind, got_retry) = kind(got);
    if got_kind != want.kind || !near(got_retry, want.retry_ms) {
        wrong.push(format!(
            "{name}, step {i}: verdict {got_kind:?} retry {got_retry} ms, expected {:?} retry {} ms",
            want.kind, want.retry_ms
        ));
    }
    let limit_of = |which: &str| match which {
        "rate" => limits.rate.map(|(_, r)| (r.requests, r.per_ms)),
        _ => match limits.quota {
            Some((_, Quota::Limited { max, renewal_ms })) => Some((max, renewal_ms)),
            _ => None,
        },
    };
    for (which, want_status, got_status) in [
        ("rate", want.rate, got.rate),
        ("quota", want.quota, got.quota),
    ] {
        match (want_status, got_status) {
            (None, None) => {}
            (Some((remaining, reset_ms)), Some(s)) => {
                let (limit, window_ms) = limit_of(which).unwrap();
                if s.remaining != remaining
                    || !near(s.reset_ms, reset_ms)
                    || s.limit != limit
                    || s.window_ms != window_ms
                {
                    wrong.push(format!(
                        "{name}, step {i}: {which} {s:?}, expected remaining {remaining} reset {reset_ms} ms (limit {limit}, window {window_ms} ms)"
                    ));
                }
            }
            (want_status, got_status) => wrong.push(format!(
                "{name}, step {i}: {which} status {got_status:?}, expected {want_status:?}"
            )),
        }
    }
    wrong
}

/// The admin API's look at a session, on both backends.
trait Peek: Limiter {
    async fn peek_at(&self, session: SessionId, limits: &Limits) -> Decision;
}

impl Peek for LocalLimiter {
    async fn peek_at(&self, session: SessionId, limits: &Limits) -> Decision {
        self.peek(session, limits)
    }
}

impl Peek for RedisLimiter {
    async fn peek_at(&self, session: SessionId, limits: &Limits) -> Decision {
        self.peek(session, limits).await.expect("a peek")
    }
}

/// Runs `scenario` on `limiter` for `session`, sleeping (paused or real time) to each step,
/// peeking before every request: the scenario's expectations hold only if peeks count nothing.
/// Returns the decisions and the differences between each peek and its request's decision.
async fn run(
    limiter: &impl Peek,
    session: SessionId,
    scenario: &Scenario,
) -> (Vec<Decision>, Vec<String>) {
    let start = tokio::time::Instant::now();
    let mut decisions = Vec::new();
    let mut wrong = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(step.at_ms)).await;
        let peeked = limiter.peek_at(session, &scenario.limits).await;
        let decided = limiter
            .check(session, &scenario.limits)
            .await
            .expect("a decision");
        wrong.extend(peek_problems(scenario.name, i, &peeked, &decided));
        decisions.push(decided);
    }
    (decisions, wrong)
}

/// A peek just before a request foresees its verdict and reports what is left now: one more
/// than the request leaves when it is allowed, nothing where it is refused.
fn peek_problems(name: &str, i: usize, peeked: &Decision, decided: &Decision) -> Vec<String> {
    let mut wrong = Vec::new();
    if kind(peeked).0 != kind(decided).0 {
        wrong.push(format!(
            "{name}, step {i}: peek foresaw {:?}, the request got {:?}",
            peeked.verdict, decided.verdict
        ));
    }
    let one_more = |after: u64, limit: u64| (after + 1).min(limit);
    let pairs = [
        ("rate", peeked.rate, decided.rate),
        ("quota", peeked.quota, decided.quota),
    ];
    for (which, seen, got) in pairs {
        let (Some(seen), Some(got)) = (seen, got) else {
            if seen.is_some() != got.is_some() {
                wrong.push(format!(
                    "{name}, step {i}: {which} peeked {seen:?}, decided {got:?}"
                ));
            }
            continue;
        };
        let refused_here = matches!(
            (which, decided.verdict),
            ("rate", Verdict::RateLimited { .. }) | ("quota", Verdict::QuotaExceeded { .. })
        );
        let expected = match decided.verdict {
            Verdict::Allowed => Some(one_more(got.remaining, got.limit)),
            _ if refused_here => Some(0),
            // Refused by the other limit: this one's "after" is hypothetical.
            _ => None,
        };
        if let Some(expected) = expected
            && seen.remaining != expected
        {
            wrong.push(format!(
                "{name}, step {i}: {which} peeked remaining {}, expected {expected}",
                seen.remaining
            ));
        }
    }
    wrong
}

#[tokio::test(start_paused = true)]
async fn the_local_backend_follows_every_scenario_exactly() {
    let mut wrong = Vec::new();
    for scenario in scenarios() {
        let limiter = LocalLimiter::new(SessionSettings::default());
        let (decisions, peeks) =
            run(&limiter, SessionId::from_label(scenario.name), &scenario).await;
        wrong.extend(peeks);
        for (i, (step, got)) in scenario.steps.iter().zip(&decisions).enumerate() {
            wrong.extend(compare(
                scenario.name,
                i,
                &scenario.limits,
                &step.expect,
                got,
                0,
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_backend_gives_the_same_verdicts_and_statuses() {
    let redis = RedisServer::start();
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        // Generous: this test is about the math, not about timeouts.
        timeout_ms: 2_000,
        connect_timeout_ms: 2_000,
        // Any Redis failure fails the test instead of quietly deciding in-process.
        on_redis_failure: RedisFailureRule::FailClosed,
        ..LimiterSettings::default()
    };
    let limiter = Arc::new(
        RedisLimiter::new(
            &settings,
            SessionSettings::default(),
            Arc::new(IgnoreEvictions),
        )
        .unwrap(),
    );
    // Every scenario at once, each on its own session, so the whole table takes ~5 s.
    let mut running = tokio::task::JoinSet::new();
    for (n, scenario) in scenarios().into_iter().enumerate() {
        let limiter = limiter.clone();
        running.spawn(async move {
            let session = SessionId::from_label(&format!("redis-{n}"));
            let (decisions, mut wrong) = run(&*limiter, session, &scenario).await;
            for (i, (step, got)) in scenario.steps.iter().zip(&decisions).enumerate() {
                wrong.extend(compare(
                    scenario.name,
                    i,
                    &scenario.limits,
                    &step.expect,
                    got,
                    MS_TOLERANCE,
                ));
            }
            wrong
        });
    }
    let mut wrong = Vec::new();
    while let Some(found) = running.join_next().await {
        wrong.extend(found.unwrap());
    }
    assert!(limiter.is_up(), "every decision came from Redis");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// After a reset the session starts from a full allowance, on both backends; other sessions
/// keep their counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_gives_a_session_its_full_allowance_back() {
    let redis = RedisServer::start();
    let settings = LimiterSettings {
        backend: LimiterBackend::Redis,
        redis_url: RedisUrl::try_new(&redis.url()).unwrap(),
        timeout_ms: 2_000,
        connect_timeout_ms: 2_000,
        on_redis_failure: RedisFailureRule::FailClosed,
        ..LimiterSettings::default()
    };
    let limits = Limits {
        rate: rate(61, 2, 60_000),
        quota: quota(62, 3, 3_600_000),
    };
    let local = LocalLimiter::new(SessionSettings::default());
    let shared = RedisLimiter::new(
        &settings,
        SessionSettings::default(),
        Arc::new(IgnoreEvictions),
    )
    .unwrap();
    let (alice, bob) = (SessionId::from_label("alice"), SessionId::from_label("bob"));
    for session in [alice, bob] {
        for _ in 0..2 {
            assert_eq!(
                local.check(session, &limits).await.unwrap().verdict,
                Verdict::Allowed
            );
            assert_eq!(
                shared.check(session, &limits).await.unwrap().verdict,
                Verdict::Allowed
            );
        }
    }
    local.reset(alice);
    shared.reset(alice, &[61, 62]).await.unwrap();
    for (backend, alice_now, bob_now) in [
        (
            "local",
            local.peek(alice, &limits),
            local.peek(bob, &limits),
        ),
        (
            "redis",
            shared.peek(alice, &limits).await.unwrap(),
            shared.peek(bob, &limits).await.unwrap(),
        ),
    ] {
        assert_eq!(
            alice_now.rate.unwrap().remaining,
            2,
            "{backend}: alice's rate is full again"
        );
        assert_eq!(
            alice_now.quota.unwrap().remaining,
            3,
            "{backend}: alice's quota is full again"
        );
        assert_eq!(
            bob_now.rate.unwrap().remaining,
            0,
            "{backend}: bob keeps his counters"
        );
        assert_eq!(
            bob_now.quota.unwrap().remaining,
            1,
            "{backend}: bob keeps his counters"
        );
    }
}
