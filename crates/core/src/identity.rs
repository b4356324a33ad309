//! Who is calling: the identity claim and the stable session id derived from it.

use crate::claims::ClaimPath;
use aws_lc_rs::digest;
use serde_json::Value;
use std::fmt;

/// Which claims name the caller, tried in order; the first present one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySpec {
    claims: Vec<ClaimPath>,
}

/// The caller as one token names it: which identity claim matched, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'c> {
    pub claim: &'c ClaimPath,
    /// The value as text (numbers in their JSON form).
    pub value: String,
    /// The claim was a JSON number, not a string: `42` and `"42"` are different callers.
    pub numeric: bool,
}

impl IdentitySpec {
    pub fn try_new(claims: Vec<ClaimPath>) -> Result<Self, String> {
        if claims.is_empty() {
            return Err("at least one identity claim is required".into());
        }
        Ok(Self { claims })
    }

    pub fn claims(&self) -> &[ClaimPath] {
        &self.claims
    }

    /// The caller's identity, or `None` when no identity claim is present (empty strings,
    /// objects, arrays and booleans are not identities).
    pub fn resolve(&self, claims: &serde_json::Map<String, Value>) -> Option<Identity<'_>> {
        self.claims
            .iter()
            .find_map(|path| match path.lookup(claims)? {
                Value::String(s) if !s.is_empty() => Some(Identity {
                    claim: path,
                    value: s.clone(),
                    numeric: false,
                }),
                Value::Number(n) => Some(Identity {
                    claim: path,
                    value: n.to_string(),
                    numeric: true,
                }),
                _ => None,
            })
    }
}

impl IdentitySpec {
    /// `sub`, else `client_id`: the default of APIs with introspection, whose answers for
    /// client_credentials tokens often carry no `sub`.
    pub fn sub_then_client_id() -> Self {
        Self {
            claims: ["sub", "client_id"]
                .map(|c| ClaimPath::try_new(c).expect("static path"))
                .to_vec(),
        }
    }
}

impl Default for IdentitySpec {
    /// `sub`, as in Tyk and RFC 9068.
    fn default() -> Self {
        Self {
            claims: vec![ClaimPath::try_new("sub").expect("static path")],
        }
    }
}

/// The id of an identity session: the first 128 bits of SHA-256 over the org, the issuer,
/// the identity claim that matched, the value's JSON type and the value, each length-prefixed.
///
/// Stable across every token of one identity; different across orgs, issuers, identity claims
/// and value types (an identity is only unique within its issuer); it reveals none of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// `issuer` is what makes the identity unique: the trusted issuer's `iss`, or for a key
    /// trusted without an issuer, a fingerprint of that key (see `IssuerTrust::session_scope`).
    pub fn derive(org_id: &str, issuer: &str, identity: &Identity<'_>) -> Self {
        let kind: &[u8] = if identity.numeric { b"n" } else { b"s" };
        Self::of_parts(&[
            org_id.as_bytes(),
            issuer.as_bytes(),
            identity.claim.as_str().as_bytes(),
            kind,
            identity.value.as_bytes(),
        ])
    }

    /// A session id for a plain label, for tests and benchmarks of the limiter.
    pub fn from_label(label: &str) -> Self {
        Self::of_parts(&[label.as_bytes()])
    }

    fn of_parts(parts: &[&[u8]]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in parts {
            // Length prefixes, so that ("ab", "c") and ("a", "bc") cannot collide.
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let hash = ctx.finish();
        let mut id = [0u8; 16];
        id.copy_from_slice(&hash.as_ref()[..16]);
        Self(id)
    }

    pub fn as_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// Lower-case hex, 32 characters: the form sent upstream.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.as_u128())
    }

    /// The session id of [`SessionId::to_hex`]'s form (32 hex digits, either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(hex, 16)
            .ok()
            .map(|n| Self(n.to_be_bytes()))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_ids_read_back_from_hex() {
        let id = SessionId::from_label("alice");
        assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(SessionId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        for bad in [
            "",
            "abc",
            "+0000000000000000000000000000001",
            &"g".repeat(32),
        ] {
            assert_eq!(SessionId::from_hex(bad), None, "{bad:?}");
        }
    }

    fn id<'c>(claim: &'c ClaimPath, value: &str, numeric: bool) -> Identity<'c> {
        Identity {
            claim,
            value: value.into(),
            numeric,
        }
    }

    #[test]
    fn session_id_is_stable_and_scoped_by_org_issuer_claim_and_type() {
        let sub = ClaimPath::try_new("sub").unwrap();
        let email = ClaimPath::try_new("email").unwrap();
        let alice = id(&sub, "alice", false);
        let a = SessionId::derive("org1", "https://a", &alice);
        assert_eq!(a, SessionId::derive("org1", "https://a", &alice));
        assert_ne!(a, SessionId::derive("org2", "https://a", &alice));
        assert_ne!(a, SessionId::derive("org1", "https://b", &alice), "issuer");
        assert_ne!(
            a,
            SessionId::derive("org1", "https://a", &id(&sub, "bob", false))
        );
        assert_ne!(
            a,
            SessionId::derive("org1", "https://a", &id(&email, "alice", false))
        );
        assert_ne!(
            SessionId::derive("o", "i", &id(&sub, "42", false)),
            SessionId::derive("o", "i", &id(&sub, "42", true)),
            "42 and \"42\""
        );
        assert_ne!(
            SessionId::derive("ab", "c", &alice),
            SessionId::derive("a", "bc", &alice)
        );
        assert_eq!(a.to_hex().len(), 32);
    }

    #[test]
    fn first_present_claim_wins() {
        let spec = IdentitySpec::try_new(vec![
            ClaimPath::try_new("user.id").unwrap(),
            ClaimPath::try_new("sub").unwrap(),
        ])
        .unwrap();
        let with_both = json!({"user": {"id": "u1"}, "sub": "s1"});
        let found = spec.resolve(with_both.as_object().unwrap()).unwrap();
        assert_eq!(
            (found.claim.as_str(), found.value.as_str()),
            ("user.id", "u1")
        );
        let only_sub = json!({"user": {"id": ""}, "sub": 7});
        let found = spec.resolve(only_sub.as_object().unwrap()).unwrap();
        assert_eq!(
            (found.claim.as_str(), found.value.as_str(), found.numeric),
            ("sub", "7", true)
        );
        assert_eq!(
            spec.resolve(json!({"sub": true}).as_object().unwrap()),
            None
        );
        assert!(IdentitySpec::try_new(vec![]).is_err());
    }
}
