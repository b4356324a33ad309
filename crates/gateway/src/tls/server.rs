//! Serving TLS to clients: a listener's `ServerConfig`, with the certificate held in a
//! [`ReloadableCertResolver`] so a config reload replaces it for new handshakes while the
//! listeners, and the connections already open, stay as they are.

use super::pem::{load_certified_key, load_root_store};
use super::{ALPN_H2, ALPN_HTTP1, TlsError, crypto_provider};
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Where a TLS listener's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerTlsSettings {
    /// PEM file with the certificate chain, end-entity certificate first.
    pub cert_file: PathBuf,
    /// PEM file with the private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key_file: PathBuf,
    /// PEM file of CA certificates that sign client certificates. When set, every client must
    /// present a certificate chaining to one of them; when `None` (the default), clients are
    /// not asked for one.
    pub client_ca_file: Option<PathBuf>,
}

/// A TLS listener's configuration: ALPN `h2` then `http/1.1`, TLS 1.2 and 1.3, the
/// certificate from a [`ReloadableCertResolver`].
///
/// A new certificate and key (same client CA) need no new `ServerTls`: call
/// [`ReloadableCertResolver::reload`] on [`certificates`](Self::certificates). A changed
/// client CA needs a new config: build one with [`ServerTls::with_certificates`] around the
/// same resolver and have the listener pick up the new [`config`](Self::config).
pub struct ServerTls {
    config: Arc<ServerConfig>,
    certificates: Arc<ReloadableCertResolver>,
    requires_client_cert: bool,
}

impl ServerTls {
    /// Loads the certificate, key and (if set) client CA, and builds the config.
    pub fn load(settings: &ServerTlsSettings) -> Result<Self, TlsError> {
        let certificates = ReloadableCertResolver::load(&settings.cert_file, &settings.key_file)?;
        Self::with_certificates(Arc::new(certificates), settings.client_ca_file.as_deref())
    }

    /// Builds the config around an existing resolver (e.g. the previous config version's),
    /// requiring client certificates signed by `client_ca_file` when it is given.
    pub fn with_certificates(
        certificates: Arc<ReloadableCertResolver>,
        client_ca_file: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let provider = crypto_provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::config)?;
        let builder = match client_ca_file {
            Some(path) => {
                let roots = load_root_store(path, "client CA")?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|error| TlsError::ClientVerifier {
                            path: path.to_owned(),
                            reason: error.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(certificates.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Ok(Self {
            config: Arc::new(config),
            certificates,
            requires_client_cert: client_ca_file.is_some(),
        })
    }

    /// The rustls config, for `tokio_rustls::TlsAcceptor::from` or a hyper listener.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// An acceptor over this config.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_cert(&self) -> bool {
        self.requires_client_cert
    }

    /// The certificate this config serves, replaceable in place.
    pub fn certificates(&self) -> &Arc<ReloadableCertResolver> {
        &self.certificates
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificates", &self.certificates)
            .field("requires_client_cert", &self.requires_client_cert)
            .finish_non_exhaustive()
    }
}

/// The certificate served for every handshake, whatever the SNI name, swapped atomically:
/// a handshake reads it without a lock and sees either the old certificate or the new one.
///
/// A client resuming a session made before a swap (TLS session cache, 256 entries by
/// default) is not shown a certificate at all: its session stays authenticated by the old
/// one until it leaves the cache, as with any TLS server.
pub struct ReloadableCertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadableCertResolver {
    /// Serves `certified` until replaced.
    pub fn new(certified: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(certified),
        }
    }

    /// Loads a certificate chain and its matching key from PEM files.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let certified = load_certified_key(cert_file, key_file)?;
        Ok(Self::new(Arc::new(certified)))
    }

    /// Serves `certified` from the next handshake on; open connections are unaffected.
    pub fn replace(&self, certified: Arc<CertifiedKey>) {
        self.current.store(certified);
    }

    /// Loads fresh files and serves them from the next handshake on. On error the current
    /// certificate stays in place.
    pub fn reload(&self, cert_file: &Path, key_file: &Path) -> Result<(), TlsError> {
        let certified = load_certified_key(cert_file, key_file)?;
        self.replace(Arc::new(certified));
        Ok(())
    }

    /// The certificate being served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadableCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl fmt::Debug for ReloadableCertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The chain length only: never the key.
        f.debug_struct("ReloadableCertResolver")
            .field("chain_len", &self.current.load().cert.len())
            .finish()
    }
}
