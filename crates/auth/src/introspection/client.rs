//! One RFC 7662 call: `POST token=…&token_type_hint=access_token` with the gateway's client
//! authentication, and the reading of the answer. Anything but a 200 with a JSON object whose
//! `active` is a boolean is a failure, never an answer.

use super::{Answer, IntrospectionFailure};
use crate::jws::b64url_encode;
use crate::sign::SigningKey;
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portico_core::introspection::ClientAuth;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Answers larger than this are refused.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Lifetime of a `private_key_jwt` client assertion.
const ASSERTION_LIFETIME_SECS: u64 = 60;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The gateway's credentials at the endpoint, ready to use.
pub enum ClientCredentials {
    /// The whole `Authorization: Basic …` value.
    Basic { authorization: String },
    Post {
        client_id: String,
        client_secret: String,
    },
    PrivateKeyJwt {
        client_id: String,
        key: Arc<SigningKey>,
    },
}

impl ClientCredentials {
    pub fn new(client_id: &str, auth: &ClientAuth) -> Result<Self, String> {
        let secret_text = |secret: &portico_core::jwt::Secret| {
            String::from_utf8(secret.expose().to_vec())
                .map_err(|_| "the client secret is not UTF-8".to_string())
        };
        Ok(match auth {
            ClientAuth::ClientSecretBasic(secret) => {
                // RFC 6749 §2.3.1: both form-urlencoded before they are joined.
                let pair = format!(
                    "{}:{}",
                    form_urlencode(client_id),
                    form_urlencode(&secret_text(secret)?)
                );
                ClientCredentials::Basic {
                    authorization: format!("Basic {}", STANDARD.encode(pair)),
                }
            }
            ClientAuth::ClientSecretPost(secret) => ClientCredentials::Post {
                client_id: client_id.to_string(),
                client_secret: secret_text(secret)?,
            },
            ClientAuth::PrivateKeyJwt {
                private_key_pem,
                algorithm,
                key_id,
            } => {
                let pem = std::str::from_utf8(private_key_pem.expose())
                    .map_err(|_| "the private key is not PEM text".to_string())?;
                let mut key = SigningKey::from_pem(*algorithm, pem)
                    .map_err(|e| format!("the private key for private_key_jwt: {e}"))?;
                if let Some(kid) = key_id {
                    key = key.with_kid(kid.clone());
                }
                ClientCredentials::PrivateKeyJwt {
                    client_id: client_id.to_string(),
                    key: Arc::new(key),
                }
            }
        })
    }
}

/// The secret the credentials are made of: the client secret, or the private key's PEM.
pub fn credential_material(auth: &ClientAuth) -> &[u8] {
    match auth {
        ClientAuth::ClientSecretBasic(s) | ClientAuth::ClientSecretPost(s) => s.expose(),
        ClientAuth::PrivateKeyJwt {
            private_key_pem, ..
        } => private_key_pem.expose(),
    }
}

/// What distinguishes two credentials, without holding the secret.
pub fn credentials_fingerprint(auth: &ClientAuth) -> String {
    let hash = digest::digest(&digest::SHA256, credential_material(auth));
    let signing = match auth {
        // The same key under another algorithm or kid is another credential to the IdP.
        ClientAuth::PrivateKeyJwt {
            algorithm, key_id, ..
        } => format!(
            ":{}:{}",
            algorithm.as_str(),
            key_id.as_deref().unwrap_or("")
        ),
        ClientAuth::ClientSecretBasic(_) | ClientAuth::ClientSecretPost(_) => String::new(),
    };
    format!(
        "{}:{}{signing}",
        auth.method(),
        b64url_encode(hash.as_ref())
    )
}

/// `application/x-www-form-urlencoded` for one value.
fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn failure(kind: &'static str, reason: impl Into<String>) -> IntrospectionFailure {
    IntrospectionFailure {
        kind,
        reason: reason.into(),
    }
}

