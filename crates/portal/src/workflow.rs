//! The access-request workflow: approve (register or update the app's client at the IdP),
//! reject, revoke an access, delete an app; and, at start, finishing what a crash left.
//!
//! One app is one client, registered with the union of the scopes of everything approved for
//! it. Nothing is lost when the IdP or the store fails:
//!
//! - the request is taken (`pending` → `approving`) by compare-and-set, so a double click
//!   registers one client;
//! - an IdP failure puts the request back to `pending` with the IdP's words (`last_error`);
//! - the IdP's answer is written to the registration journal before anything else, and the
//!   client, the request's approval and the journal entry's removal are one transaction; if
//!   the store fails in between, a new registration is deleted at the IdP again (compensating
//!   delete), and [`Workflow::recover`] finishes or undoes what a crash left in the journal.
//!
//! Revoking an access or deleting an app changes the client at the IdP (a smaller scope set,
//! or RFC 7592 DELETE) and records a gateway revocation of the client's tokens, so that even
//! unexpired JWTs are refused on the next request.

use crate::mail::{Event, MailSettings, Mailer};
use crate::pages::templates::Templates;
use crate::registration::{
    ClientMetadata, Registrar, Registration, RegistrationError, discover, http_client,
};
use portico_config::documents::{Document, Kind, Metadata};
use portico_config::env::Env;
use portico_config::portal::{Catalogue, OAuthProviderSpec};
use portico_core::revocation::RevokedBy;
use portico_store::portal::{AccessRequest, App, JournalEntry, Move, RequestStatus, StoredClient};
use portico_store::{NewRevocation, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{0} not found")]
    NotFound(String),
    /// The request is not in a state that allows the step (decided, or being approved).
    #[error("the access request is {0}")]
    WrongState(&'static str),
    /// What the request names no longer fits the catalogue (a product deleted meanwhile, a
    /// client type the product does not allow).
    #[error("{0}")]
    Catalogue(String),
    #[error(transparent)]
    Idp(#[from] RegistrationError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The workflow over one store.
#[derive(Clone)]
pub struct Workflow {
    store: Store,
    env: Arc<dyn Env + Send + Sync>,
    /// How long a revocation of a client's tokens lasts: the longest token lifetime.
    revoke_for_secs: u64,
    mailer: Mailer,
    /// Run after a revocation is recorded: this process's gateway loads it at once.
    revoked: Option<RevocationHook>,
    /// One step at a time per app (approve, revoke, delete read the app's client and then
    /// change it at the IdP): striped, so bounded whatever the number of apps.
    app_locks: Arc<Vec<tokio::sync::Mutex<()>>>,
}

/// What [`Workflow::with_revocation_hook`] runs.
pub type RevocationHook =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Stripes of [`Workflow::app_locks`].
const APP_LOCK_STRIPES: usize = 64;

/// Environment variables a provider's `${VARIABLE}` may not name: Portico's own secrets
/// (admin token, store key, database URL) must never be sent to an IdP a document names.
const RESERVED_VARIABLE_PREFIX: &str = "PORTICO_";

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow").finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What approving a request resolves to: the catalogue entries it names.
struct Resolved {
    provider_name: String,
    provider: OAuthProviderSpec,
    client_type: String,
    metadata: ClientMetadata,
}

impl Workflow {
    pub fn new(store: Store, env: Arc<dyn Env + Send + Sync>, revoke_for_secs: u64) -> Self {
        Self {
            store,
            env,
            revoke_for_secs,
            mailer: Mailer::new(
                MailSettings {
                    from: "portal@localhost".into(),
                    ..Default::default()
                },
                Templates::embedded(),
            )
            .expect("a valid default sender"),
            revoked: None,
            app_locks: Arc::new(
                (0..APP_LOCK_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
            ),
        }
    }

    /// With these emails (by default: to the outbox only, from `portal@localhost`).
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.mailer = mailer;
        self
    }

    /// With `hook` run after each revocation the workflow records (and before the IdP is
    /// called): the control plane's own gateway loads it, so that the client's tokens are
    /// refused on the very next request there, not at the next poll.
    pub fn with_revocation_hook(mut self, hook: RevocationHook) -> Self {
        self.revoked = Some(hook);
        self
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Writes the email that tells of `event` for `request`: to the admins for a submitted
    /// request, else to the app's developer.
    pub async fn tell(&self, event: Event, request: &AccessRequest) {
        let app = match self.store.app(&request.app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "portal: reading an app for its email");
                return;
            }
        };
        let developer = match self.store.developer(&app.developer_id).await {
            Ok(Some(developer)) => developer,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "portal: reading a developer for an email");
                return;
            }
        };
        let context = serde_json::json!({
            "developer": {"name": developer.name, "email": developer.email},
            "app": app.name,
            "app_id": app.id,
            "product": request.product,
            "plan": request.plan,
            "client_type": request.client_type,
            "reason": request.reason,
        });
        let to = (event != Event::Submitted).then_some(developer.email.as_str());
        self.mailer.queue(&self.store, event, to, context).await;
    }

    async fn lock_app(&self, app_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        app_id.hash(&mut hasher);
        let stripe = (hasher.finish() % APP_LOCK_STRIPES as u64) as usize;
        self.app_locks[stripe].lock().await
    }

    async fn catalogue(&self) -> Result<Catalogue, WorkflowError> {
        load_catalogue(&self.store).await
    }
}

