//! Compact JWS (RFC 7515 §7.1) parsing: three strict base64url parts, a bounded JSON header.

use crate::error::TokenError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico_core::jwt::Algorithm;
use serde::Deserialize;

/// Decodes unpadded base64url, rejecting padding, whitespace and non-canonical trailing bits.
pub fn b64url_decode(input: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(input)
        .map_err(|_| TokenError::Malformed("invalid base64url"))
}

pub fn b64url_encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

/// The JOSE header members Portico reads. `jku`, `jwk`, `x5u` and `x5c` are deliberately not
/// read: keys come only from configuration, never from the token.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Vec<String>>,
}

/// A compact JWS split into its parts, header decoded, signature not yet verified.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    pub header: Header,
    pub algorithm: Algorithm,
    /// `BASE64URL(header) '.' BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Parses `token`. Rejects anything but exactly three parts, unknown algorithms (`none` in
    /// any casing among them) and any `crit` header (Portico understands no extensions).
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let mut parts = token.splitn(4, '.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "a JWT has exactly three '.'-separated parts",
            ));
        };
        let header_bytes = b64url_decode(header_b64)?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| TokenError::Malformed("the header is not a JSON object with an alg"))?;
        let algorithm = header
            .alg
            .parse::<Algorithm>()
            .map_err(|_| TokenError::UnsupportedAlgorithm)?;
        if header.crit.is_some() {
            return Err(TokenError::UnsupportedCritical);
        }
        let payload = b64url_decode(payload_b64)?;
        let signature = b64url_decode(signature_b64)?;
        if signature.is_empty() {
            return Err(TokenError::BadSignature);
        }
        Ok(Self {
            header,
            algorithm,
            signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
            payload,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!(
            "{}.{}.{}",
            b64url_encode(header.as_bytes()),
            b64url_encode(payload.as_bytes()),
            sig
        )
    }

    #[test]
    fn rejects_wrong_part_counts_and_bad_base64() {
        assert!(matches!(
            CompactJws::parse("a.b"),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            CompactJws::parse("a.b.c.d"),
            Err(TokenError::Malformed(_))
        ));
        let t = token(r#"{"alg":"HS256"}"#, "{}", "AAAA");
        assert!(CompactJws::parse(&t).is_ok());
        assert!(CompactJws::parse(&format!("{t}=")).is_err());
        assert!(CompactJws::parse(&t.replace('.', ". ")).is_err());
    }

    #[test]
    fn rejects_none_in_every_casing_and_crit() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", "AAAA");
            assert!(
                matches!(CompactJws::parse(&t), Err(TokenError::UnsupportedAlgorithm)),
                "{alg}"
            );
        }
        let t = token(r#"{"alg":"none"}"#, "{}", "");
        assert!(CompactJws::parse(&t).is_err());
        let t = token(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, "{}", "AAAA");
        assert!(matches!(
            CompactJws::parse(&t),
            Err(TokenError::UnsupportedCritical)
        ));
    }

    #[test]
    fn signing_input_covers_header_and_payload() {
        let t = token(r#"{"alg":"RS256","kid":"k"}"#, r#"{"sub":"a"}"#, "AAAA");
        let jws = CompactJws::parse(&t).unwrap();
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0);
        assert_eq!(jws.header.kid.as_deref(), Some("k"));
        assert_eq!(jws.payload, br#"{"sub":"a"}"#);
    }
}
