//! RFC 7662 token introspection: asking the issuer whether a token is active, with a cache
//! that never outlives the token, one call per token however many requests wait for it, and
//! a clear failure (never a guess) when the issuer cannot answer.
//!
//! - [`Introspector`]: one introspection endpoint with its client credentials and cache;
//!   shared by every API that trusts it, and kept across reloads (by the
//!   [`crate::KeySourceRegistry`]).
//! - [`cache`]: answers by token digest, bounded.
//! - [`shared`]: the second-level cache the gateway nodes share (Redis), sealed so that only
//!   nodes holding the client's credentials can write an answer there.
//! - [`client`]: the HTTP call, client authentication and the reading of the answer.

pub mod cache;
mod client;
pub mod shared;

pub use shared::{SharedAnswers, StoreFuture};

use crate::sources::fetch::{discovered_url, discovery_document};
use arc_swap::ArcSwapOption;
use aws_lc_rs::digest;
use cache::{AnswerCache, Entry, Lookup, TokenKey, token_key};
use client::ClientCredentials;
use parking_lot::Mutex;
use portico_core::introspection::{IntrospectionCache, IntrospectionSpec};
use serde_json::{Map, Value};
use shared::{Rejected, SharedCache};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    /// An answer was found in the cache the nodes share, so the issuer was not asked.
    fn served_from_shared(&self) {}
    /// A value in the shared cache did not open (not sealed with this client's credentials,
    /// or changed) and was ignored.
    fn shared_value_rejected(&self) {}
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
    /// From the issuer's discovery document: found on first use, asked again while that fails,
    /// then kept for the introspector's life (a reload with new settings makes a new one).
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
    /// Read after a miss here, before asking; written with every answer. None without a
    /// shared store, or with the cache off.
    shared: Option<SharedCache>,
    /// One call per token at a time: everyone asking about it while a call runs shares it.
    inflight: Mutex<HashMap<TokenKey, Arc<Inflight>>>,
    /// At most [`MAX_CONCURRENT_CALLS`] calls to the endpoint at once.
    calls: tokio::sync::Semaphore,
    call_timeout: Duration,
    observer: Arc<dyn IntrospectionObserver>,
}

/// Calls to one endpoint under way at once; more wait (up to the call timeout) for a slot.
pub const MAX_CONCURRENT_CALLS: usize = 64;

/// One asker's share of a token's single flight. The cell leaves the map when its last asker
/// leaves — answered, or dropped mid-call by a client that went away — so that abandoned
/// calls leave nothing behind.
struct Flight<'a> {
    map: &'a Mutex<HashMap<TokenKey, Arc<Inflight>>>,
    key: TokenKey,
    cell: Arc<Inflight>,
}

