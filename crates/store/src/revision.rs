//! The configuration revision: one number that grows with every committed change to
//! resources. A gateway node compares it with the revision its running configuration was
//! built from. PostgreSQL also announces each new revision (`NOTIFY portico_config`) so that
//! nodes reload within moments; a periodic read catches anything a lost notification missed.
//! SQLite (one machine) is read periodically only. Revocations have a revision of their own
//! ([`Counter::REVOCATIONS`]), watched the same way, so that a revocation reloads only the
//! revocations.

use crate::backend::{Backend, on_pool};
use crate::{Store, StoreError};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;

/// A number that grows with every committed change to what it counts, and the notification
/// channel that announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub(crate) read: &'static str,
    pub(crate) bump: &'static str,
    /// Reads the counter at the start of a write; on PostgreSQL it also locks its row until
    /// the commit, which orders the writers (SQLite's `BEGIN IMMEDIATE` does that already).
    pub(crate) read_for_update: &'static str,
    pub(crate) channel: &'static str,
}

impl Counter {
    /// Changes to resources (the configuration).
    pub const CONFIG: Counter = Counter {
        read: "SELECT revision FROM config_revision WHERE id = 1",
        bump: "UPDATE config_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
        read_for_update: "SELECT revision FROM config_revision WHERE id = 1 FOR UPDATE",
        channel: "portico_config",
    };
    /// Changes to revocations.
    pub const REVOCATIONS: Counter = Counter {
        read: "SELECT revision FROM revocation_revision WHERE id = 1",
        bump: "UPDATE revocation_revision SET revision = revision + 1 WHERE id = 1 \
               RETURNING revision",
        read_for_update: "SELECT revision FROM revocation_revision WHERE id = 1 FOR UPDATE",
        channel: "portico_revocations",
    };
}

/// Within a write transaction `$tx` (inside `on_pool!`): moves `$counter` and, on
/// PostgreSQL, announces its new value, delivered to listeners when (and only if) the
/// transaction commits. Evaluates to the new value.
macro_rules! bump_counter {
    ($backend:expr, $tx:expr, $counter:expr) => {{
        let counter: $crate::revision::Counter = $counter;
        let revision: i64 = sqlx::query_scalar(counter.bump)
            .fetch_one(&mut *$tx)
            .await?;
        if let $crate::backend::Backend::Postgres(_) = $backend {
            sqlx::query($crate::revision::NOTIFY)
                .bind(counter.channel)
                .bind(revision.to_string())
                .execute(&mut *$tx)
                .await?;
        }
        revision
    }};
}
pub(crate) use bump_counter;

pub(crate) const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// What a revision watcher last learnt from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionSeen {
    /// The latest revision read; `None` until the first read succeeds.
    pub revision: Option<i64>,
    /// Whether the latest read succeeded (assumed until one fails: the store was just opened).
    pub reachable: bool,
}

impl Store {
    /// The current configuration revision (0: nothing was ever written).
    pub async fn revision(&self) -> Result<i64, StoreError> {
        self.counter(Counter::CONFIG).await
    }

    /// The current value of `counter` (0: nothing was ever written).
    pub async fn counter(&self, counter: Counter) -> Result<i64, StoreError> {
        self.bounded(async {
            Ok(on_pool!(&self.backend, pool => {
                sqlx::query_scalar::<_, i64>(counter.read).fetch_one(pool).await?
            }))
        })
        .await
    }

    /// The latest configuration revision seen: [`Store::watch`] of [`Counter::CONFIG`].
    pub fn watch_revision(&self, poll_every: Duration) -> watch::Receiver<RevisionSeen> {
        self.watch(Counter::CONFIG, poll_every)
    }

    /// The latest value of `counter` seen, updated on every notification and at least every
    /// `poll_every`, and whether the store answered the latest read. Read errors are logged
    /// and retried; the last value stays. The watch ends when every receiver is gone.
    pub fn watch(&self, counter: Counter, poll_every: Duration) -> watch::Receiver<RevisionSeen> {
        let (tx, rx) = watch::channel(RevisionSeen {
            revision: None,
            reachable: true,
        });
        let store = self.clone();
        tokio::spawn(async move {
            let mut listener = None;
            let mut tick = tokio::time::interval(poll_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if tx.is_closed() {
                    return;
                }
                if listener.is_none()
                    && let Backend::Postgres(pool) = &store.backend
                {
                    // Bounded: a half-open connection must not stop the polling below.
                    listener = tokio::time::timeout(store.timeout, listen(pool, counter.channel))
                        .await
                        .ok()
                        .flatten();
                }
                let notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    received = notified => {
                        if let Err(e) = received {
                            tracing::debug!(error = %e, "revision notifications lost; polling until they are back");
                            listener = None;
                        }
                    }
                }
                match store.counter(counter).await {
                    Ok(revision) => {
                        tx.send_if_modified(|seen| {
                            let now = RevisionSeen {
                                revision: Some(revision),
                                reachable: true,
                            };
                            let changed = *seen != now;
                            *seen = now;
                            changed
                        });
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reading the configuration revision");
                        tx.send_if_modified(|seen| {
                            let was_reachable = seen.reachable;
                            seen.reachable = false;
                            was_reachable
                        });
                    }
                }
            }
        });
        rx
    }
}

async fn listen(pool: &sqlx::PgPool, channel: &str) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(channel).await.ok()?;
    Some(listener)
}
