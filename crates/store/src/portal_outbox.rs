//! The portal's outbox: every email is written here before it is sent, and stays, with when it
//! was sent or why it could not be.

use crate::backend::on_pool;
use crate::portal::new_id;
use crate::{Store, StoreError};
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: String,
    pub event: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at_secs: u64,
    pub sent_at_secs: Option<u64>,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub next_attempt_at_secs: u64,
}

/// How long a sent email stays in the outbox: 30 days.
pub const KEEP_SENT_SECS: i64 = 30 * 24 * 3600;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const RECENT: &str = "SELECT id, event, recipient, subject, body, created_at_secs, sent_at_secs, attempts, last_error, next_attempt_at_secs \
     FROM portal_outbox ORDER BY created_at_secs DESC, id DESC LIMIT $1";
const DUE: &str = "SELECT id, event, recipient, subject, body, created_at_secs, sent_at_secs, attempts, last_error, next_attempt_at_secs \
     FROM portal_outbox WHERE sent_at_secs IS NULL AND recipient <> '' AND next_attempt_at_secs <= $1 AND attempts < $2 \
     ORDER BY next_attempt_at_secs, id LIMIT $3";

fn read_mail<R: Row>(row: &R) -> Result<OutboxMail, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(OutboxMail {
        id: row.try_get("id")?,
        event: row.try_get("event")?,
        recipient: row.try_get("recipient")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        created_at_secs: secs(row.try_get("created_at_secs")?),
        sent_at_secs: row.try_get::<Option<i64>, _>("sent_at_secs")?.map(secs),
        attempts: secs(row.try_get("attempts")?),
        last_error: row.try_get("last_error")?,
        next_attempt_at_secs: secs(row.try_get("next_attempt_at_secs")?),
    })
}

impl Store {
    /// Writes an email to the outbox, due now (one without a recipient is kept, never sent);
    /// emails sent more than [`KEEP_SENT_SECS`] ago are removed.
    pub async fn queue_mail(
        &self,
        event: &str,
        recipient: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let now = now_secs();
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                sqlx::query("DELETE FROM portal_outbox WHERE sent_at_secs < $1")
                    .bind(now.saturating_sub(KEEP_SENT_SECS))
                    .execute(pool)
                    .await?;
                sqlx::query("INSERT INTO portal_outbox (id, event, recipient, subject, body, created_at_secs, attempts, next_attempt_at_secs) VALUES ($1, $2, $3, $4, $5, $6, 0, $6)")
                    .bind(&id)
                    .bind(event)
                    .bind(recipient)
                    .bind(subject)
                    .bind(body)
                    .bind(now)
                    .execute(pool)
                    .await?;
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    /// The newest `limit` emails, sent or not.
    pub async fn recent_mails(&self, limit: u32) -> Result<Vec<OutboxMail>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(RECENT).bind(i64::from(limit)).fetch_all(pool).await?;
                rows.iter().map(read_mail).collect()
            })
        })
        .await
    }

    /// Unsent emails due now, tried fewer than `max_attempts` times.
    pub async fn due_mails(
        &self,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let rows = sqlx::query(DUE)
                    .bind(now_secs())
                    .bind(i64::from(max_attempts))
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(read_mail).collect()
            })
        })
        .await
    }

    /// Takes a due email for one attempt, pushing its next attempt to `retry_in_secs` from
    /// now: false when another sender took it first (compare-and-set on the due time).
    pub async fn take_mail(
        &self,
        mail: &OutboxMail,
        retry_in_secs: u64,
    ) -> Result<bool, StoreError> {
        let next = now_secs().saturating_add(i64::try_from(retry_in_secs).unwrap_or(i64::MAX));
        let seen = i64::try_from(mail.next_attempt_at_secs).unwrap_or(i64::MAX);
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let done = sqlx::query("UPDATE portal_outbox SET attempts = attempts + 1, next_attempt_at_secs = $1 WHERE id = $2 AND next_attempt_at_secs = $3 AND sent_at_secs IS NULL")
                    .bind(next)
                    .bind(&mail.id)
                    .bind(seen)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Records how an attempt ended: sent, or why not.
    pub async fn mail_attempted(&self, id: &str, error: Option<&str>) -> Result<(), StoreError> {
        let now = now_secs();
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                match error {
                    None => sqlx::query("UPDATE portal_outbox SET sent_at_secs = $1, last_error = NULL WHERE id = $2")
                        .bind(now)
                        .bind(id)
                        .execute(pool)
                        .await?,
                    Some(error) => sqlx::query("UPDATE portal_outbox SET last_error = $1 WHERE id = $2")
                        .bind(error)
                        .bind(id)
                        .execute(pool)
                        .await?,
                };
                Ok(())
            })
        })
        .await
    }
}
