//! Metrics after real scenarios, read from a real recorder (`metrics-util`'s
//! `DebuggingRecorder`): a success, an activity retried by its `RetryPolicy`, a
//! nondeterminism failure and a poison activity, each with and without the instance cache.
//!
//! Each scenario runs on its own current-thread tokio runtime inside
//! `metrics::with_local_recorder`, so every task of the scenario records into that test's
//! recorder alone: tests running in parallel never see each other's metrics.

mod common;

use common::{fast_options, memory_store};
use duroxide::prelude::*;
use duroxide::{ErrorCategory, Provider};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A metric's labels, as (key, value) pairs.
type Labels = Vec<(String, String)>;

/// One snapshot of a recorder: (name, labels, value) per metric.
struct Recorded(Vec<(String, Labels, DebugValue)>);

impl Recorded {
    /// The values of `name` whose labels include every pair of `labels`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a DebugValue> {
        self.0.iter().filter_map(move |(n, l, v)| {
            let has = |(k, want): &(&str, &str)| l.iter().any(|(lk, lv)| lk == k && lv == want);
            (n == name && labels.iter().all(has)).then_some(v)
        })
    }

    /// The sum of the counters `name` with `labels`.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels)
            .map(|v| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// All samples of the histograms `name` with `labels`.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.matching(name, labels)
            .flat_map(|v| match v {
                DebugValue::Histogram(xs) => xs.iter().map(|x| x.into_inner()).collect::<Vec<_>>(),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .collect()
    }

    /// The value of the one gauge `name` with `labels`.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let values: Vec<f64> = self
            .matching(name, labels)
            .map(|v| match v {
                DebugValue::Gauge(x) => x.into_inner(),
                other => panic!("{name} is not a gauge: {other:?}"),
            })
            .collect();
        assert_eq!(values.len(), 1, "one gauge {name} {labels:?}, found {values:?}");
        values[0]
    }
}

/// Runs `scenario` on a current-thread runtime with a recorder of its own; returns what it
/// recorded.
fn recorded<F: Future<Output = ()>>(scenario: impl FnOnce() -> F) -> Recorded {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    metrics::with_local_recorder(&recorder, || rt.block_on(scenario()));
    drop(rt);
    Recorded(
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (_, key) = key.into_parts();
                let labels = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
                (key.name().to_string(), labels, value)
            })
            .collect(),
    )
}

fn options(cached: bool) -> RuntimeOptions {
    RuntimeOptions {
        instance_cache_size: if cached { 64 } else { 0 },
        max_attempts: 3,
        // Sampled at start; the scenarios read the samples of a runtime started at the end.
        queue_metrics_interval: Some(Duration::from_secs(60)),
        ..fast_options()
    }
}

async fn run_to_end(
    store: Arc<dyn Provider>,
    activities: ActivityRegistry,
    orchestrations: OrchestrationRegistry,
    options: RuntimeOptions,
    instance: &str,
    name: &str,
) -> OrchestrationStatus {
    let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
    let client = Client::new(store);
    client.start_orchestration(instance, name, "in").await.unwrap();
    let status = common::wait(&client, instance).await;
    rt.shutdown(None).await;
    status
}

fn hello() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Greet", |_ctx: ActivityContext, input: String| async move { Ok(format!("hi {input}")) })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Hello", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Greet", input).await?;
            ctx.schedule_timer(Duration::from_millis(5)).await;
            Ok(ctx.schedule_activity("Greet", a).await?)
        })
        .build();
    (activities, orchestrations)
}

