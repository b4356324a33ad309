use super::*;
use crate::documents::{parse_yaml, to_native};
use crate::env::MapEnv;
use std::path::Path;

const CATALOGUE: &str = r#"
kind: Api
metadata: { name: payments }
spec: { listen_path: /payments, upstream: "http://127.0.0.1:9000" }
---
kind: Api
metadata: { name: refunds }
spec: { listen_path: /refunds, upstream: "http://127.0.0.1:9001" }
---
kind: OAuthProvider
metadata: { name: corp-idp }
spec: { type: generic, wellKnownUrl: "https://idp.example/.well-known/openid-configuration", initialAccessToken: "${IDP_IAT}" }
---
kind: ClientType
metadata: { name: backend }
spec: { provider: corp-idp, displayName: "Backend service", grantTypes: [client_credentials], responseTypes: [], tokenEndpointAuthMethod: client_secret_basic }
---
kind: Product
metadata: { name: payments }
spec: { apis: [payments, refunds], scopes: [product_payments], dcr: { enabled: true, clientTypes: [backend] } }
---
kind: Plan
metadata: { name: free }
spec: { scope: free_plan, rateLimit: { requests: 100, per: 60s }, quota: { max: 10000, per: 24h } }
"#;

fn load(text: &str) -> crate::native::NativeConfig {
    let docs = parse_yaml(text, "docs.yaml").unwrap();
    to_native(&docs, "docs.yaml", Path::new("."), &MapEnv::default())
}

fn problems(text: &str) -> Vec<String> {
    load(text)
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.location, p.message))
        .collect()
}

#[test]
fn a_dcr_product_wires_its_apis_to_the_provider_and_its_scopes_to_policies() {
    let native = load(CATALOGUE);
    assert!(native.problems.is_empty(), "{:?}", native.problems);
    let gateway = &native.gateway;
    for api in &gateway.apis {
        let portico_core::api::ApiAuth::Jwt(jwt) = &api.auth else {
            panic!("{} checks tokens", api.id)
        };
        let issuers: Vec<_> = jwt.issuers.iter().map(|t| t.issuer.as_deref()).collect();
        assert_eq!(issuers, [Some("https://idp.example")], "{}", api.id);
        let product = &api.policies.scope_map["product_payments"];
        assert_eq!(
            product.iter().map(|p| &**p).collect::<Vec<_>>(),
            ["product:payments"]
        );
        let plan = &api.policies.scope_map["free_plan"];
        assert_eq!(plan.iter().map(|p| &**p).collect::<Vec<_>>(), ["plan:free"]);
    }
    let product = gateway.policies.get("product:payments").unwrap();
    assert!(product.grants_api("payments") && product.grants_api("refunds"));
    assert!(product.rate.is_none() && product.quota.is_none());
    let plan = gateway.policies.get("plan:free").unwrap();
    assert!(plan.is_limits_only());
    assert_eq!(
        plan.rate.unwrap(),
        portico_core::policy::RateLimit::try_new(100, 60_000).unwrap()
    );
    assert_eq!(
        plan.quota.unwrap(),
        portico_core::policy::Quota::limited(10_000, 86_400_000).unwrap()
    );
}

#[test]
fn without_the_portal_documents_nothing_is_left_behind() {
    let apis_only: String = CATALOGUE
        .split("---")
        .take(2)
        .collect::<Vec<_>>()
        .join("---");
    let native = load(&format!(
        "{apis_only}---\nkind: Issuer\nmetadata: {{name: corp}}\nspec: {{issuer: 'https://idp.example'}}\n"
    ));
    let gateway = &native.gateway;
    assert!(gateway.policies.is_empty());
    assert!(gateway.apis.iter().all(|a| a.policies.scope_map.is_empty()));
}

#[test]
fn broken_references_name_the_document_and_the_field() {
    let shown =
        problems(&CATALOGUE.replace("apis: [payments, refunds]", "apis: [payments, nowhere]"));
    assert!(
        shown.iter().any(|p| p
            == "docs.yaml: Product \"payments\": spec.apis[1]: no API with the id \"nowhere\""),
        "{shown:?}"
    );
    let shown = problems(&CATALOGUE.replace("clientTypes: [backend]", "clientTypes: [frontend]"));
    assert!(
        shown
            .iter()
            .any(|p| p.ends_with("spec.dcr.clientTypes[0]: no ClientType named \"frontend\"")),
        "{shown:?}"
    );
    let shown = problems(&CATALOGUE.replace("provider: corp-idp", "provider: other-idp"));
    assert!(
        shown.iter().any(|p| p == "docs.yaml: ClientType \"backend\": spec.provider: no OAuthProvider named \"other-idp\""),
        "{shown:?}"
    );
}

#[test]
fn scopes_and_policy_names_belong_to_one_owner() {
    let shown = problems(&CATALOGUE.replace("scope: free_plan", "scope: product_payments"));
    assert!(
        shown
            .iter()
            .any(|p| p.contains("\"product_payments\" is also a scope of Plan \"free\"")),
        "{shown:?}"
    );
    let taken =
        format!("{CATALOGUE}---\nkind: Policy\nmetadata: {{name: 'plan:free'}}\nspec: {{}}\n");
    let shown = problems(&taken);
    assert!(
        shown
            .iter()
            .any(|p| p.contains("a Policy named \"plan:free\" exists")),
        "{shown:?}"
    );
}

