//! End-to-end runtime scenarios on PostgreSQL, each in its own schema (dropped afterwards).
//! Skipped with a message when `DUROXIDE_TEST_PG_URL` is unset (failing under `CI=true`).

mod common;
#[path = "pg_support/mod.rs"]
mod pg;

use duroxide::history::{Event, EventKind};
use duroxide::prelude::*;
use duroxide::provider::FetchFilter;
use duroxide::{Either2, Provider, ProviderError};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fast_options() -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(50),
        orchestration_lock_timeout: Duration::from_secs(5),
        activity_lock_timeout: Duration::from_secs(5),
        max_unregistered_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

/// Runs `body` with a fresh store (and the URL and schema, for opening more stores on it).
async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Provider>, String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = pg::pg_url() else {
        eprintln!("SKIPPED: {}", pg::skip_message());
        return;
    };
    let schema = pg::random_schema();
    let store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
    let result = tokio::spawn(body(store, url.clone(), schema.clone())).await;
    pg::drop_schema(&url, &schema).await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn activities() -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Add1", |_ctx: ActivityContext, input: String| async move {
            let n: i64 =
                input.parse().map_err(|e| ActivityError::non_retryable(format!("bad number: {e}")))?;
            Ok((n + 1).to_string())
        })
        .register("Sleep", |ctx: ActivityContext, input: String| async move {
            let ms: u64 = input.parse().unwrap_or(100);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok("slept".to_string()),
                _ = ctx.cancelled() => Err(ActivityError::new("cancelled")),
            }
        })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Chain", |ctx: OrchestrationContext, input: String| async move {
            let mut v = input;
            for _ in 0..5 {
                v = ctx.schedule_activity("Add1", &v).await?;
            }
            Ok(v)
        })
        .register("FanOut", |ctx: OrchestrationContext, _input: String| async move {
            let tasks = (0..50).map(|i| ctx.schedule_activity("Add1", i.to_string())).collect();
            let mut sum = 0i64;
            for r in ctx.join(tasks).await {
                sum += r?.parse::<i64>().map_err(|e| e.to_string())?;
            }
            Ok(sum.to_string())
        })
        .register("Timer", |ctx: OrchestrationContext, _input: String| async move {
            let t0 = ctx.utc_now().await;
            ctx.schedule_timer(Duration::from_millis(300)).await;
            let t1 = ctx.utc_now().await;
            Ok((t1.duration_since(t0).map_err(|e| e.to_string())? >= Duration::from_millis(300)).to_string())
        })
        .register("Deadline", |ctx: OrchestrationContext, input: String| async move {
            let ms: u64 = input.parse().unwrap_or(200);
            Ok(
                match ctx
                    .select2(ctx.schedule_wait("Approve"), ctx.schedule_timer(Duration::from_millis(ms)))
                    .await
                {
                    Either2::First(data) => format!("approved:{data}"),
                    Either2::Second(()) => "timed out".to_string(),
                },
            )
        })
        .register("Child", |ctx: OrchestrationContext, input: String| async move {
            if input == "fail" {
                return Err(OrchestrationError::application("child refused"));
            }
            Ok(ctx.schedule_activity("Add1", input).await?)
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            match ctx.schedule_sub_orchestration("Child", input).await {
                Ok(v) => Ok(format!("child said {v}")),
                Err(e) => Ok(format!("child failed: {}", e.message)),
            }
        })
        .register("Long", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Sleep", "60000").await?)
        })
        .register("Counter", |ctx: OrchestrationContext, input: String| async move {
            let n: u32 = input.parse().map_err(|e| format!("{e}"))?;
            let n: u32 =
                ctx.schedule_activity("Add1", n.to_string()).await?.parse().map_err(|e| format!("{e}"))?;
            if n < 3 {
                ctx.continue_as_new(n.to_string());
                return Ok(String::new());
            }
            Ok(format!("done at {n} in execution {}", ctx.execution_id()))
        })
        .register("Remember", |ctx: OrchestrationContext, input: String| async move {
            // A value write: the final turn takes the transaction path, not the one statement.
            ctx.set_value("last", &input).map_err(|e| e.to_string())?;
            Ok(input)
        })
        .register("Progress", |ctx: OrchestrationContext, _input: String| async move {
            ctx.set_custom_status("step 1");
            ctx.schedule_wait("next").await;
            ctx.set_custom_status("step 2");
            ctx.schedule_wait("next").await;
            Ok("done".to_string())
        })
        .build()
}

