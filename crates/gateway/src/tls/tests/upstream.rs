//! The upstream side: verification, `insecure_skip_verify`, server names, fingerprints,
//! bad files.

use super::*;

// ---- (b) upstream verification ------------------------------------------------------------

#[tokio::test]
async fn upstream_with_the_right_ca_completes_the_handshake() {
    let pki = Pki::new();
    let server = ServerTls::load(&pki.server.server_settings()).unwrap();

    for host in ["localhost", "127.0.0.1"] {
        let upstream = UpstreamTls::new(&pki.trusting_ca(), host).unwrap();
        let (client, saw) = handshake(&upstream, server.config()).await;
        assert_eq!(client.unwrap(), pki.server.cert_der, "{host}");
        // The upstream client offers HTTP/1.1 only.
        assert_eq!(saw.unwrap().alpn.as_deref(), Some(ALPN_HTTP1), "{host}");
    }
}

#[tokio::test]
async fn upstream_rejects_an_unknown_ca_and_says_why() {
    let pki = Pki::new();
    let rogue_server = ServerTls::load(&pki.rogue.server_settings()).unwrap();
    let upstream = UpstreamTls::new(&pki.trusting_ca(), "localhost").unwrap();

    let (client, saw) = handshake(&upstream, rogue_server.config()).await;
    let error = client.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    let message = error.to_string();
    assert!(
        message.contains("TLS handshake with localhost failed")
            && message.contains("certificate verify failed: unknown issuer"),
        "{message}"
    );
    assert_eq!(
        rustls_error(&error),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    assert!(saw.is_err(), "the server sees the client's alert");
}

#[tokio::test]
async fn upstream_rejects_a_certificate_for_another_name() {
    let pki = Pki::new();
    let server = ServerTls::load(&pki.server.server_settings()).unwrap();

    // Both a configured name and a default-from-host IP the certificate does not list.
    let wrong_name = UpstreamTlsSettings {
        server_name: Some("api.example.com".to_owned()),
        ..pki.trusting_ca()
    };
    for (settings, host, expected) in [
        (wrong_name, "localhost", "api.example.com"),
        (pki.trusting_ca(), "127.0.0.2", "127.0.0.2"),
    ] {
        let upstream = UpstreamTls::new(&settings, host).unwrap();
        let (client, _) = handshake(&upstream, server.config()).await;
        let error = client.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("certificate verify failed: certificate not valid for name")
                && message.contains(expected),
            "{message}"
        );
        assert!(matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
        ));
    }
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca() {
    let pki = Pki::new();
    let rogue_server = ServerTls::load(&pki.rogue.server_settings()).unwrap();
    let insecure = UpstreamTlsSettings {
        insecure_skip_verify: true,
        server_name: Some("not-on-the-cert.example".to_owned()),
        ..pki.trusting_ca()
    };
    let upstream = UpstreamTls::new(&insecure, "localhost").unwrap();

    let (client, saw) = handshake(&upstream, rogue_server.config()).await;
    assert_eq!(client.unwrap(), pki.rogue.cert_der);
    assert_eq!(saw.unwrap().alpn.as_deref(), Some(ALPN_HTTP1));
}

