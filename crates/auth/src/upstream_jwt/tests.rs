//! Unit tests of the upstream JWT signer, its cache key and its JWKS.

use super::*;
use crate::jws::b64url_decode;
use std::collections::HashSet;

const NOW: u64 = 1_700_000_000;

fn pem(alg: Algorithm) -> String {
    SigningKey::generate(alg)
        .unwrap()
        .private_key_pem()
        .unwrap()
}

fn valid_settings(alg: Algorithm) -> UpstreamJwtSettings {
    UpstreamJwtSettings::new(alg, pem(alg), "gw-1", "portico-edge")
}

fn signer(alg: Algorithm) -> UpstreamJwtSigner {
    UpstreamJwtSigner::new(valid_settings(alg)).unwrap()
}

fn caller() -> UpstreamCaller<'static> {
    UpstreamCaller {
        api_id: "orders",
        identity: "alice",
        issuer: Some("https://idp.example/realms/shop"),
        client_id: Some("shop-app"),
        scope: Some("orders:read plan:gold"),
        policies_fingerprint: 7,
    }
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&b64url_decode(part).unwrap()).unwrap()
}

/// Header and claims of a compact JWS.
fn parts(token: &Bytes) -> (Value, Value) {
    let text = std::str::from_utf8(token).unwrap();
    let mut parts = text.split('.');
    let header = decode(parts.next().unwrap());
    let claims = decode(parts.next().unwrap());
    assert!(!parts.next().unwrap().is_empty());
    (header, claims)
}

#[test]
fn claims_and_header_are_as_documented() {
    for alg in UPSTREAM_JWT_ALGORITHMS {
        let token = signer(alg).token_for(&caller(), NOW).unwrap();
        let (header, mut claims) = parts(&token);
        assert_eq!(
            header,
            json!({"alg": alg.as_str(), "kid": "gw-1", "typ": "JWT"})
        );
        let jti = claims.as_object_mut().unwrap().remove("jti").unwrap();
        assert_eq!(b64url_decode(jti.as_str().unwrap()).unwrap().len(), 16);
        assert_eq!(
            claims,
            json!({
                "iss": "portico-edge",
                "aud": "orders",
                "sub": "alice",
                "caller_iss": "https://idp.example/realms/shop",
                "client_id": "shop-app",
                "scope": "orders:read plan:gold",
                "iat": NOW,
                "exp": NOW + DEFAULT_UPSTREAM_JWT_TTL_SECS,
            }),
            "{alg}"
        );
    }
}

#[test]
fn unknown_caller_details_are_left_out() {
    let caller = UpstreamCaller {
        issuer: None,
        client_id: Some(""),
        scope: None,
        ..caller()
    };
    let (_, claims) = parts(&signer(Algorithm::EdDSA).token_for(&caller, NOW).unwrap());
    let names: HashSet<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        HashSet::from(["iss", "aud", "sub", "iat", "exp", "jti"])
    );
}

#[test]
fn a_token_is_reused_while_half_its_lifetime_remains() {
    let signer = signer(Algorithm::ES256);
    let first = signer.token_for(&caller(), NOW).unwrap();
    let again = signer.token_for(&caller(), NOW + 30).unwrap();
    assert_eq!(first, again);
    // The very same bytes: nothing was signed.
    assert_eq!(first.as_ptr(), again.as_ptr());

    let fresh = signer.token_for(&caller(), NOW + 31).unwrap();
    assert_ne!(fresh, first);
    let (_, old_claims) = parts(&first);
    let (_, new_claims) = parts(&fresh);
    assert_ne!(old_claims["jti"], new_claims["jti"]);
    assert_eq!(new_claims["iat"], NOW + 31);
    assert_eq!(new_claims["exp"], NOW + 31 + 60);
    assert_eq!(signer.token_for(&caller(), NOW + 61).unwrap(), fresh);
    assert_eq!(signer.cached_tokens(), 1);
}

