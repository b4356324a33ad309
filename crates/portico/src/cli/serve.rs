//! `portico serve`: load, listen, reload on SIGHUP or file change, stop on SIGINT/SIGTERM.

use super::gateway::{GatewayArgs, PortalArgs, run_node};
use super::{ConfigArgs, print_problems};
use crate::logging;
use portico_admin::AdminToken;
use portico_config::ProcessSettings;
use portico_config::TlsListener;
use portico_config::env::ProcessEnv;
use portico_config::{self as config, ConfigSources};
use portico_gateway::Gateway;
use portico_gateway::tls::{ReloadableCertResolver, ServerTls, ServerTlsSettings};
use portico_portal::mail::{MailSettings, Mailer};
use portico_portal::pages::templates::Templates;
use portico_store::DatabaseUrl;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Gateway listener (overrides the config; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Admin listener for /metrics and /health (default 127.0.0.1:8081).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Data folder (default ./data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve what the store holds and the admin REST API that writes it, instead of files:
    /// `postgres://USER@HOST/DB` or `sqlite:FILE`. The admin token comes from
    /// `PORTICO_ADMIN_TOKEN` or `--admin-token-file`. (Not read from `PORTICO_DATABASE_URL`,
    /// so that an exported URL never turns a `serve --config` into something else.)
    #[arg(long, value_name = "URL", value_parser = super::DatabaseUrlParser)]
    pub database: Option<DatabaseUrl>,
    /// File holding the admin token (at least 32 bytes).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the store's secret key (see `portico gateway --help`).
    #[arg(long, value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Serve the developer portal (its pages and APIs) on this address (with --database;
    /// e.g. 127.0.0.1:3000). Without it, no portal is served.
    #[arg(long, value_name = "ADDR")]
    pub portal_listen: Option<SocketAddr>,
    /// Folder of page templates replacing the portal's embedded ones, file by file (same
    /// names; see docs/portal.md).
    #[arg(long, value_name = "DIR")]
    pub portal_templates: Option<PathBuf>,
    /// The portal's address as people reach it, for links in its emails (default
    /// http://PORTAL-LISTEN).
    #[arg(long, value_name = "URL")]
    pub portal_url: Option<String>,
    /// SMTP server for the portal's emails: `smtp://HOST:PORT`, `smtp://HOST:587?tls=required`
    /// (STARTTLS) or `smtps://HOST:465`, with `USER:PASSWORD@` for a login (give it in
    /// PORTICO_SMTP_URL to keep the password off the command line). Without it, emails wait
    /// in the outbox (admin page /manage/outbox).
    #[arg(
        long,
        value_name = "URL",
        env = "PORTICO_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp: Option<String>,
    /// Sender of the portal's emails.
    #[arg(long, value_name = "ADDR", default_value = "portal@localhost")]
    pub mail_from: String,
    /// Admin address told of each access request (repeat for more).
    #[arg(long, value_name = "ADDR")]
    pub notify: Vec<String>,
    /// Who makes developer accounts: `open` (anyone, on the sign-up page) or `closed` (admins,
    /// by `POST /admin/developers`).
    #[arg(long, value_name = "open|closed", default_value = "open", value_parser = ["open", "closed"])]
    pub portal_signup: String,
}

impl ServeArgs {
    /// Whether any of the portal's own settings was given.
    fn has_portal_settings(&self) -> bool {
        self.portal_templates.is_some()
            || self.smtp.is_some()
            || !self.notify.is_empty()
            || self.portal_url.is_some()
            || self.portal_signup != "open"
    }
}

pub fn run(args: ServeArgs) -> ExitCode {
    if let Some(database) = args.database.clone() {
        return run_control_plane(args, database);
    }
    if args.portal_listen.is_some() || args.has_portal_settings() {
        eprintln!(
            "error: the portal keeps its records in the store: use --portal-listen with --database"
        );
        return ExitCode::from(1);
    }
    let sources = args.config.sources();
    let loaded = match config::load(&sources, &ProcessEnv) {
        Ok(l) => l,
        Err(e) => {
            print_problems(&e.problems);
            return ExitCode::from(1);
        }
    };
    logging::init(loaded.process.log_format, &loaded.process.log_level);
    for w in &loaded.warnings {
        tracing::warn!(location = %w.location, "{}", w.message);
    }
    let listen = args.listen.unwrap_or(loaded.process.listen);
    let admin_listen = args.admin_listen.unwrap_or(loaded.process.admin_listen);
    let data_dir = args.data_dir.unwrap_or(loaded.process.data_dir.clone());
    // One worker: a current-thread runtime, free of the work-stealing scheduler's cross-thread
    // wake-ups (measured in docs/performance.md).
    let mut builder = if loaded.process.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(loaded.process.worker_threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            eprintln!(
                "error: cannot create data folder {}: {e}",
                data_dir.display()
            );
            return ExitCode::from(1);
        }
        let gateway = match Gateway::new(&loaded.gateway) {
            Ok(g) => g,
            Err(e) => {
                print_problems(&e.problems);
                return ExitCode::from(1);
            }
        };
        tracing::info!(
            apis = loaded.gateway.apis.len(),
            policies = loaded.gateway.policies.len(),
            "portico started"
        );
        let listen_tls = loaded.process.listen_tls.clone();
        // The gateway holds what it needs; the parsed files are not kept beside it (with many
        // APIs they are most of the memory).
        drop(loaded);
        let listeners = Listeners {
            listen,
            admin_listen,
            listen_tls: listen_tls.clone(),
            admin_api: None,
            portal: None,
        };
        let reloader_gateway = gateway.clone();
        listeners
            .run(gateway, move |certificates| {
                reload_on_signal_or_change(reloader_gateway, sources, listen_tls, certificates)
            })
            .await
    })
}

