//! Certificates and private keys from PEM files. Errors name the file and the reason, never
//! the file's contents: a key file's bytes stay out of messages and logs.

use super::{TlsError, crypto_provider};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Bounded like every file a configuration names: a regular file of at most 1 MiB, so a
/// path such as `/dev/zero` is refused at once instead of read until memory runs out.
fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    portico_config::files::read_bounded(path).map_err(|source| TlsError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// A PEM syntax problem, said without quoting the file (its lines may be key material).
fn pem_reason(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "malformed BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".to_owned(),
        pem::Error::SectionTooLarge => "a section is too large".to_owned(),
        pem::Error::Io(error) => error.to_string(),
        _ => "unreadable PEM".to_owned(),
    }
}

/// Every certificate in a PEM file, in file order (a chain: end-entity first). Sections of
/// other kinds are skipped; a file with no certificate is an error.
pub(crate) fn load_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::InvalidPem {
            what,
            path: path.to_owned(),
            reason: pem_reason(&error),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 RSA
/// (`BEGIN RSA PRIVATE KEY`) or SEC1 EC (`BEGIN EC PRIVATE KEY`).
pub(crate) fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "private key";
    let bytes = read_file(path, WHAT)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => TlsError::InvalidPem {
            what: WHAT,
            path: path.to_owned(),
            reason: pem_reason(&other),
        },
    })
}

/// A certificate chain and its private key, loaded and checked to belong together (the key's
/// public half is the end-entity certificate's), ready for a [`ReloadableCertResolver`].
///
/// [`ReloadableCertResolver`]: super::ReloadableCertResolver
pub fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    load_certified_key_as(cert_file, key_file, &crypto_provider(), "certificate")
}

pub(crate) fn load_certified_key_as(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
    what: &'static str,
) -> Result<CertifiedKey, TlsError> {
    let chain = load_certificates(cert_file, what)?;
    let key = load_private_key(key_file)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::UnusableKey {
            path: key_file.to_owned(),
            reason: error.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // `Unknown`: the key type cannot report its public key; rustls accepts those too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            cert_path: cert_file.to_owned(),
            key_path: key_file.to_owned(),
        }),
        Err(error) => Err(TlsError::InvalidCertificate {
            what,
            path: cert_file.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// Trust anchors from a PEM file of CA certificates. Every certificate must be usable: a
/// bundle with a broken entry is an error rather than a silently smaller trust set.
pub(crate) fn load_root_store(path: &Path, what: &'static str) -> Result<RootCertStore, TlsError> {
    root_store_from(&load_certificates(path, what)?, path, what)
}

/// Trust anchors from CA certificates already read from `path` (named in errors).
pub(crate) fn root_store_from(
    certs: &[CertificateDer<'static>],
    path: &Path,
    what: &'static str,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert.clone())
            .map_err(|error| TlsError::InvalidCertificate {
                what,
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
    }
    Ok(roots)
}
