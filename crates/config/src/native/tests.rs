//! The native file, read and converted: defaults, problems with their locations, secrets.
use super::*;
use crate::env::MapEnv;
use portico_core::config::{LimiterBackend, LimiterSettings, RedisFailureRule, Severity};

fn load(yaml: &str, env: &MapEnv) -> NativeConfig {
    let file: FileConfig = serde_saphyr::from_str(yaml).unwrap();
    convert(file, "test.yaml", Path::new("."), env)
}

const MINIMAL: &str = r#"
apis:
  - id: orders
    listen_path: /orders/
    upstream: http://127.0.0.1:9000
    jwt:
      issuers:
        - issuer: https://idp.example.com
"#;

#[test]
fn defaults_apply() {
    let c = load(MINIMAL, &MapEnv::default());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(c.process.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.process.admin_listen.to_string(), "127.0.0.1:8081");
    let api = &c.gateway.apis[0];
    assert_eq!(api.listen_path.as_str(), "/orders");
    assert!(api.strip_listen_path);
    assert!(!api.websocket);
    assert_eq!(api.org_id, "default");
    assert_eq!(api.timeouts, UpstreamTimeouts::default());
    assert!(api.policies.is_authentication_only());
    let ApiAuth::Jwt(jwt) = &api.auth else {
        panic!()
    };
    assert_eq!(jwt.max_token_bytes, DEFAULT_MAX_TOKEN_BYTES);
    assert_eq!(jwt.issuers[0].keys, KeySourceSpec::Discovery);
    assert!(jwt.issuers[0].require_exp);
    assert_eq!(c.gateway.settings.jwks, KeyFetchSettings::default());
}

#[test]
fn websocket_is_read() {
    let c = load(
        &format!("{MINIMAL}    websocket: true\n"),
        &MapEnv::default(),
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert!(c.gateway.apis[0].websocket);
}

#[test]
fn unknown_fields_are_errors() {
    let err = serde_saphyr::from_str::<FileConfig>("apis: []\nlisten_port: 80\n").unwrap_err();
    assert!(err.to_string().contains("listen_port"), "{err}");
}

#[test]
fn every_problem_is_reported_with_its_location() {
    let yaml = r#"
apis:
  - id: a
    listen_path: nope
    upstream: ftp://x
    jwt:
      issuers:
        - secret_base64: "!!!"
          algorithms: [none]
  - id: b
    listen_path: /b
    upstream: http://127.0.0.1:1
policies:
  - id: p
    rate_limit: { requests: 0, per_secs: 1 }
    quota: { max: -5 }
"#;
    let c = load(yaml, &MapEnv::default());
    let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    let has = |loc: &str, msg: &str| text.iter().any(|t| t.contains(loc) && t.contains(msg));
    assert!(
        has("apis[0] (a).listen_path", "must start with '/'"),
        "{text:#?}"
    );
    assert!(has("apis[0] (a).upstream", "not supported"), "{text:#?}");
    assert!(has("apis[0] (a).jwt.issuers[0]", "base64"), "{text:#?}");
    assert!(has("apis[1] (b).jwt", "keyless: true"), "{text:#?}");
    assert!(
        has("policies[0] (p).rate_limit", "requests > 0"),
        "{text:#?}"
    );
    assert!(has("policies[0] (p).quota.max", "-1"), "{text:#?}");
}

#[test]
fn secrets_come_from_the_environment() {
    let yaml = MINIMAL.replace(
        "- issuer: https://idp.example.com",
        "- secret_base64_env: ORDERS_SECRET",
    );
    let missing = load(&yaml, &MapEnv::default());
    assert!(
        missing.problems[0]
            .message
            .contains("ORDERS_SECRET is not set")
    );
    let env = MapEnv(HashMap::from([(
        "ORDERS_SECRET".to_string(),
        "c2VjcmV0".to_string(),
    )]));
    let c = load(&yaml, &env);
    let ApiAuth::Jwt(jwt) = &c.gateway.apis[0].auth else {
        panic!()
    };
    assert_eq!(
        jwt.issuers[0].keys,
        KeySourceSpec::Secret(Secret::new(b"secret".to_vec()))
    );
}

#[test]
fn policies_and_headers() {
    let yaml = format!(
        "{MINIMAL}    policies:\n      claim: realm.pol\n      scope_map:\n        \"orders:read\": reader\n        \"orders:all\": [reader, writer]\n    upstream_headers:\n      identity: null\n      claims:\n        email: X-Email\npolicies:\n  - id: reader\n    apis:\n      orders:\n        allow:\n          - path: /items\n            methods: [GET]\n    rate_limit: {{ requests: 10, per_secs: 0.5 }}\n    quota: {{ max: -1 }}\n  - id: writer\n"
    );
    let c = load(&yaml, &MapEnv::default());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let api = &c.gateway.apis[0];
    assert_eq!(api.policies.scope_map["orders:all"].len(), 2);
    assert_eq!(
        api.policies.policy_claim.as_ref().unwrap().as_str(),
        "realm.pol"
    );
    assert_eq!(api.upstream_headers.identity, None);
    assert_eq!(
        api.upstream_headers.session.as_deref(),
        Some("X-Portico-Session")
    );
    let reader = c.gateway.policies.get("reader").unwrap();
    assert_eq!(reader.rate, Some(RateLimit::try_new(10, 500).unwrap()));
    assert_eq!(reader.quota, Some(Quota::Unlimited));
    assert!(reader.access["orders"].allows("GET", "/items/1"));
    assert!(!reader.access["orders"].allows("POST", "/items/1"));
}

#[test]
fn https_upstreams_tls_and_upstream_jwt() {
    let yaml = MINIMAL.replace("http://127.0.0.1:9000", "https://backend.internal:8443/v1")
        + "    tls:\n      insecure_skip_verify: true\n      server_name: backend\n    upstream_jwt:\n      algorithm: ES256\n      private_key_env: GW_KEY\n      kid: gw-1\n";
    let env = MapEnv(HashMap::from([("GW_KEY".to_string(), "PEM".to_string())]));
    let c = load(&yaml, &env);
    let warnings: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("warning") && w.contains("tls.insecure_skip_verify")),
        "{warnings:#?}"
    );
    assert!(
        c.problems
            .iter()
            .all(|p| p.severity == portico_core::config::Severity::Warning)
    );
    let api = &c.gateway.apis[0];
    assert!(api.upstream.url.is_https());
    assert_eq!(api.upstream_tls.server_name.as_deref(), Some("backend"));
    let jwt = api.upstream_jwt.as_ref().unwrap();
    assert_eq!(
        (jwt.kid.as_str(), jwt.header.as_str(), jwt.ttl_secs),
        ("gw-1", "X-Portico-JWT", 60)
    );

    let hmac = yaml.replace("algorithm: ES256", "algorithm: HS256");
    let c = load(&hmac, &env);
    assert!(
        c.problems
            .iter()
            .any(|p| p.location.ends_with("upstream_jwt.algorithm"))
    );
    let tls_on_http = MINIMAL.to_string() + "    tls:\n      ca_file: ca.pem\n";
    let c = load(&tls_on_http, &MapEnv::default());
    assert!(
        c.problems
            .iter()
            .any(|p| p.message.contains("need an https:// upstream"))
    );
}

