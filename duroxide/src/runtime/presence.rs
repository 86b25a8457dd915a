//! This node's presence record ([`WorkerRecord`]): written when the node starts, refreshed
//! every `RuntimeOptions::worker_heartbeat_interval`, removed on a graceful shutdown. A
//! node that crashes leaves its record behind; readers see it as gone three heartbeats
//! later, and a writer deletes it an hour after that.
//!
//! What the records are read for (live workers, which tags nobody serves) lives in the
//! client; the store only keeps them.

use super::Inner;
use super::shutdown::Shutdown;
use crate::provider::WorkerRecord;
use std::sync::Arc;
use std::time::Duration;

/// The shortest heartbeat this node uses, whatever the options say: a heartbeat is one
/// write, and a zero interval would be a busy loop.
const MIN_HEARTBEAT: Duration = Duration::from_millis(10);

/// The heartbeat interval this node uses.
fn heartbeat(inner: &Inner) -> Duration {
    inner.options.worker_heartbeat_interval.max(MIN_HEARTBEAT)
}

/// This node's record as of now.
fn record(inner: &Inner, started_at_ms: u64) -> WorkerRecord {
    let tags = inner.worker.tags.clone();
    // A node whose filter takes nothing starts no worker loops: it has no activity slots.
    let activity_slots = if tags.takes_nothing() { 0 } else { inner.options.worker_concurrency };
    WorkerRecord {
        worker_id: inner.worker.worker_id.clone(),
        tags,
        activity_slots: u32::try_from(activity_slots).unwrap_or(u32::MAX),
        orchestration_slots: u32::try_from(inner.options.orchestration_concurrency.max(1))
            .unwrap_or(u32::MAX),
        duroxide_version: crate::history::DUROXIDE_VERSION.to_string(),
        started_at_ms,
        last_seen_ms: crate::now_ms(),
        heartbeat_ms: u64::try_from(heartbeat(inner).as_millis()).unwrap_or(u64::MAX),
    }
}

/// Writes this node's record once. A failure is logged: the next heartbeat writes again,
/// and a node that cannot write its record still runs its work.
pub(super) async fn announce(inner: &Inner, started_at_ms: u64) {
    if let Err(e) = inner.store.record_worker(&record(inner, started_at_ms)).await {
        tracing::warn!(worker = %inner.worker.worker_id, error = %e, "writing this node's presence record failed; retrying at the next heartbeat");
    }
}

/// Refreshes this node's record every heartbeat until shutdown.
pub(super) async fn presence_loop(inner: Arc<Inner>, started_at_ms: u64, mut shutdown: Shutdown) {
    let every = heartbeat(&inner);
    while shutdown.sleep(every).await {
        announce(&inner, started_at_ms).await;
    }
}

/// Removes this node's record (a graceful shutdown). Call it once the presence loop has
/// stopped, so no refresh can write the record again afterwards.
pub(super) async fn withdraw(inner: &Inner) {
    if let Err(e) = inner.store.remove_worker(&inner.worker.worker_id).await {
        tracing::warn!(worker = %inner.worker.worker_id, error = %e, "removing this node's presence record failed; it will show as gone after three heartbeats");
    }
}
