use super::*;
use portico_core::config::Severity;
use serde_json::json;

/// `base` with `patch` merged in, objects member by member.
fn merged(mut base: Value, patch: Value) -> Value {
    match (&mut base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                let slot = b.remove(&k).unwrap_or(Value::Null);
                b.insert(k, merged(slot, v));
            }
            base
        }
        (_, p) => p,
    }
}

/// A small Tyk OAS JWT API, with `patch` merged in.
fn doc(patch: Value) -> Value {
    merged(
        json!({
            "openapi": "3.0.3", "info": {"title": "T", "version": "1"},
            "paths": {"/things/{id}": {"get": {"operationId": "getThing"}, "delete": {"operationId": "dropThing"}}},
            "components": {"securitySchemes": {"j": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
            "security": [{"j": []}],
            "x-tyk-api-gateway": {
                "info": {"id": "t", "name": "T", "state": {"active": true}},
                "upstream": {"url": "http://127.0.0.1:9"},
                "server": {"listenPath": {"value": "/t/", "strip": true},
                    "authentication": {"enabled": true, "securitySchemes": {"j": {
                        "enabled": true, "source": "https://idp.example/jwks", "signingMethod": "rsa"}}}}
            }
        }),
        patch,
    )
}

fn convert_with(v: Value, options: TykOptions) -> (Option<ApiSpec>, Vec<Problem>) {
    let mut problems = Vec::new();
    let api = convert_oas_api(v.as_object().unwrap(), "t.json", options, &mut problems);
    (api, problems)
}

fn convert(v: Value) -> (Option<ApiSpec>, Vec<Problem>) {
    convert_with(v, TykOptions::default())
}

fn messages(problems: &[Problem], severity: Severity) -> Vec<&str> {
    problems
        .iter()
        .filter(|p| p.severity == severity)
        .map(|p| p.message.as_str())
        .collect()
}

fn ext(patch: Value) -> Value {
    doc(json!({"x-tyk-api-gateway": patch}))
}

fn scheme(patch: Value) -> Value {
    ext(json!({"server": {"authentication": {"securitySchemes": {"j": patch}}}}))
}

/// The document with `j` an external OAuth scheme: `patch` merged into `{"enabled": true}`.
fn oauth(patch: Value) -> Value {
    let mut d = doc(json!({}));
    d["components"]["securitySchemes"]["j"] = json!({"type": "oauth2",
        "flows": {"clientCredentials": {"tokenUrl": "http://idp.example/token", "scopes": {}}}});
    d["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"]["j"] =
        merged(json!({"enabled": true}), patch);
    d
}

#[test]
fn the_catalog_fixture_loads_as_tyk_reads_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tyk-oas");
    let (apis, locations, problems) = super::super::load_api_dir(&dir, TykOptions::default());
    assert!(
        messages(&problems, Severity::Error).is_empty(),
        "{problems:?}"
    );
    assert!(
        messages(&problems, Severity::Warning)
            .contains(&"x-tyk-api-gateway.middleware.global.trafficLogs is not supported by Portico and is ignored"),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(locations[0].ends_with("catalog.json"));
    assert!(locations[1].ends_with("ledger.json"), "{locations:?}");
    let api = &apis[0];
    assert_eq!(
        (&*api.id, api.name.as_str(), api.org_id.as_str()),
        ("catalog", "Catalog", "acme")
    );
    assert_eq!(api.listen_path.as_str(), "/catalog");
    assert!(api.strip_listen_path);
    assert!(
        !api.upstream_headers.forward_authorization,
        "stripAuthorizationData"
    );
    let ApiAuth::Jwt(jwt) = &api.auth else {
        panic!("{:?}", api.auth)
    };
    let trust = &jwt.issuers[0];
    assert!(matches!(
        trust.keys,
        portico_core::jwt::KeySourceSpec::PublicKeyPem(_)
    ));
    assert_eq!(trust.skew.exp_secs, 5);
    assert!(!trust.require_exp);
    let claims: Vec<String> = api
        .identity
        .claims()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(claims, ["user_id", "sub"]);
    assert_eq!(
        api.policies
            .scope_claim
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("scp")
    );
    assert_eq!(
        api.policies.scope_map["catalog:read"],
        [portico_core::PolicyId::from("catalog-reader")]
    );
    let rules = &api.endpoints;
    assert!(rules.permits("GET", "/catalog/items", "/items"));
    assert!(rules.permits("POST", "/catalog/items", "/items"));
    assert!(rules.permits("GET", "/catalog/items/7", "/items/7"));
    assert!(
        !rules.permits("DELETE", "/catalog/items/7", "/items/7"),
        "allow not enabled"
    );
    assert!(!rules.permits("GET", "/catalog/orders", "/orders"));
}

#[test]
fn problems_name_the_oas_fields() {
    let auth = "x-tyk-api-gateway.server.authentication.securitySchemes.j";
    for (v, expected) in [
        (
            scheme(json!({"signingMethod": "none"})),
            format!("{auth}.signingMethod \"none\" is not supported"),
        ),
        (
            scheme(json!({"signingMethod": 5})),
            format!("{auth}.signingMethod must be a string, not a number"),
        ),
        (
            scheme(json!({"source": null})),
            format!("{auth}.source is empty"),
        ),
        (
            scheme(json!({"defaultPolicies": "gold"})),
            format!("{auth}.defaultPolicies must be an array"),
        ),
        (
            ext(json!({"info": {"id": null}})),
            "x-tyk-api-gateway.info.id is required".into(),
        ),
        (
            ext(json!({"info": {"state": {"active": null}}})),
            "x-tyk-api-gateway.info.state.active is required".into(),
        ),
        (
            ext(json!({"info": {"state": {"internal": "no"}}})),
            "x-tyk-api-gateway.info.state.internal must be true or false".into(),
        ),
        (
            ext(json!({"server": {"listenPath": {"value": null}}})),
            "x-tyk-api-gateway.server.listenPath.value:".into(),
        ),
        (
            ext(json!({"upstream": {"url": "ftp://x"}})),
            "x-tyk-api-gateway.upstream.url:".into(),
        ),
        (
            ext(json!({"server": {"authentication": "yes"}})),
            "x-tyk-api-gateway.server.authentication must be an object".into(),
        ),
        (
            scheme(
                json!({"scopes": {"scopeToPolicyMapping": [{"scope": "a", "policyId": "p"}, {"scope": "a", "policyId": "q"}]}}),
            ),
            "mapped twice".into(),
        ),
        (
            scheme(
                json!({"jwksURIs": [{"url": "https://a/jwks"}, {"url": "ftp://b/jwks"}], "source": null}),
            ),
            format!("{auth}.jwksURIs[1].url:"),
        ),
        (
            oauth(
                json!({"providers": [{"introspection": {"enabled": true, "url": "http://idp.example/i",
                "clientId": "gw", "clientSecret": "s", "cache": {"enabled": true, "timeout": "1m"}}}]}),
            ),
            format!(
                "{auth}.providers[0].introspection.cache.timeout must be a non-negative integer (seconds)"
            ),
        ),
        (
            oauth(
                json!({"providers": [{"introspection": {"enabled": true, "url": "http://idp.example/i",
                "client_id": "gw", "clientSecret": "s"}}]}),
            ),
            format!(
                "{auth}.providers[0].introspection.client_id is not an external OAuth field Portico knows"
            ),
        ),
        (
            oauth(json!({"providers": [{"jwt": {"enabled": true, "signingMethod": "rsa"}}]})),
            format!("{auth}.providers[0].jwt.source is required"),
        ),
        (
            oauth(json!({"providers": [{"jwt": {"enabled": false}}]})),
            format!("{auth} is enabled, but no provider enables jwt or introspection"),
        ),
        (
            oauth(json!({"providers": "none", "enabled": true})),
            format!("{auth}.providers must be an array, not a string"),
        ),
    ] {
        let (api, problems) = convert(v.clone());
        let errors = messages(&problems, Severity::Error);
        assert!(api.is_none(), "{v}");
        assert!(
            errors.iter().any(|e| e.contains(&expected)),
            "{expected}: {errors:?}"
        );
    }
}

#[test]
fn restrictions_portico_cannot_enforce_are_refused() {
    let op =
        |middleware: Value| ext(json!({"middleware": {"operations": {"getThing": middleware}}}));
    for (v, expected) in [
        (
            op(json!({"ignoreAuthentication": {"enabled": true}})),
            "operations.getThing.ignoreAuthentication: ignored paths skip authentication",
        ),
        (
            op(json!({"internal": {"enabled": true}})),
            "operations.getThing.internal: internal endpoints",
        ),
        (
            op(json!({"mockResponse": {"enabled": true, "code": 200}})),
            "mockResponse: mock responses",
        ),
        (
            op(json!({"rateLimit": {"enabled": true, "rate": 1, "per": "1s"}})),
            "rateLimit: per-endpoint rate limits",
        ),
        (op(json!({"scopeCheck": {"enabled": true}})), "scopeCheck"),
        (
            ext(
                json!({"middleware": {"global": {"prePlugins": [{"enabled": true, "functionName": "check", "path": "p.so"}]}}}),
            ),
            "global.prePlugins: plugins",
        ),
        (
            ext(
                json!({"middleware": {"global": {"pluginConfig": {"bundle": {"enabled": true, "path": "b.zip"}}}}}),
            ),
            "pluginConfig.bundle",
        ),
        (
            ext(json!({"upstream": {"rateLimit": {"enabled": true, "rate": 10, "per": "1s"}}})),
            "upstream.rateLimit: an API-wide rate limit",
        ),
        (
            ext(json!({"server": {"customDomain": {"enabled": true, "name": "api.example"}}})),
            "x-tyk-api-gateway.server.customDomain.name \"api.example\": Tyk serves the API on that host only",
        ),
        (
            ext(
                json!({"info": {"versioning": {"enabled": true, "versions": [{"name": "v2", "id": "t2"}]}}}),
            ),
            "info.versioning",
        ),
        (
            ext(json!({"info": {"expiration": "2030-01-01 00:00"}})),
            "x-tyk-api-gateway.info.expiration \"2030-01-01 00:00\"",
        ),
        (
            scheme(json!({"allowedSubjects": ["alice"]})),
            "allowedSubjects: Tyk refuses tokens",
        ),
        (
            scheme(json!({"header": {"enabled": false}})),
            "header.enabled is false",
        ),
        (
            doc(
                json!({"security": [{"j": []}, {"k": []}], "x-tyk-api-gateway": {"server": {"authentication": {"securityProcessingMode": "compliant"}}}}),
            ),
            "compliant",
        ),
        (
            ext(json!({"server": {"authentication": {"hmac": {"enabled": true}}}})),
            "x-tyk-api-gateway.server.authentication.hmac is enabled as well as x-tyk-api-gateway.server.authentication.securitySchemes.j.enabled",
        ),
    ] {
        let (api, problems) = convert(v.clone());
        let errors = messages(&problems, Severity::Error);
        assert!(api.is_none(), "{v}");
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected}: {errors:?}"
        );
    }
    // The block middleware is a block rule, case-insensitive as Classic black lists are.
    let (api, problems) = convert(op(json!({"block": {"enabled": true}})));
    assert!(problems.is_empty(), "{problems:?}");
    let rules = api.unwrap().endpoints;
    assert!(!rules.permits("GET", "/t/things/1", "/things/1"));
    assert!(!rules.permits("GET", "/t/THINGS/1", "/THINGS/1"));
    assert!(rules.permits("DELETE", "/t/things/1", "/things/1"));
}

