//! `portico gateway`: a data-plane node whose APIs, policies and issuers come from the shared
//! store (`--database` / `PORTICO_DATABASE_URL`). Every committed change reaches it within
//! moments (PostgreSQL `NOTIFY`, and a periodic revision check in case a notification is
//! lost); the new configuration is built completely and swapped in atomically.
//!
//! Each configuration it serves is also written, sealed with the store's secret key, to the
//! data folder ([`LastGood`]): a node that loses the store keeps serving, and one started
//! while the store is down serves that copy until the store is back. Revocations follow the
//! store the same way, on their own revision ([`follow_revocations`]).

use super::follow_revocations;
use super::last_good::LastGood;
use super::print_problems;
use super::serve::Listeners;
use crate::logging;
use portico_admin::{AdminState, AdminToken, FieldError};
use portico_config::documents::{self, Document, Kind, Metadata};
use portico_config::env::ProcessEnv;
use portico_config::{self as config, Loaded, LogFormat};
use portico_gateway::Gateway;
use portico_portal::api::PortalState;
use portico_portal::workflow::Workflow;
use portico_store::{DatabaseUrl, SchemaMode, SecretKey, Store, StoreSettings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// The shared store: `postgres://USER@HOST/DB` or `sqlite:FILE`.
    #[arg(
        long,
        value_name = "URL",
        env = "PORTICO_DATABASE_URL",
        hide_env_values = true,
        value_parser = super::DatabaseUrlParser
    )]
    pub database: DatabaseUrl,
    /// Gateway listener (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Admin listener for /metrics and /health (default 127.0.0.1:8081).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Data folder: the last good configuration, and for SQLite the secret key.
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// File holding the store's secret key (base64 of 32 bytes); `PORTICO_SECRET_KEY` gives
    /// the key itself. With SQLite the default is `DATA_DIR/secret.key`, created when missing;
    /// PostgreSQL nodes must all be given the same key.
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// How often the configuration revision is read besides notifications (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
}

pub fn run(args: GatewayArgs) -> ExitCode {
    run_node(args, None, None)
}

/// The developer portal a control plane serves.
pub(super) struct PortalArgs {
    pub listen: SocketAddr,
    pub templates: portico_portal::pages::templates::Templates,
    pub mailer: portico_portal::mail::Mailer,
    pub public_url: Option<String>,
    pub signup_open: bool,
}

/// A node serving the store's configuration; with an admin token it is also a control plane:
/// the admin REST API on its admin listener writes to the store, and, with `portal_listen`,
/// the developer portal is served there.
pub(super) fn run_node(
    args: GatewayArgs,
    admin: Option<AdminToken>,
    portal: Option<PortalArgs>,
) -> ExitCode {
    logging::init(
        LogFormat::Text,
        &std::env::var("PORTICO_LOG").unwrap_or("info".into()),
    );
    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!(
            "error: cannot create data folder {}: {e}",
            args.data_dir.display()
        );
        return ExitCode::from(1);
    }
    let key = match secret_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let last_good = Arc::new(LastGood::new(&args.data_dir, key.clone()));
        let mut settings = StoreSettings::new(args.database.clone());
        if admin.is_none() {
            // A data-plane node never changes the schema: a control plane of its version
            // migrates, and until then this node serves its last good configuration.
            settings.schema = SchemaMode::RequireCurrent;
        }
        let store = match Store::open(&settings, key.clone()).await {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::error!(database = %args.database, error = %e, "the store is unavailable");
                None
            }
        };
        // The store's configuration; when it cannot be read or does not pass its checks, the
        // last good one (a control plane then still starts, so that the store can be fixed).
        let from_store = match &store {
            Some(store) => match load(store).await {
                Ok((revision, documents)) => match build(&documents, &args.data_dir) {
                    Ok(loaded) => Some((revision, documents, loaded)),
                    Err(problems) => {
                        for p in &problems {
                            tracing::error!(revision, location = %p.location, "{}", p.message);
                        }
                        tracing::error!(
                            revision,
                            "the store's configuration does not pass its checks"
                        );
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "reading the configuration from the store");
                    None
                }
            },
            None => None,
        };
        let from_disk = from_store.is_none();
        let (revision, loaded) = match from_store {
            Some((revision, documents, loaded)) => {
                last_good.save_config(revision, &documents);
                (revision, Ok(loaded))
            }
            None => from_last_good(&last_good, &args.data_dir),
        };
        let store_for_admin = match (&admin, &store) {
            (None, _) => None,
            (Some(_), Some(store)) => Some(store.clone()),
            (Some(_), None) => {
                eprintln!("error: the admin API needs the store, which is unavailable");
                return ExitCode::from(1);
            }
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(problems) => {
                print_problems(&problems);
                return ExitCode::from(1);
            }
        };
        let gateway = match Gateway::new(&loaded.gateway) {
            Ok(g) => g,
            Err(e) => {
                print_problems(&e.problems);
                return ExitCode::from(1);
            }
        };
        gateway.metrics().set_config_served(revision, from_disk);
        follow_revocations::load_at_start(store.as_ref(), &gateway, &last_good).await;
        tracing::info!(
            revision,
            apis = loaded.gateway.apis.len(),
            policies = loaded.gateway.policies.len(),
            "gateway node started"
        );
        if let Some(store) = &store {
            tokio::spawn(keep_usage(gateway.clone(), store.clone()));
        }
        let max_token_lifetime = loaded.gateway.settings.max_token_lifetime_secs;
        drop(loaded);
        let admin = admin.zip(store_for_admin).map(|(token, store)| {
            admin_state(store, token, gateway.clone(), args.data_dir.clone())
        });
        let portal = match (portal, &admin) {
            (Some(portal), Some(admin)) => Some((
                portal.listen,
                portal_router(
                    admin.clone(),
                    max_token_lifetime,
                    portal,
                    revocation_hook(&admin.store, &gateway, &last_good),
                )
                .await,
            )),
            _ => None,
        };
        let listeners = Listeners {
            listen: args.listen,
            admin_listen: args.admin_listen,
            listen_tls: None,
            admin_api: admin.map(portico_admin::router),
            portal,
        };
        let follower = Follower {
            gateway: gateway.clone(),
            settings,
            key,
            store,
            data_dir: args.data_dir.clone(),
            last_good,
            serving: revision,
            handled: revision,
            from_disk,
            from_last_good: from_disk,
            poll: Duration::from_millis(args.poll_ms.max(50)),
        };
        listeners.run(gateway, move |_| follower.run()).await
    })
}

