//! Resources: named documents of a kind (`Api`, `Policy`, `Issuer`, …), each with a spec
//! (JSON, sealed at rest) and a version that grows by one per change. Writes name what they
//! expect to find ([`Expect`]), so two admins editing one resource cannot overwrite each
//! other unnoticed; a batch of changes ([`Store::apply`]) is one transaction, and every
//! committed change moves the configuration revision ([`crate::revision`]).

use crate::backend::{Backend, on_pool};
use crate::revision::{self, Counter};
use crate::{Store, StoreError};
use serde_json::Value;
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

/// A resource as a caller writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: String,
    pub name: String,
    pub spec: Value,
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub kind: String,
    pub name: String,
    pub spec: Value,
    pub version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The whole configuration at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub revision: i64,
    pub resources: Vec<StoredResource>,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there (create or update; `apply`).
    Any,
    /// Nothing: create only.
    Absent,
    /// Exactly this version: update or delete only what the caller has seen.
    Version(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created {
        version: i64,
    },
    Updated {
        version: i64,
    },
    /// The same spec was stored already; nothing was written.
    Unchanged {
        version: i64,
    },
}

impl PutOutcome {
    pub fn version(self) -> i64 {
        match self {
            PutOutcome::Created { version }
            | PutOutcome::Updated { version }
            | PutOutcome::Unchanged { version } => version,
        }
    }
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceChange {
    Put(Resource, Expect),
    Delete {
        kind: String,
        name: String,
        expect: Expect,
    },
}

/// What one change of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Put(PutOutcome),
    /// Deleted the resource at this version.
    Deleted {
        version: i64,
    },
}

