//! The portal's pages over HTTP, as a browser uses them (cookies, forms, redirects), against
//! the real test IdP: sign up, cart, checkout, an admin's approval, the credentials on the
//! app's page; CSRF protection on every form; one developer never reaching another's app;
//! admin pages closed to developers.

mod common;
use common::{ADMIN, Portal, start, start_with};
use reqwest::StatusCode;

/// A browser: its own cookie jar, redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    fn new(p: &Portal) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            base: p.base.clone(),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let (status, url) = (r.status(), r.url().path().to_string());
        (status, url, r.text().await.unwrap())
    }

    /// Posts a form as the page at `from` would: with that page's CSRF token.
    async fn submit(
        &self,
        from: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let (_, _, page) = self.get(from).await;
        let csrf = csrf_of(&page);
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }

    async fn post(&self, action: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let r = self
            .http
            .post(format!("{}{action}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        let (status, url) = (r.status(), r.url().path().to_string());
        (status, url, r.text().await.unwrap())
    }

    async fn sign_up(&self, name: &str, email: &str) {
        let (status, url, page) = self
            .submit(
                "/signup",
                "/signup",
                &[
                    ("name", name),
                    ("email", email),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(
            (status, url.as_str()),
            (StatusCode::OK, "/dashboard"),
            "{page}"
        );
    }
}

fn csrf_of(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_string()
}

/// The text after `id="ID">` up to the next `<`, its HTML escapes undone.
fn element_text(page: &str, id: &str) -> Option<String> {
    let marker = format!(r#"id="{id}">"#);
    let start = page.find(&marker)? + marker.len();
    let text = &page[start..][..page[start..].find('<')?];
    Some(
        text.replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[tokio::test]
async fn from_sign_up_to_credentials_that_get_a_token() {
    let p = start().await;
    let ada = Browser::new(&p);
    ada.sign_up("Ada", "ada@example.com").await;

    let (status, _, catalogue) = ada.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        catalogue.contains(r#"href="/products/orders""#),
        "{catalogue}"
    );
    let (_, _, product) = ada.get("/products/orders").await;
    assert!(product.contains("<h1>Orders API</h1>"), "{product}");
    assert!(
        !product.contains("<script>alert"),
        "raw HTML in docs is inert"
    );

    ada.submit("/products/orders", "/cart", &[("product", "orders")])
        .await;
    let (status, url, app_page) = ada
        .submit(
            "/cart",
            "/checkout",
            &[
                ("plan", "gold"),
                ("client_type", "backend"),
                ("app", "new"),
                ("new_app_name", "<b>Ledger</b>"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app_page}");
    assert!(url.starts_with("/apps/"), "{url}");
    assert!(app_page.contains("Pending approval"), "{app_page}");
    assert!(
        app_page.contains("&lt;b&gt;Ledger&lt;&#x2f;b&gt;"),
        "names are escaped"
    );
    let app_path = url.clone();
    let (_, _, cart) = ada.get("/cart").await;
    assert!(cart.contains("Your cart is empty"), "checked out: {cart}");

    // The admin signs in with the admin token and approves on the queue page.
    let admin = Browser::new(&p);
    let (_, url, _) = admin.get("/manage").await;
    assert_eq!(url, "/manage/login");
    let (status, _, refused) = admin
        .submit(
            "/manage/login",
            "/manage/login",
            &[("token", "not the token")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    let (status, url, queue) = admin
        .submit("/manage/login", "/manage/login", &[("token", ADMIN)])
        .await;
    assert_eq!((status, url.as_str()), (StatusCode::OK, "/manage"));
    assert!(queue.contains("ada@example.com"), "{queue}");
    // No SMTP server: the admins' email waits in the outbox, on its page.
    let (_, _, outbox) = admin.get("/manage/outbox").await;
    assert!(
        outbox.contains("Access requested: orders for &lt;b&gt;Ledger"),
        "{outbox}"
    );
    assert!(outbox.contains("No SMTP server is configured"), "{outbox}");
    let marker = "/manage/requests/";
    let start = queue.find(marker).unwrap() + marker.len();
    let request_id = &queue[start..start + 32];
    let (status, _, approved) = admin
        .submit(
            "/manage",
            &format!("/manage/requests/{request_id}/approve"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert!(approved.contains("The request was approved"), "{approved}");

    // The credentials: the secret only after an explicit reveal.
    let (_, _, app_page) = ada.get(&app_path).await;
    let client_id = element_text(&app_page, "client-id").expect("a client id");
    assert!(element_text(&app_page, "client-secret").is_none());
    assert!(app_page.contains("Reveal secret"));
    let client = p
        .store
        .client_of(app_path.trim_start_matches("/apps/"))
        .await
        .unwrap()
        .unwrap();
    let registration: serde_json::Value = serde_json::from_slice(&client.registration).unwrap();
    let secret = registration["client_secret"].as_str().unwrap();
    assert!(!app_page.contains(secret), "the secret is not on the page");
    assert!(
        element_text(&app_page, "curl")
            .unwrap()
            .contains("$CLIENT_SECRET")
    );
    let (_, _, revealed) = ada
        .submit(&app_path, &format!("{app_path}/reveal"), &[])
        .await;
    assert_eq!(
        element_text(&revealed, "client-secret").as_deref(),
        Some(secret)
    );
    let endpoint = element_text(&revealed, "token-endpoint").unwrap();
    assert_eq!(endpoint, format!("{}/token", p.idp.issuer));
    assert!(
        p.idp
            .token_of_client(&client_id, secret, "orders:read gold")
            .await
            .is_ok()
    );

    // Deleting the app on its page deletes the client at the IdP.
    let (_, url, _) = ada
        .submit(&app_path, &format!("{app_path}/delete"), &[])
        .await;
    assert_eq!(url, "/dashboard");
    let refused = p
        .idp
        .token_of_client(&client_id, secret, "orders:read")
        .await
        .unwrap_err();
    assert_eq!(refused["error"], "invalid_client", "{refused}");
}

#[tokio::test]
async fn forms_without_this_portal_s_csrf_token_are_refused() {
    let p = start().await;
    let visitor = Browser::new(&p);
    let login = [
        ("email", "ada@example.com"),
        ("password", "correct horse battery"),
    ];

    // No token at all, and no CSRF cookie yet.
    let (status, _, page) = visitor.post("/login", &login).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    // A cookie now, but a form without the token or with another one.
    visitor.get("/login").await;
    let (status, _, _) = visitor.post("/login", &login).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let forged = [("csrf", "A".repeat(43)).clone()];
    let forged: Vec<(&str, &str)> = forged
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(login)
        .collect();
    let (status, _, _) = visitor.post("/login", &forged).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The right token: the form is handled (no such account).
    let (status, _, page) = visitor.submit("/login", "/login", &login).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(page.contains("Wrong email or password"));

    // Signed in, the session's token is the one that counts; another site's page posting
    // with the browser's cookies has no token, and says where it comes from.
    visitor.sign_up("Ada", "ada@example.com").await;
    let (status, _, _) = visitor.post("/cart", &[("product", "orders")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, _, page) = visitor.get("/products/orders").await;
    let csrf = csrf_of(&page);
    let r = visitor
        .http
        .post(format!("{}/cart", p.base))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("product", "orders")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, _, cart) = visitor.get("/cart").await;
    assert!(cart.contains("Your cart is empty"), "nothing was added");

    // Signing out ends the session on the server.
    visitor.submit("/dashboard", "/logout", &[]).await;
    let (_, url, _) = visitor.get("/dashboard").await;
    assert_eq!(url, "/login");
}

#[tokio::test]
async fn one_developer_never_reaches_another_s_app_nor_the_admin_pages() {
    let p = start().await;
    let ada = Browser::new(&p);
    ada.sign_up("Ada", "ada@example.com").await;
    ada.submit("/products/orders", "/cart", &[("product", "orders")])
        .await;
    let (_, app_path, _) = ada
        .submit(
            "/cart",
            "/checkout",
            &[
                ("plan", "gold"),
                ("client_type", "backend"),
                ("app", "new"),
                ("new_app_name", "ledger"),
            ],
        )
        .await;
    assert!(app_path.starts_with("/apps/"), "{app_path}");

    let bob = Browser::new(&p);
    bob.sign_up("Bob", "bob@example.com").await;
    let (status, _, _) = bob.get(&app_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for action in ["reveal", "delete"] {
        let (status, _, _) = bob
            .submit("/dashboard", &format!("{app_path}/{action}"), &[])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }
    // Checking out into Ada's app is refused as well.
    bob.submit("/products/orders", "/cart", &[("product", "orders")])
        .await;
    let app_id = app_path.trim_start_matches("/apps/");
    let (status, _, page) = bob
        .submit(
            "/cart",
            "/checkout",
            &[
                ("plan", "gold"),
                ("client_type", "backend"),
                ("app", app_id),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (_, _, dashboard) = bob.get("/dashboard").await;
    assert!(!dashboard.contains("ledger"), "{dashboard}");
    let (status, _, ada_app) = ada.get(&app_path).await;
    assert_eq!(status, StatusCode::OK, "Ada's app is still there");
    assert!(ada_app.contains("Pending approval"));

    // Every admin page sends a developer to the admin sign-in, and approves nothing.
    let requests = p.store.access_requests(None).await.unwrap();
    let app_page = format!("/manage/apps/{app_id}");
    for path in [
        "/manage",
        "/manage/apps",
        app_page.as_str(),
        "/manage/developers",
        "/manage/catalogue",
        "/manage/catalogue/plans",
        "/manage/catalogue/plans/gold",
        "/manage/outbox",
    ] {
        let (_, url, _) = bob.get(path).await;
        assert_eq!(url, "/manage/login", "{path}");
    }
    for step in ["approve", "reject", "revoke"] {
        let (_, url, _) = bob
            .submit(
                "/dashboard",
                &format!("/manage/requests/{}/{step}", requests[0].id),
                &[("reason", "because")],
            )
            .await;
        assert_eq!(url, "/manage/login", "{step}");
    }
    let (_, url, _) = bob
        .submit("/dashboard", "/manage/providers/test-idp/test", &[])
        .await;
    assert_eq!(url, "/manage/login");
    let gold = p.store.get("Plan", "gold").await.unwrap().unwrap();
    for (action, fields) in [
        (
            "/manage/catalogue/plans",
            vec![("name", "free"), ("scope", "free")],
        ),
        (
            "/manage/catalogue/plans/gold",
            vec![("version", "1"), ("scope", "mine")],
        ),
        (
            "/manage/catalogue/plans/gold/delete",
            vec![("version", "1")],
        ),
    ] {
        let (_, url, _) = bob.submit("/dashboard", action, &fields).await;
        assert_eq!(url, "/manage/login", "{action}");
    }
    assert_eq!(p.store.get("Plan", "gold").await.unwrap().unwrap(), gold);
    assert!(p.store.get("Plan", "free").await.unwrap().is_none());
    let after = p
        .store
        .access_request(&requests[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status.as_str(), "pending");
}

#[tokio::test]
async fn with_sign_up_closed_only_admins_make_accounts() {
    let p = start_with(|state| state.with_signup(false)).await;
    let visitor = Browser::new(&p);
    let (status, _, page) = visitor.get("/signup").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (_, _, login) = visitor.get("/login").await;
    assert!(
        !login.contains(r#"href="/signup""#),
        "no link to a closed sign-up: {login}"
    );
    let (status, _, _) = visitor
        .submit(
            "/login",
            "/signup",
            &[
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        p.store
            .developer_by_email("eve@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// An admin's browser, signed in.
async fn admin(p: &Portal) -> Browser {
    let admin = Browser::new(p);
    let (status, url, _) = admin
        .submit("/manage/login", "/manage/login", &[("token", ADMIN)])
        .await;
    assert_eq!((status, url.as_str()), (StatusCode::OK, "/manage"));
    admin
}

/// The value of the hidden `version` field.
fn version_of(page: &str) -> String {
    let marker = r#"name="version" value=""#;
    let start = page.find(marker).expect("a form with a version") + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn admins_edit_the_catalogue_s_documents_on_pages_through_the_admin_api_s_checks() {
    let p = start().await;
    let admin = admin(&p).await;

    // A new plan, from the form: stored as the document `apply` would write.
    let (status, _, page) = admin.get("/manage/catalogue/plans").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<label for="f-rateLimit-requests">"#),
        "labelled fields"
    );
    let (status, url, page) = admin
        .submit(
            "/manage/catalogue/plans",
            "/manage/catalogue/plans",
            &[
                ("name", "bronze"),
                ("displayName", "Bronze"),
                ("scope", "bronze"),
                ("rateLimit.requests", "10"),
                ("rateLimit.per", "1m"),
                ("quota.max", ""),
                ("quota.per", ""),
            ],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/manage/catalogue"),
        "{page}"
    );
    assert!(
        page.contains("Saved the plan &quot;bronze&quot;."),
        "{page}"
    );
    let bronze = p.store.get("Plan", "bronze").await.unwrap().unwrap();
    assert_eq!(
        bronze.spec,
        serde_json::json!({"displayName": "Bronze", "scope": "bronze", "rateLimit": {"requests": 10, "per": "1m"}})
    );
    // The same name again is refused, and nothing changes.
    let (status, _, page) = admin
        .submit(
            "/manage/catalogue/plans",
            "/manage/catalogue/plans",
            &[("name", "bronze"), ("scope", "other")],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("exists"), "{page}");
    assert_eq!(
        p.store.get("Plan", "bronze").await.unwrap().unwrap(),
        bronze
    );

    // A mistake is shown by its field, with what was typed, and writes nothing.
    let (_, _, form) = admin.get("/manage/catalogue/plans/bronze").await;
    let version = version_of(&form);
    let (status, _, page) = admin
        .submit(
            "/manage/catalogue/plans/bronze",
            "/manage/catalogue/plans/bronze",
            &[
                ("version", &version),
                ("scope", "bronze"),
                ("rateLimit.requests", "ten"),
                ("rateLimit.per", "1m"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("must be a whole number"), "{page}");
    assert!(page.contains(r#"value="ten""#), "what was typed is kept");
    assert_eq!(
        p.store.get("Plan", "bronze").await.unwrap().unwrap(),
        bronze
    );

    // A change made elsewhere (by `apply`, say) after the form was read is not overwritten.
    let mut changed = bronze.spec.clone();
    changed["description"] = "changed by apply".into();
    p.store
        .put(
            portico_store::Resource {
                kind: "Plan".into(),
                name: "bronze".into(),
                spec: changed,
            },
            portico_store::Expect::Any,
        )
        .await
        .unwrap();
    let (status, _, page) = admin
        .post(
            "/manage/catalogue/plans/bronze",
            &[
                ("csrf", &csrf_of(&form)),
                ("version", &version),
                ("scope", "bronze2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("version"), "{page}");
    assert_eq!(
        p.store.get("Plan", "bronze").await.unwrap().unwrap().spec["scope"],
        "bronze"
    );

    // Read again, the form writes at the new version.
    let (_, _, form) = admin.get("/manage/catalogue/plans/bronze").await;
    let (status, url, _) = admin
        .submit(
            "/manage/catalogue/plans/bronze",
            "/manage/catalogue/plans/bronze",
            &[
                ("version", &version_of(&form)),
                ("scope", "bronze"),
                ("description", "changed by apply"),
                ("displayName", "Bronze"),
                ("quota.max", "500"),
                ("quota.per", "24h"),
            ],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/manage/catalogue")
    );
    let spec = p.store.get("Plan", "bronze").await.unwrap().unwrap().spec;
    assert_eq!(spec["quota"], serde_json::json!({"max": 500, "per": "24h"}));
    assert!(
        spec.get("rateLimit").is_none(),
        "emptied fields are removed"
    );

    // The provider's initial access token is never put in the page, and an empty field keeps it.
    let (_, _, form) = admin
        .get("/manage/catalogue/oauth-providers/test-idp")
        .await;
    assert!(!form.contains(portico_testkit::idp::INITIAL_ACCESS_TOKEN));
    assert!(form.contains("Stored: leave empty to keep it"));
    let stored = p
        .store
        .get("OAuthProvider", "test-idp")
        .await
        .unwrap()
        .unwrap();
    let url = stored.spec["wellKnownUrl"].as_str().unwrap().to_string();
    let (status, _, page) = admin
        .submit(
            "/manage/catalogue/oauth-providers/test-idp",
            "/manage/catalogue/oauth-providers/test-idp",
            &[
                ("version", &version_of(&form)),
                ("type", "generic"),
                ("wellKnownUrl", &url),
                ("initialAccessToken", ""),
                ("scopeClaim", "scp"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let after = p
        .store
        .get("OAuthProvider", "test-idp")
        .await
        .unwrap()
        .unwrap()
        .spec;
    assert_eq!(
        after["initialAccessToken"],
        stored.spec["initialAccessToken"]
    );
    assert_eq!(after["scopeClaim"], "scp");

    // An unsafe client type is refused with the checks' own words.
    let (status, _, page) = admin
        .submit(
            "/manage/catalogue/client-types",
            "/manage/catalogue/client-types",
            &[
                ("name", "open"),
                ("provider", "test-idp"),
                ("grantTypes", "client_credentials"),
                ("tokenEndpointAuthMethod", "none"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("would give tokens to anyone who knows the client_id"),
        "{page}"
    );
    assert!(p.store.get("ClientType", "open").await.unwrap().is_none());

    // Delete, at the version shown.
    let (_, _, form) = admin.get("/manage/catalogue/plans/bronze").await;
    let (status, url, page) = admin
        .submit(
            "/manage/catalogue/plans/bronze",
            "/manage/catalogue/plans/bronze/delete",
            &[("version", &version_of(&form))],
        )
        .await;
    assert_eq!(
        (status, url.as_str()),
        (StatusCode::OK, "/manage/catalogue")
    );
    assert!(
        page.contains("Deleted the plan &quot;bronze&quot;."),
        "{page}"
    );
    assert!(p.store.get("Plan", "bronze").await.unwrap().is_none());
}