/// Loads the store's revocations into this node's gateway: what the portal runs after it
/// records one.
fn revocation_hook(
    store: &Store,
    gateway: &Arc<Gateway>,
    last_good: &Arc<LastGood>,
) -> portico_portal::workflow::RevocationHook {
    let (store, gateway, last_good) = (store.clone(), gateway.clone(), last_good.clone());
    Arc::new(move || {
        let (store, gateway, last_good) = (store.clone(), gateway.clone(), last_good.clone());
        Box::pin(async move {
            follow_revocations::load(&store, &gateway, &last_good).await;
        })
    })
}

/// How often a node adds its usage counts to the store.
const USAGE_EVERY: Duration = Duration::from_secs(5);

/// Adds the gateway's requests per OAuth client and minute to the store, every
/// [`USAGE_EVERY`]; while the store is away they wait (bounded) for the next round.
async fn keep_usage(gateway: Arc<Gateway>, store: Store) {
    gateway.usage().keep();
    let mut every = tokio::time::interval(USAGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let taken = gateway.usage().take();
        if taken.is_empty() {
            continue;
        }
        let rows: Vec<_> = taken
            .iter()
            .map(|c| {
                (
                    c.issuer.clone(),
                    c.client_id.clone(),
                    portico_store::usage::UsageMinute {
                        minute: c.minute,
                        ok: c.ok,
                        rejected: c.rejected,
                        failed: c.failed,
                    },
                )
            })
            .collect();
        if let Err(e) = store.add_usage(&rows).await {
            tracing::warn!(error = %e, "writing usage counts to the store; kept for the next round");
            gateway.usage().give_back(taken);
        }
    }
}

fn secret_key(args: &GatewayArgs) -> Result<SecretKey, String> {
    if let Ok(text) = std::env::var("PORTICO_SECRET_KEY") {
        return SecretKey::from_base64(&text).map_err(|e| format!("PORTICO_SECRET_KEY: {e}"));
    }
    match (&args.secret_key_file, &args.database) {
        (Some(file), _) => {
            let text = portico_config::files::read_bounded_to_string(file)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            SecretKey::from_base64(&text).map_err(|e| format!("{}: {e}", file.display()))
        }
        (None, DatabaseUrl::Sqlite(_)) => {
            SecretKey::load_or_create(&args.data_dir.join("secret.key")).map_err(|e| e.to_string())
        }
        (None, DatabaseUrl::Postgres(_)) => Err(
            "a shared store needs the secret key every node shares: set PORTICO_SECRET_KEY \
             or --secret-key-file (make one with `openssl rand -base64 32`)"
                .into(),
        ),
    }
}

