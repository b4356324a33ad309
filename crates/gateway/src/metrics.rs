//! Prometheus metrics of one gateway, served on the admin listener. Label values are bounded:
//! API ids from config, status codes, fixed reason codes.

use portico_auth::sources::KeyFetchObserver;
use portico_core::config::RedisFailureRule;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: Arc<str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub api: Arc<str>,
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvictionLabels {
    /// `at_rest` (nothing lost) or `active` (running counters forgotten).
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureRuleLabels {
    /// `fail_open_local` (decided in-process) or `fail_closed` (refused with 503).
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct GatewayMetrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<ApiLabels, Histogram>,
    pub auth_failures: Family<ReasonLabels, Counter>,
    pub limit_rejections: Family<RejectionLabels, Counter>,
    pub jwks_fetches: Family<OutcomeLabels, Counter>,
    pub jwks_unknown_kid_refetches: Counter,
    /// Calls to introspection endpoints by outcome (`active`, `inactive`, or the failure).
    pub introspection_calls: Family<OutcomeLabels, Counter>,
    /// Introspection answers served from the cache (`fresh`, or `stale` within grace).
    pub introspection_cached: Family<OutcomeLabels, Counter>,
    /// Values in the shared introspection cache that did not open (forged or changed).
    pub introspection_shared_rejected: Counter,
    pub session_evictions: Family<EvictionLabels, Counter>,
    /// 1 while the limiter's counter store answers (always, for the in-process one), else 0.
    pub limiter_backend_up: Gauge,
    pub limiter_fallback_decisions: Family<FailureRuleLabels, Counter>,
    /// The store's configuration revision this node serves (0 for file configuration).
    config_revision: Gauge,
    /// 1 while a store node serves its last good configuration rather than the store's.
    config_from_last_good: Gauge,
    /// Revocations this node enforces.
    pub revocations: Gauge,
}

impl std::fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayMetrics")
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

impl GatewayMetrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("portico");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ApiLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        let limit_rejections = Family::<RejectionLabels, Counter>::default();
        let jwks_fetches = Family::<OutcomeLabels, Counter>::default();
        let jwks_unknown_kid_refetches = Counter::default();
        let introspection_calls = Family::<OutcomeLabels, Counter>::default();
        let introspection_cached = Family::<OutcomeLabels, Counter>::default();
        let introspection_shared_rejected = Counter::default();
        let session_evictions = Family::<EvictionLabels, Counter>::default();
        let limiter_backend_up = Gauge::default();
        limiter_backend_up.set(1);
        let limiter_fallback_decisions = Family::<FailureRuleLabels, Counter>::default();
        let config_revision = Gauge::default();
        let config_from_last_good = Gauge::default();
        let revocations = Gauge::default();
        registry.register(
            "revocations",
            "Revocations this node enforces (by client_id, jti or identity)",
            revocations.clone(),
        );
        registry.register(
            "config_revision",
            "The store's configuration revision this node serves (0 when configured from files)",
            config_revision.clone(),
        );
        registry.register(
            "config_from_last_good",
            "1 while this node serves its last good configuration instead of the store's: the \
             store is unavailable, or it started from its data folder and has not read the \
             store's since; else 0",
            config_from_last_good.clone(),
        );
        registry.register(
            "limiter_backend_up",
            "1 while the limiter's counter store (Redis) answers, 0 while requests are decided \
             by the failure rule; always 1 for the in-process limiter",
            limiter_backend_up.clone(),
        );
        registry.register(
            "limiter_fallback_decisions",
            "Limited requests decided without Redis, by the failure rule that decided them",
            limiter_fallback_decisions.clone(),
        );
        registry.register(
            "session_evictions",
            "Identity sessions dropped because the session map was full, by their state",
            session_evictions.clone(),
        );
        registry.register(
            "requests",
            "Requests by API and response status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request head to response head",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "Rejected access tokens by reason",
            auth_failures.clone(),
        );
        registry.register(
            "limit_rejections",
            "Requests rejected by rate limit or quota",
            limit_rejections.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS and discovery fetches by outcome",
            jwks_fetches.clone(),
        );
        registry.register(
            "jwks_unknown_kid_refetches",
            "JWKS refetches triggered by a token with an unknown kid",
            jwks_unknown_kid_refetches.clone(),
        );
        registry.register(
            "introspection_calls",
            "Calls to token introspection endpoints by outcome: active, inactive, or why it \
             failed (timeout, connect, status, client_auth, malformed, discovery, transport)",
            introspection_calls.clone(),
        );
        registry.register(
            "introspection_cached",
            "Introspection answers served from the cache: fresh, stale (within the grace \
             period, because the endpoint failed), or shared (found in the cache the nodes \
             share in Redis)",
            introspection_cached.clone(),
        );
        registry.register(
            "introspection_shared_rejected",
            "Values in the shared introspection cache (Redis) ignored because they did not \
             open: not sealed with the client's credentials, or changed",
            introspection_shared_rejected.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
            auth_failures,
            limit_rejections,
            jwks_fetches,
            jwks_unknown_kid_refetches,
            introspection_calls,
            introspection_cached,
            introspection_shared_rejected,
            session_evictions,
            limiter_backend_up,
            limiter_fallback_decisions,
            config_revision,
            config_from_last_good,
            revocations,
        })
    }

    /// Which configuration a store node serves: its revision, and whether it is the last good
    /// one from the data folder (the store unavailable) rather than the store's.
    pub fn set_config_served(&self, revision: i64, from_last_good: bool) {
        self.config_revision.set(revision);
        self.config_from_last_good.set(i64::from(from_last_good));
    }

    /// The revision served and whether it is the last good configuration.
    pub fn config_served(&self) -> (i64, bool) {
        (
            self.config_revision.get(),
            self.config_from_last_good.get() == 1,
        )
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// One API's metric handles, looked up once per config version rather than per request.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    pub labels: ApiLabels,
    latency: Histogram,
    ok: Counter,
}

