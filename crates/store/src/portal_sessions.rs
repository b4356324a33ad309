//! Signed-in sessions of the portal's pages. The cookie is a random token the store knows only
//! by its SHA-256 (the caller hashes); a session ends at its expiry, at sign-out, or with its
//! developer.

use crate::backend::on_pool;
use crate::{Store, StoreError};
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

/// A signed-in session: a developer's, or an admin's (`developer_id` `None`, `admin` true).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub developer_id: Option<String>,
    pub admin: bool,
    /// What every form of this session carries.
    pub csrf: String,
    /// Product names, in the order they were added.
    pub cart: Vec<String>,
    pub expires_at_secs: u64,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

const SESSION: &str = "SELECT developer_id, admin, csrf, cart, expires_at_secs FROM portal_sessions \
     WHERE token_hash = $1 AND expires_at_secs > $2";

/// Sessions a developer has at once, at most.
pub const MAX_SESSIONS_PER_DEVELOPER: i64 = 10;

/// `$1` developer, `$2` how many of their newest sessions stay.
const TRIM_SESSIONS: &str = "DELETE FROM portal_sessions WHERE developer_id = $1 AND token_hash NOT IN \
     (SELECT token_hash FROM portal_sessions WHERE developer_id = $1 ORDER BY created_at_secs DESC, token_hash LIMIT $2)";

impl Store {
    /// Starts a session for `ttl_secs`; sessions that have expired are removed on the way, and
    /// a developer keeps at most [`MAX_SESSIONS_PER_DEVELOPER`] (the oldest end).
    pub async fn create_session(
        &self,
        token_hash: &str,
        session: &WebSession,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        let now = now_secs();
        let expires = now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        let cart = serde_json::to_string(&session.cart).unwrap_or_else(|_| "[]".into());
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_sessions WHERE expires_at_secs <= $1")
                    .bind(now)
                    .execute(pool)
                    .await?;
                if let Some(developer) = session.developer_id.as_deref() {
                    sqlx::query(TRIM_SESSIONS)
                        .bind(developer)
                        .bind(MAX_SESSIONS_PER_DEVELOPER - 1)
                        .execute(pool)
                        .await?;
                }
                sqlx::query("INSERT INTO portal_sessions (token_hash, developer_id, admin, csrf, cart, created_at_secs, expires_at_secs) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(token_hash)
                    .bind(session.developer_id.as_deref())
                    .bind(i64::from(session.admin))
                    .bind(&session.csrf)
                    .bind(&cart)
                    .bind(now)
                    .bind(expires)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// The session a cookie (by its hash) names, unless it has expired.
    pub async fn session(&self, token_hash: &str) -> Result<Option<WebSession>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let row = sqlx::query(SESSION).bind(token_hash).bind(now_secs()).fetch_optional(pool).await?;
                match row {
                    None => Ok(None),
                    Some(row) => {
                        let cart: String = row.try_get("cart")?;
                        let admin: i64 = row.try_get("admin")?;
                        let expires: i64 = row.try_get("expires_at_secs")?;
                        Ok(Some(WebSession {
                            developer_id: row.try_get("developer_id")?,
                            admin: admin != 0,
                            csrf: row.try_get("csrf")?,
                            cart: serde_json::from_str(&cart).map_err(|e| {
                                StoreError::Invalid(format!("a session's stored cart: {e}"))
                            })?,
                            expires_at_secs: u64::try_from(expires).unwrap_or(0),
                        }))
                    }
                }
            })
        })
        .await
    }

    pub async fn set_cart(&self, token_hash: &str, cart: &[String]) -> Result<(), StoreError> {
        let cart = serde_json::to_string(cart).unwrap_or_else(|_| "[]".into());
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("UPDATE portal_sessions SET cart = $1 WHERE token_hash = $2")
                    .bind(&cart)
                    .bind(token_hash)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends every admin session (at start: the admin token may have changed).
    pub async fn end_admin_sessions(&self) -> Result<(), StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_sessions WHERE admin <> 0")
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends a session (sign-out).
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}