/// The developer portal over `store`; what a crash left in its registration journal is
/// finished beside it (an IdP that cannot be reached now is retried at the next start).
async fn portal_router(
    admin: AdminState,
    max_token_lifetime: u64,
    portal: PortalArgs,
    revoked: portico_portal::workflow::RevocationHook,
) -> axum::Router {
    let store = &admin.store;
    let workflow = Workflow::new(
        store.clone(),
        Arc::new(portico_config::env::ProcessEnv),
        max_token_lifetime,
    )
    .with_mailer(portal.mailer.clone())
    .with_revocation_hook(revoked);
    tokio::spawn(portal.mailer.run(store.clone()));
    // An admin session is only as good as the token it was opened with, which may have
    // changed since the last start.
    if let Err(e) = store.end_admin_sessions().await {
        tracing::warn!(error = %e, "portal: ending the admin sessions of the last run");
    }
    // In the background: an IdP that answers slowly does not hold the listeners back.
    let recovering = workflow.clone();
    tokio::spawn(async move {
        if let Err(e) = recovering.recover().await {
            tracing::error!(error = %e, "portal: finishing interrupted approvals");
        }
    });
    let mut state = PortalState::new(workflow, admin)
        .with_templates(portal.templates)
        .with_signup(portal.signup_open);
    if let Some(url) = &portal.public_url {
        state = state.with_public_url(url);
    }
    portico_portal::api::router(state)
}

/// The admin REST API's state over `store`, shared with the portal's admin pages: every write
/// is checked as the configuration loader checks documents.
fn admin_state(
    store: Store,
    token: AdminToken,
    gateway: Arc<Gateway>,
    data_dir: PathBuf,
) -> AdminState {
    AdminState::new(store, token)
        .with_gateway(gateway)
        .with_validate_set(move |resources| {
            // The configuration every node would build from what the write leaves.
            let documents: Vec<Document> = resources.iter().filter_map(as_document).collect();
            build(&documents, &data_dir).map(drop).map_err(|problems| {
                problems
                    .into_iter()
                    .map(|p| FieldError {
                        path: p.location,
                        reason: p.message,
                    })
                    .collect()
            })
        })
        .with_validate(|resource| {
            let Some(doc) = as_document(resource) else {
                return Ok(());
            };
            documents::check(&doc).map_err(|message| {
                // "spec.a.b: reason" → the path and the reason.
                let (path, reason) = message.split_once(": ").unwrap_or(("spec", &message));
                vec![FieldError {
                    path: path.to_string(),
                    reason: reason.to_string(),
                }]
            })
        })
}

/// A stored resource as a document, when it is of a kind the gateway serves.
fn as_document(resource: &portico_store::Resource) -> Option<Document> {
    Some(Document {
        kind: Kind::parse(&resource.kind)?,
        metadata: Metadata {
            name: resource.name.clone(),
            version: None,
        },
        spec: resource.spec.clone(),
    })
}

/// The resource documents in the store and the revision they were read at. The revision is
/// read first: a change committed meanwhile moves it again and is read on the next round.
async fn load(store: &Store) -> Result<(i64, Vec<Document>), String> {
    let revision = store.revision().await.map_err(|e| e.to_string())?;
    let resources = store.list(None).await.map_err(|e| e.to_string())?;
    let documents = resources
        .into_iter()
        // Kinds this binary does not know are skipped.
        .filter_map(|r| {
            Some(Document {
                kind: Kind::parse(&r.kind)?,
                metadata: Metadata {
                    name: r.name,
                    version: Some(r.version),
                },
                spec: r.spec,
            })
        })
        .collect();
    Ok((revision, documents))
}

/// The configuration `documents` make, if a node can serve it: loaded, and built as the
/// gateway builds it (header names, upstream TLS, verifiers, … that loading alone does not
/// check).
fn build(
    documents: &[Document],
    data_dir: &Path,
) -> Result<Loaded, Vec<portico_core::config::Problem>> {
    let loaded = config::load_documents(documents, "store", data_dir, &ProcessEnv)
        .map_err(|e| e.problems)?;
    Gateway::check(&loaded.gateway).map_err(|e| e.problems)?;
    Ok(loaded)
}

