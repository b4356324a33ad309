//! What the admin API asks of a running gateway, none of it on the request path: the identity
//! sessions an identity has (their ids are derived, not stored: see `SessionId::derive`), the
//! counters a session holds per policy and what is left of them, resetting those counters,
//! and fetching every JWKS now.
//!
//! Counters belong to the policy that supplied a limit (`portico_core::merge`), so a
//! session's state is reported per policy. With the Redis limiter the counters are the ones
//! every node shares; with the in-process limiter, this node's.

use crate::Gateway;
use portico_auth::sources::KeySetRefresh;
use portico_core::policy::{PolicyId, Quota};
use portico_core::{Identity, SessionId};
use portico_limits::{LimitStatus, LimiterError, Limits, counter_key};
use std::collections::BTreeMap;

/// One identity session an identity has at the APIs this node serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOf {
    pub session: SessionId,
    pub org_id: String,
    /// The trusted issuer (`None`: an entry trusted by its key alone).
    pub issuer: Option<String>,
    /// The identity claim that names the caller.
    pub identity_claim: String,
    /// Whether the claim is a JSON number (`42`) rather than a string (`"42"`).
    pub numeric: bool,
    /// The APIs where tokens of this issuer naming this identity get this session.
    pub apis: Vec<String>,
}

/// What one policy's counters of a session hold now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCounters {
    pub policy: PolicyId,
    /// What is left before the next request (`None`: the policy sets no such limit).
    pub rate: Option<LimitStatus>,
    pub quota: Option<LimitStatus>,
}

impl Gateway {
    /// The sessions tokens naming `identity` get, per organisation, trusted issuer and
    /// identity claim of the APIs served, whether or not one has called yet; `issuer` keeps
    /// only the entries that trust that issuer.
    pub fn sessions_of(&self, identity: &str, issuer: Option<&str>) -> Vec<SessionOf> {
        let pipeline = self.pipeline.load();
        // A value that reads as a JSON number may come as a number claim too.
        let numeric_too = serde_json::from_str::<serde_json::Number>(identity).is_ok();
        let mut found: BTreeMap<SessionId, SessionOf> = BTreeMap::new();
        for api in pipeline.apis().iter().filter(|api| api.verifier.is_some()) {
            for scope in &api.issuers {
                let configured = scope.header.as_ref().and_then(|h| h.to_str().ok());
                if issuer.is_some() && configured != issuer {
                    continue;
                }
                for claim in api.spec.identity.claims() {
                    for numeric in [false, true] {
                        if numeric && !numeric_too {
                            continue;
                        }
                        let named = Identity {
                            claim,
                            value: identity.to_string(),
                            numeric,
                        };
                        let session =
                            SessionId::derive(&api.spec.org_id, &scope.session_scope, &named);
                        let entry = found.entry(session).or_insert_with(|| SessionOf {
                            session,
                            org_id: api.spec.org_id.clone(),
                            issuer: configured.map(str::to_string),
                            identity_claim: claim.as_str().to_string(),
                            numeric,
                            apis: Vec::new(),
                        });
                        let api_id = api.spec.id.to_string();
                        if !entry.apis.contains(&api_id) {
                            entry.apis.push(api_id);
                        }
                    }
                }
            }
        }
        found.into_values().collect()
    }

    /// The counters `session` holds, per policy of the current configuration that sets a
    /// limit, with what is left now; policies it has not used are left out.
    pub async fn session_counters(
        &self,
        session: SessionId,
    ) -> Result<Vec<PolicyCounters>, LimiterError> {
        let limited = self.policies_with_limits();
        let keys: Vec<u64> = limited.iter().map(|(key, _)| *key).collect();
        let used = self.limiter.counted_under(session, &keys).await?;
        let mut counters = Vec::with_capacity(used.len());
        for (_, limits) in limited.into_iter().filter(|(key, _)| used.contains(key)) {
            let now = self.limiter.peek(session, &limits.limits).await?;
            counters.push(PolicyCounters {
                policy: limits.policy,
                rate: now.rate,
                quota: now.quota,
            });
        }
        Ok(counters)
    }

    /// Forgets every counter of `session`: its next request starts from full allowances.
    pub async fn reset_session(&self, session: SessionId) -> Result<(), LimiterError> {
        let keys: Vec<u64> = self
            .policies_with_limits()
            .iter()
            .map(|(key, _)| *key)
            .collect();
        self.limiter.reset(session, &keys).await
    }

    /// Fetches every remote key set (JWKS, discovery) now, and forgets every cached
    /// admission, so that the next request of each token is verified with the keys as they
    /// are now.
    pub async fn refresh_key_sets(&self) -> Vec<KeySetRefresh> {
        let refreshed = self.key_sources.refresh_all().await;
        self.pipeline.load().admissions.clear();
        refreshed
    }

    /// Every policy that sets a rate limit or a finite quota, by counter key.
    fn policies_with_limits(&self) -> Vec<(u64, PolicyLimits)> {
        let pipeline = self.pipeline.load();
        let mut limited: Vec<(u64, PolicyLimits)> = pipeline
            .policies
            .iter()
            .filter_map(|policy| {
                let key = counter_key(&policy.id);
                let limits = Limits {
                    rate: policy.rate.map(|rate| (key, rate)),
                    quota: policy
                        .quota
                        .filter(|q| matches!(q, Quota::Limited { .. }))
                        .map(|quota| (key, quota)),
                };
                (!limits.is_empty()).then(|| {
                    (
                        key,
                        PolicyLimits {
                            policy: policy.id.clone(),
                            limits,
                        },
                    )
                })
            })
            .collect();
        limited.sort_by(|a, b| a.1.policy.cmp(&b.1.policy));
        limited
    }
}

/// A policy's limits, keyed by its counters.
struct PolicyLimits {
    policy: PolicyId,
    limits: Limits,
}
