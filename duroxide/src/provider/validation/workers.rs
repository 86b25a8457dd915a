//! Conformance tests for the runtimes' presence records: a record reads back exactly as
//! written (every tag filter included), writing it again refreshes it, removing it removes
//! only it, and long-gone records are deleted by later writes, a bounded batch at a time.
//! Not here: deciding liveness, which readers do from the record's times
//! (`WorkerRecord::is_live`, unit-tested with the type).

use super::support::*;
use super::*;

fn record(id: &str, tags: TagFilter, last_seen_ms: u64) -> WorkerRecord {
    WorkerRecord {
        worker_id: id.into(),
        tags,
        activity_slots: 4,
        orchestration_slots: 2,
        duroxide_version: DUROXIDE_VERSION.into(),
        started_at_ms: last_seen_ms.saturating_sub(5_000),
        last_seen_ms,
        heartbeat_ms: 10_000,
    }
}

async fn ids(p: &Arc<dyn Provider>) -> Vec<String> {
    p.list_workers().await.expect("list_workers").into_iter().map(|w| w.worker_id).collect()
}

/// Every field, every kind of tag filter included, reads back exactly as written; the
/// list is in worker id order.
pub async fn worker_records_read_back_exactly(f: Factory) {
    let p = f.create_provider().await;
    assert!(p.list_workers().await.expect("list_workers").is_empty(), "a new store has no workers");
    let t = now();
    let written = vec![
        record("a-any", TagFilter::Any, t),
        WorkerRecord { activity_slots: 0, ..record("b-orchestrator", TagFilter::None, t) },
        record("c-general", TagFilter::Untagged, t),
        record("d-gpu", TagFilter::tags(["gpu", "gpu-large"]), t + 1),
        record("e-mixed", TagFilter::untagged_and(["vidéo", "gpu"]), t + 2),
        record("f-empty-list", TagFilter::tags(Vec::<String>::new()), t),
    ];
    for w in written.iter().rev() {
        p.record_worker(w).await.expect("record_worker");
    }
    assert_eq!(p.list_workers().await.expect("list_workers"), written);
}

/// Writing a record again (a heartbeat, or a node restarted with the same id) replaces it:
/// one record per worker id, with the latest values.
pub async fn recording_again_refreshes_the_record(f: Factory) {
    let p = f.create_provider().await;
    let first = record("node-1", TagFilter::Untagged, now());
    p.record_worker(&first).await.expect("record_worker");
    let later = WorkerRecord {
        tags: TagFilter::untagged_and(["gpu"]),
        activity_slots: 8,
        last_seen_ms: first.last_seen_ms + 10_000,
        heartbeat_ms: 5_000,
        ..first.clone()
    };
    p.record_worker(&later).await.expect("record_worker again");
    assert_eq!(p.list_workers().await.expect("list_workers"), vec![later]);
}

/// Removing a record (a graceful shutdown) removes only that one, and says whether there
/// was one.
pub async fn remove_worker_removes_only_its_record(f: Factory) {
    let p = f.create_provider().await;
    assert!(!p.remove_worker("nobody").await.expect("remove_worker of an unknown id"));
    for id in ["n1", "n2"] {
        p.record_worker(&record(id, TagFilter::Untagged, now())).await.expect("record_worker");
    }
    assert!(p.remove_worker("n1").await.expect("remove_worker"));
    assert_eq!(ids(&p).await, ["n2"]);
    assert!(!p.remove_worker("n1").await.expect("remove_worker twice"));
    assert_eq!(ids(&p).await, ["n2"]);
}

/// A record not refreshed for three heartbeats stays readable (readers see it as gone);
/// once it has been gone for [`GONE_WORKER_RETENTION_MS`], the next write of any record
/// deletes it.
pub async fn gone_records_stay_readable_then_expire(f: Factory) {
    let p = f.create_provider().await;
    let t = now();
    let crashed_long_ago = record("crashed-long-ago", TagFilter::Any, t - 2 * GONE_WORKER_RETENTION_MS);
    let crashed_recently = record("crashed-recently", TagFilter::tags(["gpu"]), t - 60_000);
    // In this order: each write expires records as of its own `last_seen_ms`.
    p.record_worker(&crashed_recently).await.expect("record_worker");
    p.record_worker(&crashed_long_ago).await.expect("record_worker");
    let listed = p.list_workers().await.expect("list_workers");
    assert_eq!(listed.len(), 2, "gone records are kept until a later write expires them");
    assert!(listed.iter().all(|w| !w.is_live(t)), "both missed three heartbeats: {listed:?}");

    p.record_worker(&record("alive", TagFilter::Untagged, t)).await.expect("record_worker");
    assert_eq!(ids(&p).await, ["alive", "crashed-recently"], "only the long-gone record expired");
    let listed = p.list_workers().await.expect("list_workers");
    assert!(listed[0].is_live(t) && !listed[1].is_live(t));
}

/// One write deletes at most [`GONE_WORKERS_DELETED_PER_WRITE`] expired records, so a
/// heartbeat stays short after many nodes came and went; later writes delete the rest.
pub async fn expiry_deletes_a_bounded_batch_per_write(f: Factory) {
    let p = f.create_provider().await;
    let t = now();
    let extra = 5;
    let old = t - 2 * GONE_WORKER_RETENTION_MS;
    for n in 0..GONE_WORKERS_DELETED_PER_WRITE + extra {
        p.record_worker(&record(&format!("old-{n:04}"), TagFilter::Untagged, old))
            .await
            .expect("record_worker");
    }
    assert_eq!(ids(&p).await.len() as u32, GONE_WORKERS_DELETED_PER_WRITE + extra);
    p.record_worker(&record("alive", TagFilter::Untagged, t)).await.expect("record_worker");
    assert_eq!(ids(&p).await.len() as u32, extra + 1, "one write deleted one bounded batch");
    p.record_worker(&record("alive", TagFilter::Untagged, t + 1)).await.expect("record_worker");
    assert_eq!(ids(&p).await, ["alive"], "the next write deleted the rest");
}
