//! Verification keys: what each key is, which algorithms it may verify, and key sets.
//!
//! A key is pinned to the algorithms its type allows (narrowed by a JWK's `alg`), so a token
//! can never pick a verification primitive the key was not meant for: an HMAC token against an
//! RSA key, an ES384 token against a P-256 key, and the like are rejected before any crypto.

mod der;
pub mod jwk;
pub mod pem;
mod roca;

use crate::error::TokenError;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use portico_core::jwt::Algorithm;
use std::sync::Arc;

/// A key that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl KeyError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// A set of algorithms, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgSet(u16);

impl AlgSet {
    fn bit(alg: Algorithm) -> u16 {
        1 << Algorithm::ALL
            .iter()
            .position(|a| *a == alg)
            .expect("listed")
    }

    pub fn of(algs: &[Algorithm]) -> Self {
        Self(algs.iter().fold(0, |acc, a| acc | Self::bit(*a)))
    }

    pub fn contains(self, alg: Algorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    pub fn intersect(self, other: AlgSet) -> AlgSet {
        AlgSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

/// The type of a key, which fixes the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

impl KeyKind {
    pub fn algorithms(self) -> AlgSet {
        use Algorithm::*;
        match self {
            KeyKind::Hmac => AlgSet::of(&[HS256, HS384, HS512]),
            KeyKind::Rsa => AlgSet::of(&[RS256, RS384, RS512, PS256, PS384, PS512]),
            KeyKind::EcP256 => AlgSet::of(&[ES256]),
            KeyKind::EcP384 => AlgSet::of(&[ES384]),
            KeyKind::EcP521 => AlgSet::of(&[ES512]),
            KeyKind::Ed25519 => AlgSet::of(&[EdDSA]),
        }
    }

    pub fn is_symmetric(self) -> bool {
        self == KeyKind::Hmac
    }
}

/// The shortest HMAC key RFC 7518 §3.2 allows for `alg`: the hash output size.
fn hmac_min_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS256 => 32,
        Algorithm::HS384 => 48,
        _ => 64,
    }
}

pub(crate) fn hmac_algorithm(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS256 => hmac::HMAC_SHA256,
        Algorithm::HS384 => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    }
}

fn public_algorithm(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
        _ => &signature::ED25519,
    }
}

enum Verifier {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

/// One verification key, ready to use: parsed once, pinned to its algorithms.
pub struct VerifyingKey {
    kid: Option<String>,
    kind: KeyKind,
    verifiers: Vec<(Algorithm, Verifier)>,
    fingerprint: KeyFingerprint,
}

/// SHA-256 over a key's type, the algorithms it is pinned to and its material: equal exactly
/// when two loads of a key (say, two fetches of one JWKS) verify the same tokens. Never shown.
pub(crate) type KeyFingerprint = [u8; 32];

fn fingerprint(kind: KeyKind, algorithms: AlgSet, material: &[u8]) -> KeyFingerprint {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(format!("{kind:?}").as_bytes());
    ctx.update(&algorithms.0.to_be_bytes());
    ctx.update(material);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("algorithms", &self.algorithms().iter().collect::<Vec<_>>())
            .finish()
    }
}

impl VerifyingKey {
    /// An HMAC secret, usable for each HS algorithm in `allowed` (default: all three) whose
    /// minimum key length it meets.
    pub fn hmac(
        kid: Option<String>,
        secret: &[u8],
        allowed: Option<AlgSet>,
    ) -> Result<Self, KeyError> {
        let allowed = allowed
            .unwrap_or(KeyKind::Hmac.algorithms())
            .intersect(KeyKind::Hmac.algorithms());
        let verifiers: Vec<_> = allowed
            .iter()
            .filter(|alg| secret.len() >= hmac_min_len(*alg))
            .map(|alg| {
                (
                    alg,
                    Verifier::Hmac(Box::new(hmac::Key::new(hmac_algorithm(alg), secret))),
                )
            })
            .collect();
        if verifiers.is_empty() {
            return Err(KeyError::new(format!(
                "the HMAC secret is {} bytes; HS256 needs at least 32, HS384 48, HS512 64 (RFC 7518 §3.2)",
                secret.len()
            )));
        }
        let algorithms = AlgSet::of(&verifiers.iter().map(|(a, _)| *a).collect::<Vec<_>>());
        Ok(Self {
            kid,
            kind: KeyKind::Hmac,
            verifiers,
            fingerprint: fingerprint(KeyKind::Hmac, algorithms, secret),
        })
    }

