//! The workload every chaos node registers, the activity execution log it writes, and the
//! outputs the parent expects.
//!
//! Every activity execution appends a `start` line before it works and a `done` line after
//! (or `lost` when its lock is lost meanwhile), each in one `write` on a file opened with
//! `O_APPEND`, so lines from several processes never interleave. Activity results carry
//! the pid and attempt of the execution that produced them (`value@pid.attempt`), so the
//! history names the execution whose result was recorded.

use duroxide::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a `Step` activity works.
pub const STEP_WORK: Duration = Duration::from_millis(20);
/// How long a `Slow` activity works: longer than the nodes' activity lock timeout, so it
/// only completes if its lock is renewed while it runs.
pub const SLOW_WORK: Duration = Duration::from_millis(1500);
/// `Slow` activities each `Slow` instance runs in parallel.
pub const SLOW_FAN_OUT: usize = 3;
/// Event raised for `Waiter` instances.
pub const GO_EVENT: &str = "Go";

/// The kinds of instances the parent starts, in the order of a wave.
pub const KINDS: [&str; 5] = ["Seq", "Fan", "Parent", "Waiter", "Slow"];

/// Milliseconds since the Unix epoch (log lines and kill times use the same clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn append(log: &Path, line: String) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("cannot open activity log {}: {e}", log.display()));
    // One write per line: O_APPEND keeps it whole when several processes log at once.
    f.write_all(line.as_bytes()).unwrap_or_else(|e| panic!("cannot append to {}: {e}", log.display()));
}

/// Runs one logged activity execution: `work` long unless the lock is lost first.
async fn logged(
    log: &Path,
    ctx: &ActivityContext,
    work: Duration,
    value: String,
) -> Result<String, ActivityError> {
    let pid = std::process::id();
    let key = format!("{} {} {pid} {}", ctx.instance_id(), ctx.event_id(), ctx.attempt());
    append(log, format!("start {key} {}\n", now_ms()));
    tokio::select! {
        _ = tokio::time::sleep(work) => {}
        _ = ctx.cancelled() => {
            // The renewal found the lock lost: another worker has the activity now.
            append(log, format!("lost {key} {}\n", now_ms()));
            return Err(ActivityError::new("activity lock lost"));
        }
    }
    append(log, format!("done {key} {}\n", now_ms()));
    Ok(format!("{value}@{pid}.{}", ctx.attempt()))
}

/// The activity registry of a chaos node; executions are logged to `log`.
pub fn activities(log: PathBuf) -> ActivityRegistry {
    let step_log = log.clone();
    ActivityRegistry::builder()
        .register("Step", move |ctx: ActivityContext, input: String| {
            let log = step_log.clone();
            async move { logged(&log, &ctx, STEP_WORK, format!("{input}.s")).await }
        })
        .register("Slow", move |ctx: ActivityContext, input: String| {
            let log = log.clone();
            async move { logged(&log, &ctx, SLOW_WORK, format!("{input}.slow")).await }
        })
        .build()
}

/// The value of a logged activity result (without the `@pid.attempt` tag).
fn value(result: String) -> String {
    match result.rfind('@') {
        Some(at) => result[..at].to_string(),
        None => result,
    }
}

/// The orchestration registry of a chaos node.
pub fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Seq", |ctx: OrchestrationContext, input: String| async move {
            let a = value(ctx.schedule_activity("Step", input).await?);
            ctx.schedule_timer(Duration::from_millis(100)).await;
            let b = value(ctx.schedule_activity("Step", a).await?);
            Ok(value(ctx.schedule_activity("Step", b).await?))
        })
        .register("Fan", |ctx: OrchestrationContext, input: String| async move {
            let tasks = (0..5).map(|k| ctx.schedule_activity("Step", format!("{input}/{k}"))).collect();
            let mut parts = Vec::new();
            for r in ctx.join(tasks).await {
                parts.push(value(r?));
            }
            Ok(parts.join(","))
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            let me = ctx.instance_id();
            let seq = ctx.schedule_sub_orchestration_with_id("Seq", format!("{me}-seq"), format!("{input}a"));
            let fan = ctx.schedule_sub_orchestration_with_id("Fan", format!("{me}-fan"), format!("{input}b"));
            let (seq, fan) = ctx.join2(seq, fan).await;
            Ok(value(ctx.schedule_activity("Step", format!("{}|{}", seq?, fan?)).await?))
        })
        .register("Waiter", |ctx: OrchestrationContext, input: String| async move {
            let go = ctx.schedule_wait(GO_EVENT).await;
            ctx.schedule_timer(Duration::from_millis(50)).await;
            Ok(value(ctx.schedule_activity("Step", format!("{input}+{go}")).await?))
        })
        .register("Slow", |ctx: OrchestrationContext, input: String| async move {
            // Several at once, so workers are busy for longer than the lock timeout while
            // more activities wait for them.
            let tasks =
                (0..SLOW_FAN_OUT).map(|k| ctx.schedule_activity("Slow", format!("{input}/{k}"))).collect();
            let mut parts = Vec::new();
            for r in ctx.join(tasks).await {
                parts.push(value(r?));
            }
            Ok(value(ctx.schedule_activity("Step", parts.join(",")).await?))
        })
        .build()
}

/// The input of an instance.
pub fn input_of(instance: &str) -> String {
    format!("in-{instance}")
}

/// The data of the event raised for a `Waiter` instance.
pub fn event_data(instance: &str) -> String {
    format!("go-{instance}")
}

/// The output an instance of `kind` named `instance` must complete with.
pub fn expected_output(kind: &str, instance: &str) -> String {
    let x = input_of(instance);
    let seq = |x: &str| format!("{x}.s.s.s");
    let fan = |x: &str| (0..5).map(|k| format!("{x}/{k}.s")).collect::<Vec<_>>().join(",");
    match kind {
        "Seq" => seq(&x),
        "Fan" => fan(&x),
        "Parent" => format!("{}|{}.s", seq(&format!("{x}a")), fan(&format!("{x}b"))),
        "Waiter" => format!("{x}+{}.s", event_data(instance)),
        "Slow" => {
            format!("{}.s", (0..SLOW_FAN_OUT).map(|k| format!("{x}/{k}.slow")).collect::<Vec<_>>().join(","))
        }
        other => panic!("unknown workload kind {other}"),
    }
}
