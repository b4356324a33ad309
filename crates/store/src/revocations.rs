//! Revocations ([`portico_core::revocation`]): added, lifted and listed. Every change moves
//! the revocation counter ([`Counter::REVOCATIONS`]), which nodes watch; revocations that have
//! ended are deleted whenever one is added, and never listed.

use crate::backend::on_pool;
use crate::revision::{self, Counter};
use crate::{Store, StoreError};
use portico_core::revocation::{Revocation, RevokedBy};
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

/// A revocation as a caller asks for it; the store gives it an id and its creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub by: RevokedBy,
    pub value: String,
    pub issuer: Option<String>,
    pub until_secs: u64,
    pub issued_before_secs: Option<u64>,
    pub reason: Option<String>,
}

/// The revocations in force at one value of the revocation counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveRevocations {
    pub revision: i64,
    pub revocations: Vec<Revocation>,
}

/// Revocations are few (each is an operator's or the portal's decision); this bounds a
/// runaway caller, not normal use.
pub const MAX_ACTIVE: i64 = 100_000;

const INSERT: &str = "INSERT INTO revocations (target, value, issuer, until_secs, \
     issued_before_secs, reason, created_at_secs) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     RETURNING id, target, value, issuer, until_secs, issued_before_secs, reason, created_at_secs";
/// In force at `$1`, oldest first, at most `$2` ([`MAX_ACTIVE`]).
const SELECT_ACTIVE: &str = "SELECT id, target, value, issuer, until_secs, \
     issued_before_secs, reason, created_at_secs FROM revocations WHERE until_secs > $1 \
     ORDER BY id LIMIT $2";
const COUNT_ACTIVE: &str = "SELECT COUNT(*) FROM revocations WHERE until_secs > $1";
const DELETE_ENDED: &str = "DELETE FROM revocations WHERE until_secs <= $1";
const DELETE_ONE: &str = "DELETE FROM revocations WHERE id = $1";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds as the database's signed integer (far beyond any real date clamps).
fn db_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn read_revocation<R: Row>(row: &R) -> Result<Revocation, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let target: String = row.try_get("target")?;
    let by = RevokedBy::parse(&target)
        .ok_or_else(|| StoreError::Invalid(format!("a stored revocation of kind {target:?}")))?;
    let secs = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Revocation {
        id: row.try_get("id")?,
        by,
        value: row.try_get("value")?,
        issuer: row.try_get("issuer")?,
        until_secs: secs(row.try_get("until_secs")?),
        issued_before_secs: row
            .try_get::<Option<i64>, _>("issued_before_secs")?
            .map(secs),
        reason: row.try_get("reason")?,
        created_at_secs: secs(row.try_get("created_at_secs")?),
    })
}

impl Store {
    /// Records `new`, and deletes the revocations that have ended; returns it as stored.
    pub async fn revoke(&self, new: NewRevocation) -> Result<Revocation, StoreError> {
        let now = now_secs();
        Revocation::check_request(
            &new.value,
            new.issuer.as_deref(),
            new.reason.as_deref(),
            new.until_secs,
            now,
        )
        .map_err(StoreError::Invalid)?;
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let mut tx = pool.begin_with(self.backend.begin_write()).await?;
                sqlx::query_scalar::<_, i64>(self.backend.take_counter(Counter::REVOCATIONS))
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(DELETE_ENDED).bind(db_secs(now)).execute(&mut *tx).await?;
                let active: i64 = sqlx::query_scalar(COUNT_ACTIVE)
                    .bind(db_secs(now))
                    .fetch_one(&mut *tx)
                    .await?;
                if active >= MAX_ACTIVE {
                    return Err(StoreError::Invalid(format!(
                        "{MAX_ACTIVE} revocations are in force already; lift some, or revoke \
                         at the identity provider"
                    )));
                }
                let row = sqlx::query(INSERT)
                    .bind(new.by.as_str())
                    .bind(&new.value)
                    .bind(&new.issuer)
                    .bind(db_secs(new.until_secs))
                    .bind(new.issued_before_secs.map(db_secs))
                    .bind(&new.reason)
                    .bind(db_secs(now))
                    .fetch_one(&mut *tx)
                    .await?;
                let stored = read_revocation(&row)?;
                revision::bump_counter!(&self.backend, tx, Counter::REVOCATIONS);
                tx.commit().await?;
                Ok(stored)
            })
        })
        .await
    }

    /// Lifts the revocation `id`; false when there is none by that id.
    pub async fn lift_revocation(&self, id: i64) -> Result<bool, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let mut tx = pool.begin_with(self.backend.begin_write()).await?;
                sqlx::query_scalar::<_, i64>(self.backend.take_counter(Counter::REVOCATIONS))
                    .fetch_one(&mut *tx)
                    .await?;
                let deleted = sqlx::query(DELETE_ONE).bind(id).execute(&mut *tx).await?;
                if deleted.rows_affected() == 0 {
                    return Ok(false);
                }
                revision::bump_counter!(&self.backend, tx, Counter::REVOCATIONS);
                tx.commit().await?;
                Ok(true)
            })
        })
        .await
    }

    /// The revocations in force at `now_secs`, oldest first, and the counter they were read at
    /// (in one transaction, so a node that loads them and remembers the counter misses
    /// nothing).
    pub async fn active_revocations(&self, now_secs: u64) -> Result<ActiveRevocations, StoreError> {
        self.bounded(async {
            on_pool!(&self.backend, pool => {
                let mut tx = pool.begin_with(self.backend.begin_snapshot()).await?;
                let revision: i64 = sqlx::query_scalar(Counter::REVOCATIONS.read)
                    .fetch_one(&mut *tx)
                    .await?;
                let rows = sqlx::query(SELECT_ACTIVE)
                    .bind(db_secs(now_secs))
                    .bind(MAX_ACTIVE)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let revocations = rows.iter().map(read_revocation).collect::<Result<_, _>>()?;
                Ok(ActiveRevocations { revision, revocations })
            })
        })
        .await
    }
}