/// The portal's documents in the store (those that do not pass their checks are left out;
/// `apply` and the admin API refuse them anyway).
pub async fn load_catalogue(store: &Store) -> Result<Catalogue, WorkflowError> {
    let docs: Vec<Document> = store
        .list(None)
        .await?
        .into_iter()
        .filter_map(|r| {
            let kind = Kind::parse(&r.kind)?;
            portico_config::portal::is_portal_kind(kind).then_some(Document {
                kind,
                metadata: Metadata {
                    name: r.name,
                    version: None,
                },
                spec: r.spec,
            })
        })
        .collect();
    let (catalogue, problems) = Catalogue::read(&docs, "store");
    for problem in problems {
        tracing::warn!(location = %problem.location, "portal: {}", problem.message);
    }
    Ok(catalogue)
}

impl Workflow {
    /// A registrar for `provider`: its registration endpoint by discovery, its initial access
    /// token (a `${VARIABLE}` read from the environment).
    async fn registrar(&self, provider: &OAuthProviderSpec) -> Result<Registrar, WorkflowError> {
        let http = http_client(provider.insecure_skip_tls_verify)?;
        let found = discover(&http, &provider.well_known_url).await?;
        let issuer = provider.issuer().map_err(WorkflowError::Catalogue)?;
        if found.issuer != issuer {
            return Err(RegistrationError::BadAnswer(format!(
                "the discovery document names the issuer {:?}, not {issuer:?}",
                found.issuer
            ))
            .into());
        }
        let endpoint = found.registration_endpoint.ok_or_else(|| {
            RegistrationError::NotConfigured(
                "the IdP's discovery document has no registration_endpoint: it does not offer \
                 Dynamic Client Registration"
                    .into(),
            )
        })?;
        let token = match provider.initial_access_token.as_deref() {
            None => None,
            Some(value) => Some(self.resolve(value)?),
        };
        Ok(Registrar::new(http, endpoint, token, provider.kind))
    }

