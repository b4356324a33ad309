//! The revocations in force, as the request path reads them: indexed by what they name, and
//! swapped whole when the store's change (never for an older read of them than the one in
//! force). With none in force — the usual case — a request pays one atomic load.

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use portico_core::revocation::{Revocation, RevokedBy, TokenFacts};
use std::collections::HashMap;

/// The current set; replaced, never edited.
#[derive(Debug, Default)]
pub struct Revocations {
    set: ArcSwap<RevocationSet>,
    /// Orders writers, so that the revision check and the swap are one step.
    writing: Mutex<()>,
}

#[derive(Debug, Default)]
struct RevocationSet {
    /// The store's revocation revision this set was read at.
    revision: i64,
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
    /// From now on, exactly `revocations`, read at the store's revocation `revision`, are in
    /// force — unless what is in force was read at a later revision (two readers finishing
    /// out of order). Returns whether it replaced them.
    pub fn replace(&self, revision: i64, revocations: Vec<Revocation>) -> bool {
        let _writing = self.writing.lock();
        if revision < self.set.load().revision {
            return false;
        }
        let mut set = RevocationSet {
            revision,
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
        true
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
        assert!(revocations.replace(
            2,
            vec![
                revocation(1, RevokedBy::ClientId, "app", 100),
                revocation(2, RevokedBy::Identity, "bob", 100),
            ]
        ));
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
        assert!(
            !revocations.replace(1, Vec::new()),
            "an older read does not replace a newer one"
        );
        assert!(revocations.refuses(&token("app", "carol"), 50));
        assert!(revocations.replace(3, Vec::new()));
        assert!(!revocations.refuses(&token("app", "carol"), 50));
        assert!(revocations.is_empty());
    }
}
