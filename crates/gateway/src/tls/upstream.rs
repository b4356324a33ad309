//! Speaking TLS to an upstream: which roots are trusted, which name is verified (and sent as
//! SNI), an optional client certificate, and a fingerprint of all that for pool keys.
//!
//! The upstream client speaks HTTP/1.1 only, so only `http/1.1` is offered by ALPN.

use super::pem::{load_certificates, load_certified_key_as, root_store_from};
use super::{ALPN_HTTP1, TlsError, crypto_provider};
use aws_lc_rs::digest;
use rustls::client::WantsClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::SingleCertAndKey;
use rustls::{
    CertificateError, ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, DnsName, ServerName, UnixTime};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use portico_core::api::{ClientCertFiles, UpstreamTlsSettings};

/// TLS towards one upstream, built once per config version and shared by its connections.
#[derive(Clone)]
pub struct UpstreamTls {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    fingerprint: u64,
}

impl UpstreamTls {
    /// Loads the files named by `settings` and builds the client config. `upstream_host` is
    /// the host of the upstream URL (`example.com`, `10.0.0.7`, `[::1]`), used as the server
    /// name unless `settings.server_name` is set.
    pub fn new(settings: &UpstreamTlsSettings, upstream_host: &str) -> Result<Self, TlsError> {
        let name = settings.server_name.as_deref().unwrap_or(upstream_host);
        let server_name = parse_server_name(name)?;
        let mut fingerprint = Fingerprint::new(&server_name, settings.insecure_skip_verify);

        let provider = crypto_provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::config)?;
        let builder: ConfigBuilder<ClientConfig, WantsClientCert> = if settings.insecure_skip_verify
        {
            fingerprint.field(b"roots:none");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert {
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else if let Some(path) = &settings.ca_file {
            const WHAT: &str = "CA certificate";
            let certs = load_certificates(path, WHAT)?;
            fingerprint.field(b"roots:file");
            fingerprint.certificates(&certs);
            builder.with_root_certificates(root_store_from(&certs, path, WHAT)?)
        } else {
            fingerprint.field(b"roots:system");
            builder.with_root_certificates(system_roots()?)
        };

        let mut config = match &settings.client_cert {
            Some(files) => {
                let certified = load_certified_key_as(
                    &files.cert_file,
                    &files.key_file,
                    &provider,
                    "client certificate",
                )?;
                // Loaded here rather than by `with_client_auth_cert` for errors that name the
                // file. The chain stands for the key in the fingerprint: a key changed without
                // its certificate fails the key-match check on load.
                fingerprint.field(b"client:cert");
                fingerprint.certificates(&certified.cert);
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
            None => {
                fingerprint.field(b"client:none");
                builder.with_no_client_auth()
            }
        };
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];

        Ok(Self {
            config: Arc::new(config),
            server_name,
            fingerprint: fingerprint.finish(),
        })
    }

    /// The rustls client config.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name the upstream's certificate is verified against (and SNI, for a DNS name).
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// A stable identity of this TLS setup for connection-pool keys (next to scheme, host
    /// and port): a digest of the server name, the verification mode, the trusted CA
    /// certificates' contents and the client certificate chain. Equal setups give equal
    /// fingerprints, in any process; a CA or client certificate rotated under the same file
    /// name gives a new one, so pooled connections made with the old files are not reused.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Runs the TLS handshake over an open connection (a `TcpStream`, usually).
    ///
    /// Has no timeout of its own: bound it together with the TCP connect. On failure the
    /// error keeps the kind of the underlying error, its message says why (`TLS handshake
    /// with example.com failed: certificate verify failed: unknown issuer ...`), and its inner
    /// error is an [`UpstreamHandshakeError`] that holds the rustls error.
    pub async fn connect<S>(&self, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    UpstreamHandshakeError::new(&self.server_name, error),
                )
            })
    }
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.server_name)
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .finish_non_exhaustive()
    }
}

/// A failed handshake with an upstream, carried inside the `io::Error` that
/// [`UpstreamTls::connect`] returns.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake with {server_name} failed: {reason}")]
pub struct UpstreamHandshakeError {
    server_name: String,
    reason: String,
    #[source]
    source: io::Error,
}

impl UpstreamHandshakeError {
    fn new(server_name: &ServerName<'_>, source: io::Error) -> Self {
        Self {
            server_name: server_name.to_str().into_owned(),
            reason: describe_handshake_failure(&source),
            source,
        }
    }

    /// The rustls error, when the handshake failed in TLS rather than in I/O.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        self.source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    }
}

fn describe_handshake_failure(error: &io::Error) -> String {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "certificate verify failed: unknown issuer (not signed by a trusted CA)".to_owned()
        }
        Some(rustls::Error::InvalidCertificate(reason)) => {
            format!("certificate verify failed: {reason}")
        }
        Some(rustls::Error::AlertReceived(alert)) => {
            format!("the upstream refused the handshake (alert {alert:?})")
        }
        Some(other) => other.to_string(),
        None => error.to_string(),
    }
}

/// A URL host (or configured name) as a server name. IP addresses, bracketed or not, become
/// IP server names.
fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ServerName::from(ip));
    }
    DnsName::try_from(name.to_owned())
        .map(ServerName::DnsName)
        .map_err(|_| TlsError::InvalidServerName {
            name: name.to_owned(),
        })
}

/// The system's root certificates, loaded on first use and kept for the process. A failed
/// load is not kept, so a later config load tries again.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static SYSTEM_ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    if let Some(roots) = SYSTEM_ROOTS.get() {
        return Ok(roots.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, unparsable) = roots.add_parsable_certificates(loaded.certs);
    let problems: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    if added == 0 {
        let reason = if problems.is_empty() {
            format!("no usable certificate found ({unparsable} unparsable)")
        } else {
            problems.join("; ")
        };
        return Err(TlsError::SystemRoots { reason });
    }
    if unparsable > 0 || !problems.is_empty() {
        tracing::warn!(
            added,
            unparsable,
            problems = %problems.join("; "),
            "some system root certificates could not be loaded"
        );
    }
    Ok(SYSTEM_ROOTS.get_or_init(|| Arc::new(roots)).clone())
}

/// The verifier for `insecure_skip_verify`: any certificate is accepted, but the handshake
/// signatures must still be valid for the certificate presented, with the provider's
/// algorithms — the connection is encrypted and its peer holds the certificate's key, it is
/// just not authenticated.
#[derive(Debug)]
struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// SHA-256 over length-prefixed fields, cut to 64 bits: stable across processes and Rust
/// versions (unlike `DefaultHasher`), and no realistic chance that two setups collide.
struct Fingerprint(digest::Context);

impl Fingerprint {
    fn new(server_name: &ServerName<'_>, insecure_skip_verify: bool) -> Self {
        let mut fingerprint = Self(digest::Context::new(&digest::SHA256));
        fingerprint.field(b"portico upstream tls v1");
        fingerprint.field(server_name.to_str().as_bytes());
        fingerprint.field(&[u8::from(insecure_skip_verify)]);
        fingerprint
    }

    fn field(&mut self, bytes: &[u8]) {
        self.0.update(&(bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    fn certificates(&mut self, certs: &[CertificateDer<'_>]) {
        self.field(&(certs.len() as u64).to_be_bytes());
        for cert in certs {
            self.field(cert.as_ref());
        }
    }

    fn finish(self) -> u64 {
        let digest = self.0.finish();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_ref()[..8]);
        u64::from_be_bytes(first)
    }
}