async fn completed(client: &Client, instance: &str) -> String {
    match client.wait_for_orchestration(instance, Duration::from_secs(30)).await.expect("finished in time") {
        OrchestrationStatus::Completed { output } => output,
        other => panic!("instance {instance} did not complete: {other:?}"),
    }
}

/// Event ids run 1..n, each task completes at most once, at most one terminal event.
fn assert_clean_history(history: &[Event]) {
    let mut done = HashSet::new();
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.event_id, i as u64 + 1, "{history:?}");
        let source = match &e.kind {
            EventKind::ActivityCompleted { source_event_id, .. }
            | EventKind::ActivityFailed { source_event_id, .. }
            | EventKind::TimerFired { source_event_id, .. }
            | EventKind::SubOrchestrationCompleted { source_event_id, .. }
            | EventKind::SubOrchestrationFailed { source_event_id, .. } => Some(*source_event_id),
            _ => None,
        };
        if let Some(s) = source {
            assert!(done.insert(s), "task {s} completed twice: {history:?}");
        }
    }
    assert!(history.iter().filter(|e| e.kind.is_terminal()).count() <= 1, "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaining_and_fan_out_of_50() {
    on_postgres(|store, _, _| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        client.start_orchestration("chain", "Chain", "10").await.unwrap();
        client.start_orchestration("fan", "FanOut", "").await.unwrap();
        assert_eq!(completed(&client, "chain").await, "15");
        assert_eq!(completed(&client, "fan").await, "1275");
        for id in ["chain", "fan"] {
            assert_clean_history(&client.read_execution_history(id, None).await.unwrap());
        }
        rt.shutdown(None).await;
    })
    .await;
}

