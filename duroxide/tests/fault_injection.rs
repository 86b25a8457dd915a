//! Seeded simulation: a workload mix runs through a real runtime over a store that injects
//! faults (`testing::FaultyProvider`), then the faults stop, the work drains, and the
//! invariants are checked on what the store holds.
//!
//! - `DUROXIDE_FAULT_SEEDS=N` runs N seeds (default below); `DUROXIDE_FAULT_SEED=S` runs only
//!   seed S (a failing seed prints this command).
//! - With `DUROXIDE_TEST_PG_URL` set (and features `postgres,provider-test`), a few seeds run
//!   on PostgreSQL too (`DUROXIDE_FAULT_PG_SEEDS=N`).
//!
//! Invariants: every instance reaches its expected terminal state with the expected output;
//! no history holds two completions for one scheduled task; history event ids run 1..n;
//! a cold replay of each stored history against the code gives the same outcome.

mod common;
#[cfg(all(feature = "postgres", feature = "provider-test"))]
mod pg_support;

use duroxide::history::{Event, EventKind};
use duroxide::provider::Attempt;
use duroxide::testing::faults::{Fault, FaultConfig, FaultyProvider, ProviderOp};
use duroxide::testing::replay_history;
use duroxide::{
    ActivityContext, ActivityError, ActivityRegistry, Backoff, Client, ClientError, OrchestrationContext,
    OrchestrationRegistry, OrchestrationStatus, Provider, ProviderError, RetryPolicy, Runtime,
    RuntimeOptions, SqliteProvider,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Seeds in the default run: about 30-60 s in a debug build on two shared cores.
const DEFAULT_SEEDS: u64 = 60;
/// Seeds run at once (each on its own store and runtime).
const PARALLEL: usize = 4;
/// Seeds on PostgreSQL (each on its own schema).
#[cfg(all(feature = "postgres", feature = "provider-test"))]
const DEFAULT_PG_SEEDS: u64 = 6;

/// The faults of the simulation: frequent enough that every seed sees several of each kind.
/// `DUROXIDE_FAULT_SCALE=x` multiplies every probability (e.g. 3 for a harsher run).
fn fault_config() -> FaultConfig {
    let scale = std::env::var("DUROXIDE_FAULT_SCALE")
        .ok()
        .map(|s| {
            s.trim().parse::<f64>().unwrap_or_else(|_| panic!("DUROXIDE_FAULT_SCALE={s:?} is not a number"))
        })
        .unwrap_or(1.0);
    FaultConfig::new()
        .fail_before(0.04 * scale)
        .fail_after(0.04 * scale)
        .delay(0.10 * scale, Duration::from_millis(25))
        .lose_locks(0.05 * scale)
        .expire_locks(0.02 * scale)
        // The checker and the test's own client read through the wrapped store only for
        // starting instances; reads stay clean so waiting needs no retries.
        .except_reads()
}

fn runtime_options(seed: u64) -> RuntimeOptions {
    RuntimeOptions {
        dispatcher_poll_interval: Duration::from_millis(20),
        // Short locks: a lost fetch reply leaves work locked until its lock expires.
        orchestration_lock_timeout: Duration::from_millis(800),
        activity_lock_timeout: Duration::from_millis(800),
        max_unregistered_backoff: Duration::from_millis(200),
        // Injected failures count fetch attempts; only real poison should reach the limit.
        max_attempts: 200,
        // Even seeds keep orchestrations cached between turns, odd seeds replay every turn:
        // both paths must survive the same faults.
        instance_cache_size: if seed.is_multiple_of(2) { 64 } else { 0 },
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------

/// One instance the workload starts and what it must end with.
struct Expected {
    instance: String,
    name: &'static str,
    input: String,
    output: String,
}

fn workload(seed: u64) -> Vec<Expected> {
    let p = format!("s{seed}");
    let e = |kind: &'static str, input: String, output: String| Expected {
        instance: format!("{p}-{kind}"),
        name: kind,
        input,
        output,
    };
    vec![
        e("Sequence", format!("{seed}"), format!("{seed}-a-b-c")),
        e(
            "FanOut",
            format!("{}", seed % 7),
            ((0..5u64).map(|i| (seed % 7 + i) * 2).sum::<u64>()).to_string(),
        ),
        e("Timer", format!("t{seed}"), format!("t{seed}-after-timer")),
        e("Parent", format!("p{seed}"), format!("parent(child(p{seed}-c))")),
        e("Waiter", format!("w{seed}"), format!("w{seed}+go{seed}")),
        e("Retry", format!("r{seed}"), format!("r{seed}-ok")),
    ]
}

/// Event ids of `Flaky` activities that fail, per instance: the first two attempts fail on
/// every execution (activities run at least once, so an attempt may run several times),
/// later attempts succeed.
type FlakyAttempts = Arc<Mutex<HashMap<String, Vec<u64>>>>;

fn activities(flaky: FlakyAttempts) -> ActivityRegistry {
    ActivityRegistry::builder()
        .register("Append", |_ctx: ActivityContext, input: String| async move {
            let (text, suffix) = input.split_once('|').unwrap_or((&input, ""));
            Ok(format!("{text}-{suffix}"))
        })
        .register("Double", |_ctx: ActivityContext, input: String| async move {
            let n: u64 =
                input.parse().map_err(|_| ActivityError::non_retryable(format!("not a number: {input}")))?;
            Ok((n * 2).to_string())
        })
        .register("Flaky", move |ctx: ActivityContext, input: String| {
            let flaky = flaky.clone();
            async move {
                let fails = {
                    let mut map = flaky.lock().unwrap_or_else(|e| e.into_inner());
                    let failing = map.entry(ctx.instance_id().to_string()).or_default();
                    if !failing.contains(&ctx.event_id()) && failing.len() < 2 {
                        failing.push(ctx.event_id());
                    }
                    failing.contains(&ctx.event_id())
                };
                if fails { Err(ActivityError::new("flaky: not yet")) } else { Ok(format!("{input}-ok")) }
            }
        })
        .build()
}

fn orchestrations() -> OrchestrationRegistry {
    OrchestrationRegistry::builder()
        .register("Sequence", |ctx: OrchestrationContext, input: String| async move {
            let a = ctx.schedule_activity("Append", format!("{input}|a")).await?;
            let b = ctx.schedule_activity("Append", format!("{a}|b")).await?;
            let c = ctx.schedule_activity("Append", format!("{b}|c")).await?;
            Ok(c)
        })
        .register("FanOut", |ctx: OrchestrationContext, input: String| async move {
            let base: u64 = input.parse().unwrap_or(0);
            let calls = (0..5u64).map(|i| ctx.schedule_activity("Double", (base + i).to_string())).collect();
            let mut sum = 0u64;
            for r in ctx.join(calls).await {
                sum += r?.parse::<u64>().unwrap_or(0);
            }
            Ok(sum.to_string())
        })
        .register("Timer", |ctx: OrchestrationContext, input: String| async move {
            ctx.schedule_timer(Duration::from_millis(50)).await;
            Ok(ctx.schedule_activity("Append", format!("{input}|after-timer")).await?)
        })
        .register("Child", |ctx: OrchestrationContext, input: String| async move {
            let c = ctx.schedule_activity("Append", format!("{input}|c")).await?;
            Ok(format!("child({c})"))
        })
        .register("Parent", |ctx: OrchestrationContext, input: String| async move {
            let child = ctx.schedule_sub_orchestration("Child", input).await?;
            Ok(format!("parent({child})"))
        })
        .register("Waiter", |ctx: OrchestrationContext, input: String| async move {
            let data = ctx.schedule_wait("Go").await;
            Ok(format!("{input}+{data}"))
        })
        .register("Retry", |ctx: OrchestrationContext, input: String| async move {
            let policy = RetryPolicy {
                max_attempts: 5,
                backoff: Backoff::Fixed(Duration::from_millis(20)),
                timeout: None,
            };
            Ok(ctx.schedule_activity_with_retry("Flaky", input, policy).await?)
        })
        .build()
}

// ---------------------------------------------------------------------------------------
// One seed
// ---------------------------------------------------------------------------------------

/// Starts an instance through the faulty store the way an application should: retry a
/// failed start, and take "already exists" after a failed attempt as success (the failure
/// may have come after the store created it).
async fn start_with_retries(client: &Client, e: &Expected) -> Result<(), String> {
    let mut failed_before = false;
    for _ in 0..50 {
        match client.start_orchestration(&e.instance, e.name, e.input.clone()).await {
            Ok(()) => return Ok(()),
            Err(ClientError::InstanceExists(_)) if failed_before => return Ok(()),
            Err(ClientError::Provider(err)) if err.is_retryable() => {
                failed_before = true;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(other) => return Err(format!("starting {} failed: {other}", e.instance)),
        }
    }
    Err(format!("starting {} failed 50 times", e.instance))
}

/// Raises an event with retries. A failure after the store call may deliver it twice; the
/// orchestration waits once, so a duplicate stays unconsumed. A retry may also find the
/// instance finished: the earlier attempt landed and the instance consumed the event.
async fn raise_with_retries(client: &Client, instance: &str, name: &str, data: String) -> Result<(), String> {
    let mut failed_before = false;
    for _ in 0..50 {
        match client.raise_event(instance, name, data.clone()).await {
            Ok(()) => return Ok(()),
            Err(ClientError::InstanceFinished { .. }) if failed_before => return Ok(()),
            Err(ClientError::Provider(err)) if err.is_retryable() => {
                failed_before = true;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(other) => return Err(format!("raising {name} on {instance} failed: {other}")),
        }
    }
    Err(format!("raising {name} on {instance} failed 50 times"))
}

/// What one seed found wrong (empty: all invariants hold).
struct SeedOutcome {
    seed: u64,
    violations: Vec<String>,
    report: String,
    faults: usize,
    elapsed: Duration,
}

async fn run_seed(seed: u64, store: Arc<dyn Provider>) -> SeedOutcome {
    let started = Instant::now();
    let faulty = Arc::new(FaultyProvider::new(store.clone(), seed, fault_config()));
    let orchestrations = Arc::new(orchestrations());
    let flaky = FlakyAttempts::default();
    let runtime = Runtime::start_with_options(
        faulty.clone(),
        activities(flaky.clone()),
        orchestrations.clone(),
        runtime_options(seed),
    )
    .await;
    let faulty_client = Client::new(faulty.clone());
    let clean_client = Client::new(store.clone());
    let expected = workload(seed);
    let mut violations = Vec::new();

    for e in &expected {
        if let Err(v) = start_with_retries(&faulty_client, e).await {
            violations.push(v);
        }
    }
    if let Some(waiter) = expected.iter().find(|e| e.name == "Waiter")
        && let Err(v) = raise_with_retries(&faulty_client, &waiter.instance, "Go", format!("go{seed}")).await
    {
        violations.push(v);
    }

    // With faults on, give the work a while; then turn them off and let it drain.
    let faulted_until = Instant::now() + Duration::from_secs(10);
    for e in &expected {
        let left = faulted_until.saturating_duration_since(Instant::now());
        let _ = clean_client.wait_for_orchestration(&e.instance, left).await;
    }
    faulty.set_enabled(false);
    let mut statuses = HashMap::new();
    for e in &expected {
        match clean_client.wait_for_orchestration(&e.instance, Duration::from_secs(30)).await {
            Ok(status) => {
                statuses.insert(e.instance.clone(), status);
            }
            Err(err) => violations.push(format!("{} did not finish after faults stopped: {err}", e.instance)),
        }
    }
    runtime.shutdown(Some(Duration::from_secs(5))).await;

    for e in &expected {
        match statuses.get(&e.instance) {
            Some(OrchestrationStatus::Completed { output }) if *output == e.output => {}
            Some(other) => violations
                .push(format!("{} ended {other:?}; expected Completed with {:?}", e.instance, e.output)),
            None => {}
        }
    }
    violations.extend(check_store(&store, &orchestrations, &expected).await);
    SeedOutcome {
        seed,
        violations,
        report: faulty.fault_report(),
        faults: faulty.faults().len(),
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------
// Invariants on the stored histories
// ---------------------------------------------------------------------------------------

/// The scheduling event a completion answers, if `kind` is a completion.
fn completion_source(kind: &EventKind) -> Option<u64> {
    match kind {
        EventKind::ActivityCompleted { source_event_id, .. }
        | EventKind::ActivityFailed { source_event_id, .. }
        | EventKind::TimerFired { source_event_id, .. }
        | EventKind::SubOrchestrationCompleted { source_event_id, .. }
        | EventKind::SubOrchestrationFailed { source_event_id, .. } => Some(*source_event_id),
        _ => None,
    }
}

/// Invariants of one execution's history; returns what is wrong.
fn check_history(instance: &str, execution: u64, history: &[Event]) -> Vec<String> {
    let mut wrong = Vec::new();
    let at = format!("{instance} execution {execution}");
    for (i, e) in history.iter().enumerate() {
        if e.event_id != i as u64 + 1 {
            wrong.push(format!(
                "{at}: event at position {} has id {} (ids must run 1..n)",
                i + 1,
                e.event_id
            ));
            break;
        }
    }
    let mut completed: HashSet<u64> = HashSet::new();
    for e in history {
        if let Some(source) = completion_source(&e.kind) {
            if !completed.insert(source) {
                wrong.push(format!(
                    "{at}: two completions for scheduled event {source} (second is event {})",
                    e.event_id
                ));
            }
            let scheduled = history.iter().find(|s| s.event_id == source).map(|s| &s.kind);
            let matches = matches!(
                (scheduled, &e.kind),
                (
                    Some(EventKind::ActivityScheduled { .. }),
                    EventKind::ActivityCompleted { .. } | EventKind::ActivityFailed { .. }
                ) | (Some(EventKind::TimerCreated { .. }), EventKind::TimerFired { .. })
                    | (
                        Some(EventKind::SubOrchestrationScheduled { .. }),
                        EventKind::SubOrchestrationCompleted { .. }
                            | EventKind::SubOrchestrationFailed { .. }
                    )
            );
            if !matches {
                wrong.push(format!(
                    "{at}: event {} ({}) answers event {source}, which is {:?}",
                    e.event_id,
                    e.kind.type_name(),
                    scheduled.map(|k| k.type_name())
                ));
            }
        }
    }
    let terminals = history.iter().filter(|e| e.kind.is_terminal()).count();
    if terminals != 1 || !history.last().is_some_and(|e| e.kind.is_terminal()) {
        wrong.push(format!("{at}: {terminals} terminal events; expected exactly one, last"));
    }
    wrong
}

async fn check_store(
    store: &Arc<dyn Provider>,
    orchestrations: &OrchestrationRegistry,
    expected: &[Expected],
) -> Vec<String> {
    let mut wrong = Vec::new();
    let read = |what: &str, e: ProviderError| format!("reading {what} failed: {e}");
    let instances = match store.list_instances().await {
        Ok(list) => list,
        Err(e) => return vec![read("instances", e)],
    };
    // The parent's child runs under a derived id; every instance in the store is checked.
    let wanted: HashSet<&str> = expected.iter().map(|e| e.instance.as_str()).collect();
    for w in &wanted {
        if !instances.iter().any(|i| i == w) {
            wrong.push(format!("{w} is missing from the store"));
        }
    }
    if instances.len() != wanted.len() + 1 {
        wrong.push(format!(
            "expected {} instances (one child), the store has {instances:?}",
            wanted.len() + 1
        ));
    }
    for instance in &instances {
        let executions = match store.list_executions(instance).await {
            Ok(x) => x,
            Err(e) => {
                wrong.push(read(instance, e));
                continue;
            }
        };
        if executions.len() != 1 {
            wrong.push(format!("{instance} has {} executions; expected 1", executions.len()));
        }
        for exec in executions {
            let history = match store.read_history(instance, Some(exec.execution_id)).await {
                Ok(h) => h,
                Err(e) => {
                    wrong.push(read(instance, e));
                    continue;
                }
            };
            wrong.extend(check_history(instance, exec.execution_id, &history));
            // Cold replay of the stored history must reach the stored outcome.
            if let Err(e) = replay_history(orchestrations, instance, exec.execution_id, &history) {
                wrong.push(format!("{instance} execution {}: cold replay differs: {e}", exec.execution_id));
            }
            if instance.ends_with("-Retry") {
                let failures =
                    history.iter().filter(|e| matches!(e.kind, EventKind::ActivityFailed { .. })).count();
                if failures != 2 {
                    wrong.push(format!("{instance}: {failures} failed attempts in history; expected 2"));
                }
            }
        }
    }
    wrong
}

// ---------------------------------------------------------------------------------------
// Driving seeds
// ---------------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    match raw.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={raw:?} is not a number"),
    }
}

/// The seeds to run: the one in `DUROXIDE_FAULT_SEED`, or 1..=`count_var` (default `default`).
fn seeds(count_var: &str, default: u64) -> Vec<u64> {
    match env_u64("DUROXIDE_FAULT_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env_u64(count_var).unwrap_or(default)).collect(),
    }
}

/// Runs `seeds` (a few at a time) on stores from `open`, and fails naming every failing seed.
async fn run_seeds<F, Fut>(test: &str, seeds: Vec<u64>, open: F)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Provider>>,
{
    use futures::StreamExt;
    let outcomes: Vec<SeedOutcome> = futures::stream::iter(seeds.iter().copied())
        .map(|seed| {
            let open = &open;
            async move { run_seed(seed, open(seed).await).await }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let total_faults: usize = outcomes.iter().map(|o| o.faults).sum();
    let slowest = outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default();
    println!("{test}: {} seeds, {total_faults} faults injected, slowest seed {slowest:?}", outcomes.len());
    let failed: Vec<&SeedOutcome> = outcomes.iter().filter(|o| !o.violations.is_empty()).collect();
    if failed.is_empty() {
        return;
    }
    let mut msg = format!("{} of {} seeds broke an invariant\n", failed.len(), outcomes.len());
    for o in &failed {
        msg.push_str(&format!("\n== seed {} ==\n", o.seed));
        for v in &o.violations {
            msg.push_str(&format!("  {v}\n"));
        }
        msg.push_str(&o.report);
        msg.push_str(&format!(
            "re-run exactly this seed with: DUROXIDE_FAULT_SEED={} cargo test -p duroxide --test fault_injection {test}\n",
            o.seed
        ));
    }
    panic!("{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_sqlite_memory() {
    common::init_tracing();
    run_seeds("seeded_faults_sqlite_memory", seeds("DUROXIDE_FAULT_SEEDS", DEFAULT_SEEDS), |_seed| async {
        let store: Arc<dyn Provider> =
            Arc::new(SqliteProvider::new("sqlite::memory:", None).await.expect("open in-memory store"));
        store
    })
    .await;
}

#[cfg(all(feature = "postgres", feature = "provider-test"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_faults_postgres() {
    common::init_tracing();
    let Some(url) = pg_support::pg_url() else {
        println!("{}", pg_support::skip_message());
        return;
    };
    let schemas = Arc::new(Mutex::new(Vec::new()));
    let opened = schemas.clone();
    let url2 = url.clone();
    run_seeds("seeded_faults_postgres", seeds("DUROXIDE_FAULT_PG_SEEDS", DEFAULT_PG_SEEDS), move |_seed| {
        let schema = pg_support::random_schema();
        opened.lock().unwrap_or_else(|e| e.into_inner()).push(schema.clone());
        let url = url2.clone();
        async move {
            let store: Arc<dyn Provider> = Arc::new(pg_support::open(&url, &schema).await);
            store
        }
    })
    .await;
    let names = std::mem::take(&mut *schemas.lock().unwrap_or_else(|e| e.into_inner()));
    for schema in names {
        pg_support::drop_schema(&url, &schema).await;
    }
}

/// The wrapper against a real store: a failure before the call leaves the store untouched,
/// a failure after it leaves the work done, and both are logged with their seed.
#[tokio::test]
async fn failures_before_and_after_the_call_on_a_real_store() {
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    let before = FaultyProvider::new(store.clone(), 1, FaultConfig::new().fail_before(1.0));
    let err = before.create_instance("a", "Sequence", None, "x").await.unwrap_err();
    assert!(matches!(err, ProviderError::Storage(_)), "{err:?}");
    assert_eq!(
        store.get_instance("a").await.unwrap(),
        None,
        "a failure before the call must not touch the store"
    );

    let after = FaultyProvider::new(store.clone(), 2, FaultConfig::new().fail_after(1.0));
    let err = after.create_instance("b", "Sequence", None, "x").await.unwrap_err();
    assert!(matches!(err, ProviderError::Storage(_)), "{err:?}");
    assert!(store.get_instance("b").await.unwrap().is_some(), "a failure after the call keeps its effect");
    assert_eq!(after.faults().len(), 1);
    assert_eq!(after.faults()[0].fault, Fault::FailedAfter);
    assert_eq!(after.faults()[0].op, ProviderOp::CreateInstance);

    // A fetch whose reply is lost leaves the instance locked: a second fetch finds nothing.
    let options = runtime_options(0);
    let err = after.fetch_orchestration_item(options.orchestration_lock_timeout, &Default::default()).await;
    assert!(err.is_err());
    let again = store.fetch_orchestration_item(options.orchestration_lock_timeout, &Default::default()).await;
    assert!(again.unwrap().is_none(), "the lost fetch holds the lock until it expires");
}

/// An expired-lock fault sleeps past the lock the caller fetched with, so the lock really
/// expires and another caller may take the instance.
#[tokio::test]
async fn expired_lock_fault_outlives_the_lock() {
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new("sqlite::memory:", None).await.unwrap());
    store.create_instance("i", "Sequence", None, "x").await.unwrap();
    let faulty = FaultyProvider::new(store.clone(), 3, FaultConfig::new().expire_locks(1.0));
    let lock = Duration::from_millis(200);
    let item = faulty.fetch_orchestration_item(lock, &Default::default()).await.unwrap().expect("an item");
    let started = Instant::now();
    // Abandon needs the lock: the fault sleeps past it first.
    let _ = faulty.abandon_orchestration_item(&item.lock_token, None, None, Attempt::GivenBack).await;
    assert!(started.elapsed() >= lock, "slept {:?}, less than the lock", started.elapsed());
    assert!(matches!(faulty.faults()[0].fault, Fault::SleptPastLock(d) if d > lock));
    // The lock expired, so another caller can take the instance.
    assert!(store.fetch_orchestration_item(lock, &Default::default()).await.unwrap().is_some());
}

/// The checker itself finds what it is meant to find.
#[test]
fn history_checker_reports_broken_histories() {
    let ev = |id: u64, kind: EventKind| Event { event_id: id, timestamp_ms: 0, kind };
    let started = EventKind::OrchestrationStarted {
        name: "Sequence".into(),
        version: "1.0.0".into(),
        input: "x".into(),
        parent: None,
        duroxide_version: "0.1.0".into(),
    };
    let scheduled = EventKind::ActivityScheduled {
        name: "Append".into(),
        input: "x|a".into(),
        call_site: None,
        session_id: None,
        tag: None,
    };
    let done = EventKind::ActivityCompleted { source_event_id: 2, result: "x-a".into() };
    let end = EventKind::OrchestrationCompleted { output: "x-a".into() };
    let good =
        vec![ev(1, started.clone()), ev(2, scheduled.clone()), ev(3, done.clone()), ev(4, end.clone())];
    assert_eq!(check_history("i", 1, &good), Vec::<String>::new());

    let twice = vec![
        ev(1, started.clone()),
        ev(2, scheduled.clone()),
        ev(3, done.clone()),
        ev(4, done.clone()),
        ev(5, end.clone()),
    ];
    assert!(
        check_history("i", 1, &twice).iter().any(|w| w.contains("two completions for scheduled event 2"))
    );

    let gap = vec![ev(1, started.clone()), ev(2, scheduled.clone()), ev(4, done.clone()), ev(5, end.clone())];
    assert!(check_history("i", 1, &gap).iter().any(|w| w.contains("ids must run 1..n")));

    let unfinished = vec![ev(1, started.clone()), ev(2, scheduled.clone())];
    assert!(check_history("i", 1, &unfinished).iter().any(|w| w.contains("terminal")));

    let wrong_kind = vec![
        ev(1, started),
        ev(2, scheduled),
        ev(3, EventKind::TimerFired { source_event_id: 2, fire_at_ms: 0 }),
        ev(4, end),
    ];
    assert!(check_history("i", 1, &wrong_kind).iter().any(|w| w.contains("answers event 2")));
}
