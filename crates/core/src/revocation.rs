//! Revocations at the gateway: tokens refused before their `exp`, named by the `client_id`
//! they were issued to, their `jti`, or the identity they carry — within one issuer, or any
//! — until a given time. They cover self-contained JWTs and cached introspection answers
//! alike, because they are checked on every request after the token is known.

use std::fmt;

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedBy {
    /// The OAuth client the tokens were issued to (`client_id` claim or introspection member).
    ClientId,
    /// One token (`jti`).
    Jti,
    /// The identity the API resolves (its identity claim: `sub` unless configured).
    Identity,
}

impl RevokedBy {
    pub const ALL: [RevokedBy; 3] = [RevokedBy::ClientId, RevokedBy::Jti, RevokedBy::Identity];

    /// The name used in the store, the admin API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokedBy::ClientId => "client_id",
            RevokedBy::Jti => "jti",
            RevokedBy::Identity => "identity",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|by| by.as_str() == name)
    }
}

impl fmt::Display for RevokedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest a value, an issuer or a reason may be (a `client_id`, `jti` or identity is far
/// shorter).
pub const MAX_VALUE_BYTES: usize = 1024;

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    /// Given by the store.
    pub id: i64,
    pub by: RevokedBy,
    pub value: String,
    /// Only tokens of this issuer (exactly as configured, or as the token's `iss` says for an
    /// entry trusted without one; a token whose issuer is unknown is covered too: a revocation
    /// only ever refuses); `None`: of every issuer.
    pub issuer: Option<String>,
    /// Seconds since the epoch; the revocation holds while `now < until_secs`.
    pub until_secs: u64,
    /// When set, only tokens issued before this moment (by their `iat`) are refused, so that a
    /// client whose access changed can carry on with a new token; a token without `iat` is
    /// refused. `None`: every token, whenever issued.
    pub issued_before_secs: Option<u64>,
    /// Why, for the operator (never shown to the caller).
    pub reason: Option<String>,
    pub created_at_secs: u64,
}

/// What a revocation is matched against: facts the gateway knows about an admitted token.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub client_id: Option<&'a str>,
    pub jti: Option<&'a str>,
    pub identity: &'a str,
    pub issuer: Option<&'a str>,
    pub issued_at: Option<u64>,
}

impl TokenFacts<'_> {
    /// The token's value for `by`.
    pub fn value(&self, by: RevokedBy) -> Option<&str> {
        match by {
            RevokedBy::ClientId => self.client_id,
            RevokedBy::Jti => self.jti,
            RevokedBy::Identity => Some(self.identity),
        }
    }
}

impl Revocation {
    /// Whether this revocation refuses `token` at `now_secs`.
    pub fn covers(&self, token: &TokenFacts<'_>, now_secs: u64) -> bool {
        now_secs < self.until_secs
            && token.value(self.by) == Some(self.value.as_str())
            && self.issuer.as_deref().is_none_or(|issuer| {
                token
                    .issuer
                    .is_none_or(|token_issuer| token_issuer == issuer)
            })
            && self
                .issued_before_secs
                .is_none_or(|before| token.issued_at.is_none_or(|iat| iat < before))
    }

    /// Checks what a caller may give: a value that is not empty, an end in the future, an
    /// issuer that is not empty, none of them longer than [`MAX_VALUE_BYTES`]. The error
    /// starts with the field at fault (`value`, `issuer`, `reason`, `until`).
    pub fn check_request(
        value: &str,
        issuer: Option<&str>,
        reason: Option<&str>,
        until_secs: u64,
        now_secs: u64,
    ) -> Result<(), String> {
        if value.is_empty() {
            return Err("value: the value to revoke is empty".into());
        }
        for (field, text) in [
            ("value", Some(value)),
            ("issuer", issuer),
            ("reason", reason),
        ] {
            if text.is_some_and(|t| t.len() > MAX_VALUE_BYTES) {
                return Err(format!("{field}: longer than {MAX_VALUE_BYTES} bytes"));
            }
        }
        if issuer.is_some_and(str::is_empty) {
            return Err("issuer: empty; leave it out to revoke across every issuer".into());
        }
        if until_secs <= now_secs {
            return Err("until: not in the future".into());
        }
        Ok(())
    }
}