/// A turn that ends an instance tells this process's waiters with the instance as it
/// committed it, so a waiting client need not read it back; both commit paths (the one
/// statement and the transaction) do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_notice_carries_the_committed_record() {
    on_postgres(|store, _, _| async move {
        let mut finished = store.notifiers().expect("the store has notifiers").finished.subscribe();
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store.clone());
        for (id, name, output) in [("chain", "Chain", "6"), ("remember", "Remember", "1")] {
            client.start_orchestration(id, name, "1").await.unwrap();
            assert_eq!(completed(&client, id).await, output);
            let stored = store.get_instance(id).await.unwrap().expect("the instance exists");
            let carried = loop {
                let notice = tokio::time::timeout(Duration::from_secs(5), finished.recv())
                    .await
                    .expect("a finish notice for the instance")
                    .expect("the notice channel is open");
                if let (true, Some(record)) = (notice.instance == id, notice.record) {
                    break record;
                }
            };
            assert_eq!(*carried, stored, "{name}: the notice's record is what the store holds");
        }
        rt.shutdown(None).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_and_external_events() {
    on_postgres(|store, _, _| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        client.start_orchestration("timer", "Timer", "").await.unwrap();
        client.start_orchestration("dl-timeout", "Deadline", "100").await.unwrap();
        client.start_orchestration("dl-event", "Deadline", "60000").await.unwrap();
        client.raise_event("dl-event", "Approve", "yes").await.unwrap();
        assert_eq!(completed(&client, "timer").await, "true");
        assert_eq!(completed(&client, "dl-timeout").await, "timed out");
        assert_eq!(completed(&client, "dl-event").await, "approved:yes");
        rt.shutdown(None).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_orchestrations() {
    on_postgres(|store, _, _| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        client.start_orchestration("p-ok", "Parent", "41").await.unwrap();
        client.start_orchestration("p-fail", "Parent", "fail").await.unwrap();
        assert_eq!(completed(&client, "p-ok").await, "child said 42");
        assert_eq!(completed(&client, "p-fail").await, "child failed: child refused");
        rt.shutdown(None).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_a_running_activity() {
    on_postgres(|store, _, _| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        client.start_orchestration("long", "Long", "").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.cancel_instance("long", "no longer needed").await.unwrap();
        let status = client.wait_for_orchestration("long", Duration::from_secs(30)).await.unwrap();
        assert_eq!(status, OrchestrationStatus::Cancelled { reason: "no longer needed".into() });
        let t = Instant::now();
        rt.shutdown(Some(Duration::from_secs(20))).await;
        assert!(t.elapsed() < Duration::from_secs(15), "activity was not cancelled");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_keeps_each_execution() {
    on_postgres(|store, _, _| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        client.start_orchestration("counter", "Counter", "0").await.unwrap();
        assert_eq!(completed(&client, "counter").await, "done at 3 in execution 3");
        let execs = client.list_executions("counter").await.unwrap();
        assert_eq!(execs.iter().map(|e| e.execution_id).collect::<Vec<_>>(), vec![1, 2, 3]);
        for e in &execs {
            assert_clean_history(
                &client.read_execution_history("counter", Some(e.execution_id)).await.unwrap(),
            );
        }
        rt.shutdown(None).await;
    })
    .await;
}

/// Two runtimes on two stores (as two processes would be) share the work of one schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_share_one_schema() {
    on_postgres(|store, url, schema| async move {
        let other: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
        let rt1 =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let rt2 = Runtime::start_with_options(other, activities(), orchestrations(), fast_options()).await;
        let client = Client::new(store);
        for i in 0..20 {
            client.start_orchestration(&format!("c{i}"), "Chain", &i.to_string()).await.unwrap();
        }
        for i in 0..20 {
            assert_eq!(completed(&client, &format!("c{i}")).await, (i + 5).to_string());
            assert_clean_history(&client.read_execution_history(&format!("c{i}"), None).await.unwrap());
        }
        rt1.shutdown(None).await;
        rt2.shutdown(None).await;
    })
    .await;
}

/// A runtime that polls only every 30 s still reacts at once to work enqueued through
/// another store: LISTEN/NOTIFY wakes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_an_idle_runtime_in_another_process() {
    on_postgres(|store, url, schema| async move {
        let runtime_store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
        // The client waits for the runtime's finish notice, read only once a second otherwise.
        assert!(store.notifiers().unwrap().sees_every_writer());
        let options = RuntimeOptions { dispatcher_poll_interval: Duration::from_secs(30), ..fast_options() };
        let rt = Runtime::start_with_options(runtime_store, activities(), orchestrations(), options).await;
        // Let the dispatchers go idle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let client = Client::new(store);
        let t = Instant::now();
        client.start_orchestration("wake", "Chain", "0").await.unwrap();
        assert_eq!(completed(&client, "wake").await, "5");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "took {:?}: notifications did not wake it",
            t.elapsed()
        );
        rt.shutdown(None).await;
    })
    .await;
}

/// A progress watcher in another process (its own store, so its own in-process notices) is
/// told of each custom-status change by LISTEN/NOTIFY, not by its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_reach_watchers_in_another_process() {
    on_postgres(|store, url, schema| async move {
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations(), fast_options()).await;
        let watcher_store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
        let notices = watcher_store.notifiers().expect("the PostgreSQL store relays notices");
        let mut relayed = notices.status_changed.subscribe();
        let watcher = Client::new(watcher_store);
        let owner = Client::new(store);
        owner.start_orchestration("st-1", "Progress", "").await.unwrap();
        let first = watcher.wait_for_status_change("st-1", 0, Duration::from_secs(20)).await.unwrap();
        assert_eq!(first.custom_status.as_deref(), Some("step 1"));
        owner.raise_event("st-1", "next", "").await.unwrap();
        // The relay names the instance, once per change: the turns that set "step 1" and
        // "step 2" committed through the runtime's store, and the watcher's store heard both.
        let mut named = 0;
        tokio::time::timeout(Duration::from_secs(20), async {
            while named < 2 {
                match relayed.recv().await {
                    Ok(id) if id == "st-1" => named += 1,
                    Ok(other) => panic!("a notice for {other:?}"),
                    Err(e) => panic!("the relay missed or closed: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{named} of 2 status notices reached the other process"));
        let second =
            watcher.wait_for_status_change("st-1", first.version, Duration::from_secs(20)).await.unwrap();
        assert_eq!(second.custom_status.as_deref(), Some("step 2"));
        assert!(second.version > first.version);
        owner.raise_event("st-1", "next", "").await.unwrap();
        assert_eq!(completed(&owner, "st-1").await, "done");
        rt.shutdown(None).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Several processes on one database, one of them killed with SIGKILL mid-run.

const WORKER_ENV: &str = "DUROXIDE_PG_WORKER_SCHEMA";
const JOBS: usize = 300;

fn job_registries(url: String, schema: String) -> (ActivityRegistry, OrchestrationRegistry) {
    let log = Arc::new(tokio::sync::OnceCell::<sqlx::PgPool>::new());
    let activities = ActivityRegistry::builder()
        .register("Work", move |_ctx: ActivityContext, key: String| {
            let (log, url, schema) = (log.clone(), url.clone(), schema.clone());
            async move {
                let pool = log
                    .get_or_try_init(|| sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url))
                    .await
                    .map_err(|e| ActivityError::new(format!("log pool: {e}")))?;
                let pid = std::process::id() as i64;
                let insert =
                    format!("INSERT INTO \"{schema}\".activity_log (key, pid, phase) VALUES ($1, $2, $3)");
                let write = |phase: &'static str| {
                    sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(key.clone()).bind(pid).bind(phase)
                };
                write("start").execute(pool).await.map_err(|e| ActivityError::new(e.to_string()))?;
                tokio::time::sleep(Duration::from_millis(60)).await;
                write("done").execute(pool).await.map_err(|e| ActivityError::new(e.to_string()))?;
                Ok(format!("{key}@{pid}"))
            }
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Job", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Work", format!("{input}:1")).await?;
            ctx.schedule_timer(Duration::from_millis(100)).await;
            let b = ctx.schedule_activity("Work", format!("{input}:2")).await?;
            Ok(format!("{a}|{b}"))
        })
        .build();
    (activities, orchestrations)
}

fn worker_options() -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(200),
        orchestration_lock_timeout: Duration::from_secs(2),
        activity_lock_timeout: Duration::from_secs(2),
        worker_concurrency: 8,
        ..Default::default()
    }
}

/// The body of a worker process (re-executed from this test binary by the test below).
/// Without its environment variable it does nothing, so it passes as a plain test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_worker_process() {
    let (Ok(schema), Some(url)) = (std::env::var(WORKER_ENV), pg::pg_url()) else { return };
    let store: Arc<dyn Provider> = Arc::new(pg::open(&url, &schema).await);
    let (activities, orchestrations) = job_registries(url, schema);
    let _rt = Runtime::start_with_options(store, activities, orchestrations, worker_options()).await;
    // Runs until the parent kills it.
    tokio::time::sleep(Duration::from_secs(600)).await;
}

struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// 3 worker processes share one schema and run 300 orchestrations with activities and
/// timers; one is killed with SIGKILL while it runs activities. Every instance completes
/// with the right output, no history has a duplicate event, and the killed process's
/// in-flight activities were retried by the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_survive_a_sigkill() {
    on_postgres(|store, url, schema| async move {
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
        let create = format!("CREATE TABLE \"{schema}\".activity_log (key TEXT, pid BIGINT, phase TEXT)");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut admin).await.unwrap();
        let exe = std::env::current_exe().unwrap();
        let spawn = || {
            std::process::Command::new(&exe)
                .args(["pg_worker_process", "--exact", "--nocapture", "--test-threads", "1"])
                .env(WORKER_ENV, &schema)
                .env("DUROXIDE_TEST_PG_URL", &url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn worker process")
        };
        let mut children = Children((0..3).map(|_| spawn()).collect());
        let victim = children.0[0].id() as i64;
        let client = Client::new(store.clone());
        for i in 0..JOBS {
            client.start_orchestration(&format!("job-{i:03}"), "Job", format!("job-{i:03}")).await.unwrap();
        }
        // Kill the victim while it has an activity in flight (started, not done).
        let in_flight = format!(
            "SELECT COUNT(*) FROM \"{schema}\".activity_log s WHERE s.pid = $1 AND s.phase = 'start' \
             AND NOT EXISTS (SELECT 1 FROM \"{schema}\".activity_log d WHERE d.key = s.key \
             AND d.pid = s.pid AND d.phase = 'done')"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(in_flight.clone()))
                .bind(victim)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            if n > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the victim never ran an activity");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        children.0[0].kill().expect("SIGKILL the victim");
        children.0[0].wait().unwrap();

        for i in 0..JOBS {
            let id = format!("job-{i:03}");
            let status = client.wait_for_orchestration(&id, Duration::from_secs(120)).await.unwrap();
            let OrchestrationStatus::Completed { output } = status else { panic!("{id}: {status:?}") };
            let keys: Vec<&str> = output.split('|').map(|p| p.split('@').next().unwrap()).collect();
            assert_eq!(keys, vec![format!("{id}:1"), format!("{id}:2")], "{id}: {output}");
            assert_clean_history(&client.read_execution_history(&id, None).await.unwrap());
        }
        // Activities the victim started but never finished were run again by the others.
        let orphans: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT s.key FROM \"{schema}\".activity_log s WHERE s.pid = $1 AND s.phase = 'start' \
             AND NOT EXISTS (SELECT 1 FROM \"{schema}\".activity_log d WHERE d.key = s.key \
             AND d.pid = s.pid AND d.phase = 'done')"
        )))
        .bind(victim)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert!(!orphans.is_empty());
        for key in &orphans {
            let redone: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM \"{schema}\".activity_log WHERE key = $1 AND pid <> $2 AND phase = 'done'"
            )))
            .bind(key)
            .bind(victim)
            .fetch_one(&mut admin)
            .await
            .unwrap();
            assert!(redone >= 1, "activity {key} of the killed process was not retried");
        }
        let pids: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(DISTINCT pid) FROM \"{schema}\".activity_log")))
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert_eq!(pids, 3, "all three processes ran activities");
        drop(children);
    })
    .await;
}

