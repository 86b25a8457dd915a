//! The runtime's in-process shortcuts: a turn hands its activities to idle workers of the
//! same node (stored locked, no worker fetch), and a completing activity locks its
//! instance so the next turn runs without a dispatcher fetch. A counting wrapper around the
//! store shows which path each step took; the histories must be the same either way.
mod common;

use common::assert_clean_history;
use duroxide::provider::{
    ActivityWorkItem, CachedLookup, ExecutionRecord, FetchFilter, InstanceRecord, InstanceSnapshot,
    LockAfterComplete, Notifiers, OrchestrationItem, OutboundMessage, TurnCommit, VersionCount,
    WorkerIdentity,
};
use duroxide::{Event, Provider, ProviderError};
use duroxide::{prelude::*, provider::BlockedInstance};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts how work reached the runtime.
#[derive(Default)]
struct Counts {
    /// Activities a worker fetched from the store.
    store_activity_fetches: AtomicUsize,
    /// Orchestration items a dispatcher fetched from the store.
    store_turn_fetches: AtomicUsize,
    /// Dispatcher fetches from the store, empty ones included.
    turn_fetch_calls: AtomicUsize,
    /// Instances locked by completing activities.
    locked_by_completion: AtomicUsize,
    /// Activities stored already locked for a worker of this node.
    handed_to_workers: AtomicUsize,
    /// Instance records read (a waiting client's status reads).
    status_reads: AtomicUsize,
    /// Activity fetches running now, and the most that ever ran at once.
    activity_fetches_in_flight: AtomicUsize,
    most_activity_fetches_at_once: AtomicUsize,
}

struct Counting {
    inner: Arc<dyn Provider>,
    counts: Arc<Counts>,
    /// Behave like a store without `complete_work_items_and_lock` (the trait default).
    no_lock_on_complete: bool,
}

duroxide::provider_wrapper! {
impl Provider for Counting {
    forward_management_to: inner;
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        self.inner.create_instance(instance, name, version, input).await
    }
    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        self.inner.enqueue_message(message).await
    }
    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.fetch_orchestration_item_cached(lock_timeout, filter, &|_| None).await
    }
    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.counts.turn_fetch_calls.fetch_add(1, Ordering::SeqCst);
        let item = self.inner.fetch_orchestration_item_cached(lock_timeout, filter, cached).await?;
        if item.is_some() {
            self.counts.store_turn_fetches.fetch_add(1, Ordering::SeqCst);
        }
        Ok(item)
    }
    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        let handed = commit.activities.iter().filter(|a| !a.lock_token.is_empty()).count();
        self.inner.commit_turn(lock_token, commit).await?;
        self.counts.handed_to_workers.fetch_add(handed, Ordering::SeqCst);
        Ok(())
    }
    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        attempt: duroxide::provider::Attempt,
    ) -> Result<(), ProviderError> {
        self.inner.abandon_orchestration_item(lock_token, delay, note, attempt).await
    }
    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        self.inner.renew_orchestration_lock(lock_token, lock_timeout).await
    }
    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError> {
        let at_once = self.counts.activity_fetches_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.most_activity_fetches_at_once.fetch_max(at_once, Ordering::SeqCst);
        let item = self.inner.fetch_work_item(lock_timeout, worker).await;
        self.counts.activity_fetches_in_flight.fetch_sub(1, Ordering::SeqCst);
        let item = item?;
        if item.is_some() {
            self.counts.store_activity_fetches.fetch_add(1, Ordering::SeqCst);
        }
        Ok(item)
    }
    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        self.inner.renew_sessions(worker, idle_timeout).await
    }
    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        self.inner.renew_work_item(lock_token, lock_timeout).await
    }
    async fn complete_work_item(
        &self,
        lock_token: &str,
        completion: OutboundMessage,
    ) -> Result<(), ProviderError> {
        self.inner.complete_work_item(lock_token, completion).await
    }
    async fn complete_work_items(
        &self,
        items: Vec<(String, OutboundMessage)>,
    ) -> Vec<Result<(), ProviderError>> {
        self.inner.complete_work_items(items).await
    }
    async fn complete_work_items_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: LockAfterComplete<'_>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        if self.no_lock_on_complete {
            return (self.inner.complete_work_items(items).await, Vec::new());
        }
        let (results, locked) = self.inner.complete_work_items_and_lock(items, lock).await;
        self.counts.locked_by_completion.fetch_add(locked.len(), Ordering::SeqCst);
        (results, locked)
    }
    async fn abandon_work_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.inner.abandon_work_item(lock_token, delay).await
    }
    async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        self.counts.status_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_instance(instance).await
    }
    async fn read_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        self.inner.read_history(instance, execution_id).await
    }
    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        self.inner.list_executions(instance).await
    }
    async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
        self.inner.list_instances().await
    }
    async fn list_blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError> {
        self.inner.list_blocked_instances(filter, limit).await
    }
    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        self.inner.count_instances_by_version().await
    }
    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        self.inner.export_instance(instance).await
    }
    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        self.inner.import_instance(snapshot).await
    }
    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        self.inner.set_status_note(instance, note).await
    }
    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        self.inner.notifiers()
    }
}
}