/// Asks `endpoint` about `token`.
pub async fn introspect(
    http: &reqwest::Client,
    endpoint: &str,
    credentials: &ClientCredentials,
    token: &str,
    now: u64,
) -> Result<Answer, IntrospectionFailure> {
    let mut form: Vec<(&str, String)> = vec![
        ("token", token.to_string()),
        ("token_type_hint", "access_token".to_string()),
    ];
    let mut request = http.post(endpoint).header("accept", "application/json");
    match credentials {
        ClientCredentials::Basic { authorization } => {
            request = request.header("authorization", authorization);
        }
        ClientCredentials::Post {
            client_id,
            client_secret,
        } => {
            form.push(("client_id", client_id.clone()));
            form.push(("client_secret", client_secret.clone()));
        }
        ClientCredentials::PrivateKeyJwt { client_id, key } => {
            form.push(("client_id", client_id.clone()));
            form.push(("client_assertion_type", JWT_BEARER.to_string()));
            form.push((
                "client_assertion",
                client_assertion(client_id, key, endpoint, now)?,
            ));
        }
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", form_urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut response = request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| transport_failure(endpoint, &e))?;
    let status = response.status();
    let mut body = Vec::new();
    if response
        .content_length()
        .is_some_and(|l| l > MAX_ANSWER_BYTES as u64)
    {
        return Err(failure(
            "malformed",
            format!("{endpoint}: the answer is larger than {MAX_ANSWER_BYTES} bytes"),
        ));
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_failure(endpoint, &e))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(failure(
                "malformed",
                format!("{endpoint}: the answer is larger than {MAX_ANSWER_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        // The IdP's own words (RFC 6749 §5.2 error), bounded, for the log.
        let said = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                let error = v.get("error")?.as_str()?.to_string();
                let description = v
                    .get("error_description")
                    .and_then(Value::as_str)
                    .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default();
                Some(format!(" ({error}{description})"))
            })
            .unwrap_or_default();
        let kind = if status.as_u16() == 401 {
            "client_auth"
        } else {
            "status"
        };
        return Err(failure(
            kind,
            format!("{endpoint} answered HTTP {}{said}", status.as_u16()),
        ));
    }
    read_answer(&body).map_err(|reason| failure("malformed", format!("{endpoint}: {reason}")))
}

/// The answer of a 200: a JSON object with a boolean `active` (RFC 7662 §2.2).
pub fn read_answer(body: &[u8]) -> Result<Answer, String> {
    let object: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("the answer is not a JSON object".into()),
        Err(_) => return Err("the answer is not JSON".into()),
    };
    match object.get("active") {
        Some(Value::Bool(true)) => Ok(Answer::Active(Arc::new(object))),
        Some(Value::Bool(false)) => Ok(Answer::Inactive),
        Some(_) => Err("`active` is not a boolean".into()),
        None => Err("the answer has no `active` member".into()),
    }
}

fn transport_failure(endpoint: &str, e: &reqwest::Error) -> IntrospectionFailure {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    let mut reason = format!("{endpoint}: {kind}");
    if let Some(source) = std::error::Error::source(e) {
        reason.push_str(&format!(" ({source})"));
    }
    failure(kind, reason)
}

/// RFC 7523 §3: `iss` = `sub` = the client id, `aud` = the endpoint, a fresh `jti`.
fn client_assertion(
    client_id: &str,
    key: &SigningKey,
    audience: &str,
    now: u64,
) -> Result<String, IntrospectionFailure> {
    let mut jti = [0u8; 16];
    SystemRandom::new()
        .fill(&mut jti)
        .map_err(|_| failure("client_auth", "no randomness for a client assertion"))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("jti".into(), b64url_encode(&jti).into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ASSERTION_LIFETIME_SECS).into());
    key.sign_jwt(&claims, &Map::new())
        .map_err(|e| failure("client_auth", format!("signing the client assertion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_say_active_as_a_boolean() {
        assert!(matches!(
            read_answer(br#"{"active":true,"sub":"a"}"#),
            Ok(Answer::Active(_))
        ));
        assert!(matches!(
            read_answer(br#"{"active":false}"#),
            Ok(Answer::Inactive)
        ));
        for bad in [
            &br#"{"sub":"a"}"#[..],
            br#"{"active":"true"}"#,
            br#"{"active":1}"#,
            br#"[]"#,
            b"<html>",
            b"",
        ] {
            assert!(
                read_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let auth =
            ClientAuth::ClientSecretBasic(portico_core::jwt::Secret::new(b"s3:cr t".to_vec()));
        let ClientCredentials::Basic { authorization } =
            ClientCredentials::new("gate way", &auth).unwrap()
        else {
            panic!("basic")
        };
        let decoded = STANDARD
            .decode(authorization.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"gate+way:s3%3Acr+t");
    }
}
