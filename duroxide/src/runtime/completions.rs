//! Activity completions: results queued by the workers and committed in the background,
//! several per store call, locking the instances they go to for this node's next turns.
//!
//! Producing the result lives in `activity_run`; running the turns it wakes lives in
//! `orchestration_dispatcher`.

use super::Inner;
use super::cache::cached_position;
use crate::provider::{ActivityWorkItem, LockAfterComplete, OrchestratorMessage, OutboundMessage};
use std::sync::Arc;

/// Queues an activity's result for commit, starting a flush task if none runs.
pub(super) async fn enqueue_completion(
    inner: &Arc<Inner>,
    item: &ActivityWorkItem,
    message: OrchestratorMessage,
) {
    let completion = OutboundMessage { instance: item.instance.clone(), message, visible_at_ms: None };
    // The completion commits in the background so this worker slot can run the next
    // activity while the store writes; completions that queue up meanwhile share one
    // commit. The work item stays locked until its commit lands (a crash before it means the
    // activity runs again). Bounded by `completion_slots`, awaited on shutdown.
    let Ok(permit) = inner.completion_slots.clone().acquire_owned().await else { return };
    let start_flush = {
        let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.items.push(PendingCompletion {
            token: item.lock_token.clone(),
            completion,
            name: item.name.clone(),
            _permit: permit,
        });
        !std::mem::replace(&mut pending.flushing, true)
    };
    if start_flush {
        let me = inner.clone();
        inner.completions.lock().unwrap_or_else(|e| e.into_inner()).spawn(flush_completions(me));
    }
}

/// An activity result waiting to be committed.
struct PendingCompletion {
    token: String,
    completion: OutboundMessage,
    name: String,
    /// Released when the completion is committed (bounds the backlog).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[derive(Default)]
pub(super) struct PendingCompletions {
    items: Vec<PendingCompletion>,
    /// A flush task is running; it takes whatever queues up until the queue is empty.
    flushing: bool,
}

/// Commits queued activity completions until the queue is empty. Where `ReadyTurns` has
/// room, the same transaction locks the instances the completions go to, and a dispatcher
/// of this node runs their next turn without fetching it from the store.
async fn flush_completions(inner: Arc<Inner>) {
    loop {
        let batch = {
            let mut p = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.items.is_empty() {
                p.flushing = false;
                return;
            }
            std::mem::take(&mut p.items)
        };
        let mut targets: Vec<&str> = batch.iter().map(|c| c.completion.instance.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        // Lock at most as many instances as may wait for this node's dispatchers.
        let free = inner.ready.room(inner.options.orchestration_concurrency.max(1)).min(targets.len());
        let request = batch.iter().map(|c| (c.token.clone(), c.completion.clone())).collect();
        let (results, items) = if free == 0 {
            (inner.store.complete_work_items(request).await, Vec::new())
        } else {
            let known = |instance: &str| cached_position(&inner, instance);
            let lock = LockAfterComplete {
                max_instances: free,
                lock_timeout: inner.options.orchestration_lock_timeout,
                filter: &inner.filter,
                cached: &known,
            };
            inner.store.complete_work_items_and_lock(request, lock).await
        };
        for (c, r) in batch.iter().zip(results) {
            if let Err(e) = r {
                tracing::warn!(activity = %c.name, instance = %c.completion.instance, error = %e, "could not complete activity; it will be retried");
            }
        }
        drop(batch);
        inner.ready.push_locked(items);
    }
}
