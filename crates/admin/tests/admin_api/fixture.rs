//! A running admin API and a client for it.

use portico_admin::{AdminState, AdminToken, router};
use portico_store::{DatabaseUrl, SecretKey, Store, StoreSettings};
use portico_testkit::TempDir;
use portico_testkit::postgres::TempDatabase;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-admin-token-0123456789abcdef0123";

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    task: JoinHandle<()>,
    _dir: TempDir,
    _db: Option<TempDatabase>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

async fn open_store(backend: Backend) -> (Store, TempDir, Option<TempDatabase>) {
    let dir = TempDir::new("admin");
    let (url, db) = match backend {
        Backend::Sqlite => (DatabaseUrl::Sqlite(dir.path().join("portico.db")), None),
        Backend::Postgres => {
            let db = TempDatabase::create("admin").await;
            (db.url.parse().unwrap(), Some(db))
        }
    };
    let key = SecretKey::from_base64(&SecretKey::generate_base64().unwrap()).unwrap();
    let store = Store::open(&StoreSettings::new(url), key).await.unwrap();
    (store, dir, db)
}

impl Server {
    pub async fn sqlite() -> Self {
        Self::start(Backend::Sqlite, |state| state).await
    }

    /// A server whose state `configure` adjusts (validator, redaction).
    pub async fn start(backend: Backend, configure: impl FnOnce(AdminState) -> AdminState) -> Self {
        let (store, dir, db) = open_store(backend).await;
        let state = configure(AdminState::new(
            store.clone(),
            AdminToken::new(TOKEN).unwrap(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            base,
            client: reqwest::Client::new(),
            store,
            task,
            _dir: dir,
            _db: db,
        }
    }

    /// A request with the admin token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.request(method, path).json(body).send().await.unwrap()
    }
}

/// A document of the shape the API reads.
pub fn document(kind: &str, name: &str, spec: Value) -> Value {
    json!({ "kind": kind, "metadata": { "name": name }, "spec": spec })
}

/// The status, the `ETag` (if any) and the JSON body (`null` if none).
pub async fn read(response: Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, etag, body)
}

/// The `path`s of an error body's `fields`.
pub fn field_paths(body: &Value) -> Vec<String> {
    body["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {body}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}
