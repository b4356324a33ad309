//! `portico apply`, `portico get`, `portico delete`: resource documents through the admin
//! REST API of a running control plane (`portico serve --database …`).

use portico_admin::apply::{ApplyOutcome, ApplyReport};
use portico_admin::{ErrorBody, kinds};
use portico_config::documents::{self, Document, Kind, Metadata};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The control plane's admin listener.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8081")]
    pub server: String,
    /// The admin token; `PORTICO_ADMIN_TOKEN` by default (prefer it: command lines are visible
    /// to other users of the machine).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PORTICO_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub token: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// A YAML file of resource documents (`---`-separated).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Show what would change, as a diff per document (secrets redacted); write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete resources of the kinds in the file that the file no longer lists.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// `Api`, `Policy` or `Issuer` (or `apis`, `policies`, `issuers`).
    pub kind: String,
    /// One resource; all of the kind without it.
    pub name: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    pub kind: String,
    pub name: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn apply(args: ApplyArgs) -> ExitCode {
    let source = args.file.display().to_string();
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{source}: {e}")),
    };
    let docs = match documents::parse_yaml(&text, &source) {
        Ok(d) => d,
        Err(problems) => {
            super::print_problems(&problems);
            return ExitCode::from(1);
        }
    };
    let query = format!("dry_run={}&prune={}", args.dry_run, args.prune);
    let answer = call(
        &args.server,
        reqwest::Method::POST,
        &["apply"],
        Some(&query),
        Some(&docs),
    );
    let report: ApplyReport = match answer.and_then(|body| {
        serde_json::from_slice(&body).map_err(|e| format!("unexpected answer: {e}"))
    }) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for r in &report.results {
        let outcome = match r.outcome {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Updated => "updated",
            ApplyOutcome::Unchanged => "unchanged",
            ApplyOutcome::Deleted => "deleted",
        };
        let note = if report.dry_run { " (dry run)" } else { "" };
        println!("{} {:?} {outcome}{note}", r.kind, r.name);
        if report.dry_run {
            let new_spec = docs
                .iter()
                .find(|d| d.kind.as_str() == r.kind && d.metadata.name == r.name)
                .map(|d| &d.spec);
            print!("{}", super::diff::render(r, new_spec));
        }
    }
    ExitCode::SUCCESS
}

pub fn get(args: GetArgs) -> ExitCode {
    let Some(kind) = resource_kind(&args.kind) else {
        return fail(unknown_kind(&args.kind));
    };
    let mut path = vec![kind.plural];
    path.extend(args.name.as_deref());
    let body = match call::<()>(&args.server, reqwest::Method::GET, &path, None, None) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let served: Result<Vec<portico_admin::Document>, _> = if args.name.is_some() {
        serde_json::from_slice(&body).map(|d| vec![d])
    } else {
        serde_json::from_slice::<portico_admin::document::ResourceList>(&body).map(|l| l.items)
    };
    let served = match served {
        Ok(s) => s,
        Err(e) => return fail(format!("unexpected answer: {e}")),
    };
    // Printed as `apply` reads it: kind, name, version, spec.
    let docs: Vec<Document> = served
        .into_iter()
        .filter_map(|d| {
            Some(Document {
                kind: Kind::parse(&d.kind)?,
                metadata: Metadata {
                    name: d.metadata.name,
                    version: d.metadata.version,
                },
                spec: d.spec,
            })
        })
        .collect();
    match serde_saphyr::to_string_multiple(&docs) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot print the documents: {e}")),
    }
}

pub fn delete(args: DeleteArgs) -> ExitCode {
    let Some(kind) = resource_kind(&args.kind) else {
        return fail(unknown_kind(&args.kind));
    };
    let path = [kind.plural, args.name.as_str()];
    match call::<()>(&args.server, reqwest::Method::DELETE, &path, None, None) {
        Ok(_) => {
            println!("{} {:?} deleted", kind.kind, args.name);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn resource_kind(given: &str) -> Option<kinds::ResourceKind> {
    kinds::KINDS
        .iter()
        .copied()
        .find(|k| k.kind.eq_ignore_ascii_case(given) || k.plural.eq_ignore_ascii_case(given))
}

fn unknown_kind(given: &str) -> String {
    format!("unknown kind {given:?}: one of {}", kinds::plurals_listed())
}

pub(super) fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

/// One admin API call to the path `segments` below the API prefix (each segment encoded, so a
/// name cannot reach another path); the body of a 2xx answer, or the server's error as one
/// line (with its field errors).
pub(super) fn call<B: serde::Serialize>(
    server: &ServerArgs,
    method: reqwest::Method,
    segments: &[&str],
    query: Option<&str>,
    body: Option<&B>,
) -> Result<Vec<u8>, String> {
    let mut url = reqwest::Url::parse(&server.server)
        .map_err(|e| format!("--server {:?}: {e}", server.server))?;
    url.path_segments_mut()
        .map_err(|()| format!("--server {:?} cannot have a path", server.server))?
        .pop_if_empty()
        .extend(portico_admin::API_PREFIX.trim_start_matches('/').split('/'))
        .extend(segments);
    url.set_query(query);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client.request(method, url).bearer_auth(&server.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", server.server))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(error) => {
                let mut line = format!("{status}: {}", error.message);
                for f in &error.fields {
                    line.push_str(&format!("\n  {}: {}", f.path, f.reason));
                }
                line
            }
            Err(_) => format!("{status}"),
        })
    })
}