fn registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Double", |_ctx: ActivityContext, input: String| async move {
            let n: u64 = input.parse().map_err(|e| ActivityError::non_retryable(format!("{e}")))?;
            Ok((n * 2).to_string())
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Chain", |ctx: OrchestrationContext, input: String| async move {
            let mut n = input;
            for _ in 0..5 {
                n = ctx.schedule_activity("Double", n).await?;
            }
            Ok(n)
        })
        .build();
    (activities, orchestrations)
}

/// Runs `Chain` once and returns its output, its history and the counts.
async fn run_chain(no_lock_on_complete: bool) -> (String, Vec<Event>, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let sqlite: Arc<dyn Provider> = Arc::new(SqliteProvider::in_memory().await.unwrap());
    let store: Arc<dyn Provider> =
        Arc::new(Counting { inner: sqlite, counts: counts.clone(), no_lock_on_complete });
    let (activities, orchestrations) = registries();
    let options = RuntimeOptions {
        // Idle workers poll rarely, so they are idle (and can be handed work) whenever a
        // turn commits.
        dispatcher_poll_interval: Duration::from_secs(30),
        worker_concurrency: 3,
        orchestration_concurrency: 2,
        ..Default::default()
    };
    let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
    let client = Client::new(store.clone());
    // Let the workers reach their idle wait before the first turn.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.start_orchestration("chain", "Chain", "1").await.unwrap();
    let status = client.wait_for_orchestration("chain", Duration::from_secs(30)).await.unwrap();
    let output = match status {
        OrchestrationStatus::Completed { output } => output,
        other => panic!("chain did not complete: {other:?}"),
    };
    rt.shutdown(None).await;
    let history = client.read_execution_history("chain", None).await.unwrap();
    (output, history, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_hand_activities_to_idle_workers_and_completions_lock_their_instance() {
    let (output, history, counts) = run_chain(false).await;
    assert_eq!(output, "32");
    assert_clean_history(&history);
    // Every activity went straight from its turn to an idle worker...
    assert_eq!(counts.handed_to_workers.load(Ordering::SeqCst), 5);
    assert_eq!(counts.store_activity_fetches.load(Ordering::SeqCst), 0);
    // ...and every completion ran the next turn without a fetch: only the start was fetched.
    assert_eq!(counts.locked_by_completion.load(Ordering::SeqCst), 5);
    assert_eq!(counts.store_turn_fetches.load(Ordering::SeqCst), 1);
}

/// A store that cannot lock on completion (the trait's default) gets every turn by fetch,
/// with the same history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lock_on_completion_turns_are_fetched_with_the_same_history() {
    let (fast_output, fast, _) = run_chain(false).await;
    let (slow_output, slow, counts) = run_chain(true).await;
    assert_eq!(fast_output, slow_output);
    assert_eq!(counts.locked_by_completion.load(Ordering::SeqCst), 0);
    assert_eq!(counts.store_turn_fetches.load(Ordering::SeqCst), 6);
    // Same decisions and results; only timestamps differ.
    let shape = |h: &[Event]| {
        h.iter()
            .map(|e| match &e.kind {
                duroxide::EventKind::OrchestrationStarted { name, version, input, .. } => {
                    (e.event_id, format!("started {name} {version} {input}"))
                }
                other => (e.event_id, format!("{other:?}")),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&fast), shape(&slow));
}

/// Announced work wakes every idle worker loop of a node. One of them fetches (its batch
/// goes to the node's backlog for the others) while the rest wait for that fetch instead of
/// racing it to the store for the same rows, which on SQLite would queue one write
/// transaction per loop on the single writer, nearly all of them finding nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_fetches_activities_one_fetch_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("gate.db").display());
    let counts = Arc::new(Counts::default());
    let sqlite: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    let store: Arc<dyn Provider> =
        Arc::new(Counting { inner: sqlite, counts: counts.clone(), no_lock_on_complete: false });
    let activities = ActivityRegistry::builder()
        .register("Nap", |_ctx: ActivityContext, n: String| async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            Ok(n)
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Wide", |ctx: OrchestrationContext, _input: String| async move {
            let tasks = (1..=12).map(|i| ctx.schedule_activity("Nap", i.to_string())).collect();
            let mut total = 0u64;
            for r in ctx.join(tasks).await {
                total += r?.parse::<u64>().map_err(|e| OrchestrationError::application(e.to_string()))?;
            }
            Ok(total.to_string())
        })
        .build();
    let options =
        RuntimeOptions { worker_concurrency: 8, orchestration_concurrency: 2, ..Default::default() };
    let rt = Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
    let client = Client::new(store.clone());
    for i in 0..8 {
        client.start_orchestration(&format!("wide-{i}"), "Wide", "").await.unwrap();
    }
    for i in 0..8 {
        let status =
            client.wait_for_orchestration(&format!("wide-{i}"), Duration::from_secs(30)).await.unwrap();
        assert_eq!(status, OrchestrationStatus::Completed { output: "78".into() }, "wide-{i}");
    }
    rt.shutdown(None).await;
    assert!(counts.store_activity_fetches.load(Ordering::SeqCst) > 0, "workers fetched from the store");
    assert_eq!(counts.most_activity_fetches_at_once.load(Ordering::SeqCst), 1);
}