#[tokio::test]
async fn insecure_skip_verify_still_checks_handshake_signatures() {
    let pki = Pki::new();
    // A server that presents the rogue certificate but signs with another key, as a
    // man in the middle replaying someone else's certificate would.
    let impostor_key = KeyPair::generate().unwrap();
    let signer = crypto_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(impostor_key.serialize_der().into()))
        .unwrap();
    let impostor = CertifiedKey::new(vec![pki.rogue.cert_der.clone()], signer);
    let certificates = Arc::new(ReloadableCertResolver::new(Arc::new(impostor)));
    let server = ServerTls::with_certificates(certificates, None).unwrap();
    let insecure = UpstreamTlsSettings {
        insecure_skip_verify: true,
        ..UpstreamTlsSettings::default()
    };
    let upstream = UpstreamTls::new(&insecure, "localhost").unwrap();

    let (client, _) = handshake(&upstream, server.config()).await;
    let error = client.unwrap_err();
    assert!(
        matches!(rustls_error(&error), rustls::Error::InvalidCertificate(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("certificate verify failed"),
        "{error}"
    );
}

#[tokio::test]
async fn system_roots_do_not_trust_a_private_ca() {
    let pki = Pki::new();
    let server = ServerTls::load(&pki.server.server_settings()).unwrap();
    match UpstreamTls::new(&UpstreamTlsSettings::default(), "localhost") {
        Ok(upstream) => {
            let (client, _) = handshake(&upstream, server.config()).await;
            let error = client.unwrap_err();
            assert!(error.to_string().contains("unknown issuer"), "{error}");
        }
        // A machine without a system trust store must say so, not trust nothing silently.
        Err(error) => assert!(matches!(error, TlsError::SystemRoots { .. }), "{error}"),
    }
}

#[test]
fn server_name_comes_from_the_host_unless_configured() {
    let pki = Pki::new();
    let name = |settings: &UpstreamTlsSettings, host: &str| {
        UpstreamTls::new(settings, host)
            .unwrap()
            .server_name()
            .clone()
    };
    let trusting = pki.trusting_ca();
    assert_eq!(
        name(&trusting, "localhost"),
        ServerName::try_from("localhost").unwrap()
    );
    for ip in ["127.0.0.1", "[::1]", "::1"] {
        assert!(
            matches!(name(&trusting, ip), ServerName::IpAddress(_)),
            "{ip}"
        );
    }
    let configured = UpstreamTlsSettings {
        server_name: Some("api.internal".to_owned()),
        ..pki.trusting_ca()
    };
    assert_eq!(
        name(&configured, "10.0.0.7"),
        ServerName::try_from("api.internal").unwrap()
    );
    let error = UpstreamTls::new(&trusting, "not a name!").unwrap_err();
    assert!(matches!(error, TlsError::InvalidServerName { ref name } if name == "not a name!"));
}

#[test]
fn fingerprint_follows_settings_and_file_contents() {
    let pki = Pki::new();
    let fingerprint = |settings: &UpstreamTlsSettings, host: &str| {
        UpstreamTls::new(settings, host).unwrap().fingerprint()
    };
    let base = fingerprint(&pki.trusting_ca(), "localhost");
    assert_eq!(base, fingerprint(&pki.trusting_ca(), "localhost"));

    let with_name = UpstreamTlsSettings {
        server_name: Some("localhost".to_owned()),
        ..pki.trusting_ca()
    };
    // The server name is what counts, not where it came from.
    assert_eq!(base, fingerprint(&with_name, "127.0.0.1"));
    assert_ne!(base, fingerprint(&pki.trusting_ca(), "127.0.0.1"));

    let insecure = UpstreamTlsSettings {
        insecure_skip_verify: true,
        ..pki.trusting_ca()
    };
    assert_ne!(base, fingerprint(&insecure, "localhost"));

    let mtls = UpstreamTlsSettings {
        client_cert: Some(pki.client.client_cert_files()),
        ..pki.trusting_ca()
    };
    assert_ne!(base, fingerprint(&mtls, "localhost"));

    // Same path, new CA inside: a new identity, so old pooled connections are not reused.
    std::fs::write(&pki.ca_file, TestCa::new("Rotated CA").cert_pem).unwrap();
    assert_ne!(base, fingerprint(&pki.trusting_ca(), "localhost"));
}

#[test]
fn oversized_and_device_files_are_refused_at_once() {
    let pki = Pki::new();
    let big = pki.dir.write("big-ca.pem", vec![b'A'; 2 * 1024 * 1024]);
    let start = std::time::Instant::now();
    let error = UpstreamTls::new(
        &UpstreamTlsSettings {
            ca_file: Some(big.clone()),
            ..UpstreamTlsSettings::default()
        },
        "localhost",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot read CA certificate file {}: larger than 1048576 bytes (1 MiB)",
            big.display()
        )
    );
    for (cert_file, key_file) in [
        (PathBuf::from("/dev/zero"), pki.server.key_file.clone()),
        (pki.server.cert_file.clone(), PathBuf::from("/dev/zero")),
    ] {
        let error = UpstreamTls::new(
            &UpstreamTlsSettings {
                client_cert: Some(ClientCertFiles {
                    cert_file,
                    key_file,
                }),
                ..UpstreamTlsSettings::default()
            },
            "localhost",
        )
        .unwrap_err();
        assert!(
            error.to_string().ends_with("/dev/zero: not a regular file"),
            "{error}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn bad_ca_and_client_certificate_files_give_their_errors() {
    let pki = Pki::new();
    let missing = pki.dir.0.join("missing-ca.pem");

    let error = UpstreamTls::new(
        &UpstreamTlsSettings {
            ca_file: Some(missing.clone()),
            ..UpstreamTlsSettings::default()
        },
        "localhost",
    )
    .unwrap_err();
    assert!(
        matches!(&error, TlsError::ReadFile { what: "CA certificate", path, .. } if *path == missing),
        "{error:?}"
    );

    let error = UpstreamTls::new(
        &UpstreamTlsSettings {
            ca_file: Some(pki.server.key_file.clone()),
            ..UpstreamTlsSettings::default()
        },
        "localhost",
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            TlsError::NoCertificate {
                what: "CA certificate",
                ..
            }
        ),
        "{error:?}"
    );

    let mismatched = UpstreamTlsSettings {
        client_cert: Some(ClientCertFiles {
            cert_file: pki.client.cert_file.clone(),
            key_file: pki.server.key_file.clone(),
        }),
        ..pki.trusting_ca()
    };
    let error = UpstreamTls::new(&mismatched, "localhost").unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");

    let error = ServerTls::load(&ServerTlsSettings {
        client_ca_file: Some(pki.server.key_file.clone()),
        ..pki.server.server_settings()
    })
    .unwrap_err();
    assert!(
        matches!(
            error,
            TlsError::NoCertificate {
                what: "client CA",
                ..
            }
        ),
        "{error:?}"
    );
}
