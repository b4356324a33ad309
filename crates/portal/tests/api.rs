//! The portal's JSON APIs over HTTP, against the real test IdP and a SQLite store: an admin
//! creates developers and approves; a developer gets a personal access token, creates an app,
//! requests access, reads the credentials and gets a token with them; another developer sees
//! none of it.

use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Portal, start};

impl Portal {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A developer made by the admin, and a personal access token of theirs.
    async fn developer(&self, email: &str) -> String {
        let body = json!({"email": email, "name": "Dev", "password": "correct horse battery"});
        let (status, made) = self
            .call("POST", "/admin/developers", ADMIN, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let login = json!({"email": email, "password": "correct horse battery"});
        let (status, token) = self
            .call("POST", "/portal/api/tokens", "", Some(login))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        token["token"].as_str().unwrap().to_string()
    }
}

#[tokio::test]
async fn from_access_request_to_a_token_and_back() {
    let p = start().await;
    let ada = p.developer("ada@example.com").await;

    let (status, catalogue) = p.call("GET", "/portal/api/catalogue", &ada, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalogue["products"][0]["name"], "orders");
    assert_eq!(
        catalogue["products"][0]["clientTypes"][0]["displayName"],
        "Backend service"
    );
    assert_eq!(catalogue["plans"][0]["scope"], "gold");

    let (status, app) = p
        .call(
            "POST",
            "/portal/api/apps",
            &ada,
            Some(json!({"name": "orders app"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    // A code-flow client type needs redirect URIs the app does not have.
    let web = json!({"app_id": app_id, "product": "orders", "plan": "gold", "client_type": "web"});
    let (status, refused) = p
        .call("POST", "/portal/api/access-requests", &ada, Some(web))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("redirect URIs")
    );
    let ask =
        json!({"app_id": app_id, "product": "orders", "plan": "gold", "client_type": "backend"});
    let (status, request) = p
        .call("POST", "/portal/api/access-requests", &ada, Some(ask))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["status"], "pending");
    let request_id = request["id"].as_str().unwrap().to_string();

    let (_, pending) = p
        .call("GET", "/admin/access-requests?status=pending", ADMIN, None)
        .await;
    assert_eq!(pending["items"][0]["id"], request_id.as_str());
    let (status, approved) = p
        .call(
            "POST",
            &format!("/admin/access-requests/{request_id}/approve"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "approved");
    let (status, again) = p
        .call(
            "POST",
            &format!("/admin/access-requests/{request_id}/approve"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, shown) = p
        .call("GET", &format!("/portal/api/apps/{app_id}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["access"][0]["status"], "approved");
    assert_eq!(shown["scopes"], json!(["gold", "orders:read"]));
    assert_eq!(
        shown["token_endpoint"],
        format!("{}/token", p.idp.issuer).as_str()
    );
    let (client_id, secret) = (
        shown["client_id"].as_str().unwrap(),
        shown["client_secret"].as_str().unwrap(),
    );
    p.idp
        .token_of_client(client_id, secret, "orders:read gold")
        .await
        .unwrap();

    let (status, _) = p
        .call("DELETE", &format!("/portal/api/apps/{app_id}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = p
        .idp
        .token_of_client(client_id, secret, "orders:read")
        .await
        .unwrap_err();
    assert_eq!(gone["error"], "invalid_client", "{gone}");
    let (status, _) = p
        .call("GET", &format!("/portal/api/apps/{app_id}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn one_developer_never_sees_anothers_apps_and_developers_are_not_admins() {
    let p = start().await;
    let ada = p.developer("ada@example.com").await;
    let bob = p.developer("bob@example.com").await;
    let (_, app) = p
        .call(
            "POST",
            "/portal/api/apps",
            &ada,
            Some(json!({"name": "ada's"})),
        )
        .await;
    let app_id = app["id"].as_str().unwrap();

    for (method, path) in [
        ("GET", format!("/portal/api/apps/{app_id}")),
        ("DELETE", format!("/portal/api/apps/{app_id}")),
    ] {
        let (status, body) = p.call(method, &path, &bob, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let ask =
        json!({"app_id": app_id, "product": "orders", "plan": "gold", "client_type": "backend"});
    let (status, _) = p
        .call("POST", "/portal/api/access-requests", &bob, Some(ask))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, bobs) = p.call("GET", "/portal/api/apps", &bob, None).await;
    assert_eq!(bobs["items"], json!([]));
    let (status, _) = p
        .call("GET", &format!("/portal/api/apps/{app_id}"), &ada, None)
        .await;
    assert_eq!(status, StatusCode::OK, "still there for its owner");

    for (method, path) in [
        ("POST", "/admin/developers"),
        ("GET", "/admin/access-requests"),
        ("POST", "/admin/access-requests/x/approve"),
        ("POST", "/admin/access-requests/x/reject"),
        ("POST", "/admin/access-requests/x/revoke"),
    ] {
        let (status, _) = p
            .call(method, path, &ada, Some(json!({"reason": "x"})))
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a developer's token"
        );
    }
    let (status, _) = p.call("GET", "/portal/api/apps", "pat_forged", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = p.call("GET", "/portal/api/apps", ADMIN, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin token is not a developer"
    );
}

#[tokio::test]
async fn bad_logins_and_bad_input_are_refused_clearly() {
    let p = start().await;
    p.developer("ada@example.com").await;
    for login in [
        json!({"email": "ada@example.com", "password": "wrong password!"}),
        json!({"email": "nobody@example.com", "password": "correct horse battery"}),
    ] {
        let (status, body) = p.call("POST", "/portal/api/tokens", "", Some(login)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "wrong email or password");
    }
    let short = json!({"email": "c@example.com", "name": "C", "password": "short"});
    let (status, body) = p
        .call("POST", "/admin/developers", ADMIN, Some(short))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("password: at least")
    );
    let twice =
        json!({"email": "ADA@example.com", "name": "A", "password": "correct horse battery"});
    let (status, _) = p
        .call("POST", "/admin/developers", ADMIN, Some(twice))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let ada = {
        let login = json!({"email": "ada@example.com", "password": "correct horse battery"});
        p.call("POST", "/portal/api/tokens", "", Some(login))
            .await
            .1["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let bad_uri =
        json!({"name": "x", "redirect_uris": "https://ok.example/cb, http://evil.example/cb"});
    let (status, body) = p
        .call("POST", "/portal/api/apps", &ada, Some(bad_uri))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["message"].as_str().unwrap().contains("must be https"),
        "{body}"
    );
    let (status, _) = p
        .call("GET", "/admin/access-requests?status=maybe", ADMIN, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_app_is_one_client_under_one_plan() {
    let p = start().await;
    let ada = p.developer("ada@example.com").await;
    let (_, app) = p
        .call(
            "POST",
            "/portal/api/apps",
            &ada,
            Some(json!({"name": "a", "redirect_uris": ["https://a.example/cb"]})),
        )
        .await;
    let app_id = app["id"].as_str().unwrap();
    let ask = |plan: &str, client_type: &str| json!({"app_id": app_id, "product": "orders", "plan": plan, "client_type": client_type});
    let (status, first) = p
        .call(
            "POST",
            "/portal/api/access-requests",
            &ada,
            Some(ask("gold", "backend")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(
        first.get("last_error").is_none(),
        "the IdP's words are for admins"
    );
    let (status, body) = p
        .call(
            "POST",
            "/portal/api/access-requests",
            &ada,
            Some(ask("gold", "backend")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = p
        .call(
            "POST",
            "/portal/api/access-requests",
            &ada,
            Some(ask("gold", "web")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is a \"backend\" client"),
        "{body}"
    );
    let (status, body) = p
        .call(
            "POST",
            "/portal/api/access-requests",
            &ada,
            Some(ask("silver", "backend")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("on the \"gold\" plan"),
        "{body}"
    );
    for bad in ["../x", "%00", "ABCDEF0123456789ABCDEF0123456789"] {
        let (status, _) = p
            .call("GET", &format!("/portal/api/apps/{bad}"), &ada, None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        let (status, _) = p
            .call(
                "POST",
                &format!("/admin/access-requests/{bad}/approve"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}
