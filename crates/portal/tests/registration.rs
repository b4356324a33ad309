//! Client registration against the real test IdP (npm `oidc-provider`: RFC 7591 with an
//! initial access token, RFC 7592 management, client_credentials, JWT access tokens).

use portico_config::portal::{DISCOVERY_SUFFIX, ProviderType};
use portico_portal::registration::{
    ClientMetadata, Registrar, Registration, RegistrationError, discover, http_client,
};
use portico_testkit::idp::{INITIAL_ACCESS_TOKEN, Idp};
use serde_json::Value;

fn backend(scope: &str) -> ClientMetadata {
    ClientMetadata {
        client_name: "orders app".into(),
        grant_types: vec!["client_credentials".into()],
        response_types: vec![],
        redirect_uris: vec![],
        token_endpoint_auth_method: "client_secret_basic".into(),
        scope: scope.into(),
        application_type: None,
    }
}

async fn registrar_of(idp: &Idp, token: Option<&str>) -> (Registrar, String) {
    let http = http_client(false).unwrap();
    let found = discover(&http, &format!("{}{DISCOVERY_SUFFIX}", idp.issuer))
        .await
        .unwrap();
    assert_eq!(found.issuer, idp.issuer);
    let endpoint = found
        .registration_endpoint
        .expect("the IdP offers registration");
    let registrar = Registrar::new(
        http,
        endpoint,
        token.map(str::to_string),
        ProviderType::Generic,
    );
    (registrar, found.token_endpoint.unwrap())
}

/// A client_credentials token for `client`, and the scopes it carries.
async fn token_scopes(idp: &Idp, client: &Registration, scope: &str) -> Result<Vec<String>, Value> {
    let secret = client.client_secret.as_deref().unwrap_or_default();
    let token = idp
        .token_of_client(&client.client_id, secret, scope)
        .await?;
    let claims = Idp::claims(&token);
    assert_eq!(claims["client_id"], client.client_id.as_str());
    Ok(claims["scope"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .map(str::to_string)
        .collect())
}

#[tokio::test]
async fn a_client_is_registered_updated_and_deleted_at_the_idp() {
    let idp = Idp::start();
    let (registrar, token_endpoint) = registrar_of(&idp, Some(INITIAL_ACCESS_TOKEN)).await;
    assert_eq!(token_endpoint, format!("{}/token", idp.issuer));

    let client = registrar
        .register(&backend("orders:read gold"))
        .await
        .unwrap();
    assert!(client.client_secret.is_some());
    assert!(client.registration_client_uri.is_some());
    assert_eq!(client.answer["scope"], "orders:read gold");
    assert_eq!(
        token_scopes(&idp, &client, "orders:read gold")
            .await
            .unwrap(),
        ["orders:read", "gold"]
    );
    let debug = format!("{client:?}");
    assert!(
        !debug.contains(client.client_secret.as_deref().unwrap())
            && !debug.contains(client.registration_access_token.as_deref().unwrap()),
        "secrets stay out of logs: {debug}"
    );

    // RFC 7592: the same client, more scopes; the IdP rotates the registration access token.
    let updated = registrar
        .update(&client, &backend("orders:read orders:write gold"))
        .await
        .unwrap();
    assert_eq!(updated.client_id, client.client_id);
    assert_ne!(
        updated.registration_access_token,
        client.registration_access_token
    );
    assert_eq!(
        token_scopes(&idp, &updated, "orders:read orders:write gold")
            .await
            .unwrap(),
        ["orders:read", "orders:write", "gold"]
    );
    // The old registration access token went with the rotation.
    let stale = registrar.update(&client, &backend("orders:read")).await;
    assert!(
        matches!(stale, Err(RegistrationError::Refused { status: 401, .. })),
        "{stale:?}"
    );

    registrar.delete(&updated).await.unwrap();
    let refused = token_scopes(&idp, &updated, "orders:read")
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client", "{refused}");
    // Deleting what is gone is done, not an error: a retried revocation finishes.
    registrar.delete(&updated).await.unwrap();
}

#[tokio::test]
async fn the_idps_refusals_come_back_in_its_own_words() {
    let idp = Idp::start();
    let (without_token, _) = registrar_of(&idp, None).await;
    let refused = without_token
        .register(&backend("orders:read"))
        .await
        .unwrap_err();
    let RegistrationError::Refused { status, .. } = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(*status, 401, "{refused}");

    let (registrar, _) = registrar_of(&idp, Some(INITIAL_ACCESS_TOKEN)).await;
    let mut web = backend("orders:read");
    web.grant_types = vec!["authorization_code".into()];
    web.response_types = vec!["code".into()];
    let refused = registrar.register(&web).await.unwrap_err();
    let shown = refused.to_string();
    assert!(
        shown.starts_with("the IdP refused (400): invalid_redirect_uri:"),
        "{shown}"
    );

    let (wrong_token, _) = registrar_of(&idp, Some("not-the-token")).await;
    let refused = wrong_token
        .register(&backend("orders:read"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("(401)"), "{refused}");
}

#[tokio::test]
async fn an_unreachable_idp_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = http_client(false).unwrap();
    let gone = discover(&http, &format!("http://127.0.0.1:{port}{DISCOVERY_SUFFIX}")).await;
    assert!(
        matches!(gone, Err(RegistrationError::Unreachable(_))),
        "{gone:?}"
    );
    let registrar = Registrar::new(
        http,
        format!("http://127.0.0.1:{port}/reg"),
        None,
        ProviderType::Generic,
    );
    let refused = registrar.register(&backend("a")).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("the IdP could not be reached: "),
        "{refused}"
    );
}
