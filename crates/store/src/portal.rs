//! The developer portal's records: developers, apps, access requests, and the OAuth client
//! each app is at the IdP. A client's registration (the IdP's whole answer, with the client
//! secret and the registration access token) is sealed like specs, bound to its app.
//!
//! Access requests move between states only by compare-and-set
//! ([`Store::move_access_request`]): of two approvals of one request, one takes it.

use crate::backend::on_pool;
use crate::{Store, StoreError};
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, PartialEq, Eq)]
pub struct Developer {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Argon2id, PHC string format.
    pub password_hash: String,
    pub created_at_secs: u64,
}

impl std::fmt::Debug for Developer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Developer")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub developer_id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub created_at_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Pending,
    /// The IdP is being called for it.
    Approving,
    Approved,
    Rejected,
    Revoked,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approving => "approving",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RequestStatus::Pending,
            RequestStatus::Approving,
            RequestStatus::Approved,
            RequestStatus::Rejected,
            RequestStatus::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    pub id: String,
    pub app_id: String,
    pub product: String,
    pub plan: String,
    pub client_type: String,
    pub status: RequestStatus,
    pub reason: Option<String>,
    pub last_error: Option<String>,
    pub created_at_secs: u64,
    pub decided_at_secs: Option<u64>,
}

/// An app's OAuth client. `registration` is the IdP's answer as JSON, in the clear here and
/// sealed in the database.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredClient {
    pub app_id: String,
    pub provider: String,
    pub client_type: String,
    pub client_id: String,
    pub scope: String,
    pub registration: Vec<u8>,
}

impl std::fmt::Debug for StoredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredClient")
            .field("app_id", &self.app_id)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A registration the IdP made that is not recorded as a client yet.
#[derive(Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: String,
    pub app_id: String,
    pub request_id: String,
    pub provider: String,
    pub registration: Vec<u8>,
    pub created_at_secs: u64,
}

impl std::fmt::Debug for JournalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalEntry")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// How an access request moves: from the state the mover saw to the next, with what the move
/// records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move<'a> {
    pub id: &'a str,
    pub from: RequestStatus,
    pub to: RequestStatus,
    pub reason: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// 16 random bytes, hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client_context(app_id: &str) -> Vec<u8> {
    format!("portico/portal-client/{app_id}").into_bytes()
}

fn journal_context(id: &str) -> Vec<u8> {
    format!("portico/portal-journal/{id}").into_bytes()
}

fn taken(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Taken(what()),
        Some(db) if db.is_foreign_key_violation() => StoreError::Invalid(format!(
            "{}: refers to a record that does not exist",
            what()
        )),
        _ => StoreError::from(e),
    }
}

const DEVELOPER_BY_EMAIL: &str = "SELECT id, email, name, password_hash, created_at_secs FROM portal_developers WHERE email = $1";
const DEVELOPER_BY_ID: &str =
    "SELECT id, email, name, password_hash, created_at_secs FROM portal_developers WHERE id = $1";
const APP_BY_ID: &str =
    "SELECT id, developer_id, name, redirect_uris, created_at_secs FROM portal_apps WHERE id = $1";
const DEVELOPERS: &str =
    "SELECT id, email, name, password_hash, created_at_secs FROM portal_developers ORDER BY email";
const APPS: &str = "SELECT id, developer_id, name, redirect_uris, created_at_secs FROM portal_apps ORDER BY developer_id, name";
const APPS_OF: &str = "SELECT id, developer_id, name, redirect_uris, created_at_secs FROM portal_apps WHERE developer_id = $1 ORDER BY name";
const REQUEST_BY_ID: &str = "SELECT id, app_id, product, plan, client_type, status, reason, last_error, created_at_secs, decided_at_secs FROM portal_access_requests WHERE id = $1";
const REQUESTS_IN: &str = "SELECT id, app_id, product, plan, client_type, status, reason, last_error, created_at_secs, decided_at_secs FROM portal_access_requests \
     WHERE ($1 IS NULL OR status = $1) ORDER BY created_at_secs, id";