#[test]
fn behaviour_settings_are_warnings_when_in_effect() {
    let (api, problems) = convert(ext(json!({"middleware": {
        "global": {"requestSizeLimit": {"enabled": true, "value": 100}, "cors": {"enabled": false},
            "transformRequestHeaders": {"enabled": true, "add": [{"name": "x", "value": "y"}]}},
        "operations": {"getThing": {"enforceTimeout": {"enabled": true, "value": 3}, "cache": {"enabled": false}},
            "noSuchOperation": {"allow": {"enabled": true}}}}})));
    assert!(api.is_some(), "{problems:?}");
    let warnings = messages(&problems, Severity::Warning);
    for expected in [
        "x-tyk-api-gateway.middleware.global.requestSizeLimit restricts requests in Tyk; Portico does not enforce it",
        "x-tyk-api-gateway.middleware.global.transformRequestHeaders is not supported by Portico and is ignored",
        "x-tyk-api-gateway.middleware.operations.getThing.enforceTimeout restricts requests in Tyk; Portico does not enforce it",
        "x-tyk-api-gateway.middleware.operations.noSuchOperation: no operation in paths has this operationId, so Tyk applies none of it",
    ] {
        assert!(warnings.contains(&expected), "{expected}: {warnings:?}");
    }
    assert_eq!(
        warnings.len(),
        4,
        "settings left off are not reported: {warnings:?}"
    );
    // An enabled scheme outside the first security requirement is not applied by Tyk.
    let (api, problems) = convert(doc(json!({"security": [{"other": []}],
        "x-tyk-api-gateway": {"server": {"authentication": {"securitySchemes": {"j": {"enabled": true}}}}}})));
    assert!(api.is_none());
    assert!(
        messages(&problems, Severity::Warning)
            .iter()
            .any(|w| w.contains("not in the document's first security requirement")),
        "{problems:?}"
    );
}

