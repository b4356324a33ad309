//! Signing JWTs: `portico token mint`, quick starts and tests. Keys come from PEM, a shared
//! secret, or are generated.

use crate::jws::b64url_encode;
use crate::keys::pem::first_block;
use crate::keys::{KeyError, hmac_algorithm};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, signature::EcdsaSigningAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portico_core::jwt::Algorithm;
use serde_json::{Map, Value, json};

enum Inner {
    Hmac(Box<hmac::Key>),
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key pinned to one algorithm.
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    inner: Inner,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn ecdsa_signing(alg: Algorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match alg {
        Algorithm::ES256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        Algorithm::ES512 => Some(&signature::ECDSA_P521_SHA512_FIXED_SIGNING),
        _ => None,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl SigningKey {
    /// An HMAC key for HS256/384/512.
    pub fn from_secret(alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if !alg.is_hmac() {
            return Err(KeyError::new(format!("{alg} is not an HMAC algorithm")));
        }
        Ok(Self {
            alg,
            kid: None,
            inner: Inner::Hmac(Box::new(hmac::Key::new(hmac_algorithm(alg), secret))),
        })
    }

    /// A private key from PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`).
    pub fn from_pem(alg: Algorithm, text: &str) -> Result<Self, KeyError> {
        let (label, der) = first_block(text)?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            KeyError::new(format!("the private key does not fit {alg}: {e}"))
        };
        let inner = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(KeyError::new(
                    "HMAC algorithms take a secret, not a PEM key",
                ));
            }
            Algorithm::EdDSA => {
                Inner::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(rejected)?)
            }
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => {
                let signing = ecdsa_signing(alg).expect("ECDSA");
                let pair = if label == "EC PRIVATE KEY" {
                    EcdsaKeyPair::from_private_key_der(signing, &der)
                } else {
                    EcdsaKeyPair::from_pkcs8(signing, &der)
                };
                Inner::Ecdsa(pair.map_err(rejected)?)
            }
            _ => {
                let pair = if label == "RSA PRIVATE KEY" {
                    RsaKeyPair::from_der(&der)
                } else {
                    RsaKeyPair::from_pkcs8(&der)
                };
                Inner::Rsa(pair.map_err(rejected)?)
            }
        };
        Ok(Self {
            alg,
            kid: None,
            inner,
        })
    }

    /// A fresh key for `alg` (RSA keys are 2048 bits; HMAC secrets as long as the hash).
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let failed = |_| KeyError::new("key generation failed");
        let inner = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Inner::Hmac(Box::new(
                hmac::Key::generate(hmac_algorithm(alg), &SystemRandom::new()).map_err(failed)?,
            )),
            Algorithm::EdDSA => Inner::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => Inner::Ecdsa(
                EcdsaKeyPair::generate(ecdsa_signing(alg).expect("ECDSA")).map_err(failed)?,
            ),
            _ => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
        };
        Ok(Self {
            alg,
            kid: None,
            inner,
        })
    }

    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The private key as PKCS#8 PEM (asymmetric keys only).
    pub fn private_key_pem(&self) -> Option<String> {
        let der: Pkcs8V1Der<'static> = match &self.inner {
            Inner::Rsa(k) => k.as_der().ok()?,
            Inner::Ecdsa(k) => return Some(pem("PRIVATE KEY", k.to_pkcs8v1().ok()?.as_ref())),
            Inner::Ed25519(k) => return Some(pem("PRIVATE KEY", k.to_pkcs8v1().ok()?.as_ref())),
            Inner::Hmac(_) => return None,
        };
        Some(pem("PRIVATE KEY", der.as_ref()))
    }

    /// The public key as SPKI PEM (asymmetric keys only).
    pub fn public_key_pem(&self) -> Option<String> {
        let der = match &self.inner {
            Inner::Rsa(k) => k.public_key().as_der().ok()?,
            Inner::Ecdsa(k) => k.public_key().as_der().ok()?,
            Inner::Ed25519(k) => k.public_key().as_der().ok()?,
            Inner::Hmac(_) => return None,
        };
        Some(pem("PUBLIC KEY", der.as_ref()))
    }

    /// The public key as a JWK with `use`, `alg` and (if set) `kid` (asymmetric keys only).
    pub fn public_jwk(&self) -> Option<Value> {
        let mut jwk = match &self.inner {
            Inner::Rsa(k) => json!({
                "kty": "RSA",
                "n": b64url_encode(k.public_key().modulus().big_endian_without_leading_zero()),
                "e": b64url_encode(k.public_key().exponent().big_endian_without_leading_zero()),
            }),
            Inner::Ecdsa(k) => {
                let point = k.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = match self.alg {
                    Algorithm::ES256 => "P-256",
                    Algorithm::ES384 => "P-384",
                    _ => "P-521",
                };
                json!({"kty": "EC", "crv": crv, "x": b64url_encode(&point[1..=size]), "y": b64url_encode(&point[1 + size..])})
            }
            Inner::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(k.public_key().as_ref())})
            }
            Inner::Hmac(_) => return None,
        };
        let obj = jwk.as_object_mut().expect("object");
        obj.insert("use".into(), "sig".into());
        obj.insert("alg".into(), self.alg.as_str().into());
        if let Some(kid) = &self.kid {
            obj.insert("kid".into(), kid.clone().into());
        }
        Some(jwk)
    }

    /// Signs `claims` with header `{alg, typ: "JWT", kid?}` plus `extra_header` members.
    pub fn sign_jwt(
        &self,
        claims: &Map<String, Value>,
        extra_header: &Map<String, Value>,
    ) -> Result<String, KeyError> {
        let mut header = Map::new();
        header.insert("alg".into(), self.alg.as_str().into());
        header.insert("typ".into(), "JWT".into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        header.extend(extra_header.clone());
        let header = serde_json::to_vec(&header).map_err(|e| KeyError::new(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::new(e.to_string()))?;
        let signing_input = format!("{}.{}", b64url_encode(&header), b64url_encode(&payload));
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64url_encode(&signature)))
    }

    /// A raw JWS signature over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        let failed = |_| KeyError::new("signing failed");
        Ok(match &self.inner {
            Inner::Hmac(k) => hmac::sign(k, message).as_ref().to_vec(),
            Inner::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            Inner::Ecdsa(k) => k.sign(&rng, message).map_err(failed)?.as_ref().to_vec(),
            Inner::Rsa(k) => {
                let encoding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(encoding, &rng, message, &mut sig).map_err(failed)?;
                sig
            }
        })
    }
}
