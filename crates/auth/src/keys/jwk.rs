//! Keys from JSON Web Keys (RFC 7517) and key sets.
//!
//! A JWK is used only when it is plainly a signature-verification key: `use` (if present) is
//! `sig`, `key_ops` (if present) include `verify`, `alg` (if present) is a JWS algorithm that
//! fits the key type and curve. Unusable keys are skipped with a reason, never guessed at.

use super::der;
use super::pem::check_rsa_modulus;
use super::{AlgSet, KeyError, KeyKind, KeySet, VerifyingKey};
use crate::jws::b64url_decode;
use portico_core::jwt::Algorithm;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// At most this many keys are read from one JWKS.
pub const MAX_KEYS: usize = 64;

/// Private members that must never be in a published verification key.
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, KeyError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| KeyError::new(format!("missing or non-string {name:?}")))
}

fn decoded(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, KeyError> {
    b64url_decode(member(jwk, name)?)
        .map_err(|_| KeyError::new(format!("{name:?} is not base64url")))
}

/// What a JWK `alg` allows: its own signature scheme, never another, and within
/// RSASSA-PKCS1-v1_5, RSASSA-PSS and HMAC the same or a longer hash, never a shorter one (RFC
/// 7520 §4.2 signs PS384 with a key marked PS256; a key marked PS512 must not verify PS256).
fn scheme_of(alg: Algorithm) -> AlgSet {
    use Algorithm::*;
    let family: &[Algorithm] = match alg {
        RS256 | RS384 | RS512 => &[RS256, RS384, RS512],
        PS256 | PS384 | PS512 => &[PS256, PS384, PS512],
        HS256 | HS384 | HS512 => &[HS256, HS384, HS512],
        other => return AlgSet::of(&[other]),
    };
    let from = family
        .iter()
        .position(|a| *a == alg)
        .expect("in its family");
    AlgSet::of(&family[from..])
}

/// A JWK `alg` value: a JWS algorithm, or `ES521`, a misspelling of ES512 found in published
/// example keys.
fn jwk_algorithm(name: &str) -> Result<Algorithm, KeyError> {
    match name {
        "ES521" => Ok(Algorithm::ES512),
        other => other.parse::<Algorithm>().map_err(KeyError::new),
    }
}

/// One JWK as a verifying key.
pub fn key_from_jwk(jwk: &Map<String, Value>) -> Result<VerifyingKey, KeyError> {
    if let Some(usage) = jwk.get("use")
        && usage.as_str() != Some("sig")
    {
        return Err(KeyError::new("key \"use\" is not \"sig\""));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(KeyError::new("key_ops does not include \"verify\""));
        }
    }
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(KeyError::new("the key contains private key material"));
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(KeyError::new("kid is not a string")),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(v) => {
            let name = v
                .as_str()
                .ok_or_else(|| KeyError::new("alg is not a string"))?;
            Some(jwk_algorithm(name)?)
        }
    };
    let allowed = alg.map(scheme_of);
    let kind_must_allow = |kind: KeyKind| match alg {
        Some(a) if !kind.algorithms().contains(a) => Err(KeyError::new(format!(
            "alg {a} does not fit a {kind:?} key"
        ))),
        _ => Ok(()),
    };

    match member(jwk, "kty")? {
        "oct" => {
            kind_must_allow(KeyKind::Hmac)?;
            let k = decoded(jwk, "k")?;
            VerifyingKey::hmac(kid, &k, allowed)
        }
        "RSA" => {
            kind_must_allow(KeyKind::Rsa)?;
            let n = decoded(jwk, "n")?;
            let e = decoded(jwk, "e")?;
            let n = &n[n.iter().take_while(|b| **b == 0).count()..];
            let e = &e[e.iter().take_while(|b| **b == 0).count()..];
            check_rsa_modulus(n, e)?;
            VerifyingKey::public(kid, KeyKind::Rsa, &der::rsa_public_key(n, e), allowed)
        }
        "EC" => {
            let (kind, size) = match member(jwk, "crv")? {
                "P-256" => (KeyKind::EcP256, 32),
                "P-384" => (KeyKind::EcP384, 48),
                "P-521" => (KeyKind::EcP521, 66),
                other => return Err(KeyError::new(format!("unsupported curve {other:?}"))),
            };
            kind_must_allow(kind)?;
            let x = decoded(jwk, "x")?;
            let y = decoded(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err(KeyError::new("EC coordinates do not match the curve size"));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            VerifyingKey::public(kid, kind, &point, allowed)
        }
        "OKP" => {
            if member(jwk, "crv")? != "Ed25519" {
                return Err(KeyError::new("only the Ed25519 OKP curve is supported"));
            }
            kind_must_allow(KeyKind::Ed25519)?;
            let x = decoded(jwk, "x")?;
            if x.len() != 32 {
                return Err(KeyError::new("Ed25519 key must be 32 bytes"));
            }
            VerifyingKey::public(kid, KeyKind::Ed25519, &x, allowed)
        }
        other => Err(KeyError::new(format!("unsupported kty {other:?}"))),
    }
}