    fn resolve(&self, value: &str) -> Result<String, WorkflowError> {
        match value
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name) if name.starts_with(RESERVED_VARIABLE_PREFIX) => {
                Err(WorkflowError::Catalogue(format!(
                    "the provider's initial access token may not come from {name}: \
                     {RESERVED_VARIABLE_PREFIX}* variables hold Portico's own secrets"
                )))
            }
            Some(name) => self.env.var(name).ok_or_else(|| {
                WorkflowError::Catalogue(format!(
                    "the provider's initial access token is ${{{name}}}, and {name} is not set"
                ))
            }),
            None => Ok(value.to_string()),
        }
    }

    /// The metadata `app`'s client has with `requests` approved (plus `adding`).
    fn resolve_request(
        &self,
        catalogue: &Catalogue,
        app: &App,
        approved: &[AccessRequest],
        adding: Option<&AccessRequest>,
    ) -> Result<Option<Resolved>, WorkflowError> {
        let granted: Vec<&AccessRequest> = approved.iter().chain(adding).collect();
        let Some(first) = adding.or(granted.first().copied()) else {
            return Ok(None);
        };
        let client_type = catalogue
            .client_types
            .get(&first.client_type)
            .ok_or_else(|| missing("client type", &first.client_type))?;
        let provider = catalogue
            .providers
            .get(&client_type.provider)
            .ok_or_else(|| missing("provider", &client_type.provider))?;
        let mut scopes = BTreeSet::new();
        for request in &granted {
            let product = catalogue
                .products
                .get(&request.product)
                .ok_or_else(|| missing("product", &request.product))?;
            if Some(*request) == adding {
                if !product.dcr.enabled {
                    return Err(WorkflowError::Catalogue(format!(
                        "product {:?} does not register clients (dcr.enabled is false)",
                        request.product
                    )));
                }
                if !product.dcr.client_types.contains(&request.client_type) {
                    return Err(WorkflowError::Catalogue(format!(
                        "product {:?} does not offer the client type {:?}",
                        request.product, request.client_type
                    )));
                }
            }
            let plan = catalogue
                .plans
                .get(&request.plan)
                .ok_or_else(|| missing("plan", &request.plan))?;
            scopes.extend(product.scopes.iter().cloned());
            scopes.insert(plan.scope.clone());
        }
        let metadata = ClientMetadata {
            client_name: app.name.clone(),
            grant_types: client_type.grant_types.clone(),
            response_types: client_type.response_types.clone(),
            redirect_uris: if client_type.needs_redirect_uris() {
                app.redirect_uris.clone()
            } else {
                Vec::new()
            },
            token_endpoint_auth_method: client_type.token_endpoint_auth_method.clone(),
            scope: scopes.into_iter().collect::<Vec<_>>().join(" "),
            application_type: client_type.okta_application_type.clone(),
        };
        Ok(Some(Resolved {
            provider_name: client_type.provider.clone(),
            provider: provider.clone(),
            client_type: first.client_type.clone(),
            metadata,
        }))
    }

    async fn approved_of(&self, app_id: &str) -> Result<Vec<AccessRequest>, WorkflowError> {
        Ok(self
            .store
            .access_requests_of(app_id)
            .await?
            .into_iter()
            .filter(|r| r.status == RequestStatus::Approved)
            .collect())
    }

    /// Approves a pending request: the app's client registered at the IdP, or updated with
    /// the new scopes. On failure the request is pending again, with the reason.
    pub async fn approve(&self, request_id: &str) -> Result<AccessRequest, WorkflowError> {
        let request = self.request(request_id).await?;
        let _app = self.lock_app(&request.app_id).await;
        if request.status != RequestStatus::Pending {
            return Err(WorkflowError::WrongState(request.status.as_str()));
        }
        let take = Move {
            id: request_id,
            from: RequestStatus::Pending,
            to: RequestStatus::Approving,
            reason: None,
            last_error: None,
        };
        if !self.store.move_access_request(take).await? {
            return Err(WorkflowError::WrongState(
                "being approved or decided already",
            ));
        }
        match self.register(&request).await {
            Ok(()) => {
                let approved = self.request(request_id).await?;
                self.tell(Event::Approved, &approved).await;
                Ok(approved)
            }
            Err(e) => {
                let shown = e.to_string();
                tracing::warn!(request = request_id, error = %shown, "approval failed");
                let back = Move {
                    id: request_id,
                    from: RequestStatus::Approving,
                    to: RequestStatus::Pending,
                    reason: None,
                    last_error: Some(&shown),
                };
                // If the store is down this fails too; `recover` puts it back at start.
                let _ = self.store.move_access_request(back).await;
                Err(e)
            }
        }
    }

    async fn request(&self, id: &str) -> Result<AccessRequest, WorkflowError> {
        self.store
            .access_request(id)
            .await?
            .ok_or_else(|| WorkflowError::NotFound(format!("access request {id:?}")))
    }

    async fn app(&self, id: &str) -> Result<App, WorkflowError> {
        self.store
            .app(id)
            .await?
            .ok_or_else(|| WorkflowError::NotFound(format!("app {id:?}")))
    }

    /// The IdP part of an approval, for a request this caller has taken (`approving`).
    async fn register(&self, request: &AccessRequest) -> Result<(), WorkflowError> {
        let catalogue = self.catalogue().await?;
        let app = self.app(&request.app_id).await?;
        let approved = self.approved_of(&app.id).await?;
        let resolved = self
            .resolve_request(&catalogue, &app, &approved, Some(request))?
            .ok_or_else(|| WorkflowError::Catalogue("nothing to register".into()))?;
        let registrar = self.registrar(&resolved.provider).await?;
        let existing = self.store.client_of(&app.id).await?;
        let approve = Move {
            id: &request.id,
            from: RequestStatus::Approving,
            to: RequestStatus::Approved,
            reason: None,
            last_error: None,
        };
        match existing {
            Some(existing) => {
                if existing.provider != resolved.provider_name {
                    return Err(WorkflowError::Catalogue(format!(
                        "the app's client is at provider {:?}; this request's client type is at {:?} (one app, one client: use another app)",
                        existing.provider, resolved.provider_name
                    )));
                }
                let current = registration_of(&existing)?;
                let updated = registrar.update(&current, &resolved.metadata).await?;
                // The IdP may have rotated the registration access token: journal first.
                let journal = self.journal(&app, request, &resolved, &updated).await?;
                let recorded = self
                    .store
                    .record_client(
                        &client_record(&app, &resolved, &updated),
                        false,
                        approve,
                        Some(&journal),
                    )
                    .await?;
                if !recorded {
                    return Err(WorkflowError::WrongState("decided meanwhile"));
                }
            }
            None => {
                let created = registrar.register(&resolved.metadata).await?;
                let journal = match self.journal(&app, request, &resolved, &created).await {
                    Ok(journal) => journal,
                    Err(e) => {
                        undo(&registrar, &created).await;
                        return Err(e);
                    }
                };
                let recorded = self
                    .store
                    .record_client(
                        &client_record(&app, &resolved, &created),
                        true,
                        approve,
                        Some(&journal),
                    )
                    .await;
                if !matches!(recorded, Ok(true)) {
                    if undo(&registrar, &created).await {
                        let _ = self.store.clear_journal(&journal).await;
                    }
                    return Err(match recorded {
                        Err(e) => e.into(),
                        // Another step gave the app a client, or decided the request.
                        Ok(_) => WorkflowError::WrongState("changed meanwhile"),
                    });
                }
            }
        }
        Ok(())
    }

    async fn journal(
        &self,
        app: &App,
        request: &AccessRequest,
        resolved: &Resolved,
        registration: &Registration,
    ) -> Result<String, WorkflowError> {
        let bytes = serde_json::to_vec(registration).unwrap_or_default();
        Ok(self
            .store
            .journal_registration(&app.id, &request.id, &resolved.provider_name, &bytes)
            .await?)
    }

    /// Rejects a pending request, with the reason the developer is shown.
    pub async fn reject(
        &self,
        request_id: &str,
        reason: &str,
    ) -> Result<AccessRequest, WorkflowError> {
        let step = Move {
            id: request_id,
            from: RequestStatus::Pending,
            to: RequestStatus::Rejected,
            reason: Some(reason),
            last_error: None,
        };
        if !self.store.move_access_request(step).await? {
            let request = self.request(request_id).await?;
            return Err(WorkflowError::WrongState(request.status.as_str()));
        }
        let rejected = self.request(request_id).await?;
        self.tell(Event::Rejected, &rejected).await;
        Ok(rejected)
    }

    /// Revokes an approved access: the client keeps the scopes of what stays approved (or is
    /// deleted at the IdP when nothing does), and the tokens it holds now are refused at the
    /// gateway.
    pub async fn revoke(
        &self,
        request_id: &str,
        reason: &str,
    ) -> Result<AccessRequest, WorkflowError> {
        let request = self.request(request_id).await?;
        let _app = self.lock_app(&request.app_id).await;
        let request = self.request(request_id).await?;
        if request.status != RequestStatus::Approved {
            return Err(WorkflowError::WrongState(request.status.as_str()));
        }
        let app = self.app(&request.app_id).await?;
        let remaining: Vec<AccessRequest> = self
            .approved_of(&app.id)
            .await?
            .into_iter()
            .filter(|r| r.id != request.id)
            .collect();
        let catalogue = self.catalogue().await?;
        if let Some(client) = self.store.client_of(&app.id).await? {
            let provider = catalogue
                .providers
                .get(&client.provider)
                .ok_or_else(|| missing("provider", &client.provider))?;
            // The gateway first: should the IdP call fail, the tokens are refused anyway.
            self.refuse_tokens(provider, &client, Some(now_secs()), reason)
                .await?;
            let registrar = self.registrar(provider).await?;
            let current = registration_of(&client)?;
            match self.resolve_request(&catalogue, &app, &remaining, None)? {
                Some(resolved) => {
                    let updated = registrar.update(&current, &resolved.metadata).await?;
                    let step = Move {
                        id: &request.id,
                        from: RequestStatus::Approved,
                        to: RequestStatus::Revoked,
                        reason: Some(reason),
                        last_error: None,
                    };
                    let record = client_record(&app, &resolved, &updated);
                    if !self.store.record_client(&record, false, step, None).await? {
                        return Err(WorkflowError::WrongState("no longer approved"));
                    }
                }
                None => {
                    registrar.delete(&current).await?;
                    self.store.delete_client(&app.id).await?;
                    self.move_decided(&request.id, RequestStatus::Revoked, reason)
                        .await?;
                }
            }
        } else {
            self.move_decided(&request.id, RequestStatus::Revoked, reason)
                .await?;
        }
        let revoked = self.request(request_id).await?;
        self.tell(Event::Revoked, &revoked).await;
        Ok(revoked)
    }

    async fn move_decided(
        &self,
        id: &str,
        to: RequestStatus,
        reason: &str,
    ) -> Result<(), WorkflowError> {
        let step = Move {
            id,
            from: RequestStatus::Approved,
            to,
            reason: Some(reason),
            last_error: None,
        };
        if self.store.move_access_request(step).await? {
            Ok(())
        } else {
            Err(WorkflowError::WrongState("no longer approved"))
        }
    }

    /// Deletes an app: its client deleted at the IdP, its tokens refused at the gateway, its
    /// records removed.
    pub async fn delete_app(&self, app_id: &str) -> Result<(), WorkflowError> {
        let _app = self.lock_app(app_id).await;
        let app = self.app(app_id).await?;
        let requests = self.store.access_requests_of(&app.id).await?;
        if requests
            .iter()
            .any(|r| r.status == RequestStatus::Approving)
        {
            return Err(WorkflowError::WrongState(
                "being approved: delete the app once that is done",
            ));
        }
        if let Some(client) = self.store.client_of(&app.id).await? {
            let catalogue = self.catalogue().await?;
            let provider = catalogue
                .providers
                .get(&client.provider)
                .ok_or_else(|| missing("provider", &client.provider))?;
            self.refuse_tokens(provider, &client, None, "app deleted")
                .await?;
            let registrar = self.registrar(provider).await?;
            registrar.delete(&registration_of(&client)?).await?;
        }
        self.store.delete_app(&app.id).await?;
        Ok(())
    }

    /// A gateway revocation of `client`'s tokens (those issued before `issued_before`, or
    /// all), for as long as a token can live.
    async fn refuse_tokens(
        &self,
        provider: &OAuthProviderSpec,
        client: &StoredClient,
        issued_before_secs: Option<u64>,
        reason: &str,
    ) -> Result<(), WorkflowError> {
        let issuer = provider.issuer().map_err(WorkflowError::Catalogue)?;
        self.store
            .revoke(NewRevocation {
                by: RevokedBy::ClientId,
                value: client.client_id.clone(),
                issuer: Some(issuer),
                until_secs: now_secs().saturating_add(self.revoke_for_secs),
                issued_before_secs,
                reason: Some(format!("portal: {reason}")),
            })
            .await?;
        if let Some(hook) = &self.revoked {
            hook().await;
        }
        Ok(())
    }

    /// Finishes what a crash left: journaled registrations of requests still being approved
    /// are recorded (the approval completes); others are deleted at the IdP unless recorded;
    /// requests left `approving` with nothing journaled go back to `pending`.
    pub async fn recover(&self) -> Result<(), WorkflowError> {
        let catalogue = self.catalogue().await?;
        for entry in self.store.journal().await? {
            // One entry's trouble (its IdP unreachable) does not stop the others; it stays in
            // the journal for the next start.
            if let Err(e) = self.recover_entry(&catalogue, &entry).await {
                tracing::error!(entry = %entry.id, error = %e, "portal: a journaled registration could not be finished; retried at the next start");
            }
        }
        for request in self
            .store
            .access_requests(Some(RequestStatus::Approving))
            .await?
        {
            let back = Move {
                id: &request.id,
                from: RequestStatus::Approving,
                to: RequestStatus::Pending,
                reason: None,
                last_error: Some("the approval was interrupted; approve again"),
            };
            self.store.move_access_request(back).await?;
        }
        Ok(())
    }

    async fn recover_entry(
        &self,
        catalogue: &Catalogue,
        entry: &JournalEntry,
    ) -> Result<(), WorkflowError> {
        let registration: Registration = serde_json::from_slice(&entry.registration)
            .map_err(|e| WorkflowError::Catalogue(format!("a journal entry: {e}")))?;
        let _app = self.lock_app(&entry.app_id).await;
        let request = self.store.access_request(&entry.request_id).await?;
        let app = self.store.app(&entry.app_id).await?;
        let recorded = match &app {
            Some(app) => self.store.client_of(&app.id).await?,
            None => None,
        };
        let same_client = recorded
            .as_ref()
            .map(|c| c.client_id == registration.client_id);
        if let (Some(request), Some(app)) = (&request, &app)
            && request.status == RequestStatus::Approving
            && same_client != Some(false)
        {
            let approved = self.approved_of(&app.id).await?;
            if let Some(resolved) =
                self.resolve_request(catalogue, app, &approved, Some(request))?
            {
                let step = Move {
                    id: &request.id,
                    from: RequestStatus::Approving,
                    to: RequestStatus::Approved,
                    reason: None,
                    last_error: None,
                };
                let record = client_record(app, &resolved, &registration);
                let new = same_client.is_none();
                if self
                    .store
                    .record_client(&record, new, step, Some(&entry.id))
                    .await?
                {
                    tracing::info!(request = %request.id, "portal: an interrupted approval was completed");
                    if let Ok(approved) = self.request(&request.id).await {
                        self.tell(Event::Approved, &approved).await;
                    }
                    return Ok(());
                }
            }
        }
        if same_client == Some(true) {
            // The client is recorded; the journaled answer is the newer one (it may hold a
            // rotated registration access token).
            if let Some(app) = &app {
                self.store
                    .replace_registration(&app.id, &registration.client_id, &entry.registration)
                    .await?;
            }
        } else {
            let provider = catalogue.providers.get(&entry.provider).ok_or_else(|| {
                WorkflowError::Catalogue(format!(
                    "client {:?} is at provider {:?}, which no longer exists: delete it at the IdP by hand",
                    registration.client_id, entry.provider
                ))
            })?;
            self.registrar(provider)
                .await?
                .delete(&registration)
                .await?;
            tracing::info!(client = %registration.client_id, "portal: an unrecorded registration was deleted at the IdP");
        }
        self.store.clear_journal(&entry.id).await?;
        Ok(())
    }
}

fn missing(what: &str, name: &str) -> WorkflowError {
    WorkflowError::Catalogue(format!("the {what} {name:?} no longer exists"))
}

fn registration_of(client: &StoredClient) -> Result<Registration, WorkflowError> {
    serde_json::from_slice(&client.registration)
        .map_err(|e| WorkflowError::Catalogue(format!("the stored registration: {e}")))
}

fn client_record(app: &App, resolved: &Resolved, registration: &Registration) -> StoredClient {
    StoredClient {
        app_id: app.id.clone(),
        provider: resolved.provider_name.clone(),
        client_type: resolved.client_type.clone(),
        client_id: registration.client_id.clone(),
        scope: resolved.metadata.scope.clone(),
        registration: serde_json::to_vec(registration).unwrap_or_default(),
    }
}

/// Deletes a registration the store could not record (compensating delete); whether it
/// worked.
async fn undo(registrar: &Registrar, registration: &Registration) -> bool {
    match registrar.delete(registration).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(client = %registration.client_id, error = %e,
                "a registration the store could not record is still at the IdP; the journal retries at start");
            false
        }
    }
}