/// The gateway's listeners: plain, admin, and TLS when configured.
pub(super) struct Listeners {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub listen_tls: Option<TlsListener>,
    /// The admin REST API, served on the admin listener beside the operations endpoints.
    pub admin_api: Option<axum::Router>,
    /// The developer portal: its address and its routes.
    pub portal: Option<(SocketAddr, axum::Router)>,
}

impl Listeners {
    /// Binds every listener (exit 1 when one cannot be), serves until SIGINT/SIGTERM, and
    /// runs `reloader` (given the TLS certificate to reload, if any) beside them.
    pub async fn run<R, F>(self, gateway: Arc<Gateway>, reloader: R) -> ExitCode
    where
        R: FnOnce(Option<Arc<ReloadableCertResolver>>) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let Listeners {
            listen,
            admin_listen,
            listen_tls,
            admin_api,
            portal,
        } = self;
        let (gateway_listener, admin_listener) = match (
            TcpListener::bind(listen).await,
            TcpListener::bind(admin_listen).await,
        ) {
            (Ok(g), Ok(a)) => (g, a),
            (Err(e), _) => {
                eprintln!("error: cannot listen on {listen}: {e}");
                return ExitCode::from(1);
            }
            (_, Err(e)) => {
                eprintln!("error: cannot listen on {admin_listen}: {e}");
                return ExitCode::from(1);
            }
        };
        let tls = match &listen_tls {
            None => None,
            Some(t) => {
                let settings = ServerTlsSettings {
                    cert_file: t.cert_file.clone(),
                    key_file: t.key_file.clone(),
                    client_ca_file: t.client_ca_file.clone(),
                };
                let server_tls = match ServerTls::load(&settings) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("error: listen_tls: {e}");
                        return ExitCode::from(1);
                    }
                };
                match TcpListener::bind(t.address).await {
                    Ok(l) => Some((l, Arc::new(server_tls))),
                    Err(e) => {
                        eprintln!("error: cannot listen on {}: {e}", t.address);
                        return ExitCode::from(1);
                    }
                }
            }
        };
        let portal = match portal {
            None => None,
            Some((address, router)) => match TcpListener::bind(address).await {
                Ok(listener) => Some((listener, router)),
                Err(e) => {
                    eprintln!("error: cannot listen on {address}: {e}");
                    return ExitCode::from(1);
                }
            },
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        println!(
            "gateway listening on http://{}",
            gateway_listener.local_addr().map_or(listen, |a| a)
        );
        println!(
            "admin listening on http://{}",
            admin_listener.local_addr().map_or(admin_listen, |a| a)
        );
        let serving_portal = portal.map(|(listener, router)| {
            println!(
                "portal listening on http://{}",
                listener
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            );
            let stopped = stopped(stop_rx.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "the portal listener failed");
                }
            })
        });
        let serving = tokio::spawn(
            gateway
                .clone()
                .serve(gateway_listener, stopped(stop_rx.clone())),
        );
        let admin = match admin_api {
            None => tokio::spawn(
                gateway
                    .clone()
                    .serve_admin(admin_listener, stopped(stop_rx.clone())),
            ),
            Some(api) => {
                let ops = gateway.clone();
                let router = api.fallback(move |uri: axum::http::Uri| {
                    let response = ops.ops_response(uri.path());
                    async move { response.map(axum::body::Body::new) }
                });
                let stopped = stopped(stop_rx.clone());
                // The same connection limits as the operations endpoints alone.
                tokio::spawn(portico_gateway::server::serve_admin_connections(
                    admin_listener,
                    stopped,
                    hyper_util::service::TowerToHyperService::new(router),
                ))
            }
        };
        let certificates = tls.as_ref().map(|(_, t)| t.certificates().clone());
        let serving_tls = tls.map(|(listener, server_tls)| {
            println!(
                "gateway listening on https://{}",
                listener
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string())
            );
            let gateway = gateway.clone();
            let stopped = stopped(stop_rx.clone());
            tokio::spawn(async move { gateway.serve_tls(listener, &server_tls, stopped).await })
        });
        let reloading = tokio::spawn(reloader(certificates));
        wait_for_shutdown().await;
        tracing::info!("shutting down");
        reloading.abort();
        let _ = stop_tx.send(true);
        let _ = serving.await;
        let _ = admin.await;
        if let Some(t) = serving_tls {
            let _ = t.await;
        }
        if let Some(p) = serving_portal {
            let _ = p.await;
        }
        ExitCode::SUCCESS
    }
}

