//! `portico`: the API gateway and developer portal for APIs protected by external identity
//! providers. This binary holds the CLI and wiring; the logic lives in the library crates.

mod cli;
mod logging;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "portico",
    version,
    about = "API gateway for APIs protected by external identity providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (and its admin listener) with embedded defaults.
    Serve(Box<cli::serve::ServeArgs>),
    /// Run a gateway node whose configuration comes from the shared store.
    Gateway(cli::gateway::GatewayArgs),
    /// Create or update the resource documents of a file through the admin API.
    Apply(cli::resources::ApplyArgs),
    /// Print resources as documents `apply` accepts.
    Get(cli::resources::GetArgs),
    /// Delete one resource.
    Delete(cli::resources::DeleteArgs),
    /// Refuse tokens before their exp: by client_id, jti or identity, on every node.
    Revoke(cli::revoke::RevokeArgs),
    /// List the revocations in force, or lift one.
    Revocations(cli::revoke::RevocationsArgs),
    /// Check a configuration; list every problem with its location.
    Validate(cli::ConfigArgs),
    /// Verify or mint JWTs.
    #[command(subcommand)]
    Token(cli::token::TokenCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => cli::serve::run(*args),
        Command::Gateway(args) => cli::gateway::run(args),
        Command::Apply(args) => cli::resources::apply(args),
        Command::Get(args) => cli::resources::get(args),
        Command::Delete(args) => cli::resources::delete(args),
        Command::Revoke(args) => cli::revoke::revoke(args),
        Command::Revocations(args) => cli::revoke::revocations(args),
        Command::Validate(args) => cli::validate(args),
        Command::Token(cmd) => cli::token::run(cmd),
    }
}
