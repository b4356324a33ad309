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

    /// The caller's identity, or `None` when no identity claim is present.
    pub fn resolve(&self, claims: &serde_json::Map<String, Value>) -> Option<String> {
        self.claims
            .iter()
            .find_map(|path| path.lookup_scalar(claims))
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

/// The id of an identity session: the first 128 bits of SHA-256(org id, identity).
///
/// Stable across every token of one identity, different across orgs, and it reveals neither.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    pub fn derive(org_id: &str, identity: &str) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        // Length-prefix the org so ("ab", "c") and ("a", "bc") cannot collide.
        ctx.update(&(org_id.len() as u64).to_be_bytes());
        ctx.update(org_id.as_bytes());
        ctx.update(identity.as_bytes());
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
    fn session_id_is_stable_and_org_scoped() {
        let a = SessionId::derive("org1", "alice");
        assert_eq!(a, SessionId::derive("org1", "alice"));
        assert_ne!(a, SessionId::derive("org2", "alice"));
        assert_ne!(a, SessionId::derive("org1", "bob"));
        assert_ne!(SessionId::derive("ab", "c"), SessionId::derive("a", "bc"));
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
        assert_eq!(
            spec.resolve(with_both.as_object().unwrap()).as_deref(),
            Some("u1")
        );
        let only_sub = json!({"sub": "s1"});
        assert_eq!(
            spec.resolve(only_sub.as_object().unwrap()).as_deref(),
            Some("s1")
        );
        assert_eq!(spec.resolve(json!({}).as_object().unwrap()), None);
        assert!(IdentitySpec::try_new(vec![]).is_err());
    }
}