#[test]
fn limits_default_to_the_local_backend() {
    let c = load(MINIMAL, &MapEnv::default());
    assert_eq!(c.gateway.settings.limits, LimiterSettings::default());
    assert_eq!(c.gateway.settings.limits.backend, LimiterBackend::Local);
}

const REDIS_LIMITS: &str = r#"
limits:
  backend: redis
  redis_url: redis://cache.internal:6380/1
  timeout_ms: 20
  connect_timeout_ms: 300
  on_redis_failure: fail_closed
  nodes: 3
"#;

#[test]
fn limits_section_is_read() {
    let c = load(REDIS_LIMITS, &MapEnv::default());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let limits = &c.gateway.settings.limits;
    assert_eq!(limits.backend, LimiterBackend::Redis);
    assert_eq!(limits.redis_url.expose(), "redis://cache.internal:6380/1");
    assert_eq!((limits.timeout_ms, limits.connect_timeout_ms), (20, 300));
    assert_eq!(limits.on_redis_failure, RedisFailureRule::FailClosed);
    assert_eq!(limits.nodes, 3);
}

#[test]
fn the_environment_overrides_the_redis_url_and_is_checked_too() {
    let env = MapEnv(HashMap::from([(
        REDIS_URL_ENV.to_string(),
        "redis://:pw@10.0.0.5:6379".to_string(),
    )]));
    let c = load(REDIS_LIMITS, &env);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(
        c.gateway.settings.limits.redis_url.expose(),
        "redis://:pw@10.0.0.5:6379"
    );

    let bad = MapEnv(HashMap::from([(
        REDIS_URL_ENV.to_string(),
        "http://:pw@10.0.0.5:6379".to_string(),
    )]));
    let c = load(REDIS_LIMITS, &bad);
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(
        c.problems[0].location,
        format!("environment variable {REDIS_URL_ENV}")
    );
    assert!(
        !c.problems[0].message.contains("pw"),
        "no secret in the message"
    );
}

#[test]
fn bad_limits_are_errors_at_their_field() {
    let c = load(
        r#"
limits:
  backend: redis
  redis_url: rediss://cache:6379
  timeout_ms: 0
  connect_timeout_ms: 0
  nodes: 0
"#,
        &MapEnv::default(),
    );
    let mut found: Vec<(String, Severity)> = c
        .problems
        .iter()
        .map(|p| (p.location.clone(), p.severity))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        [
            (
                "test.yaml: limits.connect_timeout_ms".into(),
                Severity::Error
            ),
            ("test.yaml: limits.nodes".into(), Severity::Error),
            ("test.yaml: limits.redis_url".into(), Severity::Error),
            ("test.yaml: limits.timeout_ms".into(), Severity::Error),
        ],
        "{:?}",
        c.problems
    );
    for unknown in [
        "limits: {backend: memcached}",
        "limits: {on_redis_failure: retry}",
        "limits: {node: 2}",
    ] {
        assert!(
            serde_saphyr::from_str::<FileConfig>(unknown).is_err(),
            "{unknown}"
        );
    }
}

#[test]
fn a_redis_url_without_the_redis_backend_is_a_warning() {
    let c = load(
        "limits:\n  redis_url: redis://cache:6379\n",
        &MapEnv::default(),
    );
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert_eq!(c.problems[0].severity, Severity::Warning);
    assert_eq!(c.problems[0].location, "test.yaml: limits.redis_url");
}