#[test]
fn different_callers_get_different_tokens() {
    let signer = signer(Algorithm::EdDSA);
    let base = caller();
    let callers = [
        base,
        UpstreamCaller {
            api_id: "billing",
            ..base
        },
        UpstreamCaller {
            identity: "bob",
            ..base
        },
        UpstreamCaller {
            issuer: Some("https://other.example"),
            ..base
        },
        UpstreamCaller {
            issuer: None,
            ..base
        },
        UpstreamCaller {
            client_id: Some("cli"),
            ..base
        },
        UpstreamCaller {
            scope: Some("orders:read"),
            ..base
        },
        UpstreamCaller {
            policies_fingerprint: 8,
            ..base
        },
    ];
    let tokens: Vec<Bytes> = callers
        .iter()
        .map(|c| signer.token_for(c, NOW).unwrap())
        .collect();
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), callers.len());
    assert_eq!(signer.cached_tokens(), callers.len());
    for (caller, token) in callers.iter().zip(&tokens) {
        assert_eq!(&signer.token_for(caller, NOW + 1).unwrap(), token);
    }
}

#[test]
fn cache_key_fields_do_not_run_together() {
    let base = caller();
    let key = |c: UpstreamCaller<'_>| c.cache_key();
    assert_ne!(
        key(UpstreamCaller {
            identity: "ab",
            client_id: Some("c"),
            ..base
        }),
        key(UpstreamCaller {
            identity: "a",
            client_id: Some("bc"),
            ..base
        }),
    );
    assert_ne!(
        key(UpstreamCaller {
            client_id: Some("x"),
            scope: None,
            ..base
        }),
        key(UpstreamCaller {
            client_id: None,
            scope: Some("x"),
            ..base
        }),
    );
    // Empty counts as absent, in the claims and so in the key.
    assert_eq!(
        key(UpstreamCaller {
            issuer: None,
            ..base
        }),
        key(UpstreamCaller {
            issuer: Some(""),
            ..base
        }),
    );
}

#[test]
fn the_cache_stays_bounded_under_100k_distinct_callers() {
    let signer = signer(Algorithm::EdDSA);
    let mut last = None;
    for n in 0..100_000u64 {
        let identity = format!("user-{n}");
        let caller = UpstreamCaller {
            identity: &identity,
            ..caller()
        };
        // Time moves on, so both stale tokens and fresh ones get evicted.
        let now = NOW + n / 1_000;
        last = Some((
            identity.clone(),
            now,
            signer.token_for(&caller, now).unwrap(),
        ));
        if n % 10_000 == 0 {
            assert!(signer.cached_tokens() <= DEFAULT_UPSTREAM_JWT_MAX_CACHED_TOKENS);
        }
    }
    assert!(signer.cached_tokens() <= DEFAULT_UPSTREAM_JWT_MAX_CACHED_TOKENS);
    let (identity, now, token) = last.unwrap();
    let caller = UpstreamCaller {
        identity: &identity,
        ..caller()
    };
    assert_eq!(signer.token_for(&caller, now).unwrap(), token);
}

#[test]
fn settings_have_documented_defaults() {
    let settings = UpstreamJwtSettings::new(Algorithm::EdDSA, "", "k", "gw");
    assert_eq!(settings.ttl_secs, 60);
    assert_eq!(settings.max_cached_tokens, 10_000);
}

#[test]
fn bad_settings_are_refused() {
    let refused = |settings: UpstreamJwtSettings| UpstreamJwtSigner::new(settings).unwrap_err();
    let ec_pem = pem(Algorithm::ES256);
    for alg in [
        Algorithm::HS256,
        Algorithm::HS512,
        Algorithm::RS384,
        Algorithm::PS256,
        Algorithm::ES384,
    ] {
        let err = refused(UpstreamJwtSettings::new(alg, ec_pem.clone(), "k", "gw"));
        assert_eq!(err, UpstreamJwtError::UnsupportedAlgorithm(alg));
        let message = err.to_string();
        assert!(message.contains(alg.as_str()) && message.contains("RS256, ES256 or EdDSA"));
    }
    for kid in ["", "  "] {
        let settings = UpstreamJwtSettings {
            kid: kid.into(),
            ..valid_settings(Algorithm::EdDSA)
        };
        assert_eq!(refused(settings), UpstreamJwtError::MissingKid);
    }
    let settings = UpstreamJwtSettings {
        gateway_name: "".into(),
        ..valid_settings(Algorithm::EdDSA)
    };
    assert_eq!(refused(settings), UpstreamJwtError::MissingGatewayName);
    for ttl_secs in [0, 9, 3601] {
        let settings = UpstreamJwtSettings {
            ttl_secs,
            ..valid_settings(Algorithm::EdDSA)
        };
        assert_eq!(refused(settings), UpstreamJwtError::TtlOutOfRange(ttl_secs));
    }
    for ttl_secs in [10, 3600] {
        let settings = UpstreamJwtSettings {
            ttl_secs,
            ..valid_settings(Algorithm::EdDSA)
        };
        assert_eq!(
            UpstreamJwtSigner::new(settings).unwrap().ttl_secs(),
            ttl_secs
        );
    }
    let settings = UpstreamJwtSettings {
        max_cached_tokens: 0,
        ..valid_settings(Algorithm::EdDSA)
    };
    assert_eq!(refused(settings), UpstreamJwtError::NoCacheRoom);
    // A key of another type than the algorithm, or no key at all.
    for (alg, text) in [
        (Algorithm::EdDSA, ec_pem.clone()),
        (Algorithm::RS256, ec_pem.clone()),
        (Algorithm::ES256, pem(Algorithm::EdDSA)),
        (Algorithm::ES256, "not a key".into()),
    ] {
        let settings = UpstreamJwtSettings::new(alg, text, "k", "gw");
        assert!(
            matches!(refused(settings), UpstreamJwtError::InvalidKey(_)),
            "{alg}"
        );
    }
}

