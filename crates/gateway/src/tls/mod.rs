//! TLS building blocks: serving TLS to clients and speaking TLS to upstreams.
//!
//! - [`server`]: [`ServerTls`], a listener's `rustls::ServerConfig` (ALPN `h2`, `http/1.1`,
//!   optional client certificates) whose certificate sits in a [`ReloadableCertResolver`], so
//!   a config reload swaps the certificate without rebuilding listeners.
//! - [`upstream`]: [`UpstreamTls`], the client side for one upstream: trusted roots (a CA file
//!   or the system's), optional client certificate (mTLS), the server name to verify, and a
//!   fingerprint for connection-pool keys.
//! - `pem`: reading certificates and keys from PEM files, with errors that name the file and
//!   the reason, never the key material.
//!
//! One crypto library in the binary: everything here is built on the aws-lc-rs provider,
//! passed explicitly ([`crypto_provider`]); nothing installs or relies on a process-wide
//! default provider. Files are read synchronously: build these at config load, or from
//! `spawn_blocking`, not on the request path.

mod pem;
pub mod server;
pub mod upstream;

#[cfg(test)]
mod tests;

pub use pem::load_certified_key;
pub use server::{ReloadableCertResolver, ServerTls, ServerTlsSettings};
pub use upstream::{ClientCertFiles, UpstreamHandshakeError, UpstreamTls, UpstreamTlsSettings};

use rustls::crypto::CryptoProvider;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The crypto provider for every TLS config Portico builds: aws-lc-rs with its default
/// cipher suites, key exchange groups and signature algorithms.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Why a TLS configuration could not be built. Messages name the file and the reason; they
/// never include key material or file contents.
///
/// `what` fields say which file it was: `"certificate"`, `"CA certificate"`, `"client CA"`,
/// `"client certificate"`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("cannot read {what} file {}: {source}", .path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{what} file {} is not valid PEM: {reason}", .path.display())]
    InvalidPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The file has no `BEGIN CERTIFICATE` section.
    #[error("{what} file {} contains no certificate (no \"BEGIN CERTIFICATE\" section)", .path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    /// A certificate in the file could not be parsed or used.
    #[error("{what} file {} holds an unusable certificate: {reason}", .path.display())]
    InvalidCertificate {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The file has no PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key section.
    #[error(
        "private key file {} contains no private key (expected \"BEGIN PRIVATE KEY\", \
         \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\")",
        .path.display()
    )]
    NoPrivateKey { path: PathBuf },
    /// The private key could not be loaded (malformed, or an unsupported algorithm).
    #[error("private key file {} holds an unusable key: {reason}", .path.display())]
    UnusableKey { path: PathBuf, reason: String },
    /// The private key is not the one the certificate was issued for.
    #[error(
        "private key {} does not match the certificate {}",
        .key_path.display(),
        .cert_path.display()
    )]
    KeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    /// A client CA file loaded but no client-certificate verifier could be built from it.
    #[error("client CA file {}: {reason}", .path.display())]
    ClientVerifier { path: PathBuf, reason: String },
    /// The system's root certificates could not be loaded.
    #[error("cannot load the system root certificates: {reason}")]
    SystemRoots { reason: String },
    /// The name to verify the upstream's certificate against is neither a DNS name nor an IP
    /// address.
    #[error("invalid TLS server name {name:?}: not a DNS name or an IP address")]
    InvalidServerName { name: String },
    /// rustls refused the configuration itself (no usable protocol version or cipher suite).
    #[error("TLS configuration rejected: {reason}")]
    Config { reason: String },
}

impl TlsError {
    fn config(error: rustls::Error) -> Self {
        Self::Config {
            reason: error.to_string(),
        }
    }
}