fn success(cached: bool) {
    let m = recorded(|| async move {
        let ts = memory_store().await;
        let (activities, orchestrations) = hello();
        let status = run_to_end(
            ts.store.clone(),
            activities.clone(),
            orchestrations.clone(),
            options(cached),
            "h",
            "Hello",
        )
        .await;
        assert!(matches!(status, OrchestrationStatus::Completed { .. }), "{status:?}");
        // A runtime that starts samples the store's queues and instances first thing.
        let rt =
            Runtime::start_with_options(ts.store.clone(), activities, orchestrations, options(cached)).await;
        rt.shutdown(None).await;
    });
    let hello = [("orchestration", "Hello"), ("version", "1.0.0")];
    assert_eq!(m.counter("duroxide_orchestration_starts_total", &hello), 1);
    assert_eq!(m.counter("duroxide_orchestration_completions_total", &hello), 1);
    assert_eq!(m.counter("duroxide_orchestration_failures_total", &hello), 0);
    // Start, after each activity and after the timer: at least 4 turns (completions that
    // arrive together may share one), exactly one of them new, each timed.
    let turns = m.counter("duroxide_orchestration_turns_total", &hello);
    assert!(turns >= 4, "{turns} turns");
    assert_eq!(m.counter("duroxide_orchestration_turns_total", &[("source", "new")]), 1);
    assert_eq!(m.samples("duroxide_orchestration_turn_duration_seconds", &hello).len() as u64, turns);
    let cached_turns = m.counter("duroxide_orchestration_turns_total", &[("source", "cached")]);
    let replayed_turns = m.counter("duroxide_orchestration_turns_total", &[("source", "replayed")]);
    assert_eq!(cached_turns + replayed_turns, turns - 1);
    let hits = m.counter("duroxide_instance_cache_hits_total", &[]);
    let misses = m.counter("duroxide_instance_cache_misses_total", &[]);
    if cached {
        // One node: turns continue from memory (a completion can lock the instance for its
        // next turn before the previous turn has put its engine back; that turn replays).
        assert!(hits >= 1, "no cache hit in {turns} turns");
        assert_eq!((hits, misses), (cached_turns, replayed_turns));
    } else {
        assert_eq!((hits, misses, cached_turns), (0, 0, 0));
    }
    // Activities: two attempts, both completed, each timed from when it became runnable.
    let greet = [("activity", "Greet")];
    assert_eq!(
        m.counter("duroxide_activity_executions_total", &[("activity", "Greet"), ("outcome", "completed")]),
        2
    );
    assert_eq!(m.samples("duroxide_activity_duration_seconds", &greet).len(), 2);
    let waits = m.samples("duroxide_activity_schedule_to_start_seconds", &greet);
    assert_eq!(waits.len(), 2);
    assert!(waits.iter().all(|w| *w >= 0.0 && *w < 30.0), "{waits:?}");
    assert_eq!(m.counter("duroxide_activity_retries_total", &greet), 0);
    // The timer fired once, never before its time.
    assert_eq!(m.counter("duroxide_timers_fired_total", &hello), 1);
    let late = m.samples("duroxide_timer_lateness_seconds", &hello);
    assert!(late.len() == 1 && late[0] >= 0.0, "{late:?}");
    // Every turn, activity and store call ended: nothing left in flight.
    assert_eq!(m.gauge("duroxide_orchestration_turns_in_flight", &[]), 0.0);
    assert_eq!(m.gauge("duroxide_activities_in_flight", &[]), 0.0);
    // Store calls: timed per operation and store kind; nothing failed.
    let commits = m.samples(
        "duroxide_store_call_duration_seconds",
        &[("store", "sqlite"), ("operation", "commit_turn")],
    );
    assert!(commits.len() as u64 >= turns, "{} commits for {turns} turns", commits.len());
    let creates = [("store", "sqlite"), ("operation", "create_instance")];
    assert_eq!(m.samples("duroxide_store_call_duration_seconds", &creates).len(), 1, "the client's call");
    assert_eq!(m.counter("duroxide_store_errors_total", &[]), 0);
    // The samples of the second runtime: nothing left running or pending, empty queues.
    // Finished instances are not sampled (their count grows without bound; the
    // completion counters above count them).
    let sqlite = ("store", "sqlite");
    assert_eq!(m.gauge("duroxide_instances", &[sqlite, ("state", "Running")]), 0.0);
    assert_eq!(m.gauge("duroxide_instances", &[sqlite, ("state", "Pending")]), 0.0);
    assert_eq!(m.matching("duroxide_instances", &[sqlite, ("state", "Completed")]).count(), 0);
    for queue in ["orchestrator", "activity"] {
        for state in ["ready", "locked", "delayed"] {
            assert_eq!(m.gauge("duroxide_queue_depth", &[sqlite, ("queue", queue), ("state", state)]), 0.0);
        }
    }
    if cached {
        assert_eq!(m.gauge("duroxide_instance_cache_size", &[]), 0.0, "finished instances leave the cache");
    }
}