/// Activities longer than their lock: each held item (fetched ahead, handed over) keeps its
/// lock renewed from the moment it was locked, so each activity runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_longer_than_their_lock_run_once() {
    on_postgres(|store, _url, _schema| async move {
        let runs: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
        let counted = runs.clone();
        let activities = ActivityRegistry::builder()
            .register("Long", move |ctx: ActivityContext, _input: String| {
                let counted = counted.clone();
                async move {
                    *counted.lock().unwrap().entry(ctx.instance_id().to_string()).or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    Ok("done".to_string())
                }
            })
            .build();
        let orchestrations = OrchestrationRegistry::builder()
            .register("OneLong", |ctx: OrchestrationContext, input: String| async move {
                Ok(ctx.schedule_activity("Long", input).await?)
            })
            .build();
        let options = RuntimeOptions {
            worker_concurrency: 2,
            activity_lock_timeout: Duration::from_millis(600),
            max_attempts: 4,
            ..fast_options()
        };
        let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
        let client = Client::new(store.clone());
        for i in 0..6 {
            client.start_orchestration(&format!("long-{i}"), "OneLong", "x").await.unwrap();
        }
        for i in 0..6 {
            let id = format!("long-{i}");
            let status = client.wait_for_orchestration(&id, Duration::from_secs(60)).await.unwrap();
            assert_eq!(status, OrchestrationStatus::Completed { output: "done".into() }, "{id}");
        }
        rt.shutdown(None).await;
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 6, "{runs:?}");
        assert!(runs.values().all(|n| *n == 1), "each activity runs exactly once: {runs:?}");
    })
    .await;
}

