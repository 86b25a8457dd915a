//! Lock renewal: keeping the locks this node holds on items it has not finished, and the
//! one check an item that waited for a taker makes before it runs.
//!
//! An instance waiting for its turn renews its lock only when it is taken (turns are short);
//! an activity renews from the moment it was locked until it finishes (activities may run
//! for long). How items are fetched and run is not here.

use super::Inner;
use super::orchestration_dispatcher::ReadyTurn;
use crate::context::tokio_util_lite::CancellationToken;
use crate::provider::{ActivityWorkItem, OrchestrationItem, Provider, ProviderError};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// An item this node locked that waits for one of its dispatchers or workers. It runs only
/// while its lock holds: the taker confirms the lock first, and an item whose lock was lost
/// (another node has it now) or whose work was cancelled is dropped without running.
pub(super) trait WaitingLock {
    /// What runs once the lock is confirmed.
    type Run;

    /// The item to run, or `None` (logged) if its lock no longer holds.
    async fn still_locked(self, inner: &Inner) -> Option<Self::Run>;
}

/// An instance's lock is not renewed while it waits (turns are short): past half the lock
/// timeout it is renewed now, and a failed renewal means the lock was lost.
impl WaitingLock for ReadyTurn {
    type Run = OrchestrationItem;

    async fn still_locked(self, inner: &Inner) -> Option<OrchestrationItem> {
        let ReadyTurn { item, locked_at } = self;
        let timeout = inner.options.orchestration_lock_timeout;
        if locked_at.elapsed() < timeout / 2 {
            return Some(item);
        }
        match inner.store.renew_orchestration_lock(&item.lock_token, timeout).await {
            Ok(()) => Some(item),
            Err(e) => {
                tracing::debug!(instance = %item.instance, error = %e, "a locked instance lost its lock before its turn ran");
                None
            }
        }
    }
}

/// An activity's lock is renewed all the while it waits: a renewal that ended means the
/// lock was lost or the activity cancelled.
impl WaitingLock for HeldActivity {
    type Run = HeldActivity;

    async fn still_locked(self, _inner: &Inner) -> Option<HeldActivity> {
        if self.renewal.0.is_finished() {
            tracing::debug!(activity = %self.item.name, instance = %self.item.instance, "a held activity lost its lock or was cancelled before it started");
            return None;
        }
        Some(self)
    }
}

/// An activity locked for this node and not finished yet (fetched, fetched ahead, or handed
/// over by a turn). Its lock is renewed from the moment it was taken until it finishes or is
/// released, however long it waits for a worker and however long it runs: a lock that
/// lapsed while an item waited would let another worker take it, and two workers could then
/// keep taking each other's items until the attempts run out.
pub(super) struct HeldActivity {
    pub(super) item: ActivityWorkItem,
    /// Signalled when the renewal learns that the activity was cancelled or its lock lost.
    pub(super) cancel: CancellationToken,
    /// The renewal task; it ends only when the lock is lost or the activity cancelled.
    renewal: AbortOnDrop<Option<ProviderError>>,
    /// The span of the turn that handed this activity over, the parent of the activity's
    /// span (`None` for an activity fetched from the store). Held, so the turn's span stays
    /// open until the activity's span exists.
    pub(super) parent: Option<tracing::Span>,
}

impl HeldActivity {
    /// Starts renewing the lock of an item this node has just locked.
    pub(super) fn hold(inner: &Inner, item: ActivityWorkItem) -> Self {
        let cancel = CancellationToken::new();
        let renewal = AbortOnDrop(tokio::spawn(renew_loop(
            inner.store.clone(),
            item.lock_token.clone(),
            inner.options.activity_lock_timeout,
            cancel.clone(),
        )));
        HeldActivity { item, cancel, renewal, parent: None }
    }

    /// Makes `turn`, the span of the turn that scheduled the activity, its span's parent.
    pub(super) fn with_parent(mut self, turn: tracing::Span) -> Self {
        self.parent = Some(turn);
        self
    }

    /// Stops renewing and gives the item back (to release its lock).
    pub(super) fn release(self) -> ActivityWorkItem {
        self.renewal.0.abort();
        self.item
    }

    /// Stops renewing; returns the error that ended the renewal before, if any.
    pub(super) async fn finish(mut self) -> Option<ProviderError> {
        self.renewal.0.abort();
        (&mut self.renewal.0).await.ok().flatten()
    }
}

/// Aborts a spawned task when dropped.
pub(super) struct AbortOnDrop<T>(pub(super) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews an activity lock until aborted. Returns the error that ended renewal (the
/// activity was cancelled or its lock lost), after signalling the activity.
async fn renew_loop(
    store: Arc<dyn Provider>,
    token: String,
    lock_timeout: Duration,
    cancel: CancellationToken,
) -> Option<ProviderError> {
    let every = (lock_timeout / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        match store.renew_work_item(&token, lock_timeout).await {
            Ok(()) => {}
            Err(e @ (ProviderError::Cancelled | ProviderError::LockLost(_))) => {
                cancel.cancel();
                return Some(e);
            }
            Err(e) => tracing::warn!(error = %e, "activity lock renewal failed; retrying"),
        }
    }
}
