//! Client registration at the IdP: RFC 7591 (register) and RFC 7592 (read, update, delete),
//! and OIDC discovery to find the endpoints. One app is one client; what the IdP answers is
//! kept whole (it may rotate the registration access token or the secret on any update).
//!
//! Every call has a timeout and a bounded answer; an IdP's refusal comes back with its own
//! words (`invalid_client_metadata: …`), for the admin to see.

use portico_config::portal::ProviderType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// Each call to the IdP, connection included, within this long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting to the IdP within this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read from an IdP.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// What the portal registers a client with (RFC 7591 §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    pub grant_types: Vec<String>,
    /// Sent even when empty: an IdP's default (`["code"]`) would require redirect URIs.
    pub response_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// Space-separated, as RFC 7591 writes it.
    pub scope: String,
    /// Okta's application type; sent to Okta only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
}

/// A client as the IdP registered it: the values the portal needs, and the whole answer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub registration_access_token: Option<String>,
    pub registration_client_uri: Option<String>,
    /// Every field of the IdP's last answer, secrets included.
    pub answer: Map<String, Value>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field(
                "registration_access_token",
                &self.registration_access_token.as_ref().map(|_| "…"),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Reads an answer; `previous` fills what an update's answer leaves out (RFC 7592 §2.2
    /// lets an IdP omit an unchanged secret or registration access token).
    fn from_answer(
        answer: Map<String, Value>,
        previous: Option<&Registration>,
    ) -> Result<Self, RegistrationError> {
        let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_string);
        let client_id = text("client_id")
            .ok_or_else(|| RegistrationError::BadAnswer("the answer has no client_id".into()))?;
        if let Some(previous) = previous
            && previous.client_id != client_id
        {
            return Err(RegistrationError::BadAnswer(format!(
                "the IdP answered for client {client_id:?}, not {:?}",
                previous.client_id
            )));
        }
        Ok(Registration {
            client_secret: text("client_secret")
                .or_else(|| previous.and_then(|p| p.client_secret.clone())),
            registration_access_token: text("registration_access_token")
                .or_else(|| previous.and_then(|p| p.registration_access_token.clone())),
            registration_client_uri: text("registration_client_uri")
                .or_else(|| previous.and_then(|p| p.registration_client_uri.clone())),
            client_id,
            answer,
        })
    }
}

/// Why a call to the IdP did not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistrationError {
    #[error("the IdP could not be reached: {0}")]
    Unreachable(String),
    /// The IdP answered with an error: its status and, when it sent them, its RFC 7591 §3.2.2
    /// `error` and `error_description`, else the start of its body.
    #[error("the IdP refused ({status}): {}", describe(.error, .description, .body))]
    Refused {
        status: u16,
        error: Option<String>,
        description: Option<String>,
        body: String,
    },
    #[error("the IdP's answer is not usable: {0}")]
    BadAnswer(String),
    #[error("{0}")]
    NotConfigured(String),
}

fn describe(error: &Option<String>, description: &Option<String>, body: &str) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) if body.is_empty() => "no details".into(),
        (None, None) => body.chars().take(300).collect(),
    }
}

/// What discovery found: what registration and the dashboard need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub token_endpoint: Option<String>,
    pub registration_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

/// Registers, updates and deletes clients at one IdP.
#[derive(Clone)]
pub struct Registrar {
    http: reqwest::Client,
    endpoint: String,
    initial_access_token: Option<String>,
    dialect: ProviderType,
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar")
            .field("endpoint", &self.endpoint)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for one provider's calls: timeouts, no redirects (a registration answer
/// elsewhere is not the IdP's), TLS verification unless the provider turns it off.
pub fn http_client(insecure_skip_tls_verify: bool) -> Result<reqwest::Client, RegistrationError> {
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(insecure_skip_tls_verify)
        .build()
        .map_err(|e| RegistrationError::NotConfigured(format!("HTTP client: {e}")))
}

/// Fetches and reads an OIDC discovery document.
pub async fn discover(
    http: &reqwest::Client,
    well_known_url: &str,
) -> Result<Discovery, RegistrationError> {
    let (status, body) = call(http.get(well_known_url)).await?;
    if status != 200 {
        return Err(refused(status, &body));
    }
    serde_json::from_slice(&body)
        .map_err(|e| RegistrationError::BadAnswer(format!("discovery document: {e}")))
}

impl Registrar {
    pub fn new(
        http: reqwest::Client,
        registration_endpoint: String,
        initial_access_token: Option<String>,
        dialect: ProviderType,
    ) -> Self {
        Self {
            http,
            endpoint: registration_endpoint,
            initial_access_token,
            dialect,
        }
    }

