//! TLS both ways and the two ways an upstream knows a request came from the gateway: HTTPS
//! upstreams (own CA, wrong name, unknown CA, skip-verify, client certificates), the TLS
//! listener (HTTP/1.1 and h2), and the gateway-signed upstream JWT checked with an ordinary
//! JWT library against the gateway's published JWKS.

use parking_lot::Mutex;
use portico_core::api::{ApiAuth, ClientCertFiles, UpstreamJwtSpec, UpstreamTlsSettings};
use portico_core::jwt::Algorithm;
use portico_gateway::tls::{ServerTls, ServerTlsSettings};
use portico_testkit::pki::Pki;
use portico_testkit::*;
use serde_json::Value;
use std::sync::Arc;

/// Log lines written while the guard lives (the test runtime is single-threaded, so the
/// gateway's tasks log on this thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

fn keyless_https(id: &str, upstream: &Upstream, tls: UpstreamTlsSettings) -> portico_core::ApiSpec {
    let mut spec = api(id, &format!("/{id}"), &upstream.https_url(), vec![]);
    spec.auth = ApiAuth::Keyless;
    spec.upstream_tls = tls;
    spec
}

#[tokio::test]
async fn https_upstreams_are_verified() {
    let pki = Pki::new();
    let good = Upstream::start_tls(&pki.server, None).await;
    let rogue = Upstream::start_tls(&pki.rogue, None).await;
    let trust = UpstreamTlsSettings {
        ca_file: Some(pki.ca_file.clone()),
        ..Default::default()
    };
    let mut wrong_name = keyless_https("wrongname", &good, trust.clone());
    wrong_name.upstream_tls.server_name = Some("elsewhere.example".into());
    let gw = start_gateway(&config(
        vec![
            keyless_https("good", &good, trust.clone()),
            keyless_https("rogue", &rogue, trust.clone()),
            wrong_name,
            keyless_https(
                "skip",
                &rogue,
                UpstreamTlsSettings {
                    insecure_skip_verify: true,
                    ..Default::default()
                },
            ),
        ],
        vec![],
    ))
    .await;
    let (logs, _guard) = Logs::capture();
    let r = get(&gw.url("/good/x"), None).await;
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(
        seen["headers"]["host"],
        format!("localhost:{}", good.addr.port())
    );
    assert_eq!(
        get(&gw.url("/good/y"), None).await.status(),
        200,
        "pooled TLS connection"
    );

    assert_eq!(get(&gw.url("/rogue/x"), None).await.status(), 502);
    assert!(logs.text().contains("unknown issuer"), "{}", logs.text());
    assert_eq!(get(&gw.url("/wrongname/x"), None).await.status(), 502);
    assert!(
        logs.text().to_lowercase().contains("not valid for name")
            || logs.text().contains("NotValidForName"),
        "{}",
        logs.text()
    );
    assert_eq!(
        get(&gw.url("/skip/x"), None).await.status(),
        200,
        "insecure_skip_verify"
    );
}

#[tokio::test]
async fn upstreams_requiring_client_certificates_get_one() {
    let pki = Pki::new();
    let strict = Upstream::start_tls(&pki.server, Some(&pki.client_ca_file)).await;
    let trust = UpstreamTlsSettings {
        ca_file: Some(pki.ca_file.clone()),
        ..Default::default()
    };
    let mut with_cert = keyless_https("mtls", &strict, trust.clone());
    with_cert.upstream_tls.client_cert = Some(ClientCertFiles {
        cert_file: pki.client.cert_file.clone(),
        key_file: pki.client.key_file.clone(),
    });
    let gw = start_gateway(&config(
        vec![with_cert, keyless_https("nocert", &strict, trust)],
        vec![],
    ))
    .await;
    let r = get(&gw.url("/mtls/x"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["headers"]["x-client-cert"],
        "present"
    );
    assert_eq!(get(&gw.url("/nocert/x"), None).await.status(), 502);
}

#[tokio::test]
async fn the_tls_listener_speaks_http1_and_h2() {
    let pki = Pki::new();
    let up = Upstream::start().await;
    let mut open = api("open", "/open", &up.url(), vec![]);
    open.auth = ApiAuth::Keyless;
    let gw = start_gateway(&config(vec![open], vec![])).await;
    let tls = ServerTls::load(&ServerTlsSettings {
        cert_file: pki.server.cert_file.clone(),
        key_file: pki.server.key_file.clone(),
        client_ca_file: None,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let gateway = gw.gateway.clone();
    tokio::spawn(async move {
        gateway
            .serve_tls(listener, &tls, std::future::pending())
            .await
    });
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let url = format!("https://localhost:{port}/open/x");
    for (client, version) in [
        (
            reqwest::Client::builder().http1_only(),
            reqwest::Version::HTTP_11,
        ),
        (reqwest::Client::builder(), reqwest::Version::HTTP_2),
    ] {
        let client = client
            .tls_certs_only([ca.clone()])
            .no_proxy()
            .build()
            .unwrap();
        let r = client.get(&url).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version));
        let seen: Value = r.json().await.unwrap();
        assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    }
}

#[derive(Debug, serde::Deserialize)]
struct UpstreamClaims {
    iss: String,
    aud: String,
    sub: String,
    caller_iss: String,
    exp: u64,
}

#[tokio::test]
async fn the_upstream_verifies_the_gateway_signed_jwt_with_the_published_jwks() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let mut orders = api("orders", "/orders", &up.url(), vec![trust_pem(&key)]);
    let signing = portico_auth::sign::SigningKey::generate(Algorithm::ES256).unwrap();
    orders.upstream_jwt = Some(UpstreamJwtSpec {
        algorithm: Algorithm::ES256,
        private_key_pem: signing.private_key_pem().unwrap(),
        kid: "gw-1".into(),
        header: "X-Portico-JWT".into(),
        ttl_secs: 60,
    });
    let mut cfg = config(vec![orders], vec![]);
    cfg.settings.gateway_name = "edge-1".into();
    cfg.settings.jwks_path = Some("/.well-known/gateway-jwks.json".into());
    let gw = start_gateway(&cfg).await;
    let token = sign(&key, &claims("alice"));
    let forged = client()
        .get(gw.url("/orders/x"))
        .bearer_auth(&token)
        .header("x-portico-jwt", "forged")
        .send()
        .await
        .unwrap();
    let first: Value = forged.json().await.unwrap();
    let upstream_jwt = first["headers"]["x-portico-jwt"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(upstream_jwt, "forged");

    // What an upstream does: fetch the JWKS, pick the key by kid, verify.
    let admin_jwks: Value = client()
        .get(format!("http://{}/.well-known/jwks.json", gw.admin))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gateway_jwks: Value = get(&gw.url("/.well-known/gateway-jwks.json"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admin_jwks, gateway_jwks);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(gateway_jwks).unwrap();
    let header = jsonwebtoken::decode_header(&upstream_jwt).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["orders"]);
    validation.set_issuer(&["edge-1"]);
    let verified = jsonwebtoken::decode::<UpstreamClaims>(
        &upstream_jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        (
            verified.iss.as_str(),
            verified.aud.as_str(),
            verified.sub.as_str()
        ),
        ("edge-1", "orders", "alice")
    );
    assert_eq!(verified.caller_iss, ISSUER);
    assert!(verified.exp > now() && verified.exp <= now() + 61);

    // Reused, not re-signed, for the next request of the same caller.
    let again: Value = get(&gw.url("/orders/x"), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["headers"]["x-portico-jwt"], upstream_jwt.as_str());
}
