//! A store node's revocations: read at start (else the data folder's last good copy, so that a
//! restart while the store is down forgets none), then read again whenever the store's
//! revocation revision moves, and at least every minute, so that ended ones go.

use super::last_good::LastGood;
use portico_gateway::Gateway;
use portico_store::{Counter, Store};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often revocations are read even without a change: ended ones leave the node's set.
const REFRESH_EVERY: Duration = Duration::from_secs(60);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the revocations in force into `gateway` (and the data folder, when they changed);
/// false when the store did not answer.
pub async fn load(store: &Store, gateway: &Gateway, last_good: &LastGood) -> bool {
    let read = async {
        let active = store.active_revocations(now_secs()).await?;
        last_good.save_revocations(active.revision, &active.revocations);
        Ok::<_, portico_store::StoreError>(active.revocations)
    };
    match gateway.load_revocations(read).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "reading the revocations from the store");
            false
        }
    }
}

/// Before serving: the store's revocations, else the last good ones.
pub async fn load_at_start(store: Option<&Store>, gateway: &Gateway, last_good: &LastGood) {
    if let Some(store) = store
        && load(store, gateway, last_good).await
    {
        return;
    }
    match last_good.load_revocations() {
        Some((revision, revocations)) => {
            tracing::warn!(
                revision,
                count = revocations.len(),
                "enforcing the last good revocations until the store is back"
            );
            gateway.set_revocations(revocations);
        }
        None => tracing::warn!("no revocations known: the store is unavailable"),
    }
}

/// Follows the store's revocations until the watch ends.
pub async fn follow(store: Store, gateway: Arc<Gateway>, last_good: Arc<LastGood>, poll: Duration) {
    let mut revisions = store.watch(Counter::REVOCATIONS, poll);
    // The first tick a period from now: the store was read just before this starts.
    let mut refresh =
        tokio::time::interval_at(tokio::time::Instant::now() + REFRESH_EVERY, REFRESH_EVERY);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded_at = None;
    loop {
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { return },
            _ = refresh.tick() => loaded_at = None,
        }
        let seen = *revisions.borrow_and_update();
        if !seen.reachable || (seen.revision.is_some() && seen.revision == loaded_at) {
            continue;
        }
        if load(&store, &gateway, &last_good).await {
            loaded_at = seen.revision;
        }
    }
}
