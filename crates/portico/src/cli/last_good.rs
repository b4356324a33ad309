//! What a store node last served, sealed with the store's secret key in its data folder: the
//! configuration and the revocations. A node that loses the store keeps serving them, and one
//! started while the store is down serves them until it is back.

use portico_config::documents::Document;
use portico_core::revocation::Revocation;
use portico_store::SecretKey;
use portico_store::durable::{self, Existing};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// One sealed JSON file, written whole or not at all and flushed to disk.
struct SealedFile {
    path: PathBuf,
    key: SecretKey,
    /// What the seal is bound to: one file's content never opens as another's.
    context: &'static [u8],
}

impl SealedFile {
    fn save<T: Serialize>(&self, value: &T) {
        let Ok(plain) = serde_json::to_vec(value) else {
            return;
        };
        let sealed = self.key.seal(self.context, &plain);
        if let Err(e) = durable::write_file(&self.path, &sealed, Existing::Replace) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot save what this node serves");
        }
    }

    fn load<T: DeserializeOwned>(&self) -> Option<T> {
        let sealed = std::fs::read(&self.path).ok()?;
        let Some(plain) = self.key.open(self.context, &sealed) else {
            tracing::error!(path = %self.path.display(), "does not open with this secret key");
            return None;
        };
        serde_json::from_slice(&plain).ok()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ConfigSnapshot {
    revision: i64,
    documents: Vec<Document>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RevocationSnapshot {
    revision: i64,
    revocations: Vec<Revocation>,
}

/// The last configuration and revocations this node served.
pub struct LastGood {
    config: SealedFile,
    revocations: SealedFile,
    /// What `revocations` holds, so that an unchanged set is not written again.
    revocations_saved: std::sync::Mutex<Option<Vec<Revocation>>>,
}

impl LastGood {
    pub fn new(data_dir: &Path, key: SecretKey) -> Self {
        Self {
            config: SealedFile {
                path: data_dir.join("last-good-config.sealed"),
                key: key.clone(),
                context: b"portico/last-good-config",
            },
            revocations: SealedFile {
                path: data_dir.join("last-good-revocations.sealed"),
                key,
                context: b"portico/last-good-revocations",
            },
            revocations_saved: std::sync::Mutex::new(None),
        }
    }

    pub fn save_config(&self, revision: i64, documents: &[Document]) {
        self.config.save(&ConfigSnapshot {
            revision,
            documents: documents.to_vec(),
        });
    }

    pub fn load_config(&self) -> Option<(i64, Vec<Document>)> {
        self.config
            .load::<ConfigSnapshot>()
            .map(|s| (s.revision, s.documents))
    }

    /// Written only when they differ from what was last written.
    pub fn save_revocations(&self, revision: i64, revocations: &[Revocation]) {
        let mut saved = self
            .revocations_saved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if saved.as_deref() == Some(revocations) {
            return;
        }
        self.revocations.save(&RevocationSnapshot {
            revision,
            revocations: revocations.to_vec(),
        });
        *saved = Some(revocations.to_vec());
    }

    pub fn load_revocations(&self) -> Option<(i64, Vec<Revocation>)> {
        self.revocations
            .load::<RevocationSnapshot>()
            .map(|s| (s.revision, s.revocations))
    }
}
