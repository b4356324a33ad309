//! Upstream JWTs as an upstream sees them: verified by an independent JWT library
//! (`jsonwebtoken`, aws-lc-rs backend) against nothing but the JWKS the gateway publishes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use portico_auth::sign::SigningKey;
use portico_auth::upstream_jwt::{
    Jwks, UPSTREAM_JWT_ALGORITHMS, UpstreamCaller, UpstreamJwtSettings, UpstreamJwtSigner,
};
use portico_core::jwt::Algorithm;
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Deserialize)]
struct UpstreamClaims {
    iss: String,
    aud: String,
    sub: String,
    caller_iss: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    iat: u64,
    exp: u64,
    jti: String,
}

/// jsonwebtoken checks `exp` against the system clock, so tokens are minted at the real time.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn new_signer(alg: Algorithm, kid: &str) -> UpstreamJwtSigner {
    let pem = SigningKey::generate(alg)
        .unwrap()
        .private_key_pem()
        .unwrap();
    UpstreamJwtSigner::new(UpstreamJwtSettings::new(alg, pem, kid, "portico-edge")).unwrap()
}

fn caller(api_id: &str) -> UpstreamCaller<'_> {
    UpstreamCaller {
        api_id,
        identity: "alice",
        issuer: Some("https://idp.example/realms/shop"),
        client_id: Some("shop-app"),
        scope: Some("orders:read"),
        policies_fingerprint: 1,
    }
}

fn jsonwebtoken_alg(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        other => panic!("{other} is not an upstream JWT algorithm"),
    }
}

/// What an upstream does: pick the key by the token's `kid` from the JWKS, then verify the
/// signature, `exp`, `iss` and `aud`.
fn verify(
    jwks: &serde_json::Value,
    token: &str,
    alg: Algorithm,
    api_id: &str,
) -> jsonwebtoken::errors::Result<UpstreamClaims> {
    let jwks: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = decode_header(token)?.kid.expect("the header names its key");
    let jwk = jwks.find(&kid).expect("the JWKS has the token's kid");
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(jsonwebtoken_alg(alg));
    validation.set_issuer(&["portico-edge"]);
    validation.set_audience(&[api_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    Ok(decode::<UpstreamClaims>(token, &key, &validation)?.claims)
}

#[test]
fn every_algorithm_verifies_against_the_published_jwks() {
    for alg in UPSTREAM_JWT_ALGORITHMS {
        let signer = new_signer(alg, "gw-1");
        let now = now_secs();
        let token = signer.token_for(&caller("orders"), now).unwrap();
        let token = std::str::from_utf8(&token).unwrap();

        let claims =
            verify(&signer.jwks(), token, alg, "orders").unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.iss, "portico-edge");
        assert_eq!(claims.aud, "orders");
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.iat, now);
        assert_eq!(claims.exp, now + 60);
        assert_eq!(
            claims.caller_iss.as_deref(),
            Some("https://idp.example/realms/shop")
        );
        assert_eq!(claims.client_id.as_deref(), Some("shop-app"));
        assert_eq!(claims.scope.as_deref(), Some("orders:read"));
        assert_eq!(claims.jti.len(), 22);
    }
}

#[test]
fn the_upstream_refuses_what_it_should() {
    for alg in UPSTREAM_JWT_ALGORITHMS {
        let signer = new_signer(alg, "gw-1");
        let now = now_secs();
        let token = signer.token_for(&caller("orders"), now).unwrap();
        let token = std::str::from_utf8(&token).unwrap();

        let refused = |jwks: &serde_json::Value, token: &str, api_id: &str| {
            verify(jwks, token, alg, api_id)
                .map(|_| ())
                .expect_err(alg.as_str())
                .into_kind()
        };
        // Meant for another API.
        assert_eq!(
            refused(&signer.jwks(), token, "billing"),
            ErrorKind::InvalidAudience
        );
        // Signed by another key under the same kid.
        let other = new_signer(alg, "gw-1");
        assert_eq!(
            refused(&other.jwks(), token, "orders"),
            ErrorKind::InvalidSignature
        );
        // A changed claim.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(r#"{"iss":"portico-edge","aud":"orders","sub":"mallory","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            refused(&signer.jwks(), &parts.join("."), "orders"),
            ErrorKind::InvalidSignature
        );
        // Expired: minted an hour ago (a time before the cached token's `iat`, so a new token
        // is signed for then).
        let old = signer.token_for(&caller("orders"), now - 3_600).unwrap();
        assert_eq!(
            refused(&signer.jwks(), std::str::from_utf8(&old).unwrap(), "orders"),
            ErrorKind::ExpiredSignature
        );
    }
}

#[test]
fn one_jwks_document_verifies_tokens_of_several_apis() {
    let signers: Vec<(Algorithm, &str, UpstreamJwtSigner)> = [
        (Algorithm::RS256, "orders"),
        (Algorithm::ES256, "billing"),
        (Algorithm::EdDSA, "search"),
    ]
    .into_iter()
    .map(|(alg, api)| (alg, api, new_signer(alg, &format!("{api}-key"))))
    .collect();
    let jwks = Jwks::from_signers(signers.iter().map(|(_, _, s)| s))
        .unwrap()
        .to_json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    for (alg, api, signer) in &signers {
        let token = signer.token_for(&caller(api), now_secs()).unwrap();
        let claims = verify(&jwks, std::str::from_utf8(&token).unwrap(), *alg, api)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(&claims.aud, api);
    }
}
