use super::super::{TykOptions, convert_api};
use super::*;
use base64::Engine;
use portico_core::ApiSpec;
use portico_core::api::ApiAuth;
use portico_core::config::Severity;
use portico_core::jwt::Algorithm;
use serde_json::json;

const SECRET: &str = "s3cr3t-never-printed";

/// A Classic external OAuth API with `providers`, and `extra` fields merged in.
fn api(providers: Value, extra: Value) -> Value {
    let mut api = json!({
        "api_id": "partners", "org_id": "acme", "use_keyless": false, "enable_jwt": false,
        "external_oauth": {"enabled": true, "providers": providers},
        "proxy": {"listen_path": "/partners/", "target_url": "http://127.0.0.1:9"}
    });
    api.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    api
}

fn jwks_provider() -> Value {
    json!({"jwt": {"enabled": true, "signing_method": "rsa", "source": "https://idp.example/jwks",
        "expires_at_validation_skew": 5, "not_before_validation_skew": 1, "issued_at_validation_skew": 2}})
}

fn introspection_provider(cache: Value) -> Value {
    json!({"introspection": {"enabled": true, "url": "https://idp.example/introspect",
        "client_id": "gateway", "client_secret": SECRET, "cache": cache}})
}

fn convert(api: Value) -> (Option<ApiSpec>, Vec<Problem>) {
    let mut problems = Vec::new();
    let spec = convert_api(
        api.as_object().unwrap(),
        "partners.json",
        TykOptions::default(),
        &mut problems,
    );
    (spec, problems)
}

fn issuers(spec: &ApiSpec) -> &[IssuerTrust] {
    match &spec.auth {
        ApiAuth::Jwt(jwt) => &jwt.issuers,
        other => panic!("{other:?}"),
    }
}

fn claims(spec: &ApiSpec) -> Vec<String> {
    spec.identity
        .claims()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn messages(problems: &[Problem], severity: Severity) -> Vec<&str> {
    problems
        .iter()
        .filter(|p| p.severity == severity)
        .map(|p| p.message.as_str())
        .collect()
}

/// What Portico trusts for `introspection_provider` with these cache settings.
fn introspected(enabled: bool, ttl_secs: u64) -> IssuerTrust {
    let mut trust = IssuerTrust::new(None, KeySourceSpec::None);
    trust.require_exp = false;
    trust.introspection = Some(IntrospectionSpec {
        endpoint: Some(HttpUrl::try_new("https://idp.example/introspect").unwrap()),
        client_id: "gateway".into(),
        client_auth: ClientAuth::ClientSecretPost(Secret::new(SECRET.as_bytes().to_vec())),
        cache: IntrospectionCache {
            enabled,
            ttl_secs,
            ..IntrospectionCache::default()
        },
        timeout_ms: DEFAULT_TIMEOUT_MS,
        grace_secs: DEFAULT_GRACE_SECS,
        jwt_validation: JwtValidation::Local,
    });
    trust
}

#[test]
fn each_enabled_provider_is_one_trusted_issuer_entry_in_order() {
    let pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    let pem_provider = json!({"jwt": {"enabled": true, "signing_method": "ecdsa",
        "source": base64::engine::general_purpose::STANDARD.encode(pem)}});
    let (spec, problems) = convert(api(
        json!([
            jwks_provider(),
            introspection_provider(json!({"enabled": true, "timeout": 30})),
            pem_provider
        ]),
        json!({}),
    ));
    let spec = spec.unwrap_or_else(|| panic!("{problems:?}"));
    let mut jwks = IssuerTrust::new(
        None,
        KeySourceSpec::JwksUrl(HttpUrl::try_new("https://idp.example/jwks").unwrap()),
    );
    jwks.algorithms = Some(vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]);
    jwks.require_exp = false;
    jwks.skew = ClaimSkews {
        exp_secs: 5,
        nbf_secs: 1,
        iat_secs: 2,
    };
    let mut pem_trust = IssuerTrust::new(None, KeySourceSpec::PublicKeyPem(pem.trim().into()));
    pem_trust.algorithms = Some(vec![Algorithm::ES256, Algorithm::ES384, Algorithm::ES512]);
    pem_trust.require_exp = false;
    assert_eq!(issuers(&spec), [jwks, introspected(true, 30), pem_trust]);
    // Introspection answers for client_credentials tokens often carry no `sub`.
    assert_eq!(claims(&spec), ["sub", "client_id"]);
    assert!(
        spec.policies.is_authentication_only(),
        "Tyk's external OAuth applies no policy"
    );
    assert_eq!(
        messages(&problems, Severity::Warning),
        [
            "Tyk checks tokens with external_oauth.providers[0] only; Portico admits a token that any enabled provider validates, in order: external_oauth.providers[0], external_oauth.providers[1], external_oauth.providers[2]"
        ]
    );
    assert!(messages(&problems, Severity::Error).is_empty());
}

