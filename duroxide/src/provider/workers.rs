//! Worker presence: the [`WorkerRecord`] each running runtime keeps in the store, so
//! operators can see which nodes are alive and which tags they serve. A store only keeps
//! the records ([`Provider::record_worker`](super::Provider::record_worker),
//! `remove_worker`, `list_workers`); whether a record is live is decided by whoever reads
//! it, from its times. Not here: the heartbeat loop (`runtime::presence`) and the reads
//! that combine records with backlogs (`Client::workers`, `Client::store_summary`).

use super::TagFilter;
use serde::{Deserialize, Serialize};

/// A record is gone once this many heartbeats passed without a refresh.
pub const GONE_AFTER_HEARTBEATS: u64 = 3;

/// How long a gone record stays readable (as gone) before a writer deletes it: an hour,
/// so an operator still sees which node stopped heartbeating and when.
pub const GONE_WORKER_RETENTION_MS: u64 = 60 * 60 * 1000;

/// The most gone records one [`record_worker`](super::Provider::record_worker) call
/// deletes, so that a heartbeat stays one short write however many nodes came and went.
pub const GONE_WORKERS_DELETED_PER_WRITE: u32 = 100;

/// One runtime's presence record: who it is, what it serves, and when it was last seen.
///
/// ```
/// use duroxide::provider::{TagFilter, WorkerRecord};
/// let gpu = WorkerRecord {
///     worker_id: "gpu-1".into(),
///     tags: TagFilter::tags(["gpu"]),
///     activity_slots: 2,
///     orchestration_slots: 2,
///     duroxide_version: "0.1.0".into(),
///     started_at_ms: 1_000,
///     last_seen_ms: 50_000,
///     heartbeat_ms: 10_000,
/// };
/// assert!(gpu.is_live(79_999));
/// assert!(!gpu.is_live(80_000)); // three heartbeats missed
/// assert!(gpu.serves(Some("gpu")) && !gpu.serves(None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The node's id: `RuntimeOptions::worker_node_id`, or the id it generated at start
    /// (`worker-<uuid>`). The record's key: a node restarted with the same id replaces it.
    pub worker_id: String,
    /// The activities its workers take (`TagFilter::None` for an orchestration-only node).
    pub tags: TagFilter,
    /// How many activities it runs at once (0: it runs none).
    pub activity_slots: u32,
    /// How many orchestration turns it runs at once.
    pub orchestration_slots: u32,
    /// The duroxide version it runs.
    pub duroxide_version: String,
    /// When it started (ms since the epoch).
    pub started_at_ms: u64,
    /// When it last refreshed the record (ms since the epoch, its own clock).
    pub last_seen_ms: u64,
    /// How often it refreshes the record (`RuntimeOptions::worker_heartbeat_interval`), in
    /// ms: readers judge liveness by it, so nodes with different intervals are judged
    /// each by its own.
    pub heartbeat_ms: u64,
}

impl WorkerRecord {
    /// When the record counts as gone: [`GONE_AFTER_HEARTBEATS`] heartbeats after it was
    /// last seen (ms since the epoch).
    pub fn gone_at_ms(&self) -> u64 {
        self.last_seen_ms.saturating_add(self.heartbeat_ms.saturating_mul(GONE_AFTER_HEARTBEATS))
    }

    /// Whether the node counts as running at `now_ms`: it refreshed its record within the
    /// last [`GONE_AFTER_HEARTBEATS`] heartbeats.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.gone_at_ms()
    }

    /// Whether this node's workers take activities tagged `tag` (`None`: untagged): its
    /// filter accepts the tag and it has at least one activity slot. Liveness is not
    /// checked here (see [`is_live`](Self::is_live)).
    pub fn serves(&self, tag: Option<&str>) -> bool {
        self.activity_slots > 0 && self.tags.accepts(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tags: TagFilter, slots: u32) -> WorkerRecord {
        WorkerRecord {
            worker_id: "n".into(),
            tags,
            activity_slots: slots,
            orchestration_slots: 1,
            duroxide_version: "0.0.0".into(),
            started_at_ms: 0,
            last_seen_ms: 100,
            heartbeat_ms: 10,
        }
    }

    #[test]
    fn liveness_is_three_heartbeats() {
        let r = record(TagFilter::Any, 1);
        assert_eq!(r.gone_at_ms(), 130);
        assert!(r.is_live(129));
        assert!(!r.is_live(130));
        let far = WorkerRecord { last_seen_ms: u64::MAX, heartbeat_ms: u64::MAX, ..r };
        assert_eq!(far.gone_at_ms(), u64::MAX, "saturates instead of wrapping");
    }

    #[test]
    fn a_node_without_activity_slots_serves_nothing() {
        assert!(record(TagFilter::Any, 1).serves(Some("gpu")));
        assert!(!record(TagFilter::Any, 0).serves(Some("gpu")));
        assert!(!record(TagFilter::None, 4).serves(None));
        assert!(record(TagFilter::Untagged, 4).serves(None));
    }
}