fn from_last_good(
    last_good: &LastGood,
    data_dir: &Path,
) -> (i64, Result<Loaded, Vec<portico_core::config::Problem>>) {
    match last_good.load_config() {
        Some((revision, documents)) => {
            tracing::warn!(
                revision,
                "serving the last good configuration until the store is back"
            );
            (revision, build(&documents, data_dir))
        }
        None => (
            0,
            Err(vec![portico_core::config::Problem::error(
                "store",
                "unavailable, and no last good configuration in the data folder to start from",
            )]),
        ),
    }
}

/// Follows the store: reloads when its revision moves, reconnects when it was away, and
/// tells (metrics, `/ready`, one log line per switch) whether it serves the store's
/// configuration or its last good one.
struct Follower {
    gateway: Arc<Gateway>,
    settings: StoreSettings,
    key: SecretKey,
    store: Option<Store>,
    data_dir: PathBuf,
    last_good: Arc<LastGood>,
    /// The revision of the configuration served.
    serving: i64,
    /// The latest revision read and dealt with: served, or refused by the checks.
    handled: i64,
    /// The configuration served came from the data folder at start, not from the store.
    from_disk: bool,
    /// What was last reported: serving the last good configuration rather than the store's.
    from_last_good: bool,
    poll: Duration,
}

impl Follower {
    async fn run(mut self) {
        let mut attempts = 0u64;
        let store = loop {
            if let Some(store) = self.store.take() {
                break store;
            }
            tokio::time::sleep(self.poll).await;
            attempts += 1;
            match Store::open(&self.settings, self.key.clone()).await {
                Ok(store) => {
                    tracing::debug!("the store is reachable again");
                    self.store = Some(store);
                }
                // Once a minute or so, not at every attempt.
                Err(e) if attempts % 60 == 1 => {
                    tracing::warn!(attempts, error = %e, "the store is still unavailable; serving the last good configuration");
                }
                Err(_) => {}
            }
        };
        tokio::spawn(follow_revocations::follow(
            store.clone(),
            self.gateway.clone(),
            self.last_good.clone(),
            self.poll,
        ));
        let mut revisions = store.watch_revision(self.poll);
        let mut retry = tokio::time::interval(self.poll);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Woken by a new revision or a change of reachability, or — while this node is
            // behind because a read failed — by the retry tick, so that a failed read is
            // tried again without a new write.
            let behind = revisions
                .borrow()
                .revision
                .is_some_and(|r| r != self.handled);
            tokio::select! {
                changed = revisions.changed() => if changed.is_err() { return },
                _ = retry.tick(), if behind => {}
            }
            let seen = *revisions.borrow_and_update();
            if !seen.reachable {
                self.report(false);
                continue;
            }
            let Some(revision) = seen.revision else {
                continue;
            };
            if revision == self.handled {
                // The store's current configuration is the one served (read from the data
                // folder at start, it is the same documents).
                if revision == self.serving {
                    self.from_disk = false;
                }
                self.report(true);
                continue;
            }
            match load(&store).await {
                Ok((revision, documents)) => match build(&documents, &self.data_dir)
                    .and_then(|loaded| self.gateway.reload(&loaded.gateway).map_err(|e| e.problems))
                {
                    Ok(()) => {
                        tracing::info!(revision, "configuration reloaded from the store");
                        self.serving = revision;
                        self.handled = revision;
                        self.from_disk = false;
                        self.last_good.save_config(revision, &documents);
                        self.report(true);
                    }
                    Err(problems) => {
                        for p in &problems {
                            tracing::error!(revision, location = %p.location, "{}", p.message);
                        }
                        tracing::error!(
                            revision,
                            "configuration rejected; still serving the previous one"
                        );
                        // Not retried: the same documents would fail the same way.
                        self.handled = revision;
                        self.report(true);
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "reading the configuration from the store; retrying");
                    self.report(false);
                }
            }
        }
    }

    /// Records whether the store answered: the node serves its last good configuration
    /// while it does not, or while what it serves came from the data folder. Metrics follow;
    /// a switch either way is logged once.
    fn report(&mut self, store_reachable: bool) {
        let from_last_good = !store_reachable || self.from_disk;
        if from_last_good != self.from_last_good {
            if from_last_good {
                tracing::warn!(
                    revision = self.serving,
                    "the store is unavailable; serving the last good configuration"
                );
            } else {
                tracing::info!(
                    revision = self.serving,
                    "the store is available; serving its configuration"
                );
            }
            self.from_last_good = from_last_good;
        }
        self.gateway
            .metrics()
            .set_config_served(self.serving, from_last_good);
    }
}