#[test]
fn cache_timeout_zero_keeps_answers_until_exp_and_no_cache_introspects_every_time() {
    for (cache, expected) in [
        (
            json!({"enabled": true, "timeout": 0}),
            introspected(true, 0),
        ),
        (
            json!({"enabled": false, "timeout": 60}),
            introspected(false, 60),
        ),
        (json!(null), introspected(false, 60)),
    ] {
        let (spec, problems) = convert(api(
            json!([introspection_provider(cache.clone())]),
            json!({}),
        ));
        assert!(problems.is_empty(), "{cache}: {problems:?}");
        let spec = spec.unwrap();
        // Only whether it is on matters for a cache that is off.
        let got = &issuers(&spec)[0];
        let got_cache = got.introspection.as_ref().unwrap().cache;
        let want_cache = expected.introspection.as_ref().unwrap().cache;
        assert_eq!(got_cache.enabled, want_cache.enabled, "{cache}");
        if want_cache.enabled {
            assert_eq!(got, &expected, "{cache}");
        }
    }
}

#[test]
fn a_provider_with_jwt_and_introspection_checks_jwts_only_as_tyk_does() {
    let both = json!({"jwt": jwks_provider()["jwt"], "introspection": introspection_provider(json!({}))["introspection"]});
    let (spec, problems) = convert(api(json!([both]), json!({})));
    let spec = spec.unwrap();
    let trust = &issuers(&spec)[0];
    assert!(matches!(trust.keys, KeySourceSpec::JwksUrl(_)));
    assert!(trust.introspection.is_none());
    assert_eq!(issuers(&spec).len(), 1);
    assert_eq!(claims(&spec), ["sub"]);
    assert_eq!(
        messages(&problems, Severity::Warning),
        [
            "external_oauth.providers[0]: jwt and introspection are both enabled; Tyk then checks tokens with jwt only, and so does Portico (introspection is not used)"
        ]
    );
}

#[test]
fn disabled_providers_are_skipped_but_not_a_disabled_first_one() {
    let off =
        json!({"jwt": {"enabled": false, "source": "x"}, "introspection": {"enabled": false}});
    let (spec, problems) = convert(api(
        json!([introspection_provider(json!({})), off.clone()]),
        json!({}),
    ));
    assert_eq!(issuers(&spec.unwrap()).len(), 1);
    assert!(messages(&problems, Severity::Warning).is_empty());
    // Tyk reads providers[0] only: disabled, Tyk refuses every request, so Portico does not
    // serve the API with the later ones.
    let (spec, problems) = convert(api(
        json!([off, introspection_provider(json!({}))]),
        json!({}),
    ));
    assert!(spec.is_none());
    assert!(
        messages(&problems, Severity::Error)
            .iter()
            .any(|m| m.contains("providers[0] enables neither jwt nor introspection")),
        "{problems:?}"
    );
    // Disabled altogether: not an external OAuth API.
    let (spec, problems) = convert(api(
        json!([jwks_provider()]),
        json!({"external_oauth": {"enabled": false, "providers": [jwks_provider()]}}),
    ));
    assert!(spec.is_none());
    assert!(
        messages(&problems, Severity::Error)
            .iter()
            .any(|m| m.contains("no auth mode enabled")),
        "{problems:?}"
    );
}