#[test]
fn success_counts_the_turns_activities_timer_and_store_calls() {
    success(true);
}

#[test]
fn success_counts_the_same_without_the_cache() {
    success(false);
}

fn retried(cached: bool) {
    let m = recorded(|| async move {
        let ts = memory_store().await;
        let calls = Arc::new(AtomicU32::new(0));
        let activities = ActivityRegistry::builder()
            .register("Flaky", move |_ctx: ActivityContext, _input: String| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if n <= 2 { Err(ActivityError::new(format!("transient {n}"))) } else { Ok("ok".into()) }
                }
            })
            .build();
        let policy = RetryPolicy { max_attempts: 5, backoff: Backoff::None, timeout: None };
        let orchestrations = OrchestrationRegistry::builder()
            .register("Retrying", move |ctx: OrchestrationContext, _input: String| async move {
                Ok(ctx.schedule_activity_with_retry("Flaky", "", policy).await?)
            })
            .build();
        let status = run_to_end(ts.store, activities, orchestrations, options(cached), "r", "Retrying").await;
        assert!(matches!(status, OrchestrationStatus::Completed { .. }), "{status:?}");
    });
    let flaky = |more: (&'static str, &'static str)| [("activity", "Flaky"), more];
    assert_eq!(m.counter("duroxide_activity_retries_total", &flaky(("reason", "policy"))), 2);
    assert_eq!(m.counter("duroxide_activity_retries_total", &flaky(("reason", "redelivery"))), 0);
    assert_eq!(m.counter("duroxide_activity_executions_total", &flaky(("outcome", "failed"))), 2);
    assert_eq!(m.counter("duroxide_activity_executions_total", &flaky(("outcome", "completed"))), 1);
    assert_eq!(m.counter("duroxide_activity_failures_total", &flaky(("error_kind", "application"))), 2);
    assert_eq!(m.counter("duroxide_orchestration_completions_total", &[("orchestration", "Retrying")]), 1);
}

#[test]
fn a_retry_policy_counts_each_retry_once() {
    retried(true);
}

#[test]
fn a_retry_policy_counts_each_retry_once_when_replayed() {
    retried(false);
}

fn flow(first: &'static str) -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Flow", move |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity(first, input).await?;
            let go = ctx.schedule_wait("Go").await;
            Ok(format!("{a}+{go}"))
        })
        .build()
}

fn nondeterministic(cached: bool) {
    let m = recorded(|| async move {
        let ts = memory_store().await;
        let activities = ActivityRegistry::builder()
            .register("Step", |_ctx: ActivityContext, input: String| async move { Ok(input) })
            .register("Validate", |_ctx: ActivityContext, input: String| async move { Ok(input) })
            .build();
        let client = Client::new(ts.store.clone());
        let rt =
            Runtime::start_with_options(ts.store.clone(), activities.clone(), flow("Step"), options(cached))
                .await;
        client.start_orchestration("f", "Flow", "x").await.unwrap();
        common::wait_until_subscribed(&client, "f").await;
        rt.shutdown(None).await;
        // The same name and version now makes a different first call.
        let rt = Runtime::start_with_options(ts.store.clone(), activities, flow("Validate"), options(cached))
            .await;
        client.raise_event("f", "Go", "go").await.unwrap();
        match common::wait(&client, "f").await {
            OrchestrationStatus::Failed { details } => {
                assert_eq!(details.category, ErrorCategory::Nondeterminism)
            }
            other => panic!("expected a nondeterminism failure, got {other:?}"),
        }
        rt.shutdown(None).await;
    });
    let flow = [("orchestration", "Flow"), ("version", "1.0.0")];
    let failures = |kind: &'static str| {
        m.counter("duroxide_orchestration_failures_total", &[flow[0], flow[1], ("error_kind", kind)])
    };
    assert_eq!(failures("nondeterminism"), 1);
    assert_eq!(m.counter("duroxide_orchestration_failures_total", &flow), 1, "no other failure");
    assert_eq!(m.counter("duroxide_orchestration_completions_total", &flow), 0);
    assert_eq!(m.counter("duroxide_orchestration_starts_total", &flow), 1);
    // The second node had nothing of the instance in memory: it replayed the history.
    assert!(m.counter("duroxide_orchestration_turns_total", &[("source", "replayed")]) >= 1);
}

