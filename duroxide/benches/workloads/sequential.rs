//! `sequential`: one instance of N activities one after another, for each N of
//! `--sequential-sizes` (default 1,000, 5,000, 10,000; the older 500,1000,2000 still
//! works). The ratio of the last two times says whether a turn costs more as the history
//! grows: 2.0 for sizes that double means it does not.

use super::app::{activities, orchestrations};
use super::report::{Goal, report, target_ratio};
use duroxide::prelude::*;
use std::time::{Duration, Instant};

/// Round-two target for t(10,000)/t(5,000).
const RATIO_TARGET: f64 = 2.1;

pub async fn sequential(store_kind: &str, sizes: &[usize]) {
    let mut times = Vec::new();
    for &n in sizes {
        let store = super::store::open(store_kind).await;
        let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
        let client = Client::new(store.provider.clone());
        let t = Instant::now();
        client.start_orchestration("seq", "Sequential", n.to_string()).await.expect("start the instance");
        let status =
            client.wait_for_orchestration("seq", Duration::from_secs(1800)).await.expect("instance finishes");
        assert!(matches!(status, OrchestrationStatus::Completed { .. }), "sequential({n}) ended {status:?}");
        let s = t.elapsed().as_secs_f64();
        rt.shutdown(None).await;
        store.close().await;
        times.push((n, s));
    }
    let names: Vec<String> = times.iter().map(|(n, _)| format!("t{n}_s")).collect();
    let mut figures: Vec<(&str, f64)> =
        names.iter().map(String::as_str).zip(times.iter().map(|t| t.1)).collect();
    let [.., (n1, t1), (n2, t2)] = times[..] else {
        unreachable!("at least two sizes (checked with the args)")
    };
    let ratio_name = format!("ratio_t{n2}_t{n1}");
    figures.push((&ratio_name, t2 / t1));
    report("sequential", store_kind, &figures);
    if (n1, n2) == (5_000, 10_000) {
        target_ratio("sequential", store_kind, &ratio_name, t2 / t1, Goal::AtMost, RATIO_TARGET);
    }
}
