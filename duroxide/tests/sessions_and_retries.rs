//! Sessions (worker affinity) and activity retry policies, end to end.

mod common;

use common::{completed, fast_options, file_store, memory_store, wait};
use duroxide::history::EventKind;
use duroxide::prelude::*;
use duroxide::{ErrorCategory, Provider};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records which worker ran each activity of each session: (session, worker, new?).
type Log = Arc<Mutex<Vec<(String, String, bool)>>>;

fn session_activities(tag: &'static str, log: Log) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Remember", move |ctx: ActivityContext, input: String| {
            let log = log.clone();
            async move {
                let session = ctx.session_id().unwrap_or("none").to_string();
                log.lock().unwrap().push((session, tag.to_string(), ctx.is_new_session()));
                // Session state: the conversation so far, on this worker.
                if input == "slow" {
                    // Keeps the session busy (work in flight) for a while.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let turns = ctx.session_state::<Mutex<Vec<String>>>().ok_or("no session")?;
                let mut turns = turns.lock().unwrap();
                turns.push(input);
                Ok(format!("{tag}:{}", turns.join(",")))
            }
        })
        .build()
}

fn chat_orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Chat", |ctx: OrchestrationContext, session: String| async move {
            let mut last = String::new();
            for turn in 0..4 {
                last = ctx
                    .schedule_activity_on_session("Remember", format!("t{turn}"), session.as_str())
                    .await?;
            }
            Ok(last)
        })
        .register("ChatSlow", |ctx: OrchestrationContext, session: String| async move {
            let first = ctx.schedule_activity_on_session("Remember", "slow", session.as_str()).await?;
            let go = ctx.schedule_wait("Go").await;
            let second = ctx.schedule_activity_on_session("Remember", go, session.as_str()).await?;
            Ok(format!("{first}|{second}"))
        })
        .register("ChatWait", |ctx: OrchestrationContext, session: String| async move {
            let first = ctx.schedule_activity_on_session("Remember", "a", session.as_str()).await?;
            let go = ctx.schedule_wait("Go").await;
            let second = ctx.schedule_activity_on_session("Remember", go, session.as_str()).await?;
            Ok(format!("{first}|{second}"))
        })
        .build()
}

fn session_options() -> RuntimeOptions {
    RuntimeOptions {
        session_lock_timeout: Duration::from_millis(600),
        session_idle_timeout: Duration::from_secs(60),
        worker_concurrency: 2,
        ..fast_options()
    }
}

/// A runtime ("worker process") with its own connections to the shared database file.
async fn worker(url: &str, tag: &'static str, log: &Log, options: RuntimeOptions) -> Runtime {
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(url, None).await.unwrap());
    Runtime::start_with_options(store, session_activities(tag, log.clone()), chat_orchestrations(), options)
        .await
}

