//! Crash recovery and code changes: runtimes dropped or SIGKILLed mid-flight, restarted on
//! the same database file; code changed between runs.

mod common;

use common::{assert_clean_history, completed, fast_options, file_store};
use duroxide::history::EventKind;
use duroxide::prelude::*;
use duroxide::{ErrorCategory, Provider};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const INSTANCES: usize = 20;

fn pipeline_activities(runs: Arc<AtomicUsize>) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Step", move |_ctx: ActivityContext, input: String| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(format!("{input}>step"))
            }
        })
        .build()
}

fn pipeline_orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Pipeline", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Step", input).await?;
            ctx.schedule_timer(Duration::from_millis(50)).await;
            let b = ctx.schedule_activity("Step", a).await?;
            let id = ctx.system_new_guid().await;
            let c = ctx.schedule_activity("Step", b).await?;
            // The guid is recorded: whichever process replays, the output is the same.
            Ok(format!("{c}|{}", id.len()))
        })
        .build()
}

async fn start_all(client: &Client) {
    for i in 0..INSTANCES {
        client.start_orchestration(&format!("p-{i}"), "Pipeline", format!("in{i}")).await.unwrap();
    }
}

async fn check_all(client: &Client) {
    for i in 0..INSTANCES {
        let id = format!("p-{i}");
        assert_eq!(completed(client, &id).await, format!("in{i}>step>step>step|36"));
        let h = client.read_execution_history(&id, None).await.unwrap();
        assert_clean_history(&h);
        let done = h.iter().filter(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })).count();
        assert_eq!(done, 3, "each activity result recorded exactly once: {h:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_runtime_resumes_on_a_new_runtime() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let runs = Arc::new(AtomicUsize::new(0));
    let client = Client::new(ts.store.clone());
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        pipeline_activities(runs.clone()),
        pipeline_orchestrations(),
        fast_options(),
    )
    .await;
    start_all(&client).await;
    // Let some work happen, then crash: the runtime's tasks are aborted mid-flight.
    while runs.load(Ordering::SeqCst) < INSTANCES {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(rt);
    drop(client);
    drop(ts.store);

    // A new "process": reopen the file and start a fresh runtime.
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&ts.url, None).await.unwrap());
    let client = Client::new(store.clone());
    let rt = Runtime::start_with_options(
        store,
        pipeline_activities(runs.clone()),
        pipeline_orchestrations(),
        fast_options(),
    )
    .await;
    check_all(&client).await;
    assert!(runs.load(Ordering::SeqCst) >= 3 * INSTANCES);
    rt.shutdown(None).await;
}

/// Child-process half of `sigkilled_process_loses_nothing`: runs a runtime on the database
/// named by the environment until it is killed. Does nothing in a normal test run.
#[test]
fn crash_child_process() {
    let Ok(url) = std::env::var("DUROXIDE_CRASH_CHILD_DB") else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let runs = Arc::new(AtomicUsize::new(0));
        let _rt = Runtime::start_with_options(
            store,
            pipeline_activities(runs),
            pipeline_orchestrations(),
            fast_options(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_process_loses_nothing() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let client = Client::new(ts.store.clone());
    start_all(&client).await;

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child_process", "--exact", "--nocapture", "--test-threads=1"])
        .env("DUROXIDE_CRASH_CHILD_DB", &ts.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child runtime");
    // Wait until the child made progress on several instances, then SIGKILL it.
    let mut progressed = 0;
    for _ in 0..1000 {
        progressed = 0;
        for i in 0..INSTANCES {
            let h = ts.store.read_history(&format!("p-{i}"), None).await.unwrap_or_default();
            if h.iter().any(|e| matches!(e.kind, EventKind::ActivityCompleted { .. })) {
                progressed += 1;
            }
        }
        if progressed >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(progressed >= 5, "child made no progress");
    child.kill().expect("SIGKILL child");
    let _ = child.wait();

    let runs = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        pipeline_activities(runs),
        pipeline_orchestrations(),
        fast_options(),
    )
    .await;
    check_all(&client).await;
    rt.shutdown(None).await;
}

fn flow_v1() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Flow", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Step", input).await?;
            let go = ctx.schedule_wait("Go").await;
            Ok(format!("{a}+{go}"))
        })
        .register("Other", |ctx: OrchestrationContext, input: String| async move {
            let go = ctx.schedule_wait("Go").await;
            Ok(ctx.schedule_activity("Step", format!("{input}{go}")).await?)
        })
        .build()
}

fn flow_v2_changed() -> OrchestrationRegistry {
    // Same name and version, different first call: replaying v1 histories must fail.
    OrchestrationRegistry::builder()
        .register("Flow", |ctx: OrchestrationContext, input: String| async move {
            let v = ctx.schedule_activity("Validate", &input).await?;
            let go = ctx.schedule_wait("Go").await;
            Ok(format!("{v}+{go}"))
        })
        .register("Other", |ctx: OrchestrationContext, input: String| async move {
            let go = ctx.schedule_wait("Go").await;
            Ok(ctx.schedule_activity("Step", format!("{input}{go}")).await?)
        })
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_change_fails_only_the_diverging_instance() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let runs = Arc::new(AtomicUsize::new(0));
    let client = Client::new(ts.store.clone());
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        pipeline_activities(runs.clone()),
        flow_v1(),
        fast_options(),
    )
    .await;
    client.start_orchestration("flow-1", "Flow", "x").await.unwrap();
    client.start_orchestration("other-1", "Other", "y").await.unwrap();
    // Wait until flow-1 is waiting for its event (A completed, subscription recorded).
    common::wait_until_subscribed(&client, "flow-1").await;
    rt.shutdown(None).await;

    let rt = Runtime::start_with_options(
        ts.store.clone(),
        pipeline_activities(runs),
        flow_v2_changed(),
        fast_options(),
    )
    .await;
    client.raise_event("flow-1", "Go", "go").await.unwrap();
    client.raise_event("other-1", "Go", "!").await.unwrap();
    match common::wait(&client, "flow-1").await {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::Nondeterminism);
            let m = &details.message;
            assert!(m.contains("nondeterministic orchestration 'Flow'"), "{m}");
            assert!(m.contains("expected schedule_activity(\"Step\""), "{m}");
            assert!(m.contains("recorded by version 1.0.0"), "{m}");
            assert!(m.contains("schedule_activity(\"Validate\""), "{m}");
            assert!(m.contains("crash_recovery.rs"), "call sites named: {m}");
        }
        other => panic!("expected a nondeterminism failure, got {other:?}"),
    }
    assert_eq!(completed(&client, "other-1").await, "y!>step");
    rt.shutdown(None).await;
}

