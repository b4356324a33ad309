//! [`KeyLiveness`]: is the key that verified a token still in its issuer's JWKS?
//!
//! A verified token may be remembered (the gateway caches what it means) for minutes. When the
//! IdP removes a key from its JWKS — rotated out, or revoked because it leaked — tokens that
//! key signed must stop working as soon as Portico sees the new set, not when the cache entry
//! expires. The check is built for the cached-token hot path: while the key set's generation
//! is the one the token was verified at, it is one atomic load; after a change, the key is
//! looked up once per new generation and the answer remembered.

use super::RemoteKeySet;
use crate::keys::KeyFingerprint;
use portico_core::jwt::Algorithm;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which key of a remote key set verified a token, and at which generation of the set.
pub struct KeyLiveness {
    set: Arc<RemoteKeySet>,
    /// The generation the token was verified at; while it is current, the key is there.
    verified_at: u64,
    /// The newest generation the key was found still present at.
    confirmed_at: AtomicU64,
    /// What selected the key: the token's `kid` and `alg`.
    kid: Option<Box<str>>,
    algorithm: Algorithm,
    fingerprint: KeyFingerprint,
}

impl std::fmt::Debug for KeyLiveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLiveness")
            .field("source", self.set.location())
            .field("kid", &self.kid)
            .field("verified_at", &self.verified_at)
            .finish()
    }
}

impl Clone for KeyLiveness {
    fn clone(&self) -> Self {
        Self {
            set: self.set.clone(),
            verified_at: self.verified_at,
            confirmed_at: AtomicU64::new(self.confirmed_at.load(Ordering::Relaxed)),
            kid: self.kid.clone(),
            algorithm: self.algorithm,
            fingerprint: self.fingerprint,
        }
    }
}

impl KeyLiveness {
    pub(crate) fn new(
        set: Arc<RemoteKeySet>,
        verified_at: u64,
        kid: Option<&str>,
        algorithm: Algorithm,
        fingerprint: KeyFingerprint,
    ) -> Self {
        Self {
            set,
            verified_at,
            confirmed_at: AtomicU64::new(verified_at),
            kid: kid.map(Box::from),
            algorithm,
            fingerprint,
        }
    }

    /// True while the current key set would still pick the same key for this token (same
    /// `kid`, type, algorithms and material). One atomic load while the set is unchanged since
    /// verification; otherwise a lookup in the current set, once per new generation.
    #[inline]
    pub fn is_live(&self) -> bool {
        let current = self.set.generation();
        current == self.verified_at || self.is_live_after_change(current)
    }

    #[cold]
    fn is_live_after_change(&self, current: u64) -> bool {
        if self.confirmed_at.load(Ordering::Relaxed) == current {
            return true;
        }
        // The set loaded here is generation `current` or newer: checking a newer one is fine.
        let live = self
            .set
            .keys()
            .select(self.kid.as_deref(), self.algorithm)
            .is_ok_and(|key| *key.fingerprint() == self.fingerprint);
        if live {
            self.confirmed_at.fetch_max(current, Ordering::Relaxed);
        }
        live
    }
}