/// A history row corrupted while the instance is held in the node's cache: the store's
/// history revision (raised by a trigger on any change to a stored row) makes the next turn
/// read and check the history instead of trusting its copy, so the instance fails visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_instance_notices_its_history_was_corrupted() {
    on_postgres(|store, url, schema| async move {
        let orchestrations = OrchestrationRegistry::builder()
            .register("Wait", |ctx: OrchestrationContext, _input: String| async move {
                let go = ctx.schedule_wait("Go").await;
                Ok(go)
            })
            .build();
        let options = RuntimeOptions { max_attempts: 3, ..fast_options() };
        let rt = Runtime::start_with_options(store.clone(), activities(), orchestrations, options).await;
        let client = Client::new(store.clone());
        client.start_orchestration("rot", "Wait", "x").await.unwrap();
        common::wait_until_subscribed(&client, "rot").await;
        {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let sql = format!(
                "UPDATE \"{schema}\".history SET data = '{{not json' WHERE instance_id = 'rot' AND event_id = 2"
            );
            let done = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            assert_eq!(done.rows_affected(), 1);
            conn.close().await.unwrap();
        }
        client.raise_event("rot", "Go", "now").await.unwrap();
        let status = client.wait_for_orchestration("rot", Duration::from_secs(30)).await.unwrap();
        rt.shutdown(None).await;
        match status {
            OrchestrationStatus::Failed { details } => {
                assert!(details.message.contains("event 2"), "{}", details.message)
            }
            other => panic!("the instance must fail, it ended {other:?}"),
        }
    })
    .await;
}