const SHARED_JOBS: usize = 100;

fn logged_activities(log_path: String) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Logged", move |_ctx: ActivityContext, key: String| {
            let log_path = log_path.clone();
            async move {
                let pid = std::process::id();
                let append = |phase: &str| {
                    use std::io::Write;
                    let mut f =
                        std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
                    // One write per line: O_APPEND keeps it whole when both processes log at
                    // once (`writeln!` would write the pieces separately and interleave).
                    f.write_all(format!("{key} {pid} {phase}\n").as_bytes()).unwrap();
                };
                append("start");
                tokio::time::sleep(Duration::from_millis(30)).await;
                append("done");
                Ok(format!("{key}@{pid}"))
            }
        })
        .build()
}

fn job_orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Job", |ctx: OrchestrationContext, id: String| async move {
            let a = ctx.schedule_activity("Logged", format!("{id}:1")).await?;
            ctx.schedule_timer(Duration::from_millis(20)).await;
            let b = ctx.schedule_activity("Logged", format!("{id}:2")).await?;
            Ok(format!("{a}|{b}"))
        })
        .build()
}

/// Child-process half of `two_processes_share_a_sqlite_file_and_survive_a_sigkill`.
#[test]
fn sqlite_worker_process() {
    let (Ok(url), Ok(log)) = (std::env::var("DUROXIDE_SHARED_DB"), std::env::var("DUROXIDE_SHARED_LOG"))
    else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let _rt =
            Runtime::start_with_options(store, logged_activities(log), job_orchestrations(), fast_options())
                .await;
        tokio::time::sleep(Duration::from_secs(300)).await;
    });
}

/// SQLite's file locks make several processes on one database file safe: every write is a
/// `BEGIN IMMEDIATE` transaction, instance and activity locks carry tokens and expiry.
/// Two worker processes share one file; one is SIGKILLed mid-run; all work completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_sqlite_file_and_survive_a_sigkill() {
    let mut ts = file_store().await;
    let dir = ts.dir.take().unwrap();
    let log = dir.path().join("activities.log").display().to_string();
    let client = Client::new(ts.store.clone());
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["sqlite_worker_process", "--exact", "--nocapture", "--test-threads=1"])
            .env("DUROXIDE_SHARED_DB", &ts.url)
            .env("DUROXIDE_SHARED_LOG", &log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn worker process")
    };
    let mut victim = spawn();
    let mut survivor = spawn();
    for i in 0..SHARED_JOBS {
        client.start_orchestration(&format!("job-{i:03}"), "Job", format!("job-{i:03}")).await.unwrap();
    }
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let in_flight = |text: &str, pid: u32| -> Vec<String> {
        let lines: Vec<(&str, u32, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut p = l.split(' ');
                Some((p.next()?, p.next()?.parse().ok()?, p.next()?))
            })
            .collect();
        lines
            .iter()
            .filter(|(k, p, ph)| {
                *p == pid
                    && *ph == "start"
                    && !lines.iter().any(|(k2, p2, ph2)| k2 == k && *p2 == pid && *ph2 == "done")
            })
            .map(|(k, _, _)| k.to_string())
            .collect()
    };
    // Kill the victim while it has an activity in flight.
    let mut orphans = Vec::new();
    for _ in 0..3000 {
        orphans = in_flight(&read_log(), victim.id());
        if !orphans.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!orphans.is_empty(), "the victim never ran an activity");
    let victim_pid = victim.id();
    victim.kill().expect("SIGKILL the victim");
    let _ = victim.wait();
    for i in 0..SHARED_JOBS {
        let id = format!("job-{i:03}");
        let status = client.wait_for_orchestration(&id, Duration::from_secs(120)).await.unwrap();
        let OrchestrationStatus::Completed { output } = status else { panic!("{id}: {status:?}") };
        let keys: Vec<&str> = output.split('|').map(|p| p.split('@').next().unwrap()).collect();
        assert_eq!(keys, vec![format!("{id}:1"), format!("{id}:2")], "{id}: {output}");
        assert_clean_history(&client.read_execution_history(&id, None).await.unwrap());
    }
    let text = read_log();
    let orphans = in_flight(&text, victim_pid);
    assert!(!orphans.is_empty());
    for key in &orphans {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} "))
                && l.ends_with(" done")
                && !l.contains(&format!(" {victim_pid} "))),
            "activity {key} of the killed process was not retried by the survivor"
        );
    }
    let _ = survivor.kill();
    let _ = survivor.wait();
}
