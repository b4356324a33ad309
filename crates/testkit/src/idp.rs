//! The real test IdP (`tests/idp/server.js`, npm `oidc-provider`) as a child process.

use crate::tempdir::TempDir;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const JWT_RESOURCE: &str = "https://api.portico.test";
pub const CLIENT_ID: &str = "gateway-test";
pub const CLIENT_SECRET: &str = "gateway-test-secret";

pub struct Idp {
    pub issuer: String,
    child: Child,
    _keys: TempDir,
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
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the test IdP");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("IdP did not start: {line:?}"));
        Self {
            issuer: started["issuer"].as_str().unwrap().to_string(),
            child,
            _keys: keys,
        }
    }

    /// A client_credentials access token for the JWT resource.
    pub async fn client_credentials_token(&self, scope: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", JWT_RESOURCE),
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