#[test]
fn the_identity_is_the_claim_the_providers_agree_on() {
    let named = |provider: Value, part: &str, claim: Value| {
        let mut provider = provider;
        provider[part]["identity_base_field"] = claim;
        provider
    };
    // "sub" and empty agree: Tyk's default is `sub`.
    let (spec, problems) = convert(api(
        json!([
            named(jwks_provider(), "jwt", json!("sub")),
            introspection_provider(json!({}))
        ]),
        json!({}),
    ));
    assert_eq!(claims(&spec.unwrap()), ["sub", "client_id"], "{problems:?}");
    let (spec, _) = convert(api(
        json!([
            named(jwks_provider(), "jwt", json!("client_id")),
            named(
                introspection_provider(json!({})),
                "introspection",
                json!("client_id")
            )
        ]),
        json!({}),
    ));
    assert_eq!(claims(&spec.unwrap()), ["client_id", "sub"]);
    let (spec, _) = convert(api(
        json!([named(jwks_provider(), "jwt", json!("user.id"))]),
        json!({}),
    ));
    assert_eq!(claims(&spec.unwrap()), ["user.id", "sub"]);
    for (first, expected) in [
        (
            json!("user_id"),
            "external_oauth.providers[0].jwt.identity_base_field is \"user_id\" but external_oauth.providers[1].introspection.identity_base_field is empty (Tyk's default \"sub\"): Portico has one identity claim per API, so the providers must name the same one",
        ),
        (
            json!(null),
            "external_oauth.providers[0].jwt.identity_base_field is empty (Tyk's default \"sub\") but external_oauth.providers[1].introspection.identity_base_field is \"client_id\"",
        ),
    ] {
        let second = if first.is_null() {
            named(
                introspection_provider(json!({})),
                "introspection",
                json!("client_id"),
            )
        } else {
            introspection_provider(json!({}))
        };
        let (spec, problems) = convert(api(
            json!([named(jwks_provider(), "jwt", first), second]),
            json!({}),
        ));
        assert!(spec.is_none());
        assert!(
            messages(&problems, Severity::Error)
                .iter()
                .any(|m| m.starts_with(expected)),
            "{expected}: {problems:?}"
        );
    }
}