#[test]
fn a_keyless_api_cannot_be_sold() {
    let shown = problems(&CATALOGUE.replace(
        "upstream: \"http://127.0.0.1:9001\" }",
        "upstream: \"http://127.0.0.1:9001\", keyless: true }",
    ));
    assert!(
        shown
            .iter()
            .any(|p| p.contains("spec.apis[1] (refunds): the API is keyless")),
        "{shown:?}"
    );
}

fn client_type(spec: serde_json::Value) -> Result<(), String> {
    serde_json::from_value::<ClientTypeSpec>(spec)
        .map_err(|e| e.to_string())?
        .check()
}

#[test]
fn unsafe_client_types_are_refused_with_the_reason() {
    let none_cc = client_type(
        json!({"provider": "p", "grantTypes": ["client_credentials"], "tokenEndpointAuthMethod": "none"}),
    );
    assert!(
        none_cc
            .unwrap_err()
            .contains("\"none\" with the client_credentials grant")
    );
    let implicit = client_type(json!({"provider": "p", "grantTypes": ["implicit"]}));
    assert!(implicit.unwrap_err().contains("unsafe"));
    let token = client_type(
        json!({"provider": "p", "grantTypes": ["authorization_code"], "responseTypes": ["code token"]}),
    );
    assert!(token.unwrap_err().contains("front channel"));
    let code_without_grant = client_type(
        json!({"provider": "p", "grantTypes": ["client_credentials"], "responseTypes": ["code"]}),
    );
    assert!(code_without_grant.unwrap_err().contains("go together"));
    let unknown = client_type(
        json!({"provider": "p", "grantTypes": ["client_credentials"], "tokenEndpointAuthMethod": "tls_client_auth"}),
    );
    assert!(unknown.unwrap_err().contains("not supported"));
    assert_eq!(
        client_type(
            json!({"provider": "p", "grantTypes": ["authorization_code", "refresh_token"], "responseTypes": ["code"], "tokenEndpointAuthMethod": "none"})
        ),
        Ok(()),
        "a public client with the code flow (PKCE) is fine"
    );
    assert_eq!(
        client_type(json!({"provider": "p", "grantTypes": ["client_credentials"]})),
        Ok(())
    );
}

#[test]
fn plan_durations_and_scopes_are_checked() {
    for (per, secs) in [
        ("60s", 60.0),
        ("1m", 60.0),
        ("24h", 86400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
    ] {
        assert_eq!(Duration::Text(per.into()).as_secs(), Ok(secs), "{per}");
    }
    assert_eq!(Duration::Seconds(30.0).as_secs(), Ok(30.0));
    assert!(Duration::Text("soon".into()).as_secs().is_err());
    assert!(
        Duration::Text("5 weeks".into())
            .as_secs()
            .unwrap_err()
            .contains("unknown unit")
    );
    assert!(Duration::Seconds(0.0).as_secs().is_err());
    let shown = problems(&CATALOGUE.replace("per: 60s", "per: 0s"));
    assert!(
        shown
            .iter()
            .any(|p| p.contains("Plan \"free\": spec.rateLimit.per: must be more than zero")),
        "{shown:?}"
    );
    let shown = problems(&CATALOGUE.replace("scope: free_plan", "scope: \"free plan\""));
    assert!(
        shown
            .iter()
            .any(|p| p.contains("spec.scope: \"free plan\" is not a scope token")),
        "{shown:?}"
    );
}

#[test]
fn the_issuer_comes_from_the_discovery_url_or_is_given() {
    let provider = |url: &str, issuer: Option<&str>| OAuthProviderSpec {
        kind: ProviderType::Generic,
        well_known_url: url.into(),
        issuer: issuer.map(str::to_string),
        initial_access_token: None,
        insecure_skip_tls_verify: false,
        scope_claim: None,
        audiences: vec![],
    };
    assert_eq!(
        provider(
            "https://idp/realms/a/.well-known/openid-configuration",
            None
        )
        .issuer(),
        Ok("https://idp/realms/a".into())
    );
    assert!(
        provider("https://idp/discovery.json", None)
            .issuer()
            .unwrap_err()
            .contains("spec.issuer")
    );
    assert_eq!(
        provider("https://idp/discovery.json", Some("https://idp")).issuer(),
        Ok("https://idp".into())
    );
}

#[test]
fn a_products_api_is_granted_by_the_portals_scopes_only() {
    let with = |extra: &str| {
        problems(&CATALOGUE.replace(
            "upstream: \"http://127.0.0.1:9000\" }",
            &format!("upstream: \"http://127.0.0.1:9000\", {extra} }}"),
        ))
    };
    let shown = with("policies: { defaults: [basic] }");
    assert!(
        shown.iter().any(|p| p.contains("default policies")),
        "{shown:?}"
    );
    let shown = with("policies: { claim: pol }");
    assert!(
        shown.iter().any(|p| p.contains("policies from a claim")),
        "{shown:?}"
    );
    let shown = with("policies: { scope_map: { free_plan: [basic] } }");
    assert!(
        shown
            .iter()
            .any(|p| p.contains("maps the portal's scope \"free_plan\" to [\"basic\"]")),
        "{shown:?}"
    );
    let shown = with("policies: { scope_claim: scp }");
    assert!(
        shown
            .iter()
            .any(|p| p.contains("reads scopes from \"scp\"")),
        "{shown:?}"
    );
}