/// `serve --database`: a node that serves the store's configuration and the admin REST API.
fn run_control_plane(args: ServeArgs, database: DatabaseUrl) -> ExitCode {
    let sources = args.config.sources();
    if sources.config_file.is_some()
        || sources.tyk_apps_dir.is_some()
        || sources.tyk_policies_file.is_some()
    {
        eprintln!(
            "error: --database serves the store; load files into it with `portico apply` instead of --config or --tyk-*"
        );
        return ExitCode::from(1);
    }
    let token = match admin_token(args.admin_token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let node = GatewayArgs {
        database,
        listen: args.listen.unwrap_or(ProcessSettings::default().listen),
        admin_listen: args
            .admin_listen
            .unwrap_or(ProcessSettings::default().admin_listen),
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or(ProcessSettings::default().data_dir),
        secret_key_file: args.secret_key_file.clone(),
        poll_ms: 1000,
    };
    let portal = match args.portal_listen {
        Some(listen) => match portal_args(&args, listen) {
            Ok(portal) => Some(portal),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        None if args.has_portal_settings() => {
            eprintln!("error: the portal's settings need --portal-listen");
            return ExitCode::from(1);
        }
        None => None,
    };
    run_node(node, Some(token), portal)
}

/// The portal's templates and emails, checked before anything starts.
fn portal_args(args: &ServeArgs, listen: SocketAddr) -> Result<PortalArgs, String> {
    let templates = Templates::load(args.portal_templates.as_deref())
        .map_err(|e| format!("--portal-templates: {e}"))?;
    if let Some(url) = &args.portal_url {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(format!("--portal-url {url:?}: not an http(s) URL")),
        }
    }
    let public_url = args
        .portal_url
        .clone()
        .unwrap_or_else(|| format!("http://{listen}"))
        .trim_end_matches('/')
        .to_string();
    let settings = MailSettings {
        smtp_url: args.smtp.clone(),
        from: args.mail_from.clone(),
        notify: args.notify.clone(),
        portal_url: public_url.clone(),
    };
    let mailer = Mailer::new(settings, templates.clone())?;
    Ok(PortalArgs {
        listen,
        templates,
        mailer,
        // Without --portal-url, forms are checked against the request's own host.
        public_url: args.portal_url.as_ref().map(|_| public_url),
        signup_open: args.portal_signup == "open",
    })
}

/// The admin token: `PORTICO_ADMIN_TOKEN`, else the file's first line.
fn admin_token(file: Option<&Path>) -> Result<AdminToken, String> {
    let secret = match (std::env::var("PORTICO_ADMIN_TOKEN"), file) {
        (Ok(token), _) => token,
        (Err(_), Some(file)) => portico_config::files::read_bounded_to_string(file)
            .map(|t| t.trim_end().to_string())
            .map_err(|e| format!("{}: {e}", file.display()))?,
        (Err(_), None) => {
            return Err("the admin API needs a token: set PORTICO_ADMIN_TOKEN or --admin-token-file (at least 32 bytes, e.g. `openssl rand -base64 32`)".into());
        }
    };
    AdminToken::new(secret).map_err(|e| format!("admin token: {e}"))
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Fingerprint of the watched files (config files and the TLS listener's certificate):
/// names, sizes and modification times.
fn fingerprint(
    sources: &ConfigSources,
    tls: Option<&TlsListener>,
) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = sources.watched_files();
    files.extend(
        tls.iter()
            .flat_map(|t| [t.cert_file.clone(), t.key_file.clone()]),
    );
    files
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect()
}

/// Reloads on SIGHUP and when a config or certificate file changes (polled every second). An
/// invalid new config, or a certificate that does not load, is logged and the running one
/// keeps serving.
async fn reload_on_signal_or_change(
    gateway: Arc<Gateway>,
    sources: ConfigSources,
    mut tls: Option<TlsListener>,
    certificates: Option<Arc<ReloadableCertResolver>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    let mut last = fingerprint(&sources, tls.as_ref());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let reason = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = tick.tick() => {
                let now = fingerprint(&sources, tls.as_ref());
                if now == last { continue; }
                last = now;
                "file change"
            }
        };
        match config::load(&sources, &ProcessEnv).and_then(|loaded| {
            for w in &loaded.warnings {
                tracing::warn!(location = %w.location, "{}", w.message);
            }
            gateway.reload(&loaded.gateway)?;
            Ok(loaded.process.listen_tls)
        }) {
            Ok(new_tls) => {
                tracing::info!(reason, "configuration reloaded");
                if let (Some(resolver), Some(t)) = (&certificates, &new_tls) {
                    match resolver.reload(&t.cert_file, &t.key_file) {
                        Ok(()) => tracing::info!(reason, "TLS certificate reloaded"),
                        Err(e) => tracing::error!(
                            reason,
                            error = %e,
                            "TLS certificate rejected; still serving the previous one"
                        ),
                    }
                }
                tls = new_tls;
                last = fingerprint(&sources, tls.as_ref());
            }
            Err(e) => {
                for p in &e.problems {
                    tracing::error!(reason, location = %p.location, "{}", p.message);
                }
                tracing::error!(
                    reason,
                    "configuration rejected; still serving the previous one"
                );
            }
        }
    }
}