/// How long a revocation given no end lasts, when the settings do not say (24 hours).
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(by: RevokedBy, value: &str) -> Revocation {
        Revocation {
            id: 1,
            by,
            value: value.into(),
            issuer: None,
            until_secs: 1_000,
            issued_before_secs: None,
            reason: None,
            created_at_secs: 100,
        }
    }

    const TOKEN: TokenFacts<'static> = TokenFacts {
        client_id: Some("app"),
        jti: Some("t-1"),
        identity: "alice",
        issuer: Some("https://idp"),
        issued_at: Some(500),
    };

    #[test]
    fn matches_by_what_it_names_until_it_ends() {
        assert!(revocation(RevokedBy::ClientId, "app").covers(&TOKEN, 999));
        assert!(!revocation(RevokedBy::ClientId, "app").covers(&TOKEN, 1_000));
        assert!(revocation(RevokedBy::Jti, "t-1").covers(&TOKEN, 10));
        assert!(revocation(RevokedBy::Identity, "alice").covers(&TOKEN, 10));
        assert!(!revocation(RevokedBy::Identity, "app").covers(&TOKEN, 10));
        let no_jti = TokenFacts { jti: None, ..TOKEN };
        assert!(!revocation(RevokedBy::Jti, "t-1").covers(&no_jti, 10));
    }

    #[test]
    fn an_issuer_scopes_it() {
        let mut r = revocation(RevokedBy::Identity, "alice");
        r.issuer = Some("https://other".into());
        assert!(!r.covers(&TOKEN, 10));
        r.issuer = Some("https://idp".into());
        assert!(r.covers(&TOKEN, 10));
        let unknown_issuer = TokenFacts {
            issuer: None,
            ..TOKEN
        };
        assert!(
            r.covers(&unknown_issuer, 10),
            "a token of unknown issuer is refused rather than let through"
        );
    }

    #[test]
    fn issued_before_spares_newer_tokens_but_not_undated_ones() {
        let mut r = revocation(RevokedBy::ClientId, "app");
        r.issued_before_secs = Some(500);
        assert!(!r.covers(&TOKEN, 10), "issued at 500, not before");
        r.issued_before_secs = Some(501);
        assert!(r.covers(&TOKEN, 10));
        let undated = TokenFacts {
            issued_at: None,
            ..TOKEN
        };
        r.issued_before_secs = Some(1);
        assert!(r.covers(&undated, 10));
    }

    #[test]
    fn requests_are_checked() {
        let check = |value: &str, issuer, reason, until| {
            Revocation::check_request(value, issuer, reason, until, 1)
        };
        let long = "x".repeat(1025);
        assert!(check("a", None, None, 2).is_ok());
        assert!(check("", None, None, 2).unwrap_err().starts_with("value:"));
        assert!(
            check(&long, None, None, 2)
                .unwrap_err()
                .starts_with("value:")
        );
        assert!(
            check("a", Some(""), None, 2)
                .unwrap_err()
                .starts_with("issuer:")
        );
        assert!(
            check("a", Some(&long), None, 2)
                .unwrap_err()
                .starts_with("issuer:")
        );
        assert!(
            check("a", None, Some(&long), 2)
                .unwrap_err()
                .starts_with("reason:")
        );
        assert!(check("a", None, None, 1).unwrap_err().starts_with("until:"));
        for by in RevokedBy::ALL {
            assert_eq!(RevokedBy::parse(by.as_str()), Some(by));
        }
        assert_eq!(RevokedBy::parse("sub"), None);
    }
}
