//! Resident memory per identity session: RSS before and after one million sessions, each with
//! a rate-limit counter. Used by `bench/peers.sh`.

use portico_core::SessionId;
use portico_core::config::SessionSettings;
use portico_core::policy::RateLimit;
use portico_limits::{Limiter, Limits, LocalLimiter};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    const SESSIONS: u64 = 1_000_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let limiter = LocalLimiter::new(SessionSettings { max_sessions: 2_000_000, idle_ttl_secs: 3600 });
        let limits = Limits { rate: Some((1, RateLimit::try_new(100, 1000).unwrap())), quota: None };
        let before = rss_kib();
        for i in 0..SESSIONS {
            limiter
                .check(SessionId::from_label(&format!("user-{i}")), &limits)
                .await
                .expect("the local limiter never fails");
        }
        let after = rss_kib();
        assert_eq!(limiter.len() as u64, SESSIONS);
        let per_session = (after - before) as f64 * 1024.0 / SESSIONS as f64;
        println!("{SESSIONS} resident sessions with one rate-limit counter each: RSS +{:.1} MiB, {per_session:.0} bytes per session.", (after - before) as f64 / 1024.0);
    });
}
