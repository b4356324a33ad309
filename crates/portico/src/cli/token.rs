//! `portico token verify` and `portico token mint`. Verification is the gateway's own
//! `JwtVerifier`, so the verdict here is the verdict there.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portico_auth::jws::b64url_decode;
use portico_auth::sign::SigningKey;
use portico_auth::{JwtVerifier, KeySourceRegistry};
use portico_core::config::KeyFetchSettings;
use portico_core::jwt::{
    Algorithm, ClaimSkews, DEFAULT_MAX_TOKEN_BYTES, IssuerTrust, JwtSpec, KeySourceSpec, Secret,
};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Explain whether a token is accepted, and why not. Exit 0 valid, 1 invalid, 2 usage.
    Verify(VerifyArgs),
    /// Sign a token with a local key (for quick starts and tests).
    Mint(MintArgs),
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("keys").required(true).args(["jwks", "key", "secret_base64", "issuer"]))]
pub struct VerifyArgs {
    /// The JWT.
    #[arg(long)]
    pub token: String,
    /// A JWKS file, or a JWKS URL.
    #[arg(long, value_name = "FILE|URL")]
    pub jwks: Option<String>,
    /// A PEM public key or certificate file.
    #[arg(long, value_name = "PEM_FILE")]
    pub key: Option<PathBuf>,
    /// An HMAC secret, base64.
    #[arg(long, value_name = "S")]
    pub secret_base64: Option<String>,
    /// An issuer URL, resolved by OIDC discovery (also the expected `iss`).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Only accept this algorithm.
    #[arg(long)]
    pub alg: Option<String>,
    /// Expected `iss`.
    #[arg(long)]
    pub iss: Option<String>,
    /// Accepted audience (repeatable).
    #[arg(long)]
    pub aud: Vec<String>,
    /// Clock skew for exp, nbf and iat, seconds.
    #[arg(long, default_value_t = 0)]
    pub skew: u64,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("signer").required(true).args(["key", "secret_base64"]))]
pub struct MintArgs {
    /// A PEM private key file (PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, value_name = "PRIVATE_PEM")]
    pub key: Option<PathBuf>,
    /// An HMAC secret, base64.
    #[arg(long, value_name = "S")]
    pub secret_base64: Option<String>,
    #[arg(long)]
    pub alg: String,
    #[arg(long)]
    pub kid: Option<String>,
    /// Claims as a JSON object; `iat` and `exp` are added unless present.
    #[arg(long, default_value = "{}")]
    pub claims: String,
    /// Print this many tokens, one per line: `{i}` in the claims becomes 0, 1, 2, … and each
    /// token gets a distinct `jti` (for load tests).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Lifetime for `exp`, seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

pub fn run(cmd: TokenCommand) -> ExitCode {
    let outcome = match cmd {
        TokenCommand::Verify(args) => verify(args),
        TokenCommand::Mint(args) => mint(args),
    };
    outcome.unwrap_or_else(|usage| {
        eprintln!("error: {usage}");
        ExitCode::from(2)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn decode_secret(b64: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(b64.trim())
        .map_err(|_| "--secret-base64 is not valid base64".to_string())
}

/// The token's header and claims decoded without verification, for the report.
fn decoded_part(token: &str, index: usize) -> Value {
    token
        .split('.')
        .nth(index)
        .and_then(|p| b64url_decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn verify(args: VerifyArgs) -> Result<ExitCode, String> {
    let keys = if let Some(jwks) = &args.jwks {
        if let Ok(url) = portico_core::HttpUrl::try_new(jwks) {
            KeySourceSpec::JwksUrl(url)
        } else {
            KeySourceSpec::JwksDocument(
                std::fs::read_to_string(jwks).map_err(|e| format!("cannot read {jwks}: {e}"))?,
            )
        }
    } else if let Some(path) = &args.key {
        KeySourceSpec::PublicKeyPem(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        )
    } else if let Some(secret) = &args.secret_base64 {
        KeySourceSpec::Secret(Secret::new(decode_secret(secret)?))
    } else {
        KeySourceSpec::Discovery
    };
    let mut trust = IssuerTrust::new(args.iss.clone().or(args.issuer.clone()), keys);
    trust.audiences = args.aud.clone();
    trust.algorithms = args
        .alg
        .as_deref()
        .map(|a| a.parse::<Algorithm>().map(|a| vec![a]))
        .transpose()?;
    trust.skew = ClaimSkews {
        exp_secs: args.skew,
        nbf_secs: args.skew,
        iat_secs: args.skew,
    };
    let spec = JwtSpec {
        issuers: vec![trust],
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let verifier = JwtVerifier::build(
            &spec,
            &KeySourceRegistry::on_demand(),
            &KeyFetchSettings::default(),
        )
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(verifier.verify_access_token(args.token.trim(), now()).await)
    })?;
    let (valid, reason, message) = match &result {
        Ok(_) => (true, "ok", "the token is valid".to_string()),
        Err(e) => (false, e.code(), e.to_string()),
    };
    let report = json!({
        "valid": valid,
        "reason": reason,
        "message": message,
        "header": decoded_part(args.token.trim(), 0),
        "claims": decoded_part(args.token.trim(), 1),
    });
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn mint(args: MintArgs) -> Result<ExitCode, String> {
    let alg: Algorithm = args.alg.parse()?;
    let key = match (&args.key, &args.secret_base64) {
        (Some(path), _) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            SigningKey::from_pem(alg, &pem).map_err(|e| e.to_string())?
        }
        (None, Some(secret)) => {
            SigningKey::from_secret(alg, &decode_secret(secret)?).map_err(|e| e.to_string())?
        }
        (None, None) => unreachable!("clap requires one"),
    };
    let key = match args.kid {
        Some(kid) => key.with_kid(kid),
        None => key,
    };
    let issued = now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..args.count {
        let text = if args.count > 1 {
            args.claims.replace("{i}", &i.to_string())
        } else {
            args.claims.clone()
        };
        let mut claims: Map<String, Value> = match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => m,
            _ => return Err("--claims must be a JSON object".into()),
        };
        claims.entry("iat").or_insert(json!(issued));
        claims.entry("exp").or_insert(json!(issued + args.ttl));
        if args.count > 1 {
            claims
                .entry("jti")
                .or_insert(json!(format!("{issued}-{i}")));
        }
        let token = key
            .sign_jwt(&claims, &Map::new())
            .map_err(|e| e.to_string())?;
        writeln!(out, "{token}").map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}
