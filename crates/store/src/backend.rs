//! The two backends, connected with timeouts, and the one macro that runs a query body on
//! whichever is in use (the SQL is written once: both accept `$1` placeholders).

use crate::StoreError;
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

/// Without the password.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    let userinfo = &url[scheme_end + 3..at];
                    let user = userinfo.split(':').next().unwrap_or("");
                    let redacted = if userinfo.contains(':') { ":…" } else { "" };
                    write!(
                        f,
                        "{}{user}{redacted}{}",
                        &url[..scheme_end + 3],
                        &url[at..]
                    )
                }
                _ => f.write_str(url),
            },
        }
    }
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
}

impl StoreSettings {
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            max_connections: 8,
            timeout_ms: 5_000,
        }
    }
}

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
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(timeout);
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

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))
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
        assert_eq!(
            "sqlite:data/portico.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("data/portico.db".into())
        );
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("sqlite:".parse::<DatabaseUrl>().is_err());
    }
}
