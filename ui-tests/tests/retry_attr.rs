//! `#[activity(retry(..))]` at run time, on the SQLite provider in memory:
//! `ctx.call_with_retry(handle, input, None)` retries per the attribute, each attempt an
//! `ActivityScheduled` event and each backoff a durable timer (`TimerCreated`) with the
//! attribute's delays; an explicit policy overrides the attribute; an activity without
//! `retry(..)` gets a single attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duroxide::prelude::*;
use duroxide::{Backoff, EventKind, OrchestrationStatus, RetryPolicy, RuntimeOptions};

/// What a test asks of the flaky activities: fail the first `failures` attempts. `key`
/// keeps the attempt counters of concurrently running tests apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub key: String,
    pub failures: u32,
}

/// Attempts so far per `Attempt::key`.
static ATTEMPTS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Counts an attempt; fails (retryably) while it is one of the first `failures`.
fn attempt(input: &Attempt) -> Result<u32, ActivityError> {
    let mut guard = ATTEMPTS.lock().unwrap();
    let count = guard.get_or_insert_with(HashMap::new).entry(input.key.clone()).or_insert(0);
    *count += 1;
    if *count <= input.failures {
        return Err(ActivityError::new(format!("transient failure {count} of {}", input.key)));
    }
    Ok(*count)
}

fn attempts_of(key: &str) -> u32 {
    ATTEMPTS.lock().unwrap().as_ref().and_then(|map| map.get(key).copied()).unwrap_or(0)
}

#[activity(name = "Flaky", retry(max_attempts = 4, backoff = "exponential", initial = "50ms", max = "120ms"))]
async fn flaky(_ctx: ActivityContext, input: Attempt) -> Result<u32, ActivityError> {
    attempt(&input)
}

#[activity(name = "FlakyLinear", retry(max_attempts = 3, backoff = "linear", initial = "20ms", max = "30ms"))]
async fn flaky_linear(_ctx: ActivityContext, input: Attempt) -> Result<u32, ActivityError> {
    attempt(&input)
}

#[activity(name = "FlakyFixed", retry(max_attempts = 3, backoff = "fixed", initial = "40ms"))]
async fn flaky_fixed(_ctx: ActivityContext, input: Attempt) -> Result<u32, ActivityError> {
    attempt(&input)
}

#[activity(name = "Plain")]
async fn plain(_ctx: ActivityContext, input: Attempt) -> Result<u32, ActivityError> {
    attempt(&input)
}

/// Which activity to call, and with which policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    Flaky(Attempt),
    FlakyLinear(Attempt),
    FlakyFixed(Attempt),
    Plain(Attempt),
    /// `flaky` with an explicit policy: two attempts, 10ms apart.
    FlakyOverridden(Attempt),
}

#[orchestration(name = "CallWithRetry")]
async fn call_with_retry(ctx: OrchestrationContext, call: Call) -> Result<u32, OrchestrationError> {
    let attempts = match call {
        Call::Flaky(input) => ctx.call_with_retry(flaky, input, None).await?,
        Call::FlakyLinear(input) => ctx.call_with_retry(flaky_linear, input, None).await?,
        Call::FlakyFixed(input) => ctx.call_with_retry(flaky_fixed, input, None).await?,
        Call::Plain(input) => ctx.call_with_retry(plain, input, None).await?,
        Call::FlakyOverridden(input) => {
            let policy = RetryPolicy {
                max_attempts: 2,
                backoff: Backoff::Fixed(Duration::from_millis(10)),
                timeout: None,
            };
            ctx.call_with_retry(flaky, input, policy).await?
        }
    };
    Ok(attempts)
}

struct Run {
    status: OrchestrationStatus,
    history: Vec<EventKind>,
}

