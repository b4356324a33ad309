//! Attack and malformed-token cases over real HTTP: every one is a 401 with
//! `error="invalid_token"`, and the upstream never sees the request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portico_auth::sign::SigningKey;
use portico_core::jwt::{Algorithm, IssuerTrust, KeySourceSpec};
use portico_testkit::*;
use serde_json::{Map, Value, json};
use std::sync::atomic::Ordering;

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn forge(header: Value, claims: &Map<String, Value>, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(Value::Object(claims.clone()).to_string().as_bytes()),
        b64(signature)
    )
}

async fn assert_rejected(gw: &RunningGateway, token: &str, what: &str) {
    let r = get(&gw.url("/orders/x"), Some(token)).await;
    assert_eq!(r.status(), 401, "{what}");
    let challenge = www_authenticate(&r);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{what}: {challenge}"
    );
    let body = r.text().await.unwrap();
    assert!(
        !body.contains(token.split('.').next().unwrap_or("x")) || token.len() < 8,
        "{what}: body echoes the token"
    );
}

#[tokio::test]
async fn forged_and_broken_tokens_are_rejected() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let public_pem = key.public_key_pem().unwrap();
    let gw = start_gateway(&config(
        vec![api("orders", "/orders", &up.url(), vec![trust_pem(&key)])],
        vec![],
    ))
    .await;
    let good = sign(&key, &claims("alice"));
    assert_eq!(get(&gw.url("/orders/x"), Some(&good)).await.status(), 200);
    let hits_after_good = up.hits.load(Ordering::SeqCst);

    for alg in ["none", "None", "NONE", "nOnE"] {
        assert_rejected(
            &gw,
            &forge(json!({"alg": alg, "typ": "JWT"}), &claims("alice"), b""),
            alg,
        )
        .await;
        assert_rejected(
            &gw,
            &format!(
                "{}.",
                forge(json!({"alg": alg}), &claims("alice"), b"").trim_end_matches('.')
            ),
            alg,
        )
        .await;
    }
    // HS256 signed with the RSA public key (PEM text) as the HMAC secret.
    let confused = SigningKey::from_secret(Algorithm::HS256, public_pem.as_bytes()).unwrap();
    assert_rejected(
        &gw,
        &sign(&confused, &claims("alice")),
        "HS256 with the RSA public key as secret",
    )
    .await;

    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let last = parts[2].pop().unwrap();
    parts[2].push(if last == 'A' { 'B' } else { 'A' });
    assert_rejected(&gw, &parts.join("."), "modified signature").await;
    let payload = b64(Value::Object(claims("mallory")).to_string().as_bytes());
    let swapped = format!(
        "{}.{}.{}",
        good.split('.').next().unwrap(),
        payload,
        good.split('.').nth(2).unwrap()
    );
    assert_rejected(&gw, &swapped, "payload swapped under a valid signature").await;

    assert_rejected(
        &gw,
        &sign(&key, &with(claims("alice"), json!({"exp": now() - 10}))),
        "expired",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(&key, &with(claims("alice"), json!({"nbf": now() + 600}))),
        "not yet valid",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(&key, &with(claims("alice"), json!({"iat": now() + 600}))),
        "issued in the future",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(
            &key,
            &with(claims("alice"), json!({"iss": "https://evil.test"})),
        ),
        "wrong iss",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(&key, &with(claims("alice"), json!({"aud": "other-api"}))),
        "wrong aud",
    )
    .await;
    let mut no_exp = claims("alice");
    no_exp.remove("exp");
    assert_rejected(&gw, &sign(&key, &no_exp), "no exp").await;
    assert_rejected(
        &gw,
        &sign(&rsa_key(), &claims("alice")),
        "signed by another key",
    )
    .await;
    assert_rejected(&gw, &good[..good.len() / 2], "truncated").await;
    assert_rejected(&gw, "garbage", "garbage").await;
    assert_rejected(&gw, "a.b.c", "three parts of garbage").await;
    assert_rejected(&gw, &format!("{good}.extra"), "four parts").await;
    let huge = sign(
        &key,
        &with(claims("alice"), json!({"pad": "x".repeat(10_000)})),
    );
    let r = get(&gw.url("/orders/x"), Some(&huge)).await;
    assert_eq!(r.status(), 401, "oversized");
    assert!(www_authenticate(&r).contains("larger than"));
    let crit = key
        .sign_jwt(
            &claims("alice"),
            json!({"crit": ["urn:x"], "urn:x": 1}).as_object().unwrap(),
        )
        .unwrap();
    assert_rejected(&gw, &crit, "unknown crit").await;
    let typ = key
        .sign_jwt(
            &claims("alice"),
            json!({"typ": "secevent+jwt"}).as_object().unwrap(),
        )
        .unwrap();
    assert_rejected(&gw, &typ, "wrong typ").await;
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        hits_after_good,
        "no rejected request reached the upstream"
    );
}

