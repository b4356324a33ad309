//! The revocations in force, as the request path reads them: indexed by what they name, and
//! swapped whole when the store's change. With none in force — the usual case — a request
//! pays one atomic load.

use arc_swap::ArcSwap;
use portico_core::revocation::{Revocation, RevokedBy, TokenFacts};
use std::collections::HashMap;

/// The current set; replaced, never edited.
#[derive(Debug, Default)]
pub struct Revocations {
    set: ArcSwap<RevocationSet>,
}

#[derive(Debug, Default)]
struct RevocationSet {
    /// Per [`RevokedBy`] (in `RevokedBy::ALL` order): value → the revocations naming it.
    by_value: [HashMap<String, Vec<Revocation>>; 3],
    len: usize,
}

fn slot(by: RevokedBy) -> usize {
    match by {
        RevokedBy::ClientId => 0,
        RevokedBy::Jti => 1,
        RevokedBy::Identity => 2,
    }
}

impl Revocations {
    /// From now on, exactly `revocations` are in force.
    pub fn replace(&self, revocations: Vec<Revocation>) {
        let mut set = RevocationSet {
            len: revocations.len(),
            ..RevocationSet::default()
        };
        for r in revocations {
            set.by_value[slot(r.by)]
                .entry(r.value.clone())
                .or_default()
                .push(r);
        }
        self.set.store(set.into());
    }

    /// Whether a revocation in force refuses `token` at `now_secs`.
    #[inline]
    pub fn refuses(&self, token: &TokenFacts<'_>, now_secs: u64) -> bool {
        let set = self.set.load();
        set.len > 0
            && RevokedBy::ALL.into_iter().any(|by| {
                token
                    .value(by)
                    .and_then(|value| set.by_value[slot(by)].get(value))
                    .is_some_and(|list| list.iter().any(|r| r.covers(token, now_secs)))
            })
    }

    /// How many are in force (some may have ended since they were loaded).
    pub fn len(&self) -> usize {
        self.set.load().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(id: i64, by: RevokedBy, value: &str, until_secs: u64) -> Revocation {
        Revocation {
            id,
            by,
            value: value.into(),
            issuer: None,
            until_secs,
            issued_before_secs: None,
            reason: None,
            created_at_secs: 0,
        }
    }

    fn token<'a>(client_id: &'a str, identity: &'a str) -> TokenFacts<'a> {
        TokenFacts {
            client_id: Some(client_id),
            jti: None,
            identity,
            issuer: Some("https://idp"),
            issued_at: Some(10),
        }
    }

    #[test]
    fn refuses_what_is_in_force_and_nothing_else() {
        let revocations = Revocations::default();
        assert!(!revocations.refuses(&token("app", "alice"), 50));
        revocations.replace(vec![
            revocation(1, RevokedBy::ClientId, "app", 100),
            revocation(2, RevokedBy::Identity, "bob", 100),
        ]);
        assert_eq!(revocations.len(), 2);
        assert!(revocations.refuses(&token("app", "carol"), 50));
        assert!(revocations.refuses(&token("other", "bob"), 50));
        assert!(!revocations.refuses(&token("other", "carol"), 50));
        assert!(
            !revocations.refuses(&token("app", "carol"), 100),
            "ended at 100"
        );
        assert!(
            !revocations.refuses(&token("bob", "app"), 50),
            "a client id is not an identity"
        );
        revocations.replace(Vec::new());
        assert!(!revocations.refuses(&token("app", "carol"), 50));
        assert!(revocations.is_empty());
    }
}