const REQUESTS_OF: &str = "SELECT id, app_id, product, plan, client_type, status, reason, last_error, created_at_secs, decided_at_secs FROM portal_access_requests \
     WHERE app_id = $1 ORDER BY created_at_secs, id";

fn read_developer<R: Row>(row: &R) -> Result<Developer, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Developer {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        created_at_secs: secs(row.try_get("created_at_secs")?),
    })
}

fn read_app<R: Row>(row: &R) -> Result<App, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let uris: String = row.try_get("redirect_uris")?;
    Ok(App {
        id: row.try_get("id")?,
        developer_id: row.try_get("developer_id")?,
        name: row.try_get("name")?,
        redirect_uris: serde_json::from_str(&uris)
            .map_err(|e| StoreError::Invalid(format!("an app's stored redirect URIs: {e}")))?,
        created_at_secs: secs(row.try_get("created_at_secs")?),
    })
}

fn read_request<R: Row>(row: &R) -> Result<AccessRequest, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    Ok(AccessRequest {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        product: row.try_get("product")?,
        plan: row.try_get("plan")?,
        client_type: row.try_get("client_type")?,
        status: RequestStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("a stored request status {status:?}")))?,
        reason: row.try_get("reason")?,
        last_error: row.try_get("last_error")?,
        created_at_secs: secs(row.try_get("created_at_secs")?),
        decided_at_secs: row.try_get::<Option<i64>, _>("decided_at_secs")?.map(secs),
    })
}