#[test]
fn empty_callers_are_refused() {
    let signer = signer(Algorithm::EdDSA);
    for caller in [
        UpstreamCaller {
            api_id: "",
            ..caller()
        },
        UpstreamCaller {
            identity: "",
            ..caller()
        },
    ] {
        assert!(matches!(
            signer.token_for(&caller, NOW),
            Err(UpstreamJwtError::EmptyCallerField(_))
        ));
    }
    assert_eq!(signer.cached_tokens(), 0);
}

#[test]
fn key_material_stays_out_of_errors_and_debug() {
    let text = pem(Algorithm::ES256);
    let body_line = text.lines().nth(1).unwrap();
    let settings = UpstreamJwtSettings::new(Algorithm::ES256, text.clone(), "k", "gw");
    assert!(!format!("{settings:?}").contains(body_line));
    let signer = UpstreamJwtSigner::new(settings).unwrap();
    assert!(!format!("{signer:?}").contains(body_line));
    // The same key offered for the wrong algorithm, and a damaged copy of it.
    let damaged = text.replacen(&body_line[..8], "!!!!!!!!", 1);
    for (alg, text) in [
        (Algorithm::EdDSA, text.clone()),
        (Algorithm::ES256, damaged),
    ] {
        let err =
            UpstreamJwtSigner::new(UpstreamJwtSettings::new(alg, text, "k", "gw")).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(&body_line[8..24]), "{shown}");
        }
    }
}

#[test]
fn the_jwks_holds_the_public_key_only() {
    for alg in UPSTREAM_JWT_ALGORITHMS {
        let signer = signer(alg);
        let jwks = signer.jwks();
        assert_eq!(jwks, json!({"keys": [signer.public_jwk()]}));
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kid"], "gw-1");
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{alg} publishes {private}");
        }
    }
}

#[test]
fn one_jwks_for_several_signers_lists_each_kid_once() {
    let rsa = pem(Algorithm::RS256);
    let make = |alg, text: &str, kid: &str, gateway: &str| {
        UpstreamJwtSigner::new(UpstreamJwtSettings::new(alg, text, kid, gateway)).unwrap()
    };
    let a = make(Algorithm::RS256, &rsa, "a", "gw");
    // Another API's signer with the same key and kid.
    let a_again = make(Algorithm::RS256, &rsa, "a", "gw-2");
    let b = signer(Algorithm::EdDSA);
    let jwks = Jwks::from_signers([&a, &a_again, &b]).unwrap();
    assert_eq!(jwks.len(), 2);
    assert_eq!(
        jwks.to_json(),
        json!({"keys": [a.public_jwk(), b.public_jwk()]})
    );

    let impostor = make(Algorithm::ES256, &pem(Algorithm::ES256), "a", "gw");
    assert_eq!(
        Jwks::from_signers([&a, &impostor]).unwrap_err(),
        UpstreamJwtError::KidConflict { kid: "a".into() }
    );
    assert!(Jwks::new().is_empty());
    assert_eq!(Jwks::new().to_json(), json!({"keys": []}));
}

#[test]
fn a_signer_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<UpstreamJwtSigner>();
    shareable::<Jwks>();
}