#[test]
fn keyless_inactive_internal_and_unserved_apis() {
    let keyless = ext(json!({"server": {"authentication": {"enabled": false}}}));
    assert!(matches!(convert(keyless).0.unwrap().auth, ApiAuth::Keyless));
    let mut no_auth = doc(json!({}));
    no_auth["x-tyk-api-gateway"]["server"]
        .as_object_mut()
        .unwrap()
        .remove("authentication");
    assert!(matches!(convert(no_auth).0.unwrap().auth, ApiAuth::Keyless));
    // Not loaded: a warning, and its other problems do not matter.
    for (state, expected) in [
        (
            json!({"active": false}),
            "x-tyk-api-gateway.info.state.active is false: API not loaded",
        ),
        (
            json!({"internal": true}),
            "x-tyk-api-gateway.info.state.internal: true",
        ),
    ] {
        let v =
            ext(json!({"info": {"state": state}, "upstream": {"rateLimit": {"enabled": true}}}));
        let (api, problems) = convert(v);
        assert!(api.is_none());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.starts_with(expected), "{problems:?}");
    }
    let basic = doc(json!({
        "components": {"securitySchemes": {"b": {"type": "http", "scheme": "basic"}}},
        "security": [{"b": []}],
        "x-tyk-api-gateway": {"server": {"authentication": {"securitySchemes": {"j": null, "b": {"enabled": true}}}},
            "middleware": {"operations": {"getThing": {"mockResponse": {"enabled": true}}}}}}));
    let mut basic = basic;
    basic["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"]
        .as_object_mut()
        .unwrap()
        .remove("j");
    let (_, problems) = convert(basic.clone());
    assert!(
        messages(&problems, Severity::Error).iter().any(|e| {
            e.contains(
                "uses auth mode basic (x-tyk-api-gateway.server.authentication.securitySchemes.b)",
            )
        }),
        "{problems:?}"
    );
    let (api, problems) = convert_with(
        basic,
        TykOptions {
            skip_unsupported: true,
        },
    );
    assert!(api.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warning);
    assert!(problems[0].message.contains("skipped"));
    // Not a Tyk definition.
    let (_, problems) = convert(json!({"openapi": "3.0.3", "info": {}}));
    assert!(messages(&problems, Severity::Error)[0].contains("without x-tyk-api-gateway"));
}