#[test]
fn a_nondeterminism_failure_is_counted_by_its_kind() {
    nondeterministic(true);
}

#[test]
fn a_nondeterminism_failure_is_counted_by_its_kind_without_the_cache() {
    nondeterministic(false);
}

fn poisoned(cached: bool) {
    let m = recorded(|| async move {
        let ts = memory_store().await;
        let orchestrations = OrchestrationRegistry::builder()
            .register("UsesMissing", |ctx: OrchestrationContext, _input: String| async move {
                Ok(ctx.schedule_activity("NotDeployed", "").await?)
            })
            .build();
        let options =
            RuntimeOptions { max_unregistered_backoff: Duration::from_millis(50), ..options(cached) };
        let activities = ActivityRegistry::builder().build();
        let status = run_to_end(ts.store, activities, orchestrations, options, "p", "UsesMissing").await;
        match status {
            OrchestrationStatus::Failed { details } => assert_eq!(details.category, ErrorCategory::Poison),
            other => panic!("expected poison, got {other:?}"),
        }
    });
    let missing = |more: (&'static str, &'static str)| [("activity", "NotDeployed"), more];
    // Fetched max_attempts + 1 times: never run here, then failed as poison.
    assert_eq!(m.counter("duroxide_activity_failures_total", &missing(("error_kind", "poison"))), 1);
    assert_eq!(m.counter("duroxide_activity_executions_total", &[("activity", "NotDeployed")]), 0);
    assert_eq!(m.counter("duroxide_activity_retries_total", &missing(("reason", "redelivery"))), 3);
    let uses = ("orchestration", "UsesMissing");
    assert_eq!(m.counter("duroxide_orchestration_failures_total", &[uses, ("error_kind", "poison")]), 1);
    assert_eq!(m.counter("duroxide_orchestration_completions_total", &[uses]), 0);
}

#[test]
fn a_poison_activity_is_counted_with_the_failure_it_causes() {
    poisoned(true);
}

#[test]
fn a_poison_activity_is_counted_the_same_without_the_cache() {
    poisoned(false);
}

/// The `duroxide_*` names in `text`, in order of appearance, each once.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (at, _) in text.match_indices("duroxide_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Every metric the runtime records is in the table of `docs/observability.md`, and the
/// table names no metric the runtime does not record.
#[test]
fn every_metric_is_in_the_documented_table() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/runtime/metrics.rs")).unwrap();
    let doc = std::fs::read_to_string(root.join("../docs/observability.md")).unwrap();
    let table: String = doc.lines().filter(|l| l.starts_with("| `duroxide_")).collect::<Vec<_>>().join("\n");
    let mut recorded = metric_names(&source);
    let mut documented = metric_names(&table);
    recorded.sort();
    documented.sort();
    assert!(recorded.len() >= 20, "{recorded:?}");
    assert_eq!(recorded, documented);
    // Prometheus naming: counters end in _total, durations in _seconds.
    for row in table.lines() {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (name, kind, unit) = (cells[1].trim_matches('`'), cells[2], cells[4]);
        assert_eq!(kind == "counter", name.ends_with("_total"), "{row}");
        assert_eq!(unit == "seconds", name.ends_with("_seconds"), "{row}");
    }
}
