//! One shared remote key set per location, reused across config reloads so a reload does not
//! refetch every JWKS.

use super::fetch::http_client;
use super::remote::{JwksLocation, RemoteKeySet};
use crate::introspection::{
    IgnoreIntrospections, IntrospectionObserver, Introspector, SharedAnswers, sharing_key,
};
use parking_lot::Mutex;
use portico_core::config::KeyFetchSettings;
use portico_core::introspection::IntrospectionSpec;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Told about every key fetch; the gateway counts them in its metrics.
pub trait KeyFetchObserver: Send + Sync + 'static {
    fn fetched(&self, _ok: bool) {}
    fn unknown_kid_refetch(&self) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct IgnoreFetches;

impl KeyFetchObserver for IgnoreFetches {}

/// What one key set's forced refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetRefresh {
    /// `issuer https://…` or `JWKS https://…`.
    pub source: String,
    /// The fetch succeeded (on failure the keys held before stay; the log says why).
    pub fetched: bool,
    /// Keys held now.
    pub keys: usize,
}

pub struct KeySourceRegistry {
    observer: Arc<dyn KeyFetchObserver>,
    introspection_observer: Arc<dyn IntrospectionObserver>,
    introspectors: Mutex<HashMap<String, Weak<Introspector>>>,
    /// Where introspectors created from now on share their answers with other nodes.
    shared_answers: Option<Arc<dyn SharedAnswers>>,
    refresh_in_background: bool,
    /// CA certificates trusted besides the platform's (see `with_root_certificates`).
    extra_roots: Vec<reqwest::Certificate>,
    sets: Mutex<HashMap<(JwksLocation, KeyFetchSettingsKey), Weak<RemoteKeySet>>>,
}

type KeyFetchSettingsKey = (u64, u64, u64, u64, u64);

fn settings_key(s: &KeyFetchSettings) -> KeyFetchSettingsKey {
    (
        s.refresh_secs,
        s.min_refresh_secs,
        s.max_refresh_secs,
        s.unknown_kid_cooldown_secs,
        s.fetch_timeout_ms,
    )
}

impl std::fmt::Debug for KeySourceRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySourceRegistry")
            .field("sets", &self.sets.lock().len())
            .finish()
    }
}

impl KeySourceRegistry {
    /// `refresh_in_background`: keep key sets fresh with a task each (the gateway); without it
    /// keys are fetched only on demand (`portico token verify`).
    pub fn new(observer: Arc<dyn KeyFetchObserver>, refresh_in_background: bool) -> Self {
        Self {
            observer,
            introspection_observer: Arc::new(IgnoreIntrospections),
            introspectors: Mutex::new(HashMap::new()),
            shared_answers: None,
            refresh_in_background,
            extra_roots: Vec::new(),
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// Also trusts these CA certificates (DER) for discovery and JWKS fetches, in addition to
    /// the platform's roots: for an IdP behind a private CA, and for tests with a local https
    /// IdP. Certificates are still fully verified; applies to key sets created after this call.
    /// A certificate the TLS library cannot use may only be reported when the first key set
    /// is created (`remote`).
    pub fn with_root_certificates(
        mut self,
        ders: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Self, String> {
        for der in ders {
            let cert = reqwest::Certificate::from_der(&der)
                .map_err(|e| format!("invalid CA certificate: {e}"))?;
            self.extra_roots.push(cert);
        }
        Ok(self)
    }

    /// Also tells `observer` about every introspection call.
    pub fn with_introspection_observer(mut self, observer: Arc<dyn IntrospectionObserver>) -> Self {
        self.introspection_observer = observer;
        self
    }

    /// Introspectors created from now on also share their answers (with the cache on) with
    /// every node using `store` (the gateway's Redis); see [`crate::introspection::shared`].
    pub fn with_shared_answers(mut self, store: Arc<dyn SharedAnswers>) -> Self {
        self.shared_answers = Some(store);
        self
    }

    /// The introspector for `spec` (of the issuer entry `issuer`), shared with every entry that
    /// names the same endpoint, credentials and settings, and kept (with its cache) across
    /// reloads while any configuration uses it.
    pub fn introspector(
        &self,
        spec: &IntrospectionSpec,
        issuer: Option<&str>,
    ) -> Result<Arc<Introspector>, String> {
        let mut introspectors = self.introspectors.lock();
        introspectors.retain(|_, weak| weak.strong_count() > 0);
        let key = sharing_key(spec, issuer);
        if let Some(existing) = introspectors.get(&key).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let http = crate::introspection::http_client(spec, &self.extra_roots)?;
        let introspector = Arc::new(Introspector::new(
            spec,
            issuer,
            http,
            self.introspection_observer.clone(),
            self.shared_answers.clone(),
        )?);
        introspectors.insert(key, Arc::downgrade(&introspector));
        Ok(introspector)
    }

    /// An on-demand registry that reports nothing.
    pub fn on_demand() -> Self {
        Self::new(Arc::new(IgnoreFetches), false)
    }

    /// Fetches every live key set now, whatever its schedule and cooldown (the admin API's
    /// JWKS cache flush), all at once, each within its fetch timeout: one outcome per set,
    /// ordered by location.
    pub async fn refresh_all(&self) -> Vec<KeySetRefresh> {
        let sets: Vec<Arc<RemoteKeySet>> = {
            let sets = self.sets.lock();
            sets.values().filter_map(Weak::upgrade).collect()
        };
        let mut fetching = tokio::task::JoinSet::new();
        for set in sets {
            fetching.spawn(async move {
                let fetched = set.refresh_now().await;
                KeySetRefresh {
                    source: set.location().to_string(),
                    fetched,
                    keys: set.keys().len(),
                }
            });
        }
        let mut outcomes: Vec<KeySetRefresh> = fetching.join_all().await;
        outcomes.sort_by(|a, b| a.source.cmp(&b.source));
        outcomes
    }

    /// The live key set for `location`, created (and, in the background mode, refreshed) on
    /// first use.
    pub fn remote(
        &self,
        location: JwksLocation,
        settings: &KeyFetchSettings,
    ) -> Result<Arc<RemoteKeySet>, String> {
        let mut sets = self.sets.lock();
        sets.retain(|_, weak| weak.strong_count() > 0);
        let key = (location.clone(), settings_key(settings));
        if let Some(existing) = sets.get(&key).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let client = http_client(
            Duration::from_millis(settings.fetch_timeout_ms),
            &self.extra_roots,
        )?;
        let set = Arc::new(RemoteKeySet::new(
            location,
            client,
            *settings,
            self.observer.clone(),
        ));
        if self.refresh_in_background {
            set.spawn_refresher();
        }
        sets.insert(key, Arc::downgrade(&set));
        Ok(set)
    }
}
