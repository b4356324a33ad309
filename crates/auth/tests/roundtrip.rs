//! Every algorithm: sign with a generated key, verify through the public key forms the
//! gateway accepts (PEM, JWK).

use portico_auth::sign::SigningKey;
use portico_auth::{JwtVerifier, KeySourceRegistry, TokenError};
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{
    Algorithm, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec, Secret,
};
use serde_json::{Map, json};

fn claims() -> Map<String, serde_json::Value> {
    json!({"sub": "alice", "exp": 4_000_000_000u64})
        .as_object()
        .unwrap()
        .clone()
}

async fn verify(keys: KeySourceSpec, token: &str) -> Result<(), TokenError> {
    let spec = JwtSpec {
        issuers: vec![IssuerTrust::new(None, keys)],
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    let verifier = JwtVerifier::build(
        &spec,
        &KeySourceRegistry::on_demand(),
        &KeyFetchSettings::default(),
    )
    .unwrap();
    verifier.verify_access_token(token, 1_000).await.map(|_| ())
}

#[tokio::test]
async fn every_asymmetric_algorithm_round_trips_through_pem_and_jwk() {
    use Algorithm::*;
    for alg in [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA,
    ] {
        let key = SigningKey::generate(alg).unwrap().with_kid("k");
        let token = key.sign_jwt(&claims(), &Map::new()).unwrap();
        verify(
            KeySourceSpec::PublicKeyPem(key.public_key_pem().unwrap()),
            &token,
        )
        .await
        .unwrap_or_else(|e| panic!("{alg} via PEM: {e}"));
        let jwks = json!({"keys": [key.public_jwk().unwrap()]}).to_string();
        verify(KeySourceSpec::JwksDocument(jwks), &token)
            .await
            .unwrap_or_else(|e| panic!("{alg} via JWK: {e}"));
        // The private key PEM loads back for signing.
        let again = SigningKey::from_pem(alg, &key.private_key_pem().unwrap()).unwrap();
        let token = again.sign_jwt(&claims(), &Map::new()).unwrap();
        verify(
            KeySourceSpec::PublicKeyPem(key.public_key_pem().unwrap()),
            &token,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn hmac_round_trips() {
    let secret = vec![9u8; 64];
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = SigningKey::from_secret(alg, &secret)
            .unwrap()
            .sign_jwt(&claims(), &Map::new())
            .unwrap();
        verify(KeySourceSpec::Secret(Secret::new(secret.clone())), &token)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn certificates_and_pkcs1_keys_load() {
    let cert = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/cert.pem"))
        .unwrap();
    let private = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cert-key.pem"
    ))
    .unwrap();
    let key = SigningKey::from_pem(Algorithm::RS256, &private).unwrap();
    let token = key.sign_jwt(&claims(), &Map::new()).unwrap();
    verify(KeySourceSpec::PublicKeyPem(cert), &token)
        .await
        .unwrap();
    let err = portico_auth::keys::pem::key_from_pem(None, &private, None).unwrap_err();
    assert!(err.to_string().contains("private key"));
}

#[test]
fn hostile_jwks_members_are_errors_not_panics() {
    use portico_auth::keys::jwk::{JwksOrigin, key_set_from_jwks};
    let docs = [
        r#"{"keys":[{"kty":"RSA","n":"","e":"AQAB"}]}"#,
        r#"{"keys":[{"kty":"RSA","n":"AQAB","e":""}]}"#,
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}"#,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":""}]}"#,
        r#"{"keys":[{"kty":"oct","k":""}]}"#,
        r#"{"keys":[{"kty":7}, null, [], "x", {"kid": 5, "kty": "RSA"}]}"#,
        r#"{"keys": {}}"#,
        r#"[]"#,
        "",
    ];
    for doc in docs {
        if let Ok((keys, _)) = key_set_from_jwks(doc.as_bytes(), JwksOrigin::Local) {
            assert!(keys.is_empty(), "{doc}");
        }
    }
}
