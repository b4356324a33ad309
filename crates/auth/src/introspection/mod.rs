//! RFC 7662 token introspection: asking the issuer whether a token is active, with a cache
//! that never outlives the token, one call per token however many requests wait for it, and
//! a clear failure (never a guess) when the issuer cannot answer.
//!
//! - [`Introspector`]: one introspection endpoint with its client credentials and cache;
//!   shared by every API that trusts it, and kept across reloads (by the
//!   [`crate::KeySourceRegistry`]).
//! - [`cache`]: answers by token digest, bounded.
//! - [`client`]: the HTTP call, client authentication and the reading of the answer.

pub mod cache;
mod client;

use crate::sources::fetch::{discovered_url, discovery_document};
use arc_swap::ArcSwapOption;
use cache::{AnswerCache, Entry, Lookup, TokenKey, token_key};
use client::ClientCredentials;
use parking_lot::Mutex;
use portico_core::introspection::{IntrospectionCache, IntrospectionSpec};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// What the issuer said about a token.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `active: true`, with the answer's members (`sub`, `client_id`, `scope`, `exp`, …).
    Active(Arc<Map<String, Value>>),
    /// `active: false`: revoked, expired, unknown or not for us.
    Inactive,
}

/// An answer, and until when (seconds since the epoch) the caller may remember it.
#[derive(Debug, Clone)]
pub struct Introspected {
    pub answer: Answer,
    /// No later than the cache entry's freshness; `now` or earlier when not to be remembered.
    pub reusable_until: u64,
}

/// Why the issuer could not answer; the message is for the log, never for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct IntrospectionFailure {
    /// A low-cardinality label for metrics: `timeout`, `connect`, `status`, `malformed`,
    /// `discovery`, `client_auth`.
    pub kind: &'static str,
    pub reason: String,
}

