//! Real handshakes over loopback TCP, with certificates made here by rcgen: the fixtures
//! here, the cases in [`server`] (listener side) and [`upstream`] (client side).

mod server;
mod upstream;

use super::pem::load_certificates;
use super::*;
use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256, RsaKeySize,
};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

// ---- certificates and files -------------------------------------------------------------

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "portico-tls-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA that issues certificates.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `key`, with the IP and DNS names in `names`.
    fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        key: &KeyPair,
        usage: ExtendedKeyUsagePurpose,
    ) -> rcgen::Certificate {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.signed_by(key, &self.issuer).unwrap()
    }

    fn issue_server(&self, key: &KeyPair) -> rcgen::Certificate {
        self.issue(
            "localhost",
            &["localhost", "127.0.0.1"],
            key,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

/// A certificate and its key, written as PEM files.
struct Identity {
    cert_file: PathBuf,
    key_file: PathBuf,
    cert_der: CertificateDer<'static>,
}

impl Identity {
    fn write(dir: &TempDir, name: &str, cert: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            cert_file: dir.write(&format!("{name}.crt"), cert.pem()),
            key_file: dir.write(&format!("{name}.key"), key.serialize_pem()),
            cert_der: cert.der().clone(),
        }
    }

    fn server_settings(&self) -> ServerTlsSettings {
        ServerTlsSettings {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: None,
        }
    }

    fn client_cert_files(&self) -> ClientCertFiles {
        ClientCertFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

/// Everything the tests need: a trusted CA and its server certificate; a "rogue" server
/// certificate from a CA nobody trusts; a client CA and its client certificate.
struct Pki {
    dir: TempDir,
    ca_file: PathBuf,
    server: Identity,
    rogue: Identity,
    client_ca_file: PathBuf,
    client: Identity,
}

impl Pki {
    fn new() -> Self {
        let dir = TempDir::new();
        let ca = TestCa::new("Portico test CA");
        let server_key = KeyPair::generate().unwrap();
        let server = Identity::write(&dir, "server", &ca.issue_server(&server_key), &server_key);

        let unknown_ca = TestCa::new("Unknown test CA");
        let rogue_key = KeyPair::generate().unwrap();
        let rogue_cert = unknown_ca.issue_server(&rogue_key);
        let rogue = Identity::write(&dir, "rogue", &rogue_cert, &rogue_key);

        let client_ca = TestCa::new("Portico test client CA");
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_ca.issue(
            "portico-gateway",
            &[],
            &client_key,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let client = Identity::write(&dir, "client", &client_cert, &client_key);

        Self {
            ca_file: dir.write("ca.crt", &ca.cert_pem),
            client_ca_file: dir.write("client-ca.crt", &client_ca.cert_pem),
            server,
            rogue,
            client,
            dir,
        }
    }

    fn trusting_ca(&self) -> UpstreamTlsSettings {
        UpstreamTlsSettings {
            ca_file: Some(self.ca_file.clone()),
            ..UpstreamTlsSettings::default()
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER element at the start of `input`: its tag, its contents, what follows it.
fn der_element(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (len, header) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let len = input[2..2 + count]
                .iter()
                .fold(0, |len, byte| len << 8 | usize::from(*byte));
            (len, 2 + count)
        }
    };
    (
        input[0],
        &input[header..header + len],
        &input[header + len..],
    )
}

/// PKCS#1 `RSAPrivateKey` out of a PKCS#8 `PrivateKeyInfo`: its `privateKey` octet string.
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    let (_, info, _) = der_element(pkcs8);
    let (_, _version, rest) = der_element(info);
    let (_, _algorithm, rest) = der_element(rest);
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    private_key.to_vec()
}

// ---- loopback peers ----------------------------------------------------------------------

/// Fails the test instead of hanging it.
async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}

/// What the server side saw of one connection.
#[derive(Debug)]
struct ServerSaw {
    alpn: Option<Vec<u8>>,
    client_cert: Option<CertificateDer<'static>>,
}

/// Accepts one TLS connection on a fresh loopback port, reads `ping`, answers `pong`.
async fn serve_once(
    config: Arc<ServerConfig>,
) -> (SocketAddr, JoinHandle<Result<ServerSaw, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let (_, connection) = tls.get_ref();
        Ok(ServerSaw {
            alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
            client_cert: connection
                .peer_certificates()
                .and_then(|c| c.first().cloned()),
        })
    });
    (address, server)
}

/// Connects through `upstream`, exchanges ping/pong, returns the certificate the server
/// presented.
async fn talk(upstream: &UpstreamTls, address: SocketAddr) -> io::Result<CertificateDer<'static>> {
    let tcp = TcpStream::connect(address).await?;
    let mut tls = upstream.connect(tcp).await?;
    tls.write_all(b"ping").await?;
    let mut pong = [0u8; 4];
    tls.read_exact(&mut pong).await?;
    assert_eq!(&pong, b"pong");
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].clone())
}

/// One handshake of `upstream` against a server with `config`: what the client got, what
/// the server saw.
async fn handshake(
    upstream: &UpstreamTls,
    config: &Arc<ServerConfig>,
) -> (
    io::Result<CertificateDer<'static>>,
    Result<ServerSaw, String>,
) {
    within(async {
        let (address, server) = serve_once(config.clone()).await;
        let client = talk(upstream, address).await;
        (client, server.await.unwrap())
    })
    .await
}

fn rustls_error(error: &io::Error) -> &rustls::Error {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<UpstreamHandshakeError>())
        .and_then(UpstreamHandshakeError::tls_error)
        .unwrap_or_else(|| panic!("no TLS error inside {error:?}"))
}
