//! `idle`: instances waiting on an external event: peak memory while they wait, then the
//! time to raise all events and drain them.

use super::app::{activities, orchestrations};
use super::report::report;
use duroxide::prelude::*;
use std::time::{Duration, Instant};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub async fn idle(store_kind: &str, instances: usize) {
    let store = super::store::open(store_kind).await;
    let rt = Runtime::start_with_store(store.provider.clone(), activities(0), orchestrations()).await;
    let client = Client::new(store.provider.clone());
    for i in 0..instances {
        client.start_orchestration(&format!("idle-{i}"), "Idle", "").await.expect("start an instance");
    }
    // Wait until all are waiting.
    loop {
        let running = client
            .count_instances_by_version()
            .await
            .expect("count instances")
            .iter()
            .filter(|c| c.state == duroxide::provider::InstanceState::Running)
            .map(|c| c.count)
            .sum::<u64>();
        if running as usize >= instances {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = peak_rss_mib();
    let t = Instant::now();
    for i in 0..instances {
        client.raise_event(&format!("idle-{i}"), "Go", "x").await.expect("raise an event");
    }
    for i in 0..instances {
        client
            .wait_for_orchestration(&format!("idle-{i}"), Duration::from_secs(600))
            .await
            .expect("instance finishes");
    }
    let drain = t.elapsed().as_secs_f64();
    rt.shutdown(None).await;
    store.close().await;
    report("idle", store_kind, &[("instances", instances as f64), ("peak_rss_mib", rss), ("drain_s", drain)]);
}