#[test]
fn what_portico_cannot_read_or_enforce_is_refused_without_quoting_the_secret() {
    let with = |part: &str, key: &str, value: Value| {
        let mut provider = if part == "jwt" {
            jwks_provider()
        } else {
            introspection_provider(json!({"enabled": true, "timeout": 10}))
        };
        match key.split_once('.') {
            Some((outer, inner)) => provider[part][outer][inner] = value,
            None => provider[part][key] = value,
        }
        api(json!([provider]), json!({}))
    };
    let p = "external_oauth.providers[0]";
    for (def, expected) in [
        (
            api(json!([{"jwt": jwks_provider()["jwt"], "oidc": {"enabled": true}}]), json!({})),
            format!("{p}.oidc is not an external OAuth field Portico knows"),
        ),
        (
            with("jwt", "allowed_audiences", json!(["a"])),
            format!("{p}.jwt.allowed_audiences is not an external OAuth field Portico knows"),
        ),
        (
            with("introspection", "cache.max", json!(5)),
            format!("{p}.introspection.cache.max is not an external OAuth field Portico knows"),
        ),
        (
            api(json!([]), json!({"external_oauth": {"enabled": true, "providers": [], "mode": "strict"}})),
            "external_oauth.mode is not an external OAuth field Portico knows".into(),
        ),
        (
            with("jwt", "enabled", json!("yes")),
            format!("{p}.jwt.enabled must be true or false, not a string"),
        ),
        (
            api(json!([]), json!({"external_oauth": {"enabled": "yes"}})),
            "external_oauth.enabled must be true or false, not a string".into(),
        ),
        (
            with("jwt", "signing_method", json!("none")),
            format!("{p}.jwt.signing_method \"none\" is not supported"),
        ),
        (
            with("jwt", "source", json!("")),
            format!("{p}.jwt.source is required"),
        ),
        (
            with("jwt", "source", json!("not base64!")),
            format!("{p}.jwt.source is neither a URL nor base64"),
        ),
        (
            with("jwt", "expires_at_validation_skew", json!(-1)),
            format!("{p}.jwt.expires_at_validation_skew must be a non-negative integer (seconds)"),
        ),
        (
            with("introspection", "cache.timeout", json!(-1)),
            format!("{p}.introspection.cache.timeout must be a non-negative integer (seconds)"),
        ),
        (
            with("introspection", "cache", json!(true)),
            format!("{p}.introspection.cache must be an object, not a boolean"),
        ),
        (
            with("introspection", "url", json!("ftp://idp.example/introspect")),
            format!("{p}.introspection.url: "),
        ),
        (
            with("introspection", "url", json!(format!("https://gw:{SECRET}@idp.example/i"))),
            format!("{p}.introspection.url is not an http(s) URL without user info"),
        ),
        (
            with("introspection", "url", json!(null)),
            format!("{p}.introspection.url is required"),
        ),
        (
            with("introspection", "client_id", json!("")),
            format!("{p}.introspection.client_id is required"),
        ),
        (
            with("introspection", "client_secret", json!(null)),
            format!("{p}.introspection.client_secret is required"),
        ),
        (
            with("introspection", "client_secret", json!(7)),
            format!("{p}.introspection.client_secret must be a string, not a number"),
        ),
        (
            with("introspection", "client_secret", json!(format!("env://{SECRET}"))),
            format!("{p}.introspection.client_secret is a Tyk secret reference"),
        ),
        (
            api(json!({"jwt": {}}), json!({})),
            "external_oauth.providers must be an array, not an object".into(),
        ),
        (
            api(json!(["jwt"]), json!({})),
            format!("{p} must be an object, not a string"),
        ),
        (
            api(json!([{"jwt": {"enabled": false}}]), json!({})),
            "external_oauth is enabled, but no provider enables jwt or introspection: Tyk refuses every request".into(),
        ),
        (
            api(json!([]), json!({})),
            "external_oauth is enabled, but no provider enables jwt or introspection".into(),
        ),
        (
            api(json!([jwks_provider()]), json!({"use_basic_auth": true})),
            "use_basic_auth is enabled as well as external_oauth: Tyk then requires both to pass".into(),
        ),
        (
            api(json!([jwks_provider()]), json!({"enable_jwt": true, "jwt_signing_method": "rsa", "jwt_source": "https://idp.example/jwks"})),
            "external_oauth is enabled as well as enable_jwt".into(),
        ),
    ] {
        let (spec, problems) = convert(def.clone());
        assert!(spec.is_none(), "{def}");
        let errors = messages(&problems, Severity::Error);
        assert!(
            errors.iter().any(|e| e.starts_with(expected.as_str())),
            "{expected}: {problems:?}"
        );
        assert!(
            problems.iter().all(|p| !p.message.contains(SECRET)),
            "{problems:?}"
        );
    }
}

#[test]
fn jwt_mode_fields_are_warned_and_its_policy_fields_applied() {
    let (spec, problems) = convert(api(
        json!([introspection_provider(json!({}))]),
        json!({"jwt_source": "https://other.example/jwks", "jwt_identity_base_field": "user_id",
            "jwt_default_policies": ["partner"], "jwt_scope_claim_name": "", "jwt_scope_to_policy_mapping": {}}),
    ));
    let spec = spec.unwrap();
    assert_eq!(
        claims(&spec),
        ["sub", "client_id"],
        "not jwt_identity_base_field"
    );
    assert_eq!(spec.policies.default_policies, ["partner".into()]);
    let mut warnings = messages(&problems, Severity::Warning);
    warnings.sort();
    assert_eq!(
        warnings,
        [
            "jwt_default_policies: Tyk's external OAuth does not read it (every valid token may call the API, without a policy); Portico applies it to this API's tokens, which can limit or refuse tokens Tyk admits",
            "jwt_identity_base_field is read with enable_jwt only; Tyk's external OAuth takes its settings from each provider, so it is ignored",
            "jwt_source is read with enable_jwt only; Tyk's external OAuth takes its settings from each provider, so it is ignored",
        ]
    );
}
