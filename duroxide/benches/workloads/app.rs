//! The orchestrations and activities the workloads run: `FanOut` (n parallel activities),
//! `Sequential` (n activities one after another), `Idle` (waits for an event), and the one
//! activity `Work` (optionally sleeping).

use duroxide::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Total and count of the activities' real sleep times: the honest ceiling of `fanout`.
pub static SLEPT_US: AtomicU64 = AtomicU64::new(0);
pub static SLEEPS: AtomicU64 = AtomicU64::new(0);

pub fn activities(sleep_ms: u64) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Work", move |_ctx: ActivityContext, input: String| async move {
            if sleep_ms > 0 {
                let t = Instant::now();
                // tokio's timer rounds sleeps up to whole milliseconds (10 ms becomes about
                // 11 ms); a thread sleep on the blocking pool keeps the workload's 10 ms exact.
                let _ =
                    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(sleep_ms)))
                        .await;
                SLEPT_US.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                SLEEPS.fetch_add(1, Ordering::Relaxed);
            }
            Ok(input)
        })
        .build()
}

pub fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("FanOut", |ctx: OrchestrationContext, input: String| async move {
            let n: usize = input.parse().unwrap_or(5);
            let tasks = (0..n).map(|i| ctx.schedule_activity("Work", i.to_string())).collect();
            for r in ctx.join(tasks).await {
                r?;
            }
            Ok(String::new())
        })
        .register("Sequential", |ctx: OrchestrationContext, input: String| async move {
            let n: usize = input.parse().unwrap_or(1);
            for i in 0..n {
                ctx.schedule_activity("Work", i.to_string()).await?;
            }
            Ok(String::new())
        })
        .register("Idle", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_wait("Go").await)
        })
        .build()
}
