//! The listener side: ALPN, key formats, client certificates, reload, bad files.

use super::*;

// ---- (a) server config and ALPN ----------------------------------------------------------

#[tokio::test]
async fn server_negotiates_h2_when_offered_and_http1_otherwise() {
    let pki = Pki::new();
    let server = ServerTls::load(&pki.server.server_settings()).unwrap();
    assert!(!server.requires_client_cert());
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(load_certificates(&pki.ca_file, "CA certificate").unwrap());
    let roots = Arc::new(roots);

    type Offered = &'static [&'static [u8]];
    let cases: [(Offered, Option<&[u8]>); 4] = [
        (&[ALPN_H2, ALPN_HTTP1], Some(ALPN_H2)),
        // The server's preference decides, not the client's order.
        (&[ALPN_HTTP1, ALPN_H2], Some(ALPN_H2)),
        (&[ALPN_HTTP1], Some(ALPN_HTTP1)),
        (&[], None),
    ];
    for (offered, expected) in cases {
        let mut client = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        client.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
        let connector = TlsConnector::from(Arc::new(client));

        let (address, server_task) = serve_once(server.config().clone()).await;
        let client_alpn = within(async {
            let tcp = TcpStream::connect(address).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.unwrap();
            tls.write_all(b"ping").await.unwrap();
            let mut pong = [0u8; 4];
            tls.read_exact(&mut pong).await.unwrap();
            tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
        })
        .await;
        let saw = server_task.await.unwrap().unwrap();
        assert_eq!(saw.alpn.as_deref(), expected, "offered {offered:?}");
        assert_eq!(client_alpn.as_deref(), expected, "offered {offered:?}");
    }
}

#[tokio::test]
async fn keys_in_pkcs8_pkcs1_and_sec1_files_all_serve() {
    let pki = Pki::new();
    let ca = TestCa::new("Key format CA");
    let ca_file = pki.dir.write("format-ca.crt", &ca.cert_pem);

    let ec_key = KeyPair::generate().unwrap();
    let ec =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, ec_key.serialized_der()).unwrap();
    let sec1: EcPrivateKeyRfc5915Der<'static> = ec.private_key().as_der().unwrap();
    let rsa_key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
    let pkcs1 = pkcs8_to_pkcs1(rsa_key.serialized_der());

    let cases = [
        ("pkcs8", &ec_key, ec_key.serialize_pem()),
        ("sec1", &ec_key, pem("EC PRIVATE KEY", sec1.as_ref())),
        ("pkcs1", &rsa_key, pem("RSA PRIVATE KEY", &pkcs1)),
    ];
    for (format, key, key_pem) in cases {
        assert!(
            key_pem.starts_with("-----BEGIN ")
                && key_pem.contains(match format {
                    "pkcs8" => "BEGIN PRIVATE KEY",
                    "sec1" => "BEGIN EC PRIVATE KEY",
                    _ => "BEGIN RSA PRIVATE KEY",
                }),
            "{format}"
        );
        let cert = ca.issue_server(key);
        let settings = ServerTlsSettings {
            cert_file: pki.dir.write(&format!("{format}.crt"), cert.pem()),
            key_file: pki.dir.write(&format!("{format}.key"), &key_pem),
            client_ca_file: None,
        };
        let server = ServerTls::load(&settings).unwrap_or_else(|error| panic!("{format}: {error}"));
        let upstream = UpstreamTls::new(
            &UpstreamTlsSettings {
                ca_file: Some(ca_file.clone()),
                ..UpstreamTlsSettings::default()
            },
            "localhost",
        )
        .unwrap();
        let (client, _) = handshake(&upstream, server.config()).await;
        assert_eq!(client.unwrap(), *cert.der(), "{format}");
    }
}

// ---- (c) client certificates --------------------------------------------------------------

fn server_requiring_client_certs(pki: &Pki) -> ServerTls {
    let settings = ServerTlsSettings {
        client_ca_file: Some(pki.client_ca_file.clone()),
        ..pki.server.server_settings()
    };
    let server = ServerTls::load(&settings).unwrap();
    assert!(server.requires_client_cert());
    server
}

#[tokio::test]
async fn mtls_client_certificate_is_presented_and_seen_by_the_server() {
    let pki = Pki::new();
    let server = server_requiring_client_certs(&pki);
    let mtls = UpstreamTlsSettings {
        client_cert: Some(pki.client.client_cert_files()),
        ..pki.trusting_ca()
    };
    let upstream = UpstreamTls::new(&mtls, "localhost").unwrap();

    let (client, saw) = handshake(&upstream, server.config()).await;
    assert_eq!(client.unwrap(), pki.server.cert_der);
    assert_eq!(saw.unwrap().client_cert, Some(pki.client.cert_der.clone()));
}

#[tokio::test]
async fn mtls_server_rejects_a_client_without_certificate() {
    let pki = Pki::new();
    let server = server_requiring_client_certs(&pki);
    let upstream = UpstreamTls::new(&pki.trusting_ca(), "localhost").unwrap();

    let (client, saw) = handshake(&upstream, server.config()).await;
    // With TLS 1.3 the client may finish its side first; the server's alert then fails the
    // first read.
    assert!(client.is_err());
    let server_error = saw.unwrap_err();
    assert!(
        server_error.contains("peer sent no certificates"),
        "{server_error}"
    );
}