impl Store {
    /// A new developer account; [`StoreError::Taken`] when the email has one.
    pub async fn create_developer(
        &self,
        email: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<Developer, StoreError> {
        let developer = Developer {
            id: new_id(),
            email: email.trim().to_lowercase(),
            name: name.to_string(),
            password_hash: password_hash.to_string(),
            created_at_secs: secs(now_secs()),
        };
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("INSERT INTO portal_developers (id, email, name, password_hash, created_at_secs) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&developer.id)
                    .bind(&developer.email)
                    .bind(&developer.name)
                    .bind(&developer.password_hash)
                    .bind(now_secs())
                    .execute(pool)
                    .await
                    .map_err(|e| taken(e, || format!("a developer with the email {:?}", developer.email)))?;
            });
            Ok(developer.clone())
        })
        .await
    }

    /// The developer with `email` (compared lower-cased).
    pub async fn developer_by_email(&self, email: &str) -> Result<Option<Developer>, StoreError> {
        let email = email.trim().to_lowercase();
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(DEVELOPER_BY_EMAIL).bind(&email).fetch_optional(pool).await?;
                row.as_ref().map(read_developer).transpose()
            })
        })
        .await
    }

    pub async fn developer(&self, id: &str) -> Result<Option<Developer>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(DEVELOPER_BY_ID).bind(id).fetch_optional(pool).await?;
                row.as_ref().map(read_developer).transpose()
            })
        })
        .await
    }

    /// Every developer, by email (for admins).
    pub async fn developers(&self) -> Result<Vec<Developer>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(DEVELOPERS).fetch_all(pool).await?;
                rows.iter().map(read_developer).collect()
            })
        })
        .await
    }

    /// Every app, by developer and name (for admins).
    pub async fn apps(&self) -> Result<Vec<App>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(APPS).fetch_all(pool).await?;
                rows.iter().map(read_app).collect()
            })
        })
        .await
    }

    /// A new app of `developer_id`; [`StoreError::Taken`] when the developer has one by that
    /// name.
    pub async fn create_app(
        &self,
        developer_id: &str,
        name: &str,
        redirect_uris: &[String],
    ) -> Result<App, StoreError> {
        let app = App {
            id: new_id(),
            developer_id: developer_id.to_string(),
            name: name.to_string(),
            redirect_uris: redirect_uris.to_vec(),
            created_at_secs: secs(now_secs()),
        };
        let uris = serde_json::to_string(redirect_uris).unwrap_or_else(|_| "[]".into());
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("INSERT INTO portal_apps (id, developer_id, name, redirect_uris, created_at_secs) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&app.id)
                    .bind(&app.developer_id)
                    .bind(&app.name)
                    .bind(&uris)
                    .bind(now_secs())
                    .execute(pool)
                    .await
                    .map_err(|e| taken(e, || format!("an app named {name:?}")))?;
            });
            Ok(app.clone())
        })
        .await
    }

    pub async fn app(&self, id: &str) -> Result<Option<App>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(APP_BY_ID).bind(id).fetch_optional(pool).await?;
                row.as_ref().map(read_app).transpose()
            })
        })
        .await
    }

    /// The apps of one developer, by name.
    pub async fn apps_of(&self, developer_id: &str) -> Result<Vec<App>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(APPS_OF).bind(developer_id).fetch_all(pool).await?;
                rows.iter().map(read_app).collect()
            })
        })
        .await
    }

    /// Deletes an app with its requests and client record; false when there is none. The
    /// caller deletes the client at the IdP first.
    pub async fn delete_app(&self, id: &str) -> Result<bool, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let done = sqlx::query("DELETE FROM portal_apps WHERE id = $1").bind(id).execute(pool).await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }

    /// A new access request, pending.
    pub async fn create_access_request(
        &self,
        app_id: &str,
        product: &str,
        plan: &str,
        client_type: &str,
    ) -> Result<AccessRequest, StoreError> {
        let request = AccessRequest {
            id: new_id(),
            app_id: app_id.to_string(),
            product: product.to_string(),
            plan: plan.to_string(),
            client_type: client_type.to_string(),
            status: RequestStatus::Pending,
            reason: None,
            last_error: None,
            created_at_secs: secs(now_secs()),
            decided_at_secs: None,
        };
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("INSERT INTO portal_access_requests (id, app_id, product, plan, client_type, status, created_at_secs) VALUES ($1, $2, $3, $4, $5, 'pending', $6)")
                    .bind(&request.id)
                    .bind(app_id)
                    .bind(product)
                    .bind(plan)
                    .bind(client_type)
                    .bind(now_secs())
                    .execute(pool)
                    .await
                    .map_err(|e| taken(e, || format!("an access request for app {app_id:?}")))?;
            });
            Ok(request.clone())
        })
        .await
    }

    pub async fn access_request(&self, id: &str) -> Result<Option<AccessRequest>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(REQUEST_BY_ID).bind(id).fetch_optional(pool).await?;
                row.as_ref().map(read_request).transpose()
            })
        })
        .await
    }

    /// Access requests in `status` (every one with `None`), oldest first.
    pub async fn access_requests(
        &self,
        status: Option<RequestStatus>,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(REQUESTS_IN).bind(status.map(RequestStatus::as_str)).fetch_all(pool).await?;
                rows.iter().map(read_request).collect()
            })
        })
        .await
    }

    /// The access requests of one app, oldest first.
    pub async fn access_requests_of(&self, app_id: &str) -> Result<Vec<AccessRequest>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(REQUESTS_OF).bind(app_id).fetch_all(pool).await?;
                rows.iter().map(read_request).collect()
            })
        })
        .await
    }

    /// Moves a request from `step.from` to `step.to`; false when it is not in `step.from`
    /// (another approval took it, or it was decided meanwhile).
    pub async fn move_access_request(&self, step: Move<'_>) -> Result<bool, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let done = sqlx::query(MOVE_REQUEST)
                    .bind(step.to.as_str())
                    .bind(step.reason)
                    .bind(step.last_error)
                    .bind(now_secs())
                    .bind(step.id)
                    .bind(step.from.as_str())
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// The client `app_id` is at the IdP, if it has been registered.
    pub async fn client_of(&self, app_id: &str) -> Result<Option<StoredClient>, StoreError> {
        let row = self
            .bounded(async {
                on_pool!(&self.backend, pool => {
                    let row = sqlx::query("SELECT app_id, provider, client_type, client_id, scope, registration FROM portal_clients WHERE app_id = $1")
                        .bind(app_id)
                        .fetch_optional(pool)
                        .await?;
                    row.map(|row| -> Result<_, StoreError> {
                        Ok((
                            row.try_get::<String, _>("provider")?,
                            row.try_get::<String, _>("client_type")?,
                            row.try_get::<String, _>("client_id")?,
                            row.try_get::<String, _>("scope")?,
                            row.try_get::<Vec<u8>, _>("registration")?,
                        ))
                    })
                    .transpose()
                })
            })
            .await?;
        let Some((provider, client_type, client_id, scope, sealed)) = row else {
            return Ok(None);
        };
        let registration = self
            .key
            .open(&client_context(app_id), &sealed)
            .ok_or_else(|| StoreError::Sealed {
                kind: "portal client".into(),
                name: app_id.into(),
            })?;
        Ok(Some(StoredClient {
            app_id: app_id.into(),
            provider,
            client_type,
            client_id,
            scope,
            registration,
        }))
    }

    /// Records `client`, moves its request (`step`) and clears `journal` (the entry of the
    /// registration), all in one transaction. `new`: the app must have no client yet (a new
    /// registration never replaces another one: that one would be left at the IdP). `false`,
    /// with nothing written, when the request is no longer in `step.from` or, for `new`, the
    /// app has a client already.
    pub async fn record_client(
        &self,
        client: &StoredClient,
        new: bool,
        step: Move<'_>,
        journal: Option<&str>,
    ) -> Result<bool, StoreError> {
        let sealed = self
            .key
            .seal(&client_context(&client.app_id), &client.registration);
        let upsert = if new { INSERT_CLIENT } else { UPSERT_CLIENT };
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let mut tx = pool.begin().await?;
                let written = sqlx::query(upsert)
                    .bind(&client.app_id)
                    .bind(&client.provider)
                    .bind(&client.client_type)
                    .bind(&client.client_id)
                    .bind(&client.scope)
                    .bind(&sealed)
                    .bind(now_secs())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| taken(e, || format!("the client of app {:?}", client.app_id)))?;
                if written.rows_affected() != 1 {
                    return Ok(false);
                }
                let moved = sqlx::query(MOVE_REQUEST)
                    .bind(step.to.as_str())
                    .bind(step.reason)
                    .bind(step.last_error)
                    .bind(now_secs())
                    .bind(step.id)
                    .bind(step.from.as_str())
                    .execute(&mut *tx)
                    .await?;
                if moved.rows_affected() != 1 {
                    return Ok(false);
                }
                if let Some(id) = journal {
                    sqlx::query("DELETE FROM portal_registration_journal WHERE id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    /// Replaces the registration of `app_id`'s client when it is still `client_id` (a
    /// journaled answer is newer than the recorded one: it may hold a rotated registration
    /// access token). Whether it was replaced.
    pub async fn replace_registration(
        &self,
        app_id: &str,
        client_id: &str,
        registration: &[u8],
    ) -> Result<bool, StoreError> {
        let sealed = self.key.seal(&client_context(app_id), registration);
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let done = sqlx::query("UPDATE portal_clients SET registration = $1, updated_at_secs = $2 WHERE app_id = $3 AND client_id = $4")
                    .bind(&sealed)
                    .bind(now_secs())
                    .bind(app_id)
                    .bind(client_id)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Forgets the client record of `app_id` (deleted at the IdP).
    pub async fn delete_client(&self, app_id: &str) -> Result<(), StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_clients WHERE app_id = $1").bind(app_id).execute(pool).await?;
                Ok(())
            })
        })
        .await
    }

    /// Writes down a registration the IdP just made, before anything else; returns its id.
    pub async fn journal_registration(
        &self,
        app_id: &str,
        request_id: &str,
        provider: &str,
        registration: &[u8],
    ) -> Result<String, StoreError> {
        let id = new_id();
        let sealed = self.key.seal(&journal_context(&id), registration);
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("INSERT INTO portal_registration_journal (id, app_id, request_id, provider, registration, created_at_secs) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&id)
                    .bind(app_id)
                    .bind(request_id)
                    .bind(provider)
                    .bind(&sealed)
                    .bind(now_secs())
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    /// Registrations not yet recorded as clients, oldest first.
    pub async fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = self
            .bounded(async {
                on_pool!(&self.backend, pool => {
                    let rows = sqlx::query("SELECT id, app_id, request_id, provider, registration, created_at_secs FROM portal_registration_journal ORDER BY created_at_secs, id")
                        .fetch_all(pool)
                        .await?;
                    rows.iter()
                        .map(|row| -> Result<_, StoreError> {
                            Ok((
                                row.try_get::<String, _>("id")?,
                                row.try_get::<String, _>("app_id")?,
                                row.try_get::<String, _>("request_id")?,
                                row.try_get::<String, _>("provider")?,
                                row.try_get::<Vec<u8>, _>("registration")?,
                                row.try_get::<i64, _>("created_at_secs")?,
                            ))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .await?;
        rows.into_iter()
            .map(|(id, app_id, request_id, provider, sealed, created)| {
                let registration =
                    self.key
                        .open(&journal_context(&id), &sealed)
                        .ok_or_else(|| StoreError::Sealed {
                            kind: "portal journal entry".into(),
                            name: id.clone(),
                        })?;
                Ok(JournalEntry {
                    id,
                    app_id,
                    request_id,
                    provider,
                    registration,
                    created_at_secs: secs(created),
                })
            })
            .collect()
    }

    /// Removes a journal entry (its registration was recorded, or undone at the IdP).
    pub async fn clear_journal(&self, id: &str) -> Result<(), StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_registration_journal WHERE id = $1").bind(id).execute(pool).await?;
                Ok(())
            })
        })
        .await
    }
}

impl Store {
    /// Records a personal access token of `developer_id` by its hash.
    pub async fn create_token(
        &self,
        developer_id: &str,
        token_hash: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("INSERT INTO portal_tokens (token_hash, developer_id, name, created_at_secs) VALUES ($1, $2, $3, $4)")
                    .bind(token_hash)
                    .bind(developer_id)
                    .bind(name)
                    .bind(now_secs())
                    .execute(pool)
                    .await
                    .map_err(|e| taken(e, || "a token".to_string()))?;
                Ok(())
            })
        })
        .await
    }

    /// The developer a personal access token (by its hash) belongs to.
    pub async fn developer_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Developer>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(DEVELOPER_BY_TOKEN).bind(token_hash).fetch_optional(pool).await?;
                row.as_ref().map(read_developer).transpose()
            })
        })
        .await
    }
}