fn workers_by_session(log: &Log) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (s, w, _) in log.lock().unwrap().iter() {
        m.entry(s.clone()).or_default().push(w.clone());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_activities_stay_on_one_worker_across_turns_and_orchestrations() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let log: Log = Arc::default();
    let a = worker(&ts.url, "A", &log, session_options()).await;
    let b = worker(&ts.url, "B", &log, session_options()).await;
    let client = Client::new(ts.store.clone());
    for i in 0..4 {
        client.start_orchestration(&format!("chat-{i}"), "Chat", format!("s{}", i % 2)).await.unwrap();
    }
    for i in 0..4 {
        let out = completed(&client, &format!("chat-{i}")).await;
        assert!(out.starts_with("A:") || out.starts_with("B:"), "{out}");
    }
    // Every activity of a session ran on one worker, even across the two orchestrations
    // sharing it, and its in-memory state accumulated there: 2 orchestrations x 4 turns.
    for (session, workers) in workers_by_session(&log) {
        assert_eq!(workers.len(), 8, "{session}");
        assert!(workers.iter().all(|w| w == &workers[0]), "session {session} moved: {workers:?}");
    }
    let news = log.lock().unwrap().iter().filter(|(_, _, new)| *new).count();
    assert_eq!(news, 2, "each session is new exactly once");
    let h = client.read_execution_history("chat-0", None).await.unwrap();
    assert!(
        h.iter().any(
            |e| matches!(&e.kind, EventKind::ActivityScheduled { session_id: Some(s), .. } if s == "s0")
        )
    );
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_workers_sessions_are_taken_over_after_the_lease() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let log: Log = Arc::default();
    let client = Client::new(ts.store.clone());
    let a = worker(&ts.url, "A", &log, session_options()).await;
    client.start_orchestration("w", "ChatWait", "s").await.unwrap();
    // Wait until A's result is recorded and the orchestration waits for the event.
    common::wait_until_subscribed(&client, "w").await;
    drop(a); // crash: the session's lease is no longer renewed
    let b = worker(&ts.url, "B", &log, session_options()).await;
    client.raise_event("w", "Go", "b").await.unwrap();
    // B takes over once A's lease (600 ms) expires; its state starts fresh.
    assert_eq!(completed(&client, "w").await, "A:a|B:b");
    let entries = log.lock().unwrap().clone();
    assert_eq!(entries, vec![("s".into(), "A".into(), true), ("s".into(), "B".into(), true)]);
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_released() {
    let ts = memory_store().await;
    let log: Log = Arc::default();
    let opts = RuntimeOptions {
        session_lock_timeout: Duration::from_millis(150),
        session_idle_timeout: Duration::from_millis(100),
        ..fast_options()
    };
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        session_activities("A", log.clone()),
        chat_orchestrations(),
        opts,
    )
    .await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("idle", "ChatWait", "s").await.unwrap();
    for _ in 0..500 {
        if !log.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // idle past the timeout
    client.raise_event("idle", "Go", "b").await.unwrap();
    // Released, so the next activity claims it anew and its state starts empty.
    assert_eq!(completed(&client, "idle").await, "A:a|A:b");
    let news: Vec<bool> = log.lock().unwrap().iter().map(|(_, _, n)| *n).collect();
    assert_eq!(news, vec![true, true]);
    rt.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cap_leaves_other_sessions_to_other_workers() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let log: Log = Arc::default();
    let capped = RuntimeOptions { max_sessions_per_worker: 1, ..session_options() };
    let a = worker(&ts.url, "A", &log, capped.clone()).await;
    let b = worker(&ts.url, "B", &log, capped).await;
    let client = Client::new(ts.store.clone());
    // Both sessions have work in flight at once (slow first activities): a worker busy with
    // one session leaves the other to the other worker.
    client.start_orchestration("c0", "ChatSlow", "s0").await.unwrap();
    client.start_orchestration("c1", "ChatSlow", "s1").await.unwrap();
    for _ in 0..500 {
        if log.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let by = workers_by_session(&log);
    assert_ne!(by["s0"][0], by["s1"][0], "each worker may hold one session: {by:?}");
    for c in ["c0", "c1"] {
        client.raise_event(c, "Go", "x").await.unwrap();
    }
    for c in ["c0", "c1"] {
        wait(&client, c).await;
    }
    a.shutdown(None).await;
    b.shutdown(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_written_before_sessions_upgrades_and_finishes() {
    // A database file written by duroxide before sessions existed (schema 0001 only): one
    // instance waiting for an event, one with an activity queued.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pre_sessions.db");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pre_sessions.db"), &path).unwrap();
    let url = format!("sqlite:{}", path.display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.expect("migrates"));
    let activities = ActivityRegistry::builder()
        .register("Step", |_ctx: ActivityContext, i: String| async move { Ok(format!("{i}>step")) })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("PreSession", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Step", input).await?;
            let go = ctx.schedule_wait("Go").await;
            let b = ctx.schedule_activity("Step", format!("{a}{go}")).await?;
            Ok(b)
        })
        .build();
    let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, fast_options()).await;
    let client = Client::new(store);
    let old = client.read_execution_history("waiting-for-event", None).await.unwrap();
    assert!(old.iter().any(|e| matches!(e.kind, EventKind::ActivityScheduled { session_id: None, .. })));
    client.raise_event("waiting-for-event", "Go", "!").await.unwrap();
    client.raise_event("activity-queued", "Go", "?").await.unwrap();
    assert_eq!(completed(&client, "waiting-for-event").await, "a>step!>step");
    assert_eq!(completed(&client, "activity-queued").await, "b>step?>step");
    rt.shutdown(None).await;
}

#[test]
fn changing_the_session_is_nondeterminism() {
    use duroxide::history::Event;
    use duroxide::replay::{ReplayEngine, TurnEnv, TurnOutcome};
    let history = vec![
        Event {
            event_id: 1,
            timestamp_ms: 0,
            kind: EventKind::OrchestrationStarted {
                name: "C".into(),
                version: "1.0.0".into(),
                input: String::new(),
                parent: None,
                duroxide_version: "0.1.0".into(),
            },
        },
        Event {
            event_id: 2,
            timestamp_ms: 0,
            kind: EventKind::ActivityScheduled {
                name: "A".into(),
                input: "x".into(),
                call_site: None,
                session_id: Some("s1".into()),
                tag: None,
            },
        },
    ];
    let code = Arc::new(|ctx: OrchestrationContext, _input: String| async move {
        Ok(ctx.schedule_activity_on_session("A", "x", "s2").await?)
    });
    let mut engine = ReplayEngine::new(code, "i", 1, history, 2).unwrap();
    match engine.run_turn(vec![], TurnEnv::default()).outcome {
        TurnOutcome::Failed(d) => {
            assert!(
                d.message.contains("session \"s1\"") && d.message.contains("session \"s2\""),
                "{}",
                d.message
            )
        }
        other => panic!("{other:?}"),
    }
}

fn flaky(fail_times: u32, calls: Arc<AtomicU32>, non_retryable: bool) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Flaky", move |_ctx: ActivityContext, _input: String| {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if non_retryable {
                    return Err(ActivityError::non_retryable("card number invalid"));
                }
                if n <= fail_times {
                    Err(ActivityError::new(format!("transient {n}")))
                } else {
                    Ok(format!("ok on {n}"))
                }
            }
        })
        .register("Slow", |ctx: ActivityContext, _input: String| async move {
            // The first attempt hangs until cancelled; later ones are quick.
            if ctx.attempt() == 1 && ctx.event_id() == 2 {
                ctx.cancelled().await;
                return Err(ActivityError::new("cancelled"));
            }
            Ok("fast".to_string())
        })
        .build()
}