/// A lock token names its instance, and an instance whose history cannot be read is
/// unlocked at once: the next fetch takes it again without waiting for its lock to expire,
/// and the failed fetch does not count as an attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_history_read_releases_the_lock_at_once() {
    on_postgres(|store, url, schema| async move {
        let orchestrations = OrchestrationRegistry::builder()
            .register("Wait", |ctx: OrchestrationContext, _input: String| async move {
                Ok(ctx.schedule_wait("Go").await)
            })
            .build();
        let rt =
            Runtime::start_with_options(store.clone(), activities(), orchestrations, fast_options()).await;
        let client = Client::new(store.clone());
        client.start_orchestration("held.by.dots", "Wait", "x").await.unwrap();
        common::wait_until_subscribed(&client, "held.by.dots").await;
        rt.shutdown(None).await;
        client.raise_event("held.by.dots", "Go", "now").await.unwrap();

        // A store that holds nothing in memory must read the history, and reading the
        // events fails (a view that divides by zero for every event's data) after the
        // instance was locked (the lock statement reads only the last event id).
        let fresh = pg::open(&url, &schema).await;
        let sql = |s: &str| {
            let url = url.clone();
            let s = s.replace("{schema}", &schema);
            async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(s)).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        };
        sql("ALTER TABLE \"{schema}\".history RENAME TO history_away").await;
        sql("CREATE VIEW \"{schema}\".history AS SELECT instance_id, execution_id, event_id, event_type, \
             CAST(1 / (event_id - event_id) AS TEXT) AS data FROM \"{schema}\".history_away")
        .await;
        let lock = Duration::from_secs(600);
        let failed = fresh.fetch_orchestration_item(lock, &FetchFilter::default()).await;
        sql("DROP VIEW \"{schema}\".history").await;
        sql("ALTER TABLE \"{schema}\".history_away RENAME TO history").await;
        assert!(failed.is_err(), "{failed:?}");

        let item = fresh
            .fetch_orchestration_item(lock, &FetchFilter::default())
            .await
            .unwrap()
            .expect("the lock was released, so the instance is taken again at once");
        assert_eq!(item.instance, "held.by.dots");
        assert_eq!(item.attempt, 1, "the failed fetch is not counted");
        assert!(!item.history.is_empty());
        let (uuid, named) = item.lock_token.split_once('.').expect("a token names its instance");
        assert_eq!(named, "held.by.dots");
        assert!(!uuid.is_empty());

        // A token that names the instance but is not its lock takes nothing.
        let forged = format!("{}.held.by.dots", uuid.chars().rev().collect::<String>());
        let renewed = fresh.renew_orchestration_lock(&forged, lock).await;
        assert!(matches!(renewed, Err(ProviderError::LockLost(_))), "{renewed:?}");
        fresh.renew_orchestration_lock(&item.lock_token, lock).await.unwrap();
    })
    .await;
}
