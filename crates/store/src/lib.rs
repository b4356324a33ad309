//! Portico's storage. Resources (APIs, policies, issuers, and later the portal's data) live
//! in SQLite — a file in the data folder, the single-machine default — or in PostgreSQL,
//! shared by many nodes. Nothing SQL leaves this crate: callers see [`Store`] and plain
//! types.
//!
//! - [`resources`]: named, versioned documents with optimistic concurrency.
//! - [`revision`]: the configuration revision and how nodes learn it changed.
//! - [`revocations`]: tokens refused before their `exp`, with a revision of their own.
//! - [`portal`]: the developer portal's developers, apps, access requests and clients.
//! - [`portal_sessions`]: signed-in sessions of the portal's pages.
//! - [`portal_outbox`]: the portal's emails, written before they are sent.
//! - [`usage`]: requests per OAuth client per minute, from the gateway nodes.
//! - [`seal`]: every spec is encrypted at rest.
//! - [`durable`]: files written whole or not at all (the key file, a node's last good
//!   configuration).
//!
//! Migrations (`migrations/sqlite`, `migrations/postgres`) are applied when the store opens,
//! or, for data-plane nodes ([`SchemaMode::RequireCurrent`]), only checked.

mod backend;
pub mod durable;
pub mod portal;
pub mod portal_outbox;
pub mod portal_sessions;
pub mod resources;
pub mod revision;
pub mod revocations;
pub mod seal;
pub mod usage;

pub use backend::{DatabaseUrl, SchemaMode, StoreSettings};
pub use resources::{Expect, PutOutcome, Resource, ResourceChange, Snapshot, StoredResource};
pub use revision::{Counter, RevisionSeen};
pub use revocations::{ActiveRevocations, NewRevocation};
pub use seal::{KeyError, SecretKey};

use backend::Backend;

/// A handle on the database: cheap to clone, safe to share.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    key: SecretKey,
    /// Bounds every operation on this side too: a server's `statement_timeout` cannot help
    /// when the connection itself hangs (a half-open TCP connection after a crash).
    timeout: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or failed the operation (transient: retry later).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// `Expect::Version` did not match, or `Expect::Absent` found a resource.
    #[error("{kind} {name:?} changed meanwhile: expected version {expected}, found {found}")]
    Conflict {
        kind: String,
        name: String,
        expected: i64,
        found: i64,
    },
    /// [`Store::apply_at_revision`]: another write committed since the caller's snapshot.
    #[error("the configuration changed meanwhile: expected revision {expected}, found {found}")]
    RevisionMoved { expected: i64, found: i64 },
    #[error("{kind} {name:?} already exists (version {found})")]
    Exists {
        kind: String,
        name: String,
        found: i64,
    },
    #[error("{kind} {name:?} not found")]
    NotFound { kind: String, name: String },
    /// A portal record that must be unique exists already (an email, an app name).
    #[error("{0} exists already")]
    Taken(String),
    /// The store was first opened with another secret key.
    #[error(
        "this secret key is not the one the store was created with; every node sharing \
         the store needs the same PORTICO_SECRET_KEY"
    )]
    WrongKey,
    /// A stored spec does not open with this key (another key, or tampered with).
    #[error("{kind} {name:?}: the stored spec does not decrypt with this secret key")]
    Sealed { kind: String, name: String },
    /// The migrations could not be applied (a newer Portico's database, or a broken one).
    #[error("migrations: {0}")]
    Migration(String),
    /// The schema is not this binary's, and this node may not migrate it
    /// ([`SchemaMode::RequireCurrent`]); versions are the migrations' numbers.
    #[error("the store's schema is at {found}, this node needs {expected}; {}", schema_remedy(*.found, *.expected))]
    SchemaMismatch { found: i64, expected: i64 },
    #[error("{0}")]
    Invalid(String),
}

fn schema_remedy(found: i64, expected: i64) -> &'static str {
    if found < expected {
        "run a control plane of this version first"
    } else {
        "this node is older than the store: upgrade it"
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl Store {
    /// Connects, and applies the migrations or checks that they are applied
    /// ([`StoreSettings::schema`]).
    pub async fn open(settings: &StoreSettings, key: SecretKey) -> Result<Self, StoreError> {
        let backend = Backend::connect(settings).await?;
        let store = Self {
            backend,
            key,
            timeout: std::time::Duration::from_millis(settings.timeout_ms),
        };
        match settings.schema {
            SchemaMode::Migrate => store.backend.migrate().await?,
            SchemaMode::RequireCurrent => store.bounded(store.backend.check_schema()).await?,
        }
        store.bounded(store.check_key()).await?;
        Ok(store)
    }

    /// Refuses a key other than the one the store was first opened with (whose check value
    /// the first opening writes; of two first openings at once, one check value wins).
    async fn check_key(&self) -> Result<(), StoreError> {
        const CONTEXT: &[u8] = b"portico/key-check";
        const READ: &str = "SELECT value FROM store_meta WHERE name = 'key_check'";
        const WRITE: &str = "INSERT INTO store_meta (name, value) VALUES ('key_check', $1) \
             ON CONFLICT (name) DO NOTHING";
        let sealed = self.key.seal(CONTEXT, b"portico");
        let stored: Vec<u8> = backend::on_pool!(&self.backend, pool => {
            sqlx::query(WRITE).bind(sealed).execute(pool).await?;
            sqlx::query_scalar(READ).fetch_one(pool).await?
        });
        match self.key.open(CONTEXT, &stored) {
            Some(_) => Ok(()),
            None => Err(StoreError::WrongKey),
        }
    }

    /// `operation`, or `Unavailable` when it takes longer than the store's timeout.
    pub(crate) async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                )))
            })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Closes every connection; in-flight operations finish first.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}