#[test]
fn allowed_issuers_and_audiences_are_enforced() {
    let (api, problems) = convert(scheme(json!({
        "allowedIssuers": ["https://a.example", "https://b.example"], "allowedAudiences": ["shop"],
        "subjectClaims": ["uid"], "basePolicyClaims": ["plan"], "scopes": {"claims": ["roles"]},
        "jwksURIs": [{"url": "https://idp.example/jwks", "cacheTimeout": "5m"}], "source": null})));
    assert!(problems.is_empty(), "{problems:?}");
    let api = api.unwrap();
    let ApiAuth::Jwt(jwt) = &api.auth else {
        panic!()
    };
    let issuers: Vec<_> = jwt
        .issuers
        .iter()
        .map(|t| t.issuer.as_deref().unwrap())
        .collect();
    assert_eq!(issuers, ["https://a.example", "https://b.example"]);
    assert!(jwt.issuers.iter().all(|t| t.audiences == ["shop"]));
    assert_eq!(api.identity.claims()[0].to_string(), "uid");
    assert_eq!(
        api.policies.policy_claim.as_ref().unwrap().to_string(),
        "plan"
    );
    assert_eq!(
        api.policies.scope_claim.as_ref().unwrap().to_string(),
        "roles"
    );
}

#[test]
fn several_subject_claims_are_identity_claims_in_order() {
    let (api, problems) = convert(scheme(json!({"subjectClaims": ["uid", "client_id"]})));
    assert!(problems.is_empty(), "{problems:?}");
    let claims: Vec<String> = api
        .unwrap()
        .identity
        .claims()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(claims, ["uid", "client_id", "sub"]);
    let (api, problems) = convert(scheme(
        json!({"subjectClaims": ["uid", "cid"], "identityBaseField": "x"}),
    ));
    assert!(api.is_none() && !problems.is_empty(), "{problems:?}");
}