#[tokio::test]
async fn header_key_references_are_never_fetched_or_trusted() {
    let up = Upstream::start().await;
    let trap = Upstream::start().await; // counts any fetch of jku / x5u
    let key = rsa_key();
    let gw = start_gateway(&config(
        vec![api("orders", "/orders", &up.url(), vec![trust_pem(&key)])],
        vec![],
    ))
    .await;
    let attacker = SigningKey::generate(Algorithm::RS256).unwrap();
    let jwk = attacker.public_jwk().unwrap();
    let header = json!({"jku": format!("{}/jwks", trap.url()), "x5u": format!("{}/cert", trap.url()), "jwk": jwk});
    let token = attacker
        .sign_jwt(&claims("alice"), header.as_object().unwrap())
        .unwrap();
    assert_rejected(&gw, &token, "self-signed with an embedded jwk / jku / x5u").await;
    assert_eq!(trap.hits.load(Ordering::SeqCst), 0, "jku/x5u were fetched");
}

#[tokio::test]
async fn kid_is_only_a_lookup_key() {
    let up = Upstream::start().await;
    let key = rsa_key();
    let jwks = json!({"keys": [key.public_jwk().unwrap()]}).to_string();
    let mut trust = IssuerTrust::new(Some(ISSUER.into()), KeySourceSpec::JwksDocument(jwks));
    trust.audiences = vec![AUDIENCE.into()];
    let gw = start_gateway(&config(
        vec![api("orders", "/orders", &up.url(), vec![trust])],
        vec![],
    ))
    .await;
    assert_eq!(
        get(&gw.url("/orders/x"), Some(&sign(&key, &claims("alice"))))
            .await
            .status(),
        200
    );
    for kid in ["../../../../etc/passwd", "/dev/null", "k1' OR '1'='1", ""] {
        let other = SigningKey::generate(Algorithm::RS256)
            .unwrap()
            .with_kid(kid);
        assert_rejected(&gw, &sign(&other, &claims("alice")), kid).await;
    }
}

#[tokio::test]
async fn missing_token_gets_a_bare_challenge() {
    let (_up, _key, gw) = orders_gateway().await;
    let r = get(&gw.url("/orders/x"), None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www_authenticate(&r), "Bearer");
    let r = client()
        .get(gw.url("/orders/x"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(www_authenticate(&r), "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn several_issuers_are_selected_by_exact_iss() {
    let up = Upstream::start().await;
    let (a, b) = (rsa_key(), SigningKey::generate(Algorithm::ES256).unwrap());
    let mut trust_b = IssuerTrust::new(
        Some("https://b.test".into()),
        KeySourceSpec::PublicKeyPem(b.public_key_pem().unwrap()),
    );
    trust_b.require_at_jwt = true;
    let gw = start_gateway(&config(
        vec![api(
            "orders",
            "/orders",
            &up.url(),
            vec![trust_pem(&a), trust_b],
        )],
        vec![],
    ))
    .await;
    let b_claims = with(claims("bob"), json!({"iss": "https://b.test"}));
    let at_jwt = json!({"typ": "at+jwt"});
    assert_eq!(
        get(
            &gw.url("/orders/x"),
            Some(&b.sign_jwt(&b_claims, at_jwt.as_object().unwrap()).unwrap())
        )
        .await
        .status(),
        200
    );
    assert_rejected(&gw, &sign(&b, &b_claims), "issuer b requires at+jwt").await;
    assert_rejected(
        &gw,
        &b.sign_jwt(&claims("bob"), at_jwt.as_object().unwrap())
            .unwrap(),
        "b's key under a's iss",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(&a, &with(claims("x"), json!({"iss": "https://b.test"}))),
        "a's key under b's iss",
    )
    .await;
    assert_rejected(
        &gw,
        &sign(&a, &with(claims("x"), json!({"iss": "https://B.test"}))),
        "iss is case-sensitive",
    )
    .await;
}
