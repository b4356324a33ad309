//! Checks on the registered claims of a verified token: times, audience.

use crate::error::TokenError;
use portico_core::jwt::IssuerTrust;
use serde_json::{Map, Value};

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds, possibly fractional.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(TokenError::BadClaims),
        Some(_) => Err(TokenError::BadClaims),
    }
}

/// A checked token's `exp` and `iat`, when present, in whole seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTimes {
    pub expires_at: Option<u64>,
    pub issued_at: Option<u64>,
}

/// Checks `exp`, `nbf`, `iat` (each with its own skew) and `aud` at `now_secs`.
pub fn check_claims(
    claims: &Map<String, Value>,
    trust: &IssuerTrust,
    now_secs: u64,
) -> Result<ClaimTimes, TokenError> {
    let now = now_secs as f64;
    let skew = trust.skew;
    let exp = numeric_date(claims, "exp")?;
    match exp {
        Some(exp) if now >= exp + skew.exp_secs as f64 => return Err(TokenError::Expired),
        None if trust.require_exp => return Err(TokenError::MissingExpiry),
        _ => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now + (skew.nbf_secs as f64) < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    let iat = numeric_date(claims, "iat")?;
    if let Some(iat) = iat
        && iat > now + skew.iat_secs as f64
    {
        return Err(TokenError::IssuedInFuture);
    }
    if !trust.audiences.is_empty() {
        let accepted = |aud: &str| trust.audiences.iter().any(|a| a == aud);
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        };
        if !ok {
            return Err(TokenError::WrongAudience);
        }
    }
    // What is left of a second does not count.
    let whole = |t: f64| t.max(0.0) as u64;
    Ok(ClaimTimes {
        expires_at: exp.map(whole),
        issued_at: iat.map(whole),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_core::jwt::{ClaimSkews, KeySourceSpec, Secret};
    use serde_json::json;

    fn trust() -> IssuerTrust {
        IssuerTrust::new(None, KeySourceSpec::Secret(Secret::new(vec![0; 32])))
    }

    fn check(claims: Value, trust: &IssuerTrust, now: u64) -> Result<Option<u64>, TokenError> {
        check_claims(claims.as_object().unwrap(), trust, now).map(|t| t.expires_at)
    }

    #[test]
    fn expiry_with_and_without_skew() {
        let t = trust();
        assert_eq!(check(json!({"exp": 100}), &t, 99), Ok(Some(100)));
        assert_eq!(
            check(json!({"exp": 100}), &t, 100),
            Err(TokenError::Expired)
        );
        assert_eq!(check(json!({}), &t, 1), Err(TokenError::MissingExpiry));
        assert_eq!(
            check(json!({"exp": "100"}), &t, 1),
            Err(TokenError::BadClaims)
        );
        assert_eq!(check(json!({"exp": 100.5}), &t, 100), Ok(Some(100)));
        let mut lenient = trust();
        lenient.skew = ClaimSkews {
            exp_secs: 5,
            ..Default::default()
        };
        assert!(check(json!({"exp": 100}), &lenient, 104).is_ok());
        assert_eq!(
            check(json!({"exp": 100}), &lenient, 105),
            Err(TokenError::Expired)
        );
        lenient.require_exp = false;
        assert_eq!(check(json!({}), &lenient, 1), Ok(None));
    }

    #[test]
    fn not_before_and_issued_at_have_their_own_skews() {
        let mut t = trust();
        assert_eq!(
            check(json!({"exp": 1000, "nbf": 101}), &t, 100),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            check(json!({"exp": 1000, "iat": 101}), &t, 100),
            Err(TokenError::IssuedInFuture)
        );
        t.skew = ClaimSkews {
            exp_secs: 0,
            nbf_secs: 2,
            iat_secs: 0,
        };
        assert!(check(json!({"exp": 1000, "nbf": 101}), &t, 100).is_ok());
        assert_eq!(
            check(json!({"exp": 1000, "iat": 101}), &t, 100),
            Err(TokenError::IssuedInFuture)
        );
        t.skew.iat_secs = 1;
        assert!(check(json!({"exp": 1000, "iat": 101}), &t, 100).is_ok());
    }

    #[test]
    fn audience_string_or_array() {
        let mut t = trust();
        t.audiences = vec!["orders".into()];
        assert!(check(json!({"exp": 9, "aud": "orders"}), &t, 1).is_ok());
        assert!(check(json!({"exp": 9, "aud": ["x", "orders"]}), &t, 1).is_ok());
        assert_eq!(
            check(json!({"exp": 9, "aud": ["x"]}), &t, 1),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            check(json!({"exp": 9}), &t, 1),
            Err(TokenError::WrongAudience)
        );
    }
}