/// New work wakes one idle dispatcher, not all of them: its fetch takes instances for the
/// others too, so the rest would only go to the store to find nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_wakes_one_dispatcher() {
    let counts = Arc::new(Counts::default());
    let sqlite: Arc<dyn Provider> = Arc::new(SqliteProvider::in_memory().await.unwrap());
    let store: Arc<dyn Provider> =
        Arc::new(Counting { inner: sqlite, counts: counts.clone(), no_lock_on_complete: false });
    let orchestrations = OrchestrationRegistry::builder()
        .register("Wait", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_wait("Go").await)
        })
        .build();
    let options = RuntimeOptions {
        dispatcher_poll_interval: Duration::from_secs(30),
        orchestration_concurrency: 4,
        ..Default::default()
    };
    let rt = Runtime::start_with_options(
        store.clone(),
        ActivityRegistry::builder().build(),
        orchestrations,
        options,
    )
    .await;
    let client = Client::new(store.clone());
    // Every dispatcher looks once at start-up, then waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = counts.turn_fetch_calls.load(Ordering::SeqCst);
    client.start_orchestration("one", "Wait", "").await.unwrap();
    common::wait_until_subscribed(&client, "one").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fetches = counts.turn_fetch_calls.load(Ordering::SeqCst) - before;
    // The woken dispatcher's fetch, and its look for more work after the turn.
    assert_eq!(fetches, 2, "dispatcher fetches for one start");
    client.raise_event("one", "Go", "now").await.unwrap();
    let status = client.wait_for_orchestration("one", Duration::from_secs(10)).await.unwrap();
    assert_eq!(status, OrchestrationStatus::Completed { output: "now".into() });
    rt.shutdown(None).await;
}