impl<'a> Flight<'a> {
    fn join(map: &'a Mutex<HashMap<TokenKey, Arc<Inflight>>>, key: TokenKey) -> Self {
        let cell = map.lock().entry(key).or_default().clone();
        Self { map, key, cell }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock();
        // Askers join under this lock: two references (the map's and this one) mean no other.
        if map
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
            && Arc::strong_count(&self.cell) == 2
        {
            map.remove(&self.key);
        }
    }
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
    /// With `shared`, answers are also shared with the other nodes through it (when the cache
    /// is on); that costs one key derivation here.
    pub fn new(
        spec: &IntrospectionSpec,
        issuer: Option<&str>,
        http: reqwest::Client,
        observer: Arc<dyn IntrospectionObserver>,
        shared: Option<Arc<dyn SharedAnswers>>,
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
        let credentials = ClientCredentials::new(&spec.client_id, &spec.client_auth)?;
        let shared = shared.filter(|_| spec.cache.enabled).map(|store| {
            SharedCache::new(
                store,
                sharing_identity(spec, issuer),
                client::credential_material(&spec.client_auth),
            )
        });
        Ok(Self {
            endpoint,
            http,
            credentials,
            settings: spec.cache,
            grace_secs: spec.grace_secs,
            cache: AnswerCache::new(if spec.cache.enabled {
                spec.cache.max_entries
            } else {
                0
            }),
            shared,
            inflight: Mutex::new(HashMap::new()),
            calls: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
            call_timeout: Duration::from_millis(spec.timeout_ms.max(1)),
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
        let flight = Flight::join(&self.inflight, key);
        let result = flight
            .cell
            .get_or_init(|| self.ask_and_remember(token, key, now))
            .await
            .clone();
        drop(flight);
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

    /// Within the single flight: the shared cache, else the issuer (whose answer is then
    /// shared).
    async fn ask_and_remember(
        &self,
        token: &str,
        key: TokenKey,
        now: u64,
    ) -> Result<Introspected, IntrospectionFailure> {
        let shared_key = self.shared.as_ref().map(|shared| shared.key(token));
        if let (Some(shared), Some(shared_key)) = (&self.shared, &shared_key)
            && let Some(entry) = self.shared_entry(shared, shared_key, now).await
        {
            self.cache.insert(key, entry.clone(), now);
            self.observer.served_from_shared();
            return Ok(Introspected {
                answer: entry.answer,
                reusable_until: entry.fresh_until,
            });
        }
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
        let entry = self.entry_for(answer, now, u64::MAX);
        self.cache.insert(key, entry.clone(), now);
        if let (Some(shared), Some(shared_key)) = (&self.shared, &shared_key) {
            let ttl_ms = remaining_ms(entry.fresh_until, now, unix_now_ms());
            shared
                .store(shared_key, &entry.answer, now, entry.fresh_until, ttl_ms)
                .await;
        }
        Ok(Introspected {
            answer: entry.answer,
            reusable_until: entry.fresh_until,
        })
    }

    /// The shared cache's answer for `shared_key`, as an entry under this introspector's own
    /// rules counted from when the issuer answered (its TTLs, its grace, `exp`), never fresh
    /// past what the writer allowed; none when nothing usable is left at `now`.
    async fn shared_entry(
        &self,
        shared: &SharedCache,
        shared_key: &str,
        now: u64,
    ) -> Option<Entry> {
        match shared.lookup(shared_key, now).await? {
            Ok(found) => {
                // A writer's clock ahead of this one's counts as answered now.
                let answered_at = found.answered_at.min(now);
                let entry = self.entry_for(found.answer, answered_at, found.fresh_until);
                (entry.fresh_until > now).then_some(entry)
            }
            Err(Rejected::Expired) => None,
            Err(Rejected::Unauthentic) => {
                self.observer.shared_value_rejected();
                if let Some(count) = shared.note_rejected(now) {
                    tracing::warn!(
                        endpoint = %self.endpoint_label(),
                        rejected = count,
                        "shared introspection cache: ignored values that are not sealed with this \
                         client's credentials or were changed; is something else writing to Redis?"
                    );
                }
                None
            }
        }
    }

    /// How long `answer` is kept: positive answers for the TTL (0: until `exp`) and never past
    /// `exp`; negative ones briefly; nothing when the cache is off. Never fresh past
    /// `fresh_at_most` (what a shared entry's writer allowed; `u64::MAX` for none).
    fn entry_for(&self, answer: Answer, now: u64, fresh_at_most: u64) -> Entry {
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
                }
                .min(fresh_at_most);
                let usable = fresh
                    .saturating_add(self.grace_secs)
                    .min(exp.unwrap_or(u64::MAX));
                (fresh, usable.max(fresh))
            }
            Answer::Inactive => {
                let until = now.saturating_add(s.negative_ttl_secs).min(fresh_at_most);
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
        // A flood of distinct tokens waits for a slot rather than opening a connection each.
        let _slot = tokio::time::timeout(self.call_timeout, self.calls.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| IntrospectionFailure {
                kind: "overloaded",
                reason: format!(
                    "{MAX_CONCURRENT_CALLS} introspection calls are under way already; no slot within the timeout"
                ),
            })?;
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
        configured_endpoint(spec, issuer),
        spec.client_id,
        client::credentials_fingerprint(&spec.client_auth),
        spec.cache,
        spec.timeout_ms,
        spec.grace_secs,
    )
}

/// Who may share answers through the nodes' shared cache: the same endpoint (as configured),
/// client id and credentials; not the cache settings, since each node applies its own to what
/// it reads. SHA-256 over the three, each prefixed by its length.
pub(crate) fn sharing_identity(spec: &IntrospectionSpec, issuer: Option<&str>) -> [u8; 32] {
    let endpoint = configured_endpoint(spec, issuer);
    let fingerprint = client::credentials_fingerprint(&spec.client_auth);
    let mut identity = digest::Context::new(&digest::SHA256);
    for part in [
        endpoint.as_bytes(),
        spec.client_id.as_bytes(),
        fingerprint.as_bytes(),
    ] {
        identity.update(&(part.len() as u64).to_be_bytes());
        identity.update(part);
    }
    identity
        .finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn configured_endpoint(spec: &IntrospectionSpec, issuer: Option<&str>) -> String {
    spec.endpoint.as_ref().map_or_else(
        || format!("discovery:{}", issuer.unwrap_or("")),
        |u| u.to_string(),
    )
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What is left of a freshness ending at `fresh_until`, in milliseconds. `now` is in whole
/// seconds (rounded down), so the part of the current second already gone (from `now_ms`, the
/// clock, at most 999 ms) is taken off: a shared entry's store lifetime then ends no later
/// than `fresh_until`.
fn remaining_ms(fresh_until: u64, now: u64, now_ms: u64) -> u64 {
    let into_second_ms = now_ms.saturating_sub(now.saturating_mul(1_000)).min(999);
    fresh_until
        .saturating_sub(now)
        .saturating_mul(1_000)
        .saturating_sub(into_second_ms)
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

#[cfg(test)]
mod tests;
