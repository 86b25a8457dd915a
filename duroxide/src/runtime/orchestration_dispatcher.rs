//! The orchestration dispatcher: the loop that takes an instance locked for a turn (from
//! [`ReadyTurns`] or a fetch from the store) and runs its turn.
//!
//! Running the turn itself lives in `turn`; what fails an instance without a turn lives in
//! `failure`.

use super::Inner;
use super::backlog::Backlog;
use super::backoff::ErrorBackoff;
use super::cache::cached_position;
use super::lock_renewal::WaitingLock;
use super::shutdown::Shutdown;
use super::turn::run_turn;
use crate::provider::{Notifiers, OrchestrationItem};
use std::sync::Arc;
use std::time::Instant;

/// An instance locked for a turn on this node that no dispatcher has started yet.
pub(super) struct ReadyTurn {
    pub(super) item: OrchestrationItem,
    /// When the lock was taken (it is renewed before the turn runs if it is getting old).
    pub(super) locked_at: Instant,
}

/// Instances that completing activities (or a fetch of several) locked, waiting for a
/// dispatcher of this node (which takes them before fetching from the store). At most
/// `orchestration_concurrency` wait at once; on shutdown the unstarted ones are released.
pub(super) type ReadyTurns = Backlog<ReadyTurn>;

impl Backlog<ReadyTurn> {
    /// How many more instances may be locked for this node (0 once shutting down).
    pub(super) fn room(&self, capacity: usize) -> usize {
        let s = self.lock();
        if s.closed { 0 } else { capacity.saturating_sub(s.queue.len()) }
    }

    /// Queues instances locked just now.
    pub(super) fn push_locked(&self, items: Vec<OrchestrationItem>) {
        let locked_at = Instant::now();
        self.push(items.into_iter().map(|item| ReadyTurn { item, locked_at }).collect());
    }
}

pub(super) async fn orchestration_loop(inner: Arc<Inner>, mut shutdown: Shutdown) {
    let fallback = Arc::new(Notifiers::default());
    let notifiers = inner.notifiers.clone().unwrap_or(fallback);
    let mut error_backoff = ErrorBackoff::default();
    while !shutdown.is_shutdown() {
        // Wake-ups are registered before looking for work, so one sent in between is not
        // missed, and given up before a turn runs: stores and completions wake one
        // dispatcher each (`notify_one`), and a dropped waiter hands a wake-up it was
        // given to the next one, so a wake-up that comes during the turn goes to an idle
        // dispatcher instead of waiting for this turn to end.
        let mut notified = Box::pin(notifiers.orchestrator.notified());
        notified.as_mut().enable();
        let mut readied = Box::pin(inner.ready.notified());
        readied.as_mut().enable();
        // An instance a completing activity already locked for this node first.
        if let Some(ready) = inner.ready.pop() {
            drop((notified, readied));
            if let Some(item) = ready.still_locked(&inner).await {
                run_turn(&inner, item).await;
            }
            continue;
        }
        // One fetch for this dispatcher and, where several instances are ready, for the
        // idle ones too (the extra items wait in `ReadyTurns`).
        let known = |instance: &str| cached_position(&inner, instance);
        let max = 1 + inner.ready.room(inner.options.orchestration_concurrency.max(1) - 1);
        let fetched = inner
            .store
            .fetch_orchestration_items_cached(
                inner.options.orchestration_lock_timeout,
                &inner.filter,
                &known,
                max,
            )
            .await
            .map(|mut items| {
                let first = (!items.is_empty()).then(|| items.remove(0));
                inner.ready.push_locked(items);
                first
            });
        match fetched {
            Ok(Some(item)) => {
                drop((notified, readied));
                error_backoff.reset();
                run_turn(&inner, item).await;
            }
            Ok(None) => {
                error_backoff.reset();
                let go_on = tokio::select! {
                    _ = readied.as_mut() => true,
                    go_on = shutdown.idle(notified.as_mut(), inner.options.dispatcher_poll_interval) => go_on,
                };
                if !go_on {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching orchestration work failed; retrying");
                if !error_backoff.wait(notified.as_mut(), &mut shutdown).await {
                    break;
                }
            }
        }
    }
}