#[tokio::test]
async fn mtls_server_rejects_a_certificate_from_another_ca() {
    let pki = Pki::new();
    let server = server_requiring_client_certs(&pki);
    // The rogue server certificate as a client certificate: not from the client CA.
    let wrong_client = UpstreamTlsSettings {
        client_cert: Some(pki.rogue.client_cert_files()),
        ..pki.trusting_ca()
    };
    let upstream = UpstreamTls::new(&wrong_client, "localhost").unwrap();

    let (client, saw) = handshake(&upstream, server.config()).await;
    assert!(client.is_err());
    let server_error = saw.unwrap_err();
    assert!(
        server_error.contains("invalid peer certificate"),
        "{server_error}"
    );
}

// ---- (d) certificate reload ---------------------------------------------------------------

#[tokio::test]
async fn resolver_serves_the_new_certificate_after_replace() {
    let pki = Pki::new();
    let server = ServerTls::load(&pki.server.server_settings()).unwrap();
    // A fresh client config each time: a resumed session would present no certificate.
    let trusting = || UpstreamTls::new(&pki.trusting_ca(), "localhost").unwrap();
    let insecure = || {
        let settings = UpstreamTlsSettings {
            insecure_skip_verify: true,
            ..UpstreamTlsSettings::default()
        };
        UpstreamTls::new(&settings, "localhost").unwrap()
    };
    let served = async |upstream: UpstreamTls| handshake(&upstream, server.config()).await.0;
    assert_eq!(served(trusting()).await.unwrap(), pki.server.cert_der);

    let rogue = load_certified_key(&pki.rogue.cert_file, &pki.rogue.key_file).unwrap();
    server.certificates().replace(Arc::new(rogue));
    assert_eq!(server.certificates().current().cert[0], pki.rogue.cert_der);
    // Same config, no new listener: the next handshake gets the new certificate.
    assert_eq!(served(insecure()).await.unwrap(), pki.rogue.cert_der);
    let error = served(trusting()).await.unwrap_err();
    assert!(error.to_string().contains("unknown issuer"), "{error}");

    // A reload that fails keeps serving what was there.
    let missing = pki.dir.0.join("missing.crt");
    let error = server
        .certificates()
        .reload(&missing, &pki.server.key_file)
        .unwrap_err();
    assert!(matches!(error, TlsError::ReadFile { .. }), "{error}");
    assert_eq!(served(insecure()).await.unwrap(), pki.rogue.cert_der);

    server
        .certificates()
        .reload(&pki.server.cert_file, &pki.server.key_file)
        .unwrap();
    assert_eq!(served(trusting()).await.unwrap(), pki.server.cert_der);
}

// ---- (e) bad files ------------------------------------------------------------------------

fn server_error(cert_file: &Path, key_file: &Path) -> TlsError {
    ServerTls::load(&ServerTlsSettings {
        cert_file: cert_file.to_owned(),
        key_file: key_file.to_owned(),
        client_ca_file: None,
    })
    .unwrap_err()
}

#[test]
fn bad_certificate_and_key_files_give_their_errors() {
    let pki = Pki::new();
    let missing = pki.dir.0.join("missing.pem");

    let error = server_error(&missing, &pki.server.key_file);
    assert!(
        matches!(&error, TlsError::ReadFile { what: "certificate", path, source }
            if *path == missing && source.kind() == io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&*missing.to_string_lossy()),
        "{error}"
    );

    // Key and certificate files swapped.
    let error = server_error(&pki.server.key_file, &pki.server.cert_file);
    assert!(
        matches!(&error, TlsError::NoCertificate { what: "certificate", path } if *path == pki.server.key_file),
        "{error:?}"
    );
    let error = server_error(&pki.server.cert_file, &pki.server.cert_file);
    assert!(
        matches!(&error, TlsError::NoPrivateKey { path } if *path == pki.server.cert_file),
        "{error:?}"
    );

    let error = server_error(&pki.server.cert_file, &pki.rogue.key_file);
    assert!(
        matches!(&error, TlsError::KeyMismatch { cert_path, key_path }
            if *cert_path == pki.server.cert_file && *key_path == pki.rogue.key_file),
        "{error:?}"
    );

    let truncated = pki
        .dir
        .write("truncated.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let error = server_error(&truncated, &pki.server.key_file);
    assert!(matches!(error, TlsError::InvalidPem { .. }), "{error:?}");

    // A key that is valid PEM but not a key: the error must not echo the file.
    let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtbG9n";
    let garbage = pki
        .dir
        .write("garbage.key", pem("PRIVATE KEY", secret.as_bytes()));
    let error = server_error(&pki.server.cert_file, &garbage);
    assert!(matches!(error, TlsError::UnusableKey { .. }), "{error:?}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(
            !shown.contains(secret) && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }
}
