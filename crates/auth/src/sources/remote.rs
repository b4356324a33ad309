//! A JWKS fetched from the IdP and kept fresh.
//!
//! - Readers never wait: they see the last good key set (lock-free).
//! - A background task refreshes it, as often as `Cache-Control: max-age` says within bounds.
//! - A token with an unknown `kid` triggers one refetch; concurrent callers share it
//!   (single-flight), and no fetch happens within the cooldown of the previous one, so random
//!   kids cannot make Portico hammer the IdP.
//! - When the IdP is unreachable or sends garbage, the last good keys keep working.
//! - Every stored key set that differs from the previous one gets a new *generation*, so
//!   that what was verified with an older set can check, with one atomic load, whether its key
//!   may have gone (see [`super::KeyLiveness`]).

use super::fetch::{FetchError, discovered_url, discovery_document, get_document};
use super::registry::KeyFetchObserver;
use crate::keys::KeySet;
use crate::keys::jwk::{JwksOrigin, key_set_from_jwks};
use arc_swap::{ArcSwap, Guard};
use portico_core::config::KeyFetchSettings;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Where the JWKS lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JwksLocation {
    Url(portico_core::HttpUrl),
    /// Found through `{issuer}/.well-known/openid-configuration`.
    Discovery {
        issuer: String,
    },
}

impl std::fmt::Display for JwksLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksLocation::Url(u) => write!(f, "JWKS {u}"),
            JwksLocation::Discovery { issuer } => write!(f, "issuer {issuer}"),
        }
    }
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    jwks_uri: Option<String>,
}

pub struct RemoteKeySet {
    location: JwksLocation,
    client: reqwest::Client,
    settings: KeyFetchSettings,
    observer: Arc<dyn KeyFetchObserver>,
    current: ArcSwap<KeySet>,
    /// Incremented (Release) after `current` is replaced by a set with other keys; read
    /// (Acquire) before `current`, so a reader that sees generation `g` sees set `g` or newer.
    generation: AtomicU64,
    /// Incremented after every fetch attempt; lets waiters see that someone else fetched.
    attempts: AtomicU64,
    state: tokio::sync::Mutex<FetchState>,
}

impl std::fmt::Debug for RemoteKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeySet")
            .field("location", &self.location)
            .field("keys", &self.current.load().len())
            .finish()
    }
}

impl RemoteKeySet {
    pub(super) fn new(
        location: JwksLocation,
        client: reqwest::Client,
        settings: KeyFetchSettings,
        observer: Arc<dyn KeyFetchObserver>,
    ) -> Self {
        Self {
            location,
            client,
            settings,
            observer,
            current: ArcSwap::from_pointee(KeySet::default()),
            generation: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            state: tokio::sync::Mutex::new(FetchState::default()),
        }
    }

    pub fn location(&self) -> &JwksLocation {
        &self.location
    }

    /// The current key set (possibly empty before the first successful fetch).
    pub fn keys(&self) -> Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// The generation of the current key set: 0 before the first successful fetch, then
    /// incremented each time a fetch brings a set with other keys (a refetch that returns the
    /// same keys leaves it alone). One atomic load.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current key set and a generation no newer than it (the generation is read first).
    pub(crate) fn snapshot(&self) -> (u64, Guard<Arc<KeySet>>) {
        let generation = self.generation();
        (generation, self.current.load())
    }

    /// How many fetches were attempted so far.
    pub fn fetch_attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    /// Refetches because a token named a key we do not have. Returns without fetching when a
    /// fetch finished while waiting, or the previous one is within the cooldown.
    pub async fn refetch_for_unknown_kid(&self) {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            return;
        }
        let cooldown = Duration::from_secs(self.settings.unknown_kid_cooldown_secs);
        if state.last_attempt.is_some_and(|t| t.elapsed() < cooldown) {
            return;
        }
        self.observer.unknown_kid_refetch();
        self.fetch_locked(&mut state).await;
    }

    /// Fetches now (used by the background refresher); returns when to refresh next.
    pub async fn refresh(&self) -> Duration {
        let mut state = self.state.lock().await;
        match self.fetch_locked(&mut state).await {
            Some(max_age) => {
                let s = &self.settings;
                max_age.map_or(Duration::from_secs(s.refresh_secs), |age| {
                    age.clamp(
                        Duration::from_secs(s.min_refresh_secs),
                        Duration::from_secs(s.max_refresh_secs.max(s.min_refresh_secs)),
                    )
                })
            }
            // Retry sooner after a failure, but no sooner than the cooldown.
            None => Duration::from_secs(self.settings.unknown_kid_cooldown_secs.max(1)),
        }
    }

    /// Fetches now, whatever the schedule and cooldown; whether it succeeded.
    pub async fn refresh_now(&self) -> bool {
        let mut state = self.state.lock().await;
        self.fetch_locked(&mut state).await.is_some()
    }

    /// Starts the background refresher; it stops when the last `Arc` is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = weak.upgrade() else { break };
                let wait = this.refresh().await;
                drop(this);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// One fetch; `Some(max_age)` on success. The caller holds the state lock.
    async fn fetch_locked(&self, state: &mut FetchState) -> Option<Option<Duration>> {
        state.last_attempt = Some(Instant::now());
        let result = self.fetch_key_set(state).await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        self.observer.fetched(result.is_ok());
        match result {
            Ok((keys, max_age)) => {
                if self.current.load().same_keys(&keys) {
                    tracing::debug!(source = %self.location, keys = keys.len(), "signing keys unchanged");
                } else {
                    tracing::info!(source = %self.location, keys = keys.len(), "loaded signing keys");
                    // Store first, then publish the generation (see `generation`).
                    self.current.store(Arc::new(keys));
                    self.generation.fetch_add(1, Ordering::Release);
                }
                Some(max_age)
            }
            Err(e) => {
                tracing::warn!(source = %self.location, error = %e, "could not refresh signing keys; keeping the last good ones");
                None
            }
        }
    }

    async fn fetch_key_set(
        &self,
        state: &mut FetchState,
    ) -> Result<(KeySet, Option<Duration>), FetchError> {
        let url = match (&self.location, &state.jwks_uri) {
            (JwksLocation::Url(url), _) => url.to_string(),
            (JwksLocation::Discovery { .. }, Some(url)) => url.clone(),
            (JwksLocation::Discovery { issuer }, None) => {
                let url = self.discover_jwks_uri(issuer).await?;
                state.jwks_uri = Some(url.clone());
                url
            }
        };
        let fetched = match get_document(&self.client, &url).await {
            Ok(f) => f,
            Err(e) => {
                // The IdP may have moved its JWKS; discover again next time.
                state.jwks_uri = None;
                return Err(e);
            }
        };
        let invalid = |reason: String| FetchError::Invalid {
            url: url.clone(),
            reason,
        };
        let (keys, notes) = key_set_from_jwks(&fetched.body, JwksOrigin::Remote)
            .map_err(|e| invalid(e.to_string()))?;
        for note in notes {
            tracing::warn!(source = %self.location, "{note}");
        }
        if keys.is_empty() {
            return Err(invalid("the JWKS has no usable signature keys".into()));
        }
        Ok((keys, fetched.max_age))
    }

    async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, FetchError> {
        let doc = discovery_document(&self.client, issuer).await?;
        discovered_url(&doc, issuer, "jwks_uri")
    }
}
