//! The real test IdP (`tests/idp/server.js`, npm `oidc-provider`) as a child process.

use crate::tempdir::TempDir;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const JWT_RESOURCE: &str = "https://api.portico.test";
pub const CLIENT_ID: &str = "gateway-test";
pub const CLIENT_SECRET: &str = "gateway-test-secret";
/// The resource whose access tokens are opaque (introspection and revocation work on these).
pub const OPAQUE_RESOURCE: &str = "https://opaque.portico.test";
/// A client that sends its id and secret in the form body (`client_secret_post`).
pub const POST_CLIENT_ID: &str = "gateway-post";
pub const POST_CLIENT_SECRET: &str = "gateway-post-secret";
/// A client that authenticates with `private_key_jwt`; its key is [`Idp::pkjwt_key_file`].
pub const PKJWT_CLIENT_ID: &str = "gateway-pkjwt";
/// The bearer token the IdP requires for Dynamic Client Registration (RFC 7591 §3).
pub const INITIAL_ACCESS_TOKEN: &str = "portico-test-initial-access-token";

pub struct Idp {
    pub issuer: String,
    child: Child,
    keys: TempDir,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

impl Idp {
    pub fn start() -> Self {
        let dir = fixture_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test IdP is not installed: run `npm ci` in tests/idp (scripts/test.sh does it)"
        );
        let keys = TempDir::new("idp");
        let mut child = Command::new("node")
            .arg("server.js")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("KEYS_FILE", keys.path().join("jwks.json"))
            .stdout(Stdio::piped())
            // Kept beside the keys: what the IdP said, when a test needs to know.
            .stderr(
                std::fs::File::create(keys.path().join("idp.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("node runs the test IdP");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // oidc-provider prints notices on stdout later: keep reading, or a closed pipe kills
        // it (EPIPE).
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("IdP did not start: {line:?}"));
        Self {
            issuer: started["issuer"].as_str().unwrap().to_string(),
            child,
            keys,
        }
    }

    /// A client_credentials access token for the JWT resource.
    pub async fn client_credentials_token(&self, scope: &str) -> String {
        self.token_for(JWT_RESOURCE, scope).await
    }

    /// An opaque client_credentials access token (for introspection).
    pub async fn opaque_token(&self, scope: &str) -> String {
        self.token_for(OPAQUE_RESOURCE, scope).await
    }

    async fn token_for(&self, resource: &str, scope: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }

    /// A client_credentials access token (for the JWT resource) of a client registered at
    /// the IdP, e.g. by the portal; the IdP's error answer when it refuses.
    pub async fn token_of_client(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: &str,
    ) -> Result<String, Value> {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(client_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", JWT_RESOURCE),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match body["access_token"].as_str() {
            Some(token) => Ok(token.to_string()),
            None => Err(body),
        }
    }

    /// The claims of a JWT access token (its payload, not checked).
    pub fn claims(token: &str) -> Value {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("a JWT");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims")
    }

    /// Revokes `token` at the IdP (RFC 7009).
    pub async fn revoke(&self, token: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/token/revocation", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "revocation: {}", r.status());
    }

    /// Introspection requests the IdP has received so far.
    pub async fn introspection_calls(&self) -> u64 {
        let r: Value = reqwest::get(format!("{}/__test/stats", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["introspections"].as_u64().unwrap()
    }

    /// The PEM private key of [`PKJWT_CLIENT_ID`].
    pub fn pkjwt_key_file(&self) -> PathBuf {
        self.keys.path().join("pkjwt-client.pem")
    }

    /// Puts a new signing key first in the IdP's JWKS; returns its kid.
    pub async fn rotate_signing_key(&self) -> String {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/__test/rotate", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["kid"].as_str().unwrap().to_string()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.keys.path().join("idp.log"))
        {
            eprintln!("--- the test IdP's stderr ---\n{log}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