    /// A public key in a form aws-lc accepts for `kind` (SPKI DER, PKCS#1 for RSA, an
    /// uncompressed point for EC, raw bytes for Ed25519), for the algorithms in `allowed`
    /// (default: all the kind allows).
    pub fn public(
        kid: Option<String>,
        kind: KeyKind,
        key_der: &[u8],
        allowed: Option<AlgSet>,
    ) -> Result<Self, KeyError> {
        let algs = allowed
            .unwrap_or(kind.algorithms())
            .intersect(kind.algorithms());
        if algs.is_empty() {
            return Err(KeyError::new("the key's algorithm does not match its type"));
        }
        let verifiers = algs
            .iter()
            .map(|alg| {
                ParsedPublicKey::new(public_algorithm(alg), key_der)
                    .map(|k| (alg, Verifier::Public(k)))
                    .map_err(|e| KeyError::new(format!("invalid {kind:?} public key: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            kid,
            kind,
            verifiers,
            fingerprint: fingerprint(kind, algs, key_der),
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn algorithms(&self) -> AlgSet {
        AlgSet::of(&self.verifiers.iter().map(|(a, _)| *a).collect::<Vec<_>>())
    }

    pub(crate) fn fingerprint(&self) -> &KeyFingerprint {
        &self.fingerprint
    }

    pub fn supports(&self, alg: Algorithm) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// Verifies `signature` over `message` with `alg`; false for any algorithm this key is not
    /// pinned to. HMAC comparison is constant-time.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        let Some((_, verifier)) = self.verifiers.iter().find(|(a, _)| *a == alg) else {
            return false;
        };
        match verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

/// The keys of one issuer.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

impl KeySet {
    pub fn new(keys: Vec<VerifyingKey>) -> Self {
        Self {
            keys: keys.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// True when both sets hold the same keys (same `kid`, type, algorithms and material), in
    /// any order: a refetch that brought nothing new.
    pub fn same_keys(&self, other: &KeySet) -> bool {
        let same =
            |a: &VerifyingKey, b: &VerifyingKey| a.kid == b.kid && a.fingerprint == b.fingerprint;
        self.len() == other.len()
            && self
                .keys
                .iter()
                .all(|a| other.keys.iter().any(|b| same(a, b)))
            && other
                .keys
                .iter()
                .all(|b| self.keys.iter().any(|a| same(a, b)))
    }

    /// The key for a token with `kid` and `alg`. A `kid` selects the key with that `kid`; a
    /// key configured without one (a PEM key, a secret) serves any `kid`. Without a match, or
    /// without a `kid`, exactly one key must support `alg`: several is ambiguous and rejected
    /// rather than tried in turn.
    pub fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&Arc<VerifyingKey>, TokenError> {
        if let Some(kid) = kid
            && let Some(key) = self.keys.iter().find(|k| k.kid() == Some(kid))
        {
            return if key.supports(alg) {
                Ok(key)
            } else {
                Err(TokenError::AlgorithmNotAllowed)
            };
        }
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.supports(alg) && (kid.is_none() || k.kid().is_none()));
        match (candidates.next(), candidates.next()) {
            (Some(key), None) => Ok(key),
            (Some(_), Some(_)) => Err(TokenError::AmbiguousKey),
            (None, _) if self.keys.is_empty() => Err(TokenError::KeysUnavailable),
            (None, _) if kid.is_some() => Err(TokenError::UnknownKey),
            (None, _) => Err(TokenError::AlgorithmNotAllowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hmac_secrets_are_refused_per_algorithm() {
        assert!(VerifyingKey::hmac(None, b"", None).is_err());
        assert!(VerifyingKey::hmac(None, &[7; 31], None).is_err());
        let k = VerifyingKey::hmac(None, &[7; 48], None).unwrap();
        assert!(k.supports(Algorithm::HS256) && k.supports(Algorithm::HS384));
        assert!(!k.supports(Algorithm::HS512));
    }

    #[test]
    fn hmac_key_never_verifies_other_algorithms() {
        let k = VerifyingKey::hmac(None, &[7; 64], None).unwrap();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &[7; 64]), b"m");
        assert!(k.verify(Algorithm::HS256, b"m", tag.as_ref()));
        assert!(!k.verify(Algorithm::RS256, b"m", tag.as_ref()));
        assert!(!k.verify(Algorithm::HS256, b"n", tag.as_ref()));
    }

    #[test]
    fn same_keys_compares_kid_material_and_algorithms_in_any_order() {
        let key = |kid: &str, byte: u8, algs: &[Algorithm]| {
            VerifyingKey::hmac(Some(kid.into()), &[byte; 64], Some(AlgSet::of(algs))).unwrap()
        };
        use Algorithm::{HS256, HS512};
        let set = |keys: Vec<VerifyingKey>| KeySet::new(keys);
        let ab = set(vec![key("a", 1, &[HS256]), key("b", 2, &[HS256])]);
        assert!(ab.same_keys(&set(vec![key("b", 2, &[HS256]), key("a", 1, &[HS256])])));
        assert!(!ab.same_keys(&set(vec![key("a", 1, &[HS256])])), "one gone");
        assert!(
            !ab.same_keys(&set(vec![key("a", 1, &[HS256]), key("b", 3, &[HS256])])),
            "same kid, new material"
        );
        assert!(
            !ab.same_keys(&set(vec![key("a", 1, &[HS256]), key("c", 2, &[HS256])])),
            "same material, new kid"
        );
        assert!(
            !ab.same_keys(&set(vec![key("a", 1, &[HS256]), key("b", 2, &[HS512])])),
            "same material, other algorithms"
        );
        assert!(KeySet::default().same_keys(&KeySet::default()));
    }

    #[test]
    fn selection_without_kid_needs_exactly_one_candidate() {
        let one = KeySet::new(vec![
            VerifyingKey::hmac(Some("a".into()), &[1; 32], None).unwrap(),
        ]);
        assert!(one.select(None, Algorithm::HS256).is_ok());
        assert_eq!(
            one.select(Some("b"), Algorithm::HS256).unwrap_err(),
            TokenError::UnknownKey
        );
        let unnamed = KeySet::new(vec![VerifyingKey::hmac(None, &[1; 32], None).unwrap()]);
        assert!(
            unnamed.select(Some("any"), Algorithm::HS256).is_ok(),
            "a key without kid serves any kid"
        );
        assert_eq!(
            one.select(Some("a"), Algorithm::HS512).unwrap_err(),
            TokenError::AlgorithmNotAllowed
        );
        let two = KeySet::new(vec![
            VerifyingKey::hmac(Some("a".into()), &[1; 32], None).unwrap(),
            VerifyingKey::hmac(Some("b".into()), &[2; 32], None).unwrap(),
        ]);
        assert_eq!(
            two.select(None, Algorithm::HS256).unwrap_err(),
            TokenError::AmbiguousKey
        );
        assert!(two.select(Some("b"), Algorithm::HS256).is_ok());
        assert_eq!(
            KeySet::default()
                .select(None, Algorithm::RS256)
                .unwrap_err(),
            TokenError::KeysUnavailable
        );
    }
}