fn retry_orchestrations(policy: RetryPolicy) -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Retry", move |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity_with_retry("Flaky", "", policy).await?)
        })
        .register("RetrySlow", move |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity_with_retry("Slow", "", policy).await?)
        })
        .register("RetryOnlyTransient", move |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx
                .schedule_activity_with_retry_when("Flaky", "", policy, |e| {
                    !e.message.contains("transient 1")
                })
                .await?)
        })
        .build()
}

async fn run_retry(
    orchestration: &str,
    policy: RetryPolicy,
    fail_times: u32,
    non_retryable: bool,
) -> (OrchestrationStatus, u32, Vec<EventKind>) {
    let ts = memory_store().await;
    let calls = Arc::new(AtomicU32::new(0));
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        flaky(fail_times, calls.clone(), non_retryable),
        retry_orchestrations(policy),
        fast_options(),
    )
    .await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("r", orchestration, "").await.unwrap();
    let status = wait(&client, "r").await;
    let history =
        client.read_execution_history("r", None).await.unwrap().into_iter().map(|e| e.kind).collect();
    rt.shutdown(None).await;
    (status, calls.load(Ordering::SeqCst), history)
}

fn timer_delays(history: &[EventKind]) -> Vec<u64> {
    history
        .iter()
        .filter_map(|k| if let EventKind::TimerCreated { delay_ms, .. } = k { Some(*delay_ms) } else { None })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_each_backoff_are_durable_timers_in_history() {
    let ms = Duration::from_millis;
    let cases = [
        (Backoff::None, vec![]),
        (Backoff::Fixed(ms(20)), vec![20, 20, 20]),
        (Backoff::Linear { initial: ms(10), max: ms(25) }, vec![10, 20, 25]),
        (Backoff::Exponential { initial: ms(10), max: ms(30) }, vec![10, 20, 30]),
    ];
    for (backoff, delays) in cases {
        let policy = RetryPolicy { max_attempts: 5, backoff, timeout: None };
        let (status, calls, history) = run_retry("Retry", policy, 3, false).await;
        assert_eq!(status, OrchestrationStatus::Completed { output: "ok on 4".into() }, "{backoff:?}");
        assert_eq!(calls, 4);
        assert_eq!(timer_delays(&history), delays, "{backoff:?}");
        let attempts = history.iter().filter(|k| matches!(k, EventKind::ActivityScheduled { .. })).count();
        assert_eq!(attempts, 4, "each attempt is visible in history");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_and_non_retryable_failures_say_why() {
    let policy = RetryPolicy { max_attempts: 3, backoff: Backoff::None, timeout: None };
    let (status, calls, _) = run_retry("Retry", policy, 10, false).await;
    match status {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, ErrorCategory::Application);
            assert!(
                details.message.contains("failed after 3 attempt(s) (attempts exhausted): transient 3"),
                "{}",
                details.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls, 3);
    let (status, calls, _) = run_retry("Retry", policy, 0, true).await;
    match status {
        OrchestrationStatus::Failed { details } => {
            assert!(
                details.message.contains("after 1 attempt(s) (not retryable): card number invalid"),
                "{}",
                details.message
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls, 1, "non-retryable errors are not retried");
    let (status, calls, _) = run_retry("RetryOnlyTransient", policy, 5, false).await;
    assert!(matches!(status, OrchestrationStatus::Failed { .. }));
    assert_eq!(calls, 1, "the predicate refused to retry 'transient 1'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_attempt_timeout_cancels_the_slow_attempt_and_retries() {
    let policy =
        RetryPolicy { max_attempts: 3, backoff: Backoff::None, timeout: Some(Duration::from_millis(200)) };
    let (status, _, history) = run_retry("RetrySlow", policy, 0, false).await;
    assert_eq!(status, OrchestrationStatus::Completed { output: "fast".into() });
    assert!(
        history.iter().any(|k| matches!(k, EventKind::ActivityCancelRequested { source_event_id: 2 })),
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_backoff_resumes_the_wait() {
    let mut ts = file_store().await;
    let _dir = ts.dir.take();
    let calls = Arc::new(AtomicU32::new(0));
    let policy =
        RetryPolicy { max_attempts: 3, backoff: Backoff::Fixed(Duration::from_millis(700)), timeout: None };
    let rt = Runtime::start_with_options(
        ts.store.clone(),
        flaky(1, calls.clone(), false),
        retry_orchestrations(policy),
        fast_options(),
    )
    .await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("r", "Retry", "").await.unwrap();
    // Wait until the backoff timer is recorded, then crash.
    common::wait_for_event(&client, "r", |k| matches!(k, EventKind::TimerCreated { .. })).await;
    drop(rt);
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&ts.url, None).await.unwrap());
    let rt = Runtime::start_with_options(
        store.clone(),
        flaky(1, calls.clone(), false),
        retry_orchestrations(policy),
        fast_options(),
    )
    .await;
    let client = Client::new(store);
    assert_eq!(completed(&client, "r").await, "ok on 2");
    let h = client.read_execution_history("r", None).await.unwrap();
    common::assert_clean_history(&h);
    assert_eq!(
        h.iter().filter(|e| matches!(e.kind, EventKind::TimerCreated { .. })).count(),
        1,
        "the wait was not restarted"
    );
    rt.shutdown(None).await;
}