    /// The metadata as this IdP takes it.
    fn body(&self, metadata: &ClientMetadata, client_id: Option<&str>) -> Value {
        let mut metadata = metadata.clone();
        if self.dialect != ProviderType::Okta {
            metadata.application_type = None;
        }
        let mut body = serde_json::to_value(metadata).unwrap_or(Value::Null);
        if let (Some(id), Value::Object(fields)) = (client_id, &mut body) {
            // RFC 7592 §2.2: an update carries the client_id (and the secret, when it has one).
            fields.insert("client_id".into(), Value::String(id.into()));
        }
        body
    }

    /// Registers a new client (RFC 7591 §3.1). Any 2xx is success: some IdPs answer 200.
    pub async fn register(
        &self,
        metadata: &ClientMetadata,
    ) -> Result<Registration, RegistrationError> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&self.body(metadata, None));
        if let Some(token) = &self.initial_access_token {
            request = request.bearer_auth(token);
        }
        let (status, body) = call(request).await?;
        if !(200..300).contains(&status) {
            return Err(refused(status, &body));
        }
        Registration::from_answer(object(&body)?, None)
    }

    /// Replaces a client's metadata (RFC 7592 §2.2), keeping what the IdP rotates.
    pub async fn update(
        &self,
        current: &Registration,
        metadata: &ClientMetadata,
    ) -> Result<Registration, RegistrationError> {
        let (uri, token) = management(current)?;
        let mut body = self.body(metadata, Some(&current.client_id));
        if let (Some(secret), Value::Object(fields)) = (&current.client_secret, &mut body) {
            fields.insert("client_secret".into(), Value::String(secret.clone()));
        }
        let (status, answer) = call(self.http.put(uri).bearer_auth(token).json(&body)).await?;
        if !(200..300).contains(&status) {
            return Err(refused(status, &answer));
        }
        Registration::from_answer(object(&answer)?, Some(current))
    }

    /// Deletes a client (RFC 7592 §2.3). A client the IdP no longer knows (404, or 401 for a
    /// registration access token that went with it) counts as deleted.
    pub async fn delete(&self, current: &Registration) -> Result<(), RegistrationError> {
        let (uri, token) = management(current)?;
        let (status, body) = call(self.http.delete(uri).bearer_auth(token)).await?;
        match status {
            200..=299 | 404 | 410 => Ok(()),
            401 if gone_client(&body) => Ok(()),
            _ => Err(refused(status, &body)),
        }
    }
}

/// A 401 whose body says the client is unknown (`invalid_client`, `invalid_token`): the
/// client, and its registration access token with it, are gone.
fn gone_client(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        matches!(
            v.get("error").and_then(Value::as_str),
            Some("invalid_client" | "invalid_token")
        )
    })
}

fn management(current: &Registration) -> Result<(&str, &str), RegistrationError> {
    match (
        &current.registration_client_uri,
        &current.registration_access_token,
    ) {
        (Some(uri), Some(token)) => Ok((uri, token)),
        _ => Err(RegistrationError::NotConfigured(
            "the IdP gave this client no registration_client_uri and registration access \
             token (RFC 7592), so it cannot be changed or deleted from here"
                .into(),
        )),
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, RegistrationError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(RegistrationError::BadAnswer(
            "the answer is not a JSON object".into(),
        )),
        Err(e) => Err(RegistrationError::BadAnswer(format!(
            "the answer is not JSON: {e}"
        ))),
    }
}

fn refused(status: u16, body: &[u8]) -> RegistrationError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    RegistrationError::Refused {
        status,
        error: field("error"),
        description: field("error_description"),
        body: String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
    }
}

/// Sends `request`, reads at most [`MAX_ANSWER_BYTES`] of the answer.
async fn call(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), RegistrationError> {
    let mut response = request
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| RegistrationError::Unreachable(error_chain(&e)))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| RegistrationError::Unreachable(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(RegistrationError::BadAnswer(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// An error with its causes: reqwest's own message is often only "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
