//! The two backends, connected with timeouts, and the one macro that runs a query body on
//! whichever is in use (the SQL is written once: both accept `$1` placeholders).

use crate::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the data lives: `sqlite:PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Without passwords: neither the userinfo's nor a `password=` or `sslpassword=` query
/// parameter's (each shown as `…`).
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&postgres_url_without_passwords(url)),
        }
    }
}

/// Query parameters that hold a password (libpq's names; keys compared without case and
/// after percent-decoding, as a URL parser would read them).
const PASSWORD_PARAMETERS: [&str; 2] = ["password", "sslpassword"];

fn postgres_url_without_passwords(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &base[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":…" } else { "" };
            format!("{}{user}{hidden}{}", &base[..scheme_end + 3], &base[at..])
        }
        _ => base.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| {
                let key = parameter.split('=').next().unwrap_or("");
                let decoded = percent_decoded(key);
                if PASSWORD_PARAMETERS
                    .iter()
                    .any(|p| decoded.eq_ignore_ascii_case(p))
                {
                    format!("{key}=…")
                } else {
                    parameter.to_string()
                }
            })
            .collect();
        shown.push('?');
        shown.push_str(&parameters.join("&"));
    }
    shown
}

/// `%XX` sequences decoded (`+` as a space, as in a query); anything malformed kept as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |b: u8| (b as char).to_digit(16);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:data/portico.db".into());
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            PgConnectOptions::from_str(s).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        Err("must start with sqlite: or postgres://".into())
    }
}

/// How the store connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub url: DatabaseUrl,
    /// Connections in the pool (default 8).
    pub max_connections: u32,
    /// Waiting for a connection, and for one statement (default 5,000 ms).
    pub timeout_ms: u64,
    /// What opening does about the schema (default [`SchemaMode::Migrate`]).
    pub schema: SchemaMode,
}

/// What opening the store does about its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaMode {
    /// Applies the migrations this binary holds: control planes (the default).
    Migrate,
    /// Changes nothing: the schema must already be exactly this binary's, or opening fails
    /// with [`crate::StoreError::SchemaMismatch`]. Data-plane nodes, which must not migrate
    /// a database that a control plane of another version serves. A SQLite file is not
    /// created either.
    RequireCurrent,
}

impl StoreSettings {
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            max_connections: 8,
            timeout_ms: 5_000,
            schema: SchemaMode::Migrate,
        }
    }
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
/// Where sqlx records the migrations applied.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is compiled once per
/// backend.
macro_rules! on_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Backend {
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        match &settings.url {
            DatabaseUrl::Sqlite(path) => {
                let migrate = settings.schema == SchemaMode::Migrate;
                let mut options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(migrate)
                    .foreign_keys(true)
                    .busy_timeout(timeout);
                // WAL mode is kept in the file: set by whoever creates and migrates it, and
                // not written by a node that may not change the database.
                if migrate {
                    options = options.journal_mode(SqliteJournalMode::Wal);
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await?;
                Ok(Backend::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?
                    .options([("statement_timeout", format!("{}", settings.timeout_ms))]);
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(timeout)
                    .connect_with(options)
                    .await?;
                Ok(Backend::Postgres(pool))
            }
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Backend::Sqlite(_) => &SQLITE_MIGRATIONS,
            Backend::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        let result = on_pool!(self, pool => migrator.run(pool).await);
        result.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// Without changing anything: the schema is exactly the one this binary's migrations
    /// make (every one applied, successfully, unchanged; none unknown).
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let expected: Vec<(i64, &[u8])> = self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.as_ref()))
            .collect();
        let expected_version = expected.iter().map(|(v, _)| *v).max().unwrap_or(0);
        let table_exists = match self {
            Backend::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(MIGRATIONS_TABLE)
                .fetch_one(pool)
                .await?
                    > 0
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1)",
                )
                .bind(MIGRATIONS_TABLE)
                .fetch_one(pool)
                .await?
            }
        };
        let applied: Vec<(i64, Vec<u8>, bool)> = if table_exists {
            on_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
                )
                .fetch_all(pool)
                .await?
            })
        } else {
            Vec::new()
        };
        let found = applied
            .iter()
            .filter(|(_, _, success)| *success)
            .map(|(v, _, _)| *v)
            .max()
            .unwrap_or(0);
        if found != expected_version {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: expected_version,
            });
        }
        let same = applied.len() == expected.len()
            && applied.iter().zip(&expected).all(
                |((version, checksum, success), (want, want_checksum))| {
                    *success && version == want && checksum.as_slice() == *want_checksum
                },
            );
        if same {
            Ok(())
        } else {
            Err(StoreError::Migration(format!(
                "the store's schema is at {found} but its migrations differ from this node's \
                 (changed, missing or failed); run a control plane of this version first"
            )))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_print_without_passwords() {
        let pg: DatabaseUrl = "postgres://portico:hunter2@db.internal:5432/portico"
            .parse()
            .unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://portico:…@db.internal:5432/portico"
        );
        assert!(!format!("{pg:?}").contains("hunter2"));
        let no_userinfo_password: DatabaseUrl = "postgres://portico@db/portico".parse().unwrap();
        assert_eq!(
            no_userinfo_password.to_string(),
            "postgres://portico@db/portico"
        );
        assert_eq!(
            "sqlite:data/portico.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("data/portico.db".into())
        );
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("sqlite:".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn password_query_parameters_are_hidden_too() {
        let url: DatabaseUrl =
            "postgres://portico:pw1@db:5432/portico?sslmode=require&password=pw2\
             &SSLPassword=pw3&application_name=node"
                .parse()
                .unwrap();
        let shown = url.to_string();
        assert_eq!(
            shown,
            "postgres://portico:…@db:5432/portico?sslmode=require&password=…&SSLPassword=…\
             &application_name=node"
        );
        // An `@` in a query value does not move the userinfo; an encoded key is still a
        // password; a key without a value is shown as it is.
        for (given, hidden) in [
            ("postgres://u@db/p?password=a@b", "a@b"),
            ("postgres://u@db/p?pass%77ord=s3cr3t", "s3cr3t"),
            ("postgres://u@db/p?sslpassword=x%26y&user=u", "x%26y"),
        ] {
            let shown = DatabaseUrl::Postgres(given.into()).to_string();
            assert!(!shown.contains(hidden), "{given} shown as {shown}");
            assert!(shown.starts_with("postgres://u@db/p?"), "{shown}");
        }
        assert_eq!(
            DatabaseUrl::Postgres("postgres://u@db/p?password&x=%zz".into()).to_string(),
            "postgres://u@db/p?password=…&x=%zz"
        );
        assert_eq!(percent_decoded("a%41%2"), "aA%2");
    }
}