fn check_ident(what: &str, value: &str) -> Result<(), StoreError> {
    match portico_core::resource::name_problem(value) {
        Some(reason) => Err(StoreError::Invalid(format!("{what} {reason}"))),
        None => Ok(()),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What a sealed spec is bound to.
fn seal_context(kind: &str, name: &str) -> Vec<u8> {
    let mut context = Vec::with_capacity(kind.len() + name.len() + 1);
    context.extend_from_slice(kind.as_bytes());
    context.push(0);
    context.extend_from_slice(name.as_bytes());
    context
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

const SELECT_ONE: &str = "SELECT kind, name, version, spec, created_at_ms, updated_at_ms \
     FROM resources WHERE kind = $1 AND name = $2";
const SELECT_KIND: &str = "SELECT kind, name, version, spec, created_at_ms, updated_at_ms \
     FROM resources WHERE kind = $1 ORDER BY name";
const SELECT_ALL: &str = "SELECT kind, name, version, spec, created_at_ms, updated_at_ms \
     FROM resources ORDER BY kind, name";
const INSERT: &str = "INSERT INTO resources (kind, name, version, spec, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, 1, $3, $4, $4)";
const UPDATE: &str = "UPDATE resources SET spec = $1, version = version + 1, updated_at_ms = $2 \
     WHERE kind = $3 AND name = $4 AND version = $5";
const DELETE: &str = "DELETE FROM resources WHERE kind = $1 AND name = $2 AND version = $3";

/// A row as read, before its spec is opened.
struct SealedRow {
    kind: String,
    name: String,
    version: i64,
    sealed: Vec<u8>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

fn read_row<R: Row>(row: &R) -> Result<SealedRow, sqlx::Error>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SealedRow {
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        sealed: row.try_get("spec")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

impl Store {
    fn open_row(&self, row: SealedRow) -> Result<StoredResource, StoreError> {
        let sealed_error = || StoreError::Sealed {
            kind: row.kind.clone(),
            name: row.name.clone(),
        };
        let plain = self
            .key
            .open(&seal_context(&row.kind, &row.name), &row.sealed)
            .ok_or_else(sealed_error)?;
        let spec = serde_json::from_slice(&plain).map_err(|_| sealed_error())?;
        Ok(StoredResource {
            kind: row.kind,
            name: row.name,
            spec,
            version: row.version,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        })
    }

    /// One resource, or `None`.
    pub async fn get(&self, kind: &str, name: &str) -> Result<Option<StoredResource>, StoreError> {
        self.bounded(self.get_unbounded(kind, name)).await
    }

    async fn get_unbounded(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let row = on_pool!(&self.backend, pool => {
            sqlx::query(SELECT_ONE)
                .bind(kind)
                .bind(name)
                .fetch_optional(pool)
                .await?
                .map(|r| read_row(&r))
                .transpose()?
        });
        row.map(|r| self.open_row(r)).transpose()
    }

    /// Every resource of `kind` (or of every kind), ordered by kind and name.
    pub async fn list(&self, kind: Option<&str>) -> Result<Vec<StoredResource>, StoreError> {
        self.bounded(self.list_unbounded(kind)).await
    }

    async fn list_unbounded(&self, kind: Option<&str>) -> Result<Vec<StoredResource>, StoreError> {
        let rows = on_pool!(&self.backend, pool => {
            let query = match kind {
                Some(kind) => sqlx::query(SELECT_KIND).bind(kind),
                None => sqlx::query(SELECT_ALL),
            };
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(read_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        rows.into_iter().map(|r| self.open_row(r)).collect()
    }

    /// Creates or updates one resource.
    pub async fn put(&self, resource: Resource, expect: Expect) -> Result<PutOutcome, StoreError> {
        match self
            .apply(vec![ResourceChange::Put(resource, expect)])
            .await?[..]
        {
            [ChangeOutcome::Put(outcome)] => Ok(outcome),
            _ => unreachable!("one put gives one put outcome"),
        }
    }

    /// Deletes one resource; returns the version it had.
    pub async fn delete(&self, kind: &str, name: &str, expect: Expect) -> Result<i64, StoreError> {
        let change = ResourceChange::Delete {
            kind: kind.to_string(),
            name: name.to_string(),
            expect,
        };
        match self.apply(vec![change]).await?[..] {
            [ChangeOutcome::Deleted { version }] => Ok(version),
            _ => unreachable!("one delete gives one delete outcome"),
        }
    }

    /// Applies every change in one transaction: all of them, or — on the first error —
    /// none. The configuration revision moves once if anything changed. Writers take the
    /// revision first, so they run one after another: no deadlock between batches that touch
    /// the same resources in another order, and no lost race between two creations of one
    /// name.
    pub async fn apply(
        &self,
        changes: Vec<ResourceChange>,
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        self.bounded(self.apply_unbounded(changes, None)).await
    }

    /// [`Store::apply`], only if the configuration is still at `revision` (as read by
    /// [`Store::snapshot`]): a caller that checked the whole configuration a batch leaves
    /// behind gets [`StoreError::RevisionMoved`] instead of committing over a change it did
    /// not see.
    pub async fn apply_at_revision(
        &self,
        changes: Vec<ResourceChange>,
        revision: i64,
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        self.bounded(self.apply_unbounded(changes, Some(revision)))
            .await
    }

    /// The configuration revision and every resource at it, read together.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.bounded(async {
            let (revision, rows) = on_pool!(&self.backend, pool => {
                let mut tx = pool.begin_with(self.backend.begin_snapshot()).await?;
                let revision: i64 = sqlx::query_scalar(Counter::CONFIG.read).fetch_one(&mut *tx).await?;
                let rows = sqlx::query(SELECT_ALL)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(read_row)
                    .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                (revision, rows)
            });
            let resources = rows
                .into_iter()
                .map(|r| self.open_row(r))
                .collect::<Result<_, _>>()?;
            Ok(Snapshot {
                revision,
                resources,
            })
        })
        .await
    }

    async fn apply_unbounded(
        &self,
        changes: Vec<ResourceChange>,
        at_revision: Option<i64>,
    ) -> Result<Vec<ChangeOutcome>, StoreError> {
        for change in &changes {
            let (kind, name) = match change {
                ResourceChange::Put(r, _) => (&r.kind, &r.name),
                ResourceChange::Delete { kind, name, .. } => (kind, name),
            };
            check_ident("kind", kind)?;
            check_ident("name", name)?;
        }
        let now = now_ms();
        on_pool!(&self.backend, pool => {
            let mut tx = pool.begin_with(self.backend.begin_write()).await?;
            let revision: i64 = sqlx::query_scalar(self.backend.take_counter(Counter::CONFIG))
                .fetch_one(&mut *tx)
                .await?;
            if let Some(expected) = at_revision
                && expected != revision
            {
                return Err(StoreError::RevisionMoved { expected, found: revision });
            }
            let mut outcomes = Vec::with_capacity(changes.len());
            for change in changes {
                let (kind, name) = match &change {
                    ResourceChange::Put(r, _) => (r.kind.clone(), r.name.clone()),
                    ResourceChange::Delete { kind, name, .. } => (kind.clone(), name.clone()),
                };
                let current = sqlx::query(SELECT_ONE)
                    .bind(&kind)
                    .bind(&name)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| read_row(&r))
                    .transpose()?;
                let found = current.as_ref().map(|r| r.version);
                let conflict = |expected: i64, found: i64| StoreError::Conflict {
                    kind: kind.clone(),
                    name: name.clone(),
                    expected,
                    found,
                };
                let outcome = match change {
                    ResourceChange::Put(resource, expect) => {
                        match (expect, found) {
                            (Expect::Absent, Some(found)) => {
                                return Err(StoreError::Exists { kind, name, found });
                            }
                            (Expect::Version(v), Some(found)) if v != found => {
                                return Err(conflict(v, found));
                            }
                            (Expect::Version(v), None) => return Err(conflict(v, 0)),
                            _ => {}
                        }
                        let context = seal_context(&kind, &name);
                        let plain = serde_json::to_vec(&resource.spec)
                            .map_err(|e| StoreError::Invalid(e.to_string()))?;
                        match current {
                            Some(row) => {
                                let stored = self.open_row(row)?;
                                if stored.spec == resource.spec {
                                    ChangeOutcome::Put(PutOutcome::Unchanged { version: stored.version })
                                } else {
                                    let done = sqlx::query(UPDATE)
                                        .bind(self.key.seal(&context, &plain))
                                        .bind(now)
                                        .bind(&kind)
                                        .bind(&name)
                                        .bind(stored.version)
                                        .execute(&mut *tx)
                                        .await?;
                                    if done.rows_affected() != 1 {
                                        return Err(conflict(stored.version, stored.version + 1));
                                    }
                                    ChangeOutcome::Put(PutOutcome::Updated { version: stored.version + 1 })
                                }
                            }
                            None => {
                                let inserted = sqlx::query(INSERT)
                                    .bind(&kind)
                                    .bind(&name)
                                    .bind(self.key.seal(&context, &plain))
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await;
                                match inserted {
                                    Ok(_) => ChangeOutcome::Put(PutOutcome::Created { version: 1 }),
                                    // Created by someone else since the read.
                                    Err(e) if is_unique_violation(&e) => {
                                        return Err(StoreError::Exists { kind, name, found: 1 });
                                    }
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        }
                    }
                    ResourceChange::Delete { expect, .. } => {
                        let Some(found) = found else {
                            return Err(StoreError::NotFound { kind, name });
                        };
                        match expect {
                            Expect::Version(v) if v != found => return Err(conflict(v, found)),
                            Expect::Absent => {
                                return Err(StoreError::Exists { kind, name, found });
                            }
                            _ => {}
                        }
                        let done = sqlx::query(DELETE)
                            .bind(&kind)
                            .bind(&name)
                            .bind(found)
                            .execute(&mut *tx)
                            .await?;
                        if done.rows_affected() != 1 {
                            return Err(conflict(found, found + 1));
                        }
                        ChangeOutcome::Deleted { version: found }
                    }
                };
                outcomes.push(outcome);
            }
            let changed = outcomes
                .iter()
                .any(|o| !matches!(o, ChangeOutcome::Put(PutOutcome::Unchanged { .. })));
            if changed {
                revision::bump_counter!(&self.backend, tx, Counter::CONFIG);
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }
}

impl Backend {
    /// SQLite takes the write lock at the start, so that two writers never deadlock upgrading
    /// a read lock (`SQLITE_BUSY`); PostgreSQL's row versions need nothing more than `BEGIN`.
    pub(crate) fn begin_write(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
            Backend::Postgres(_) => "BEGIN",
        }
    }

    /// Reads `counter` at the start of a write; on PostgreSQL it also locks its row until the
    /// commit, which orders the writers (SQLite's `BEGIN IMMEDIATE` does that already).
    pub(crate) fn take_counter(&self, counter: Counter) -> &'static str {
        match self {
            Backend::Sqlite(_) => counter.read,
            Backend::Postgres(_) => counter.read_for_update,
        }
    }

    /// A read transaction that sees one committed state throughout.
    pub(crate) fn begin_snapshot(&self) -> &'static str {
        match self {
            // A deferred transaction reads one snapshot (WAL) once its first read starts.
            Backend::Sqlite(_) => "BEGIN",
            Backend::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}
