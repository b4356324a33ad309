//! Requests per OAuth client per minute, added up from every gateway node's counts.

use crate::backend::on_pool;
use crate::{Store, StoreError};
use sqlx::Row;

/// One client's requests in one minute (minutes since the epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageMinute {
    pub minute: u64,
    pub ok: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Minutes of usage kept: older ones are removed as new ones are added.
pub const KEEP_MINUTES: u64 = 30 * 24 * 60;

const ADD: &str = "INSERT INTO usage_minutes (issuer, client_id, minute, ok, rejected, failed) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (issuer, client_id, minute) DO UPDATE SET \
     ok = usage_minutes.ok + excluded.ok, rejected = usage_minutes.rejected + excluded.rejected, \
     failed = usage_minutes.failed + excluded.failed";
const SINCE: &str = "SELECT minute, ok, rejected, failed FROM usage_minutes \
     WHERE issuer = $1 AND client_id = $2 AND minute >= $3 ORDER BY minute";

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Adds counts, `(issuer, client_id, counts)` each, in one transaction; removes what is
    /// older than [`KEEP_MINUTES`].
    pub async fn add_usage(
        &self,
        rows: &[(String, String, UsageMinute)],
    ) -> Result<(), StoreError> {
        let Some(newest) = rows.iter().map(|(_, _, u)| u.minute).max() else {
            return Ok(());
        };
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let mut tx = pool.begin().await?;
                for (issuer, client_id, u) in rows {
                    sqlx::query(ADD)
                        .bind(issuer)
                        .bind(client_id)
                        .bind(int(u.minute))
                        .bind(int(u.ok))
                        .bind(int(u.rejected))
                        .bind(int(u.failed))
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("DELETE FROM usage_minutes WHERE minute < $1")
                    .bind(int(newest.saturating_sub(KEEP_MINUTES)))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            })
        })
        .await
    }

    /// One client's minutes from `since_minute` on, oldest first (minutes without requests
    /// are absent).
    pub async fn usage_since(
        &self,
        issuer: &str,
        client_id: &str,
        since_minute: u64,
    ) -> Result<Vec<UsageMinute>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(SINCE)
                    .bind(issuer)
                    .bind(client_id)
                    .bind(int(since_minute))
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(UsageMinute {
                            minute: uint(row.try_get("minute")?),
                            ok: uint(row.try_get("ok")?),
                            rejected: uint(row.try_get("rejected")?),
                            failed: uint(row.try_get("failed")?),
                        })
                    })
                    .collect()
            })
        })
        .await
    }
}
