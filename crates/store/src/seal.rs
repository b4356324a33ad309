//! Encryption at rest: every stored spec is sealed with AES-256-GCM under the store's secret
//! key, bound to its kind and name (a sealed spec copied to another row does not open).
//!
//! Layout: `1` (format version) ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag.

use crate::durable::{self, Existing};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

const FORMAT: u8 = 1;
const KEY_LEN: usize = 32;

/// The store's secret key (32 random bytes). Every node sharing a database needs the same.
#[derive(Clone)]
pub struct SecretKey(Arc<LessSafeKey>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be {KEY_LEN} bytes in standard base64 ({} characters)", KEY_LEN.div_ceil(3) * 4)]
    Malformed,
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("no randomness: {0}")]
    Random(String),
}

impl SecretKey {
    /// From its base64 form (as in `PORTICO_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed)?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Malformed);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::Malformed)?;
        Ok(Self(Arc::new(LessSafeKey::new(key))))
    }

    /// A new random key, in base64.
    pub fn generate_base64() -> Result<String, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(STANDARD.encode(bytes))
    }

    /// Reads the key file, or creates it (mode 0600) with a new random key when it does not
    /// exist: the single-machine default, where nobody else needs the key. The new file is
    /// written whole or not at all ([`crate::durable`]), and never replaces another's key.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::generate_base64()?;
                match durable::write_file(path, text.as_bytes(), Existing::Keep) {
                    Ok(()) => Self::from_base64(&text),
                    // Another process created it first: its key is the one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path).map_err(file_error)?;
                        Self::from_base64(&text)
                    }
                    Err(e) => Err(file_error(e)),
                }
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // The system's randomness failing is not something a store write can recover from.
        aws_lc_rs::rand::fill(&mut nonce).expect("system randomness");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .expect("AES-GCM seals any length a row can hold");
        out.extend_from_slice(&body);
        out
    }

    /// `None`: not sealed with this key for this context (wrong key, tampered, moved).
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&format, rest) = sealed.split_first()?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap()
    }

    #[test]
    fn sealed_specs_open_only_with_their_key_and_context() {
        let k = key();
        let sealed = k.seal(b"Api\0payments", b"{\"secret\":\"s3cr3t\"}");
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(
            k.open(b"Api\0payments", &sealed).unwrap(),
            b"{\"secret\":\"s3cr3t\"}"
        );
        assert!(k.open(b"Api\0orders", &sealed).is_none(), "moved row");
        assert!(key().open(b"Api\0payments", &sealed).is_none(), "other key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(b"Api\0payments", &tampered).is_none());
        assert!(k.open(b"Api\0payments", &[]).is_none());
    }

    #[test]
    fn a_key_file_is_created_once_with_mode_0600_and_read_back() {
        let dir = portico_testkit::TempDir::new("key-file");
        let path = dir.path().join("secret.key");
        let created = SecretKey::load_or_create(&path).unwrap();
        let again = SecretKey::load_or_create(&path).unwrap();
        let sealed = created.seal(b"ctx", b"plain");
        assert_eq!(
            again.open(b"ctx", &sealed).unwrap(),
            b"plain",
            "the same key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret.key"], "no temporary file left");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert!(SecretKey::from_base64("not base64 at all!").is_err());
        assert!(SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).is_ok());
    }
}
