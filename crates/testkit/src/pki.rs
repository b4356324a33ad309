//! Certificates made in the test: a CA with a server certificate for `localhost` and
//! `127.0.0.1`, a CA nobody trusts with a certificate for the same names, and a client CA with
//! a client certificate; all written as PEM files.

use crate::tempdir::TempDir;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;

/// A certificate chain file and its key file.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub cert_pem: String,
}

pub struct Pki {
    _dir: TempDir,
    /// The CA that signed `server`.
    pub ca_file: PathBuf,
    pub ca_pem: String,
    /// `localhost` and `127.0.0.1`, signed by `ca_file`.
    pub server: CertFiles,
    /// The same names, signed by a CA nobody trusts.
    pub rogue: CertFiles,
    /// The CA that signed `client`.
    pub client_ca_file: PathBuf,
    pub client: CertFiles,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed");
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(
        &self,
        dir: &TempDir,
        file: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> CertFiles {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        CertFiles {
            cert_file: dir.write(&format!("{file}.crt"), cert.pem()),
            key_file: dir.write(&format!("{file}.key"), key.serialize_pem()),
            cert_pem: cert.pem(),
        }
    }
}

impl Pki {
    pub fn new() -> Self {
        let dir = TempDir::new("pki");
        let ca = Ca::new("Portico test CA");
        let rogue_ca = Ca::new("Unknown CA");
        let client_ca = Ca::new("Portico test client CA");
        let names = ["localhost", "127.0.0.1"];
        Self {
            server: ca.issue(&dir, "server", &names, ExtendedKeyUsagePurpose::ServerAuth),
            rogue: rogue_ca.issue(&dir, "rogue", &names, ExtendedKeyUsagePurpose::ServerAuth),
            client: client_ca.issue(&dir, "client", &[], ExtendedKeyUsagePurpose::ClientAuth),
            ca_file: dir.write("ca.crt", &ca.pem),
            ca_pem: ca.pem,
            client_ca_file: dir.write("client-ca.crt", &client_ca.pem),
            _dir: dir,
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}