impl ApiMetrics {
    pub fn new(metrics: &GatewayMetrics, api: Arc<str>) -> Self {
        let labels = ApiLabels { api };
        Self {
            latency: metrics.latency.get_or_create(&labels).clone(),
            ok: metrics
                .requests
                .get_or_create(&RequestLabels {
                    api: labels.api.clone(),
                    status: 200,
                })
                .clone(),
            labels,
        }
    }

    /// Counts one request of this API.
    pub fn record(&self, metrics: &GatewayMetrics, status: u16, seconds: f64) {
        if status == 200 {
            self.ok.inc();
        } else {
            metrics
                .requests
                .get_or_create(&RequestLabels {
                    api: self.labels.api.clone(),
                    status,
                })
                .inc();
        }
        self.latency.observe(seconds);
    }
}

/// Counts key fetches into the gateway's metrics.
#[derive(Debug, Clone)]
pub struct FetchMetrics(pub Arc<GatewayMetrics>);

impl KeyFetchObserver for FetchMetrics {
    fn fetched(&self, ok: bool) {
        self.0
            .jwks_fetches
            .get_or_create(&OutcomeLabels {
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    fn unknown_kid_refetch(&self) {
        self.0.jwks_unknown_kid_refetches.inc();
    }
}

impl portico_auth::introspection::IntrospectionObserver for FetchMetrics {
    fn called(&self, outcome: &'static str) {
        self.0
            .introspection_calls
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    fn served_from_cache(&self, stale: bool) {
        self.0
            .introspection_cached
            .get_or_create(&OutcomeLabels {
                outcome: if stale { "stale" } else { "fresh" },
            })
            .inc();
    }

    fn served_from_shared(&self) {
        self.0
            .introspection_cached
            .get_or_create(&OutcomeLabels { outcome: "shared" })
            .inc();
    }

    fn shared_value_rejected(&self) {
        self.0.introspection_shared_rejected.inc();
    }
}

/// Counts identity sessions evicted from a full session map, and tracks the limiter's store.
#[derive(Debug, Clone)]
pub struct LimiterMetrics(pub Arc<GatewayMetrics>);

impl portico_limits::LimiterObserver for LimiterMetrics {
    fn backend_changed(&self, up: bool) {
        self.0.limiter_backend_up.set(i64::from(up));
    }

    fn decided_without_backend(&self, rule: RedisFailureRule) {
        self.0
            .limiter_fallback_decisions
            .get_or_create(&FailureRuleLabels {
                rule: rule.as_str(),
            })
            .inc();
    }

    fn evicted(&self, at_rest: bool) {
        self.0
            .session_evictions
            .get_or_create(&EvictionLabels {
                state: if at_rest { "at_rest" } else { "active" },
            })
            .inc();
    }
}
