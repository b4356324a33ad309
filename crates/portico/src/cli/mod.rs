//! Subcommands.

mod diff;
mod follow_revocations;
pub mod gateway;
mod last_good;
pub mod resources;
pub mod revoke;
pub mod serve;
pub mod token;

use portico_config::env::ProcessEnv;
use portico_config::{self as config, ConfigSources};
use portico_core::config::Problem;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the configuration comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Native YAML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of Tyk API definitions (*.json: Classic, or Tyk OAS documents).
    #[arg(long, value_name = "DIR")]
    pub tyk_apps: Option<PathBuf>,
    /// Tyk policies.json (object keyed by id, or array).
    #[arg(long, value_name = "FILE")]
    pub tyk_policies: Option<PathBuf>,
    /// Serve the other Tyk APIs when some use an auth mode Portico does not serve (auth
    /// token, basic, HMAC, OAuth 2.0, OpenID Connect, mTLS, plugins), warning about each one
    /// skipped; without it such an API is an error.
    #[arg(long)]
    pub tyk_skip_unsupported: bool,
}

impl ConfigArgs {
    pub fn sources(&self) -> ConfigSources {
        ConfigSources {
            config_file: self.config.clone(),
            tyk_apps_dir: self.tyk_apps.clone(),
            tyk_policies_file: self.tyk_policies.clone(),
            tyk_skip_unsupported: self.tyk_skip_unsupported,
        }
    }
}

fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
}

/// `portico validate`: exit 0 when usable (warnings are printed), 1 with every problem.
pub fn validate(args: ConfigArgs) -> ExitCode {
    match config::load(&args.sources(), &ProcessEnv) {
        Ok(loaded) => {
            print_problems(&loaded.warnings);
            println!(
                "configuration is valid: {} APIs, {} policies",
                loaded.gateway.apis.len(),
                loaded.gateway.policies.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_problems(&e.problems);
            ExitCode::from(1)
        }
    }
}

/// Reads `--database`: a URL that does not parse is reported without echoing it (clap's own
/// errors repeat the value, and a PostgreSQL URL may hold a password).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = portico_store::DatabaseUrl;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let name = arg.map_or("--database".to_string(), |a| a.to_string());
        let invalid = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {name}: {reason}\n"),
            )
        };
        let text = value.to_str().ok_or_else(|| invalid("not UTF-8".into()))?;
        text.parse().map_err(invalid)
    }
}
