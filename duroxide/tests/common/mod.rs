//! Shared helpers for the end-to-end tests.
#![allow(dead_code)] // each test binary uses a different subset

use duroxide::history::{Event, EventKind};
use duroxide::{Client, OrchestrationStatus, Provider, Runtime, RuntimeOptions, SqliteProvider};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// A store for one test, and the temp dir that holds its file (if any).
pub struct TestStore {
    pub store: Arc<dyn Provider>,
    pub dir: Option<tempfile::TempDir>,
    pub url: String,
    /// Runtime options for this run (the scenario macro runs each scenario with and
    /// without the instance cache; both must write identical histories).
    pub options: RuntimeOptions,
}

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var("RUST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
}

pub async fn memory_store() -> TestStore {
    init_tracing();
    let url = "sqlite::memory:".to_string();
    let store = Arc::new(SqliteProvider::new(&url, None).await.expect("open in-memory store"));
    TestStore { store, dir: None, url, options: fast_options() }
}

pub async fn file_store() -> TestStore {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("test.db").display());
    let store = Arc::new(SqliteProvider::new(&url, None).await.expect("open file store"));
    TestStore { store, dir: Some(dir), url, options: fast_options() }
}

/// Options that keep tests fast: short polls and locks.
pub fn fast_options() -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(20),
        orchestration_lock_timeout: Duration::from_secs(2),
        activity_lock_timeout: Duration::from_secs(2),
        max_unregistered_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

pub async fn wait(client: &Client, instance: &str) -> OrchestrationStatus {
    client.wait_for_orchestration(instance, Duration::from_secs(30)).await.expect("instance finished in time")
}

pub async fn completed(client: &Client, instance: &str) -> String {
    match wait(client, instance).await {
        OrchestrationStatus::Completed { output } => output,
        other => panic!("instance {instance} did not complete: {other:?}"),
    }
}

/// Waits (up to 5 s) until the current execution's history has an event matching `pred`;
/// panics if it never does.
pub async fn wait_for_event(client: &Client, instance: &str, pred: impl Fn(&EventKind) -> bool) {
    for _ in 0..500 {
        let h = client.read_execution_history(instance, None).await.unwrap_or_default();
        if h.iter().any(|e| pred(&e.kind)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{instance} never recorded the awaited event");
}

/// Waits until `instance` subscribed to an external event.
pub async fn wait_until_subscribed(client: &Client, instance: &str) {
    wait_for_event(client, instance, |k| matches!(k, EventKind::ExternalSubscribed { .. })).await
}

/// Asserts a history is well-formed: ids 1..n, one terminal event at most, each scheduled
/// task completed at most once.
pub fn assert_clean_history(history: &[Event]) {
    let mut completed = HashSet::new();
    for (i, e) in history.iter().enumerate() {
        assert_eq!(e.event_id, i as u64 + 1, "event ids must run 1..n: {history:?}");
        let source = match &e.kind {
            EventKind::ActivityCompleted { source_event_id, .. }
            | EventKind::ActivityFailed { source_event_id, .. }
            | EventKind::TimerFired { source_event_id, .. }
            | EventKind::SubOrchestrationCompleted { source_event_id, .. }
            | EventKind::SubOrchestrationFailed { source_event_id, .. } => Some(*source_event_id),
            _ => None,
        };
        if let Some(s) = source {
            assert!(completed.insert(s), "task {s} completed twice: {history:?}");
        }
    }
    assert!(history.iter().filter(|e| e.kind.is_terminal()).count() <= 1, "{history:?}");
}

pub async fn start_runtime(
    ts: &TestStore,
    activities: duroxide::ActivityRegistry,
    orchestrations: duroxide::OrchestrationRegistry,
) -> Runtime {
    Runtime::start_with_options(ts.store.clone(), activities, orchestrations, ts.options.clone()).await
}

/// Options with the instance cache off: every turn replays from history.
pub fn uncached(mut ts: TestStore) -> TestStore {
    ts.options.instance_cache_size = 0;
    ts
}

/// Runs a scenario once on an in-memory store and once on a file store.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let ts = common::memory_store().await;
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file() {
                let mut ts = common::file_store().await;
                // Closures capture only the fields they use: keep the directory alive here.
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_uncached() {
                let ts = common::uncached(common::memory_store().await);
                ($body)(ts).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn file_uncached() {
                let mut ts = common::uncached(common::file_store().await);
                let _dir = ts.dir.take();
                ($body)(ts).await;
            }
        }
    };
}