#[test]
fn classic_names_become_oas_names_only_where_they_name_a_field() {
    let names = vec![
        ("internal".to_string(), "info.state.internal".to_string()),
        ("jwt_source".to_string(), "s.source".to_string()),
    ];
    assert_eq!(
        rename_fields(
            "internal: true — only reachable through Tyk's internal looping",
            &names
        ),
        "info.state.internal: true — only reachable through Tyk's internal looping"
    );
    assert_eq!(
        rename_fields(
            "jwt_source does not hold a key, as jwt_source_x (not jwt_source) needs",
            &names
        ),
        "s.source does not hold a key, as jwt_source_x (not s.source) needs"
    );
}

#[test]
fn an_unverified_upstream_is_mapped_and_warned_under_its_oas_name() {
    let (api, problems) = convert(ext(
        json!({"upstream": {"tlsTransport": {"insecureSkipVerify": true}}}),
    ));
    assert!(api.unwrap().upstream_tls.insecure_skip_verify);
    assert_eq!(
        messages(&problems, Severity::Warning),
        [
            "x-tyk-api-gateway.upstream.tlsTransport.insecureSkipVerify: the upstream's certificate is not verified"
        ]
    );
}

#[test]
fn several_jwks_uris_are_one_trusted_entry_each() {
    let (api, problems) = convert(scheme(
        json!({"source": null, "allowedIssuers": ["https://idp.example"],
        "jwksURIs": [{"url": "https://idp.example/a"}, {"url": "https://idp.example/b", "cacheTimeout": "1m"}]}),
    ));
    assert!(problems.is_empty(), "{problems:?}");
    let api = api.unwrap();
    let ApiAuth::Jwt(jwt) = &api.auth else {
        panic!()
    };
    let keys: Vec<String> = jwt
        .issuers
        .iter()
        .map(|t| match &t.keys {
            portico_core::jwt::KeySourceSpec::JwksUrl(u) => u.as_str().to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["https://idp.example/a", "https://idp.example/b"]);
    assert!(
        jwt.issuers
            .iter()
            .all(|t| t.issuer.as_deref() == Some("https://idp.example"))
    );
}

fn introspection_provider() -> Value {
    json!({"introspection": {"enabled": true, "url": "http://idp.example/token/introspection",
        "clientId": "gw", "clientSecret": "gw-secret", "identityBaseField": "client_id",
        "cache": {"enabled": true, "timeout": 0}}})
}

#[test]
fn an_external_oauth_scheme_is_read_as_the_classic_providers_it_stands_for() {
    let jwt = json!({"jwt": {"enabled": true, "signingMethod": "rsa", "source": "https://idp.example/jwks",
        "identityBaseField": "client_id", "expiresAtValidationSkew": 3}});
    let (oas, problems) = convert(oauth(
        json!({"providers": [jwt, introspection_provider()], "query": {"enabled": true, "name": "t"}}),
    ));
    let oas = oas.unwrap_or_else(|| panic!("{problems:?}"));
    let scheme = "x-tyk-api-gateway.server.authentication.securitySchemes.j";
    assert_eq!(
        messages(&problems, Severity::Warning),
        [
            format!("{scheme}.query: Portico reads the token from the Authorization header only"),
            format!(
                "Tyk checks tokens with {scheme}.providers[0] only; Portico admits a token that any enabled provider validates, in order: {scheme}.providers[0], {scheme}.providers[1]"
            ),
        ]
    );
    let classic = json!({"api_id": "t", "external_oauth": {"enabled": true, "providers": [
        {"jwt": {"enabled": true, "signing_method": "rsa", "source": "https://idp.example/jwks",
            "identity_base_field": "client_id", "expires_at_validation_skew": 3}},
        {"introspection": {"enabled": true, "url": "http://idp.example/token/introspection",
            "client_id": "gw", "client_secret": "gw-secret", "identity_base_field": "client_id",
            "cache": {"enabled": true, "timeout": 0}}}]},
        "proxy": {"listen_path": "/t/", "target_url": "http://127.0.0.1:9"}});
    let mut classic_problems = Vec::new();
    let classic = super::super::convert_api(
        classic.as_object().unwrap(),
        "t.json",
        TykOptions::default(),
        &mut classic_problems,
    )
    .unwrap();
    let (ApiAuth::Jwt(jwt), ApiAuth::Jwt(classic_jwt)) = (&oas.auth, &classic.auth) else {
        panic!("{:?}", oas.auth)
    };
    assert_eq!(jwt, classic_jwt);
    assert_eq!(oas.identity, classic.identity);
    let introspection = jwt.issuers[1].introspection.as_ref().unwrap();
    assert_eq!(
        introspection.endpoint.as_ref().map(|u| u.as_str()),
        Some("http://idp.example/token/introspection")
    );
    assert_eq!(introspection.client_auth.method(), "client_secret_post");
    assert_eq!(
        (introspection.cache.enabled, introspection.cache.ttl_secs),
        (true, 0)
    );
}

#[test]
fn only_oauth2_schemes_with_providers_are_external_oauth() {
    // No providers, or a block of Tyk's newer oauth2 scheme: Tyk's own OAuth 2.0 or that scheme.
    for patch in [
        json!({"providers": []}),
        json!({"providers": [introspection_provider()], "scopeCheck": {"enabled": true}}),
    ] {
        let (api, problems) = convert(oauth(patch.clone()));
        assert!(api.is_none(), "{patch}");
        assert!(
            messages(&problems, Severity::Error)
                .iter()
                .any(|m| m.contains("uses auth mode Tyk OAuth 2.0 (x-tyk-api-gateway.server.authentication.securitySchemes.j)")),
            "{patch}: {problems:?}"
        );
    }
    // Disabled: as any disabled scheme, no auth mode (Tyk's default, auth token).
    let (api, problems) = convert(oauth(
        json!({"enabled": false, "providers": [introspection_provider()]}),
    ));
    assert!(api.is_none());
    assert!(
        messages(&problems, Severity::Error)
            .iter()
            .any(|m| m.contains("no auth mode enabled")),
        "{problems:?}"
    );
    // Two of them: Tyk would keep one, in no set order.
    let mut two = oauth(json!({"providers": [introspection_provider()]}));
    two["components"]["securitySchemes"]["k"] = two["components"]["securitySchemes"]["j"].clone();
    let schemes = &mut two["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"];
    schemes["k"] = schemes["j"].clone();
    two["security"] = json!([{"j": [], "k": []}]);
    let (api, problems) = convert(two);
    assert!(api.is_none());
    assert!(
        messages(&problems, Severity::Error)
            .iter()
            .any(|m| m.ends_with("a second external OAuth scheme is not supported")),
        "{problems:?}"
    );
    // With JWT beside it, Tyk requires both.
    let mut both = oauth(json!({"providers": [introspection_provider()]}));
    both["components"]["securitySchemes"]["k"] =
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"});
    both["x-tyk-api-gateway"]["server"]["authentication"]["securitySchemes"]["k"] =
        json!({"enabled": true, "source": "https://idp.example/jwks", "signingMethod": "rsa"});
    both["security"] = json!([{"j": [], "k": []}]);
    let (api, problems) = convert(both);
    assert!(api.is_none());
    assert!(
        messages(&problems, Severity::Error).iter().any(|m| m.starts_with(
            "x-tyk-api-gateway.server.authentication.securitySchemes.j is enabled as well as x-tyk-api-gateway.server.authentication.securitySchemes.k.enabled"
        )),
        "{problems:?}"
    );
}

#[test]
fn the_ledger_fixture_is_an_external_oauth_api_with_one_introspection_provider() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tyk-oas/ledger.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (api, problems) = convert(doc);
    assert!(problems.is_empty(), "{problems:?}");
    let api = api.unwrap();
    assert_eq!((&*api.id, api.listen_path.as_str()), ("ledger", "/ledger"));
    let ApiAuth::Jwt(jwt) = &api.auth else {
        panic!("{:?}", api.auth)
    };
    let mut expected = portico_core::jwt::IssuerTrust::new(None, KeySourceSpec::None);
    expected.require_exp = false;
    expected.introspection = Some(portico_core::introspection::IntrospectionSpec {
        endpoint: Some(HttpUrl::try_new("http://idp.example/token/introspection").unwrap()),
        client_id: "ledger-gateway".into(),
        client_auth: portico_core::introspection::ClientAuth::ClientSecretPost(
            portico_core::jwt::Secret::new(b"ledger-gateway-secret".to_vec()),
        ),
        cache: portico_core::introspection::IntrospectionCache {
            enabled: true,
            ttl_secs: 0,
            ..Default::default()
        },
        timeout_ms: portico_core::introspection::DEFAULT_TIMEOUT_MS,
        grace_secs: portico_core::introspection::DEFAULT_GRACE_SECS,
        jwt_validation: portico_core::introspection::JwtValidation::Local,
    });
    assert_eq!(jwt.issuers, [expected]);
    let claims: Vec<String> = api
        .identity
        .claims()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(claims, ["client_id", "sub"]);
    assert!(api.policies.is_authentication_only());
}
