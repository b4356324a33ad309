//! Where an issuer's keys come from at run time: a fixed key set, or a JWKS fetched (directly
//! or through OIDC discovery) and kept fresh, and whether a remote key that verified a token is
//! still there.

pub(crate) mod fetch;
mod liveness;
mod registry;
mod remote;

pub use fetch::FetchError;
pub use liveness::KeyLiveness;
pub use registry::{KeyFetchObserver, KeySetRefresh, KeySourceRegistry};
pub use remote::{JwksLocation, RemoteKeySet};

use crate::keys::KeySet;
use std::sync::Arc;

/// The keys of one trusted issuer.
#[derive(Debug, Clone)]
pub enum KeySource {
    Static(Arc<KeySet>),
    Remote(Arc<RemoteKeySet>),
    /// No local keys: the issuer's tokens are introspected.
    None,
}
