//! Reading Portico's configuration: a native YAML file and/or Tyk files, into one checked
//! [`GatewayConfig`] plus the process settings (listeners, logging). Every problem is reported
//! with its location. A library, so that the CLI, the admin API and `apply` share one loader.

pub mod defaults;
pub mod documents;
pub mod env;
pub mod files;
pub mod native;
pub mod portal;
pub mod tyk;

use env::Env;
use portico_core::config::{ConfigError, GatewayConfig, Problem, Severity};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the configuration comes from (CLI flags).
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub config_file: Option<PathBuf>,
    pub tyk_apps_dir: Option<PathBuf>,
    pub tyk_policies_file: Option<PathBuf>,
    /// Skip (with a warning) Tyk APIs whose auth mode Portico does not serve, instead of
    /// refusing the configuration.
    pub tyk_skip_unsupported: bool,
}

impl ConfigSources {
    /// The files whose change should trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .config_file
            .iter()
            .chain(&self.tyk_policies_file)
            .cloned()
            .collect();
        if let Some(dir) = &self.tyk_apps_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            files.extend(
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json")),
            );
        }
        files.sort();
        files
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Process-level settings, with their defaults.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    /// Gateway listener (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// Admin listener: metrics, health (default 127.0.0.1:8081).
    pub admin_listen: SocketAddr,
    /// A TLS listener for the gateway besides `listen` (default none).
    pub listen_tls: Option<TlsListener>,
    /// Data folder (default `./data`).
    pub data_dir: PathBuf,
    /// Threads serving requests (default: one per CPU).
    pub worker_threads: usize,
    pub log_format: LogFormat,
    /// `tracing` filter, e.g. `info` or `portico=debug` (default `info`).
    pub log_level: String,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static"),
            admin_listen: "127.0.0.1:8081".parse().expect("static"),
            listen_tls: None,
            data_dir: PathBuf::from("./data"),
            worker_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

/// A TLS listener: its address and certificate files (PEM; paths resolved against the config
/// file's folder). The certificate is reloaded with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    pub address: SocketAddr,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs.
    pub client_ca_file: Option<PathBuf>,
}

/// A loaded configuration and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub gateway: GatewayConfig,
    pub process: ProcessSettings,
    pub warnings: Vec<Problem>,
}

/// Loads and checks everything; all problems are reported together.
pub fn load(sources: &ConfigSources, env: &dyn Env) -> Result<Loaded, ConfigError> {
    let mut problems = Vec::new();
    let mut gateway = GatewayConfig::default();
    let mut process = ProcessSettings::default();
    let mut locations = Vec::new();

    if let Some(path) = &sources.config_file {
        match native::load_file(path, env) {
            Ok(native) => {
                problems.extend(native.problems);
                gateway = native.gateway;
                process = native.process;
                locations = native.api_locations;
            }
            Err(p) => problems.push(p),
        }
    }
    if let Some(dir) = &sources.tyk_apps_dir {
        let (apis, api_locations, found) = tyk::load_api_dir(
            dir,
            tyk::TykOptions {
                skip_unsupported: sources.tyk_skip_unsupported,
            },
        );
        problems.extend(found);
        gateway.apis.extend(apis);
        locations.extend(api_locations);
    }
    if let Some(path) = &sources.tyk_policies_file {
        let (policies, splits, found) = tyk::load_policies_file(path);
        problems.extend(found);
        tyk::use_per_api_splits(&mut gateway.apis, &locations, &splits, &mut problems);
        for policy in policies {
            let id = policy.id.clone();
            if gateway.policies.insert(policy).is_some() {
                problems.push(Problem::error(
                    path.display().to_string(),
                    format!("policy {id:?} is defined twice"),
                ));
            }
        }
    }
    if sources.config_file.is_none() && sources.tyk_apps_dir.is_none() {
        problems.push(Problem::error(
            "command line",
            "no configuration given: use --config FILE and/or --tyk-apps DIR",
        ));
    }
    finish(gateway, process, &locations, problems)
}

/// Loads and checks a set of resource documents (from a file, the store or the admin API)
/// the way [`load`] loads files.
pub fn load_documents(
    docs: &[documents::Document],
    source: &str,
    base_dir: &std::path::Path,
    env: &dyn Env,
) -> Result<Loaded, ConfigError> {
    let native = documents::to_native(docs, source, base_dir, env);
    finish(
        native.gateway,
        native.process,
        &native.api_locations,
        native.problems,
    )
}

/// The whole-configuration checks, then errors (with the warnings) or the loaded result.
fn finish(
    gateway: GatewayConfig,
    process: ProcessSettings,
    locations: &[String],
    mut problems: Vec<Problem>,
) -> Result<Loaded, ConfigError> {
    problems.extend(gateway.check(locations));
    let (errors, warnings): (Vec<_>, Vec<_>) = problems
        .into_iter()
        .partition(|p| p.severity == Severity::Error);
    if !errors.is_empty() {
        let mut all = errors;
        all.extend(warnings);
        return Err(ConfigError { problems: all });
    }
    Ok(Loaded {
        gateway,
        process,
        warnings,
    })
}
