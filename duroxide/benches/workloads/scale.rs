//! `scale`: does a store full of finished instances slow the hot path? Runs `overhead`
//! then `latency` on an empty store, then on one preloaded with `--preload` finished
//! instances and their histories (default 1,000,000), in the same process, and prints
//! preloaded / empty for throughput and empty / preloaded for latency (1.0: no cost; the
//! round-two target is at least 0.9 for each).

use super::report::{Goal, report, target_ratio};
use super::scans;
use super::throughput::{latency_on, overhead_on};

const TARGET: f64 = 0.9;

pub async fn scale(store_kind: &str, seconds: u64, preload: u64) {
    let preload = if preload == 0 { super::args::SCALE_PRELOAD } else { preload };
    if store_kind == "memory" {
        eprintln!("scale: skipped on the memory store (the preload needs SQL access to the store)");
        return;
    }
    let empty = super::store::open(store_kind).await;
    let before = scans::snapshot(&empty).await;
    let empty_overhead = overhead_on(&empty, store_kind, seconds, 0).await;
    let empty_latency = latency_on(&empty, store_kind, 0).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    scans::print_delta(&format!("{store_kind} empty"), &before, &scans::snapshot(&empty).await);
    empty.close().await;

    let full = super::store::open(store_kind).await;
    let loaded = super::preload::preload_if_asked(&full, store_kind, preload).await;
    let before = scans::snapshot(&full).await;
    let full_overhead = overhead_on(&full, store_kind, seconds, loaded).await;
    let full_latency = latency_on(&full, store_kind, loaded).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    scans::print_delta(&format!("{store_kind} preloaded"), &before, &scans::snapshot(&full).await);
    full.close().await;

    let throughput = full_overhead.activities_per_s / empty_overhead.activities_per_s;
    let per_raw = full_overhead.per_raw_commit / empty_overhead.per_raw_commit;
    let p50 = empty_latency.p50_ms / full_latency.p50_ms;
    let p99 = empty_latency.p99_ms / full_latency.p99_ms;
    report(
        "scale",
        store_kind,
        &[
            ("preloaded_instances", loaded as f64),
            ("activities_per_s_ratio", throughput),
            ("per_raw_commit_ratio", per_raw),
            ("latency_p50_ratio", p50),
            ("latency_p99_ratio", p99),
        ],
    );
    target_ratio("scale", store_kind, "activities_per_s_ratio", throughput, Goal::AtLeast, TARGET);
    target_ratio("scale", store_kind, "latency_p50_ratio", p50, Goal::AtLeast, TARGET);
    target_ratio("scale", store_kind, "latency_p99_ratio", p99, Goal::AtLeast, TARGET);
}