/// More activities than workers, of different lengths: workers run handed-over work,
/// fetched-ahead work and fetched work side by side. None may be dropped on the way (a
/// dropped item would only come back when its 30 s lock expired, far past the wait below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_wider_than_the_workers_loses_no_activity() {
    for round in 0..16 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("fan.db").display());
        let store = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
        let activities = ActivityRegistry::builder()
            .register("Count", |_ctx: ActivityContext, text: String| async move {
                tokio::time::sleep(Duration::from_millis(20 * (text.len() as u64 % 5))).await;
                Ok(text.split_whitespace().count().to_string())
            })
            .build();
        let orchestrations = OrchestrationRegistry::builder()
            .register("Fan", |ctx: OrchestrationContext, _input: String| async move {
                let tasks = (1..=10)
                    .map(|i| ctx.schedule_activity("Count", "lorem ipsum dolor ".repeat(i)))
                    .collect();
                let mut total = 0usize;
                for r in ctx.join(tasks).await {
                    total +=
                        r?.parse::<usize>().map_err(|e| OrchestrationError::application(e.to_string()))?;
                }
                Ok(total.to_string())
            })
            .build();
        let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
        let client = Client::new(store.clone());
        client.start_orchestration("fan", "Fan", "").await.unwrap();
        match client.wait_for_orchestration("fan", Duration::from_secs(10)).await {
            Ok(OrchestrationStatus::Completed { output }) => assert_eq!(output, "165", "round {round}"),
            other => {
                let history = client.read_execution_history("fan", None).await.unwrap();
                panic!("round {round}: {other:?} after {} events", history.len());
            }
        }
        rt.shutdown(None).await;
    }
}

/// Long activities are not kept back for a busy node: a node hands a turn's activities to
/// its own workers only as far as they are idle or, by their recent pace, start them
/// within a few milliseconds. The rest stay in the store for whichever node is free, so two
/// nodes with one worker each share a fan-out of slow activities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_activities_are_shared_between_nodes() {
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::in_memory().await.unwrap());
    let ran_on = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let registries = |ran_on: Arc<std::sync::Mutex<Vec<String>>>| {
        let activities = ActivityRegistry::builder()
            .register("Slow", move |ctx: ActivityContext, _input: String| {
                let ran_on = ran_on.clone();
                async move {
                    ran_on.lock().unwrap().push(ctx.worker_id().to_string());
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(String::new())
                }
            })
            .build();
        let orchestrations = OrchestrationRegistry::builder()
            .register("Fan", |ctx: OrchestrationContext, _input: String| async move {
                let tasks = (0..4).map(|i| ctx.schedule_activity("Slow", i.to_string())).collect();
                for r in ctx.join(tasks).await {
                    r?;
                }
                Ok(String::new())
            })
            .build();
        (activities, orchestrations)
    };
    let options =
        RuntimeOptions { worker_concurrency: 1, orchestration_concurrency: 1, ..Default::default() };
    let (a1, o1) = registries(ran_on.clone());
    let (a2, o2) = registries(ran_on.clone());
    let node_a = Runtime::start_with_options(store.clone(), a1, o1, options.clone()).await;
    let node_b = Runtime::start_with_options(store.clone(), a2, o2, options).await;
    let client = Client::new(store.clone());
    client.start_orchestration("fan", "Fan", "").await.unwrap();
    let status = client.wait_for_orchestration("fan", Duration::from_secs(10)).await.unwrap();
    assert!(matches!(status, OrchestrationStatus::Completed { .. }), "{status:?}");
    node_a.shutdown(None).await;
    node_b.shutdown(None).await;
    let ran_on = ran_on.lock().unwrap().clone();
    assert_eq!(ran_on.len(), 4, "each activity runs once: {ran_on:?}");
    let nodes: std::collections::HashSet<_> = ran_on.iter().collect();
    assert_eq!(nodes.len(), 2, "both nodes' workers ran some of the activities: {ran_on:?}");
}

/// An activity that finishes while its node shuts down commits its result without locking
/// the instance for that node: a new node runs the next turn at once, not after the 30 s
/// orchestration lock timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_during_shutdown_leaves_the_instance_to_the_next_node() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("stop.db").display());
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    let slow = || {
        ActivityRegistry::builder()
            .register("Double", |_ctx: ActivityContext, n: String| async move {
                tokio::time::sleep(Duration::from_millis(400)).await;
                let n: u64 = n.parse().map_err(|e| ActivityError::non_retryable(format!("{e}")))?;
                Ok((n * 2).to_string())
            })
            .build()
    };
    let rt = Runtime::start_with_store(store.clone(), slow(), registries().1).await;
    let client = Client::new(store.clone());
    client.start_orchestration("chain", "Chain", "1").await.unwrap();
    // Shut down while the first activity runs: shutdown waits for it and its commit.
    tokio::time::sleep(Duration::from_millis(150)).await;
    rt.shutdown(None).await;
    let rt = Runtime::start_with_store(store.clone(), slow(), registries().1).await;
    let status = client.wait_for_orchestration("chain", Duration::from_secs(10)).await.unwrap();
    assert_eq!(status, OrchestrationStatus::Completed { output: "32".into() });
    rt.shutdown(None).await;
}