/// Told about every introspection call and every answer served from the cache.
pub trait IntrospectionObserver: Send + Sync + 'static {
    /// `outcome`: `active`, `inactive`, or an [`IntrospectionFailure::kind`].
    fn called(&self, _outcome: &'static str) {}
    /// A cached answer was served; `stale`: past its freshness, within the grace period,
    /// because the issuer failed.
    fn served_from_cache(&self, _stale: bool) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct IgnoreIntrospections;

impl IntrospectionObserver for IgnoreIntrospections {}

/// While the issuer fails, a stale answer is served for this long before asking again.
const STALE_RETRY_SECS: u64 = 2;

/// Where the endpoint is.
enum Endpoint {
    Fixed(String),
    /// From the issuer's discovery document, found on first use (and again after a failure).
    Discovered {
        issuer: String,
        found: ArcSwapOption<String>,
    },
}

type Inflight = OnceCell<Result<Introspected, IntrospectionFailure>>;

/// One introspection endpoint, its credentials and its cache.
pub struct Introspector {
    endpoint: Endpoint,
    http: reqwest::Client,
    credentials: ClientCredentials,
    settings: IntrospectionCache,
    grace_secs: u64,
    cache: AnswerCache,
    /// One call per token at a time: everyone asking about it while a call runs shares it.
    inflight: Mutex<HashMap<TokenKey, Arc<Inflight>>>,
    observer: Arc<dyn IntrospectionObserver>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.endpoint_label())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// `issuer` is needed when the endpoint comes from discovery. Credentials are checked
    /// now (a private key that does not load is an error here, not at the first request).
    pub fn new(
        spec: &IntrospectionSpec,
        issuer: Option<&str>,
        http: reqwest::Client,
        observer: Arc<dyn IntrospectionObserver>,
    ) -> Result<Self, String> {
        let endpoint = match (&spec.endpoint, issuer) {
            (Some(url), _) => Endpoint::Fixed(url.to_string()),
            (None, Some(issuer)) => Endpoint::Discovered {
                issuer: issuer.to_string(),
                found: ArcSwapOption::empty(),
            },
            (None, None) => {
                return Err(
                    "introspection needs an endpoint, or an issuer whose discovery document names it"
                        .into(),
                );
            }
        };
        Ok(Self {
            endpoint,
            http,
            credentials: ClientCredentials::new(&spec.client_id, &spec.client_auth)?,
            settings: spec.cache,
            grace_secs: spec.grace_secs,
            cache: AnswerCache::new(if spec.cache.enabled {
                spec.cache.max_entries
            } else {
                0
            }),
            inflight: Mutex::new(HashMap::new()),
            observer,
        })
    }

    /// The endpoint as configured (for logs and diagnostics).
    pub fn endpoint_label(&self) -> String {
        match &self.endpoint {
            Endpoint::Fixed(url) => url.clone(),
            Endpoint::Discovered { issuer, found } => match found.load_full() {
                Some(url) => (*url).clone(),
                None => format!("(introspection_endpoint of {issuer})"),
            },
        }
    }

    /// Answers cached now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// What the issuer says about `token` at `now` (seconds since the epoch): from the cache
    /// when fresh, else from one call shared with every concurrent asker; when the call fails,
    /// a positive answer still within its grace period, else the failure.
    pub async fn introspect(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Introspected, IntrospectionFailure> {
        let key = token_key(token);
        let stale = match self.cache.get(&key, now) {
            Lookup::Fresh(entry) => {
                self.observer.served_from_cache(false);
                return Ok(Introspected {
                    answer: entry.answer,
                    reusable_until: entry.fresh_until,
                });
            }
            Lookup::Stale(entry) => Some(entry),
            Lookup::Miss => None,
        };
        let cell = self.inflight.lock().entry(key).or_default().clone();
        let result = cell
            .get_or_init(|| self.ask_and_remember(token, key, now))
            .await
            .clone();
        {
            let mut inflight = self.inflight.lock();
            if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                inflight.remove(&key);
            }
        }
        match (result, stale) {
            (Ok(answered), _) => Ok(answered),
            (Err(failure), Some(entry)) => {
                // Serve the last positive answer a little longer, then ask again.
                let retry_at = now.saturating_add(STALE_RETRY_SECS).min(entry.usable_until);
                self.cache.insert(
                    key,
                    Entry {
                        fresh_until: retry_at,
                        ..entry.clone()
                    },
                    now,
                );
                self.observer.served_from_cache(true);
                tracing::warn!(
                    endpoint = %self.endpoint_label(),
                    error = %failure,
                    "introspection failed; serving a cached answer within its grace period"
                );
                Ok(Introspected {
                    answer: entry.answer,
                    reusable_until: retry_at,
                })
            }
            (Err(failure), None) => Err(failure),
        }
    }

    async fn ask_and_remember(
        &self,
        token: &str,
        key: TokenKey,
        now: u64,
    ) -> Result<Introspected, IntrospectionFailure> {
        let result = self.ask(token, now).await;
        match &result {
            Ok(Answer::Active(_)) => self.observer.called("active"),
            Ok(Answer::Inactive) => self.observer.called("inactive"),
            Err(failure) => {
                self.observer.called(failure.kind);
                tracing::warn!(endpoint = %self.endpoint_label(), error = %failure, "introspection failed");
            }
        }
        let answer = result?;
        let entry = self.entry_for(answer, now);
        self.cache.insert(key, entry.clone(), now);
        Ok(Introspected {
            answer: entry.answer,
            reusable_until: entry.fresh_until,
        })
    }

    /// How long `answer` is kept: positive answers for the TTL (0: until `exp`) and never past
    /// `exp`; negative ones briefly; nothing when the cache is off.
    fn entry_for(&self, answer: Answer, now: u64) -> Entry {
        let s = &self.settings;
        let (fresh_until, usable_until) = match &answer {
            _ if !s.enabled => (now, now),
            Answer::Active(claims) => {
                // A NumericDate may have a fraction; what is left of a second does not count.
                let exp = claims
                    .get("exp")
                    .and_then(Value::as_f64)
                    .filter(|e| e.is_finite())
                    .map(|e| e.max(0.0) as u64);
                let fresh = match (s.ttl_secs, exp) {
                    // "Until exp" without an exp: nothing to go by, so not kept.
                    (0, None) => now,
                    (0, Some(exp)) => exp,
                    (ttl, exp) => now.saturating_add(ttl).min(exp.unwrap_or(u64::MAX)),
                };
                let usable = fresh
                    .saturating_add(self.grace_secs)
                    .min(exp.unwrap_or(u64::MAX));
                (fresh, usable.max(fresh))
            }
            Answer::Inactive => {
                let until = now.saturating_add(s.negative_ttl_secs);
                (until, until)
            }
        };
        Entry {
            answer,
            fresh_until,
            usable_until,
        }
    }

    async fn ask(&self, token: &str, now: u64) -> Result<Answer, IntrospectionFailure> {
        let endpoint = self.endpoint().await?;
        client::introspect(&self.http, &endpoint, &self.credentials, token, now).await
    }

    async fn endpoint(&self) -> Result<String, IntrospectionFailure> {
        match &self.endpoint {
            Endpoint::Fixed(url) => Ok(url.clone()),
            Endpoint::Discovered { issuer, found } => {
                if let Some(url) = found.load_full() {
                    return Ok((*url).clone());
                }
                let failed = |e: crate::sources::FetchError| IntrospectionFailure {
                    kind: "discovery",
                    reason: e.to_string(),
                };
                let doc = discovery_document(&self.http, issuer)
                    .await
                    .map_err(failed)?;
                let url = discovered_url(&doc, issuer, "introspection_endpoint").map_err(failed)?;
                found.store(Some(Arc::new(url.clone())));
                Ok(url)
            }
        }
    }
}

/// The key under which introspectors are shared: same endpoint, same credentials, same
/// settings.
pub(crate) fn sharing_key(spec: &IntrospectionSpec, issuer: Option<&str>) -> String {
    format!(
        "{}|{}|{}|{:?}|{}|{}",
        spec.endpoint.as_ref().map_or_else(
            || format!("discovery:{}", issuer.unwrap_or("")),
            |u| u.to_string()
        ),
        spec.client_id,
        client::credentials_fingerprint(&spec.client_auth),
        spec.cache,
        spec.timeout_ms,
        spec.grace_secs,
    )
}

/// The HTTP client of one introspector: `timeout_ms` for connecting and for the whole call,
/// and no redirects — a redirected POST would carry the gateway's credentials (and the token)
/// somewhere else; a 3xx is a failure like any other.
pub(crate) fn http_client(
    spec: &IntrospectionSpec,
    extra_roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    crate::sources::fetch::client_builder(
        Duration::from_millis(spec.timeout_ms.max(1)),
        extra_roots,
    )
    .redirect(reqwest::redirect::Policy::none())
    .build()
    .map_err(|e| format!("cannot build an HTTP client: {e}"))
}
