//! The configuration revision: one number that grows with every committed change to
//! resources. A gateway node compares it with the revision its running configuration was
//! built from. PostgreSQL also announces each new revision (`NOTIFY portico_config`) so that
//! nodes reload within moments; a periodic read catches anything a lost notification missed.
//! SQLite (one machine) is read periodically only.

use crate::backend::{Backend, on_pool};
use crate::{Store, StoreError};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::watch;

pub(crate) const BUMP: &str =
    "UPDATE config_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision";
pub(crate) const NOTIFY: &str = "SELECT pg_notify($1, $2)";
pub(crate) const CHANNEL: &str = "portico_config";
pub(crate) const READ: &str = "SELECT revision FROM config_revision WHERE id = 1";

/// What a revision watcher last learnt from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionSeen {
    /// The latest revision read; `None` until the first read succeeds.
    pub revision: Option<i64>,
    /// Whether the latest read succeeded (assumed until one fails: the store was just opened).
    pub reachable: bool,
}

impl Store {
    /// The current revision (0: nothing was ever written).
    pub async fn revision(&self) -> Result<i64, StoreError> {
        self.bounded(async {
            Ok(on_pool!(&self.backend, pool => {
                sqlx::query_scalar::<_, i64>(READ).fetch_one(pool).await?
            }))
        })
        .await
    }

    /// The latest revision seen, updated on every notification and at least every
    /// `poll_every`, and whether the store answered the latest read. Read errors are logged
    /// and retried; the last revision stays. The watch ends when every receiver is gone.
    pub fn watch_revision(&self, poll_every: Duration) -> watch::Receiver<RevisionSeen> {
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
                    listener = tokio::time::timeout(store.timeout, listen(pool))
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
                match store.revision().await {
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

async fn listen(pool: &sqlx::PgPool) -> Option<PgListener> {
    let mut listener = PgListener::connect_with(pool).await.ok()?;
    listener.listen(CHANNEL).await.ok()?;
    Some(listener)
}