/// Blocking activities that started, per instance; the gate the test opens to end them.
static BLOCKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
static GATE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A node with two worker slots runs two activities at once whatever path each took: one
/// handed over by the turn, fetched by an idle worker, or fetched ahead by a worker that is
/// busy. Work fetched ahead goes to the node's backlog, where the idle worker takes it; it
/// never waits behind the long activity of the worker that fetched it. Each round races
/// the paths anew, so the rounds cover their interleavings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_fetched_ahead_never_waits_behind_a_long_activity() {
    let activities = ActivityRegistry::builder()
        .register("Block", |ctx: ActivityContext, _input: String| async move {
            let gate = GATE.notified();
            BLOCKED.lock().unwrap().push(ctx.instance_id().to_string());
            gate.await;
            Ok("done".to_string())
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Pair", |ctx: OrchestrationContext, _input: String| async move {
            let (a, b) =
                ctx.join2(ctx.schedule_activity("Block", "a"), ctx.schedule_activity("Block", "b")).await;
            Ok(format!("{}{}", a?, b?))
        })
        .build();
    let store: Arc<dyn Provider> = Arc::new(SqliteProvider::in_memory().await.unwrap());
    let options = RuntimeOptions {
        worker_concurrency: 2,
        dispatcher_poll_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let client = Client::new(store.clone());
    for round in 0..60 {
        // A fresh node each round, the instance started at once: its workers may still be
        // on their first fetch, idle, or anywhere between when the turn commits.
        let rt = Runtime::start_with_options(
            store.clone(),
            activities.clone(),
            orchestrations.clone(),
            options.clone(),
        )
        .await;
        let id = format!("pair-{round}");
        client.start_orchestration(&id, "Pair", "").await.unwrap();
        let both = async {
            while BLOCKED.lock().unwrap().iter().filter(|i| **i == id).count() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), both).await.is_err() {
            panic!("round {round}: one activity waited while a worker slot was free");
        }
        GATE.notify_waiters();
        let status = client.wait_for_orchestration(&id, Duration::from_secs(10)).await.unwrap();
        assert!(matches!(status, OrchestrationStatus::Completed { .. }), "{status:?}");
        rt.shutdown(None).await;
    }
}

/// Waits for `Sleepy` (one 600 ms activity) on `inner`; returns the status reads the wait took.
async fn status_reads_of_a_wait(inner: Arc<dyn Provider>) -> usize {
    let counts = Arc::new(Counts::default());
    let store: Arc<dyn Provider> =
        Arc::new(Counting { inner, counts: counts.clone(), no_lock_on_complete: false });
    let activities = ActivityRegistry::builder()
        .register("Nap", |_ctx: ActivityContext, _input: String| async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok("rested".to_string())
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("Sleepy", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_activity("Nap", "").await?)
        })
        .build();
    let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store.clone());
    client.start_orchestration("sleepy", "Sleepy", "").await.unwrap();
    let before = counts.status_reads.load(Ordering::SeqCst);
    let status = client.wait_for_orchestration("sleepy", Duration::from_secs(10)).await.unwrap();
    let reads = counts.status_reads.load(Ordering::SeqCst) - before;
    assert_eq!(status, OrchestrationStatus::Completed { output: "rested".into() });
    rt.shutdown(None).await;
    reads
}

/// A store whose finish notices reach the client from every writer (here: a store in
/// memory, which no other process can open) is read once by a waiting client, which then
/// waits for the notice; a store file other processes may share is still polled, so an
/// instance finished elsewhere is seen within the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_client_reads_the_store_on_notices_where_they_cover_every_writer() {
    let memory: Arc<dyn Provider> = Arc::new(SqliteProvider::in_memory().await.unwrap());
    assert!(memory.notifiers().unwrap().sees_every_writer());
    let reads = status_reads_of_a_wait(memory).await;
    assert_eq!(reads, 1, "the first read, then the finish notice with the record");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("shared.db").display());
    let file: Arc<dyn Provider> = Arc::new(SqliteProvider::new(&url, None).await.unwrap());
    assert!(!file.notifiers().unwrap().sees_every_writer());
    let reads = status_reads_of_a_wait(file).await;
    assert!(reads >= 3, "a shared file is polled while the instance runs ({reads} reads)");
}