/// Where a JWKS came from, which decides whether symmetric keys may be in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksOrigin {
    /// Operator-supplied (config or file): `oct` keys allowed, but not mixed with public keys.
    Local,
    /// Fetched over the network: `oct` keys are never accepted.
    Remote,
}

/// A key set from a JWKS document, and a note for every key skipped.
///
/// Keys sharing a `kid` are all dropped (which key was meant is ambiguous), even when only
/// one of them would be usable. A local set that
/// mixes symmetric and public keys is refused as a whole.
pub fn key_set_from_jwks(
    document: &[u8],
    origin: JwksOrigin,
) -> Result<(KeySet, Vec<String>), KeyError> {
    let doc: Value = serde_json::from_slice(document)
        .map_err(|e| KeyError::new(format!("the JWKS is not JSON: {e}")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError::new("the JWKS has no \"keys\" array"))?;
    let mut notes = Vec::new();
    if keys.len() > MAX_KEYS {
        notes.push(format!(
            "the JWKS has {} keys; only the first {MAX_KEYS} are read",
            keys.len()
        ));
    }
    let mut kid_counts: HashMap<&str, usize> = HashMap::new();
    for kid in keys
        .iter()
        .take(MAX_KEYS)
        .filter_map(|k| k.get("kid").and_then(Value::as_str))
    {
        *kid_counts.entry(kid).or_default() += 1;
    }
    let mut usable = Vec::new();
    for (i, jwk) in keys.iter().take(MAX_KEYS).enumerate() {
        let label = jwk
            .get("kid")
            .and_then(Value::as_str)
            .map_or_else(|| format!("key {i}"), |k| format!("key {k:?}"));
        let Some(obj) = jwk.as_object() else {
            notes.push(format!("{label}: not an object"));
            continue;
        };
        if origin == JwksOrigin::Remote && obj.get("kty").and_then(Value::as_str) == Some("oct") {
            notes.push(format!(
                "{label}: symmetric keys are not accepted from a JWKS URL"
            ));
            continue;
        }
        match key_from_jwk(obj) {
            Ok(key) => usable.push(key),
            Err(e) => notes.push(format!("{label}: skipped: {e}")),
        }
    }
    let symmetric = usable.iter().filter(|k| k.kind().is_symmetric()).count();
    if symmetric > 0 && symmetric < usable.len() {
        return Err(KeyError::new("the JWKS mixes symmetric and public keys"));
    }
    usable.retain(|k| match k.kid() {
        Some(kid) if kid_counts[kid] > 1 => {
            notes.push(format!("key {kid:?}: skipped: several keys share this kid"));
            false
        }
        _ => true,
    });
    notes.dedup();
    Ok((KeySet::new(usable), notes))
}