impl Run {
    fn timer_delays(&self) -> Vec<u64> {
        self.history
            .iter()
            .filter_map(|kind| match kind {
                EventKind::TimerCreated { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect()
    }

    /// `(scheduled, failed, completed)` activity events.
    fn activity_events(&self, name: &str) -> (usize, usize, usize) {
        let scheduled = self
            .history
            .iter()
            .filter(|k| matches!(k, EventKind::ActivityScheduled { name: n, .. } if n == name));
        let failed = self.history.iter().filter(|k| matches!(k, EventKind::ActivityFailed { .. }));
        let completed = self.history.iter().filter(|k| matches!(k, EventKind::ActivityCompleted { .. }));
        (scheduled.count(), failed.count(), completed.count())
    }
}

async fn run(instance: &str, call: Call) -> Run {
    let store = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    let activities = ActivityRegistry::builder()
        .register_typed(flaky)
        .register_typed(flaky_linear)
        .register_typed(flaky_fixed)
        .register_typed(plain)
        .build();
    let orchestrations = OrchestrationRegistry::builder().register_typed(call_with_retry).build();
    let options =
        RuntimeOptions { dispatcher_poll_interval: Duration::from_millis(20), ..Default::default() };
    let runtime = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
    let client = Client::new(store);
    client.start_typed(call_with_retry, instance, &call).await.unwrap();
    let status = client.wait_for_orchestration(instance, Duration::from_secs(30)).await.unwrap();
    let history =
        client.read_execution_history(instance, None).await.unwrap().into_iter().map(|e| e.kind).collect();
    runtime.shutdown(None).await;
    Run { status, history }
}

fn attempt_for(key: &str, failures: u32) -> Attempt {
    Attempt { key: key.to_owned(), failures }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exponential_policy_from_the_attribute() {
    let run = run("exponential", Call::Flaky(attempt_for("exponential", 3))).await;
    assert_eq!(run.status, OrchestrationStatus::Completed { output: "4".into() });
    assert_eq!(attempts_of("exponential"), 4);
    // initial = "50ms", doubling, max = "120ms".
    assert_eq!(run.timer_delays(), [50, 100, 120]);
    assert_eq!(run.activity_events("Flaky"), (4, 3, 1), "every attempt is in the history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_run_out_at_max_attempts() {
    let run = run("linear", Call::FlakyLinear(attempt_for("linear", 10))).await;
    match &run.status {
        OrchestrationStatus::Failed { details } => {
            assert!(
                details.message.contains("failed after 3 attempt(s) (attempts exhausted)"),
                "{details:?}"
            );
            assert!(details.message.contains("transient failure 3 of linear"), "{details:?}");
        }
        other => panic!("expected the instance to fail, got {other:?}"),
    }
    assert_eq!(attempts_of("linear"), 3);
    // initial = "20ms", +20ms each time, max = "30ms"; no wait after the last attempt.
    assert_eq!(run.timer_delays(), [20, 30]);
    assert_eq!(run.activity_events("FlakyLinear"), (3, 3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_policy_waits_initial_each_time() {
    let run = run("fixed", Call::FlakyFixed(attempt_for("fixed", 2))).await;
    assert_eq!(run.status, OrchestrationStatus::Completed { output: "3".into() });
    assert_eq!(run.timer_delays(), [40, 40]);
    assert_eq!(run.activity_events("FlakyFixed"), (3, 2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_policy_overrides_the_attribute() {
    let run = run("overridden", Call::FlakyOverridden(attempt_for("overridden", 3))).await;
    assert!(matches!(run.status, OrchestrationStatus::Failed { .. }), "{:?}", run.status);
    assert_eq!(attempts_of("overridden"), 2);
    assert_eq!(run.timer_delays(), [10]);
    assert_eq!(run.activity_events("Flaky"), (2, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_attribute_there_is_one_attempt() {
    let run = run("plain", Call::Plain(attempt_for("plain", 1))).await;
    match &run.status {
        OrchestrationStatus::Failed { details } => {
            assert!(details.message.contains("failed after 1 attempt(s)"), "{details:?}");
        }
        other => panic!("expected the instance to fail, got {other:?}"),
    }
    assert_eq!(attempts_of("plain"), 1);
    assert!(run.timer_delays().is_empty());
    assert_eq!(run.activity_events("Plain"), (1, 1, 0));
}