const DEVELOPER_BY_TOKEN: &str = "SELECT d.id, d.email, d.name, d.password_hash, \
     d.created_at_secs FROM portal_developers d JOIN portal_tokens t ON t.developer_id = d.id \
     WHERE t.token_hash = $1";

const INSERT_CLIENT: &str = "INSERT INTO portal_clients (app_id, provider, client_type, \
     client_id, scope, registration, updated_at_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (app_id) DO NOTHING";
const UPSERT_CLIENT: &str = "INSERT INTO portal_clients (app_id, provider, client_type, \
     client_id, scope, registration, updated_at_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (app_id) DO UPDATE SET provider = excluded.provider, \
     client_type = excluded.client_type, client_id = excluded.client_id, \
     scope = excluded.scope, registration = excluded.registration, \
     updated_at_secs = excluded.updated_at_secs";

/// `$1` new status, `$2` reason, `$3` last error, `$4` now, `$5` id, `$6` expected status.
/// A move to `pending` or `approving` is not a decision: `decided_at_secs` stays.
const MOVE_REQUEST: &str = "UPDATE portal_access_requests SET status = $1, \
     reason = COALESCE($2, reason), last_error = $3, \
     decided_at_secs = CASE WHEN $1 IN ('pending', 'approving') THEN decided_at_secs ELSE $4 END \
     WHERE id = $5 AND status = $6";
