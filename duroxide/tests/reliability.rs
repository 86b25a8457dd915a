//! Regressions for the runtime's reliability guarantees: locks held as long as work needs
//! them, bounded retries of commits that always fail, prompt shutdown, and a cache that
//! notices when the stored history changed under it.
mod common;

use common::assert_clean_history;
use duroxide::prelude::*;
use duroxide::{Provider, ProviderError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `instances` one-activity orchestrations whose activity takes `run` under an
/// activity lock of `lock` on one node with two workers; returns how often each activity
/// ran, by instance.
async fn run_long_activities(
    ts: common::TestStore,
    instances: usize,
    lock: Duration,
    run: Duration,
) -> HashMap<String, usize> {
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counted = runs.clone();
    let activities = ActivityRegistry::builder()
        .register("Long", move |ctx: ActivityContext, _input: String| {
            let counted = counted.clone();
            async move {
                *counted.lock().unwrap().entry(ctx.instance_id().to_string()).or_default() += 1;
                tokio::time::sleep(run).await;
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
        activity_lock_timeout: lock,
        max_attempts: 4,
        ..ts.options.clone()
    };
    let rt = Runtime::start_with_options(ts.store.clone(), activities, orchestrations, options).await;
    let client = Client::new(ts.store.clone());
    for i in 0..instances {
        client.start_orchestration(&format!("long-{i}"), "OneLong", "x").await.unwrap();
    }
    for i in 0..instances {
        let id = format!("long-{i}");
        let status = client.wait_for_orchestration(&id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(status, OrchestrationStatus::Completed { output: "done".into() }, "{id}");
        assert_clean_history(&client.read_execution_history(&id, None).await.unwrap());
    }
    rt.shutdown(None).await;
    runs.lock().unwrap().clone()
}

// Activities that run longer than the activity lock: with two workers and six instances,
// each worker holds one activity ahead while it runs another. The held item's lock must be
// renewed from the moment it was locked, or the other worker takes it once it lapses and
// the two keep stealing each other's items until the attempts run out.
on_both_stores!(activities_longer_than_their_lock_run_once, |ts: common::TestStore| async move {
    let runs = run_long_activities(ts, 6, Duration::from_millis(600), Duration::from_millis(1000)).await;
    assert_eq!(runs.len(), 6, "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "each activity runs exactly once: {runs:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_while_the_store_keeps_failing() {
    let ts = common::memory_store().await;
    let failing = Arc::new(FailingFetches::new(ts.store.clone()));
    failing.fail_always();
    let options =
        RuntimeOptions { dispatcher_poll_interval: Duration::from_millis(20), ..ts.options.clone() };
    let rt = Runtime::start_with_options(
        failing.clone(),
        ActivityRegistry::builder().build(),
        OrchestrationRegistry::builder().build(),
        options,
    )
    .await;
    // Long enough for the error backoff to grow to its cap.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let started = Instant::now();
    rt.shutdown(None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?} while fetches were failing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_error_backoff_resets_once_the_store_answers() {
    let ts = common::memory_store().await;
    let failing = Arc::new(FailingFetches::new(ts.store.clone()));
    let orchestrations = OrchestrationRegistry::builder()
        .register("Echo", |_ctx: OrchestrationContext, input: String| async move { Ok(input) })
        .build();
    // One dispatcher, so the one that meets the next error is the one that must run the
    // instance.
    let options = RuntimeOptions { orchestration_concurrency: 1, ..ts.options.clone() };
    let rt = Runtime::start_with_options(
        failing.clone(),
        ActivityRegistry::builder().build(),
        orchestrations,
        options,
    )
    .await;
    // The backoff grows (to 800 ms) while every fetch fails ...
    failing.fail_always();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // ... the store answers again and the dispatcher idles for a while ...
    failing.fail_next(0);
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // ... then one more fetch fails (as stores do now and then) just before an instance
    // starts: it must run at once, not after a backoff left over from the long outage.
    failing.fail_next(1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = Client::new(failing.clone());
    let started = Instant::now();
    client.start_orchestration("echo", "Echo", "hi").await.unwrap();
    let status = client.wait_for_orchestration("echo", Duration::from_secs(10)).await.unwrap();
    assert_eq!(status, OrchestrationStatus::Completed { output: "hi".into() });
    let took = started.elapsed();
    rt.shutdown(None).await;
    assert!(took < Duration::from_secs(1), "the instance waited {took:?} after the store recovered");
}

/// An orchestration that waits for "Go" and then runs an activity.
fn waiting_registries() -> (ActivityRegistry, OrchestrationRegistry) {
    let activities = ActivityRegistry::builder()
        .register("Echo", |_ctx: ActivityContext, input: String| async move { Ok(input) })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("WaitThenEcho", |ctx: OrchestrationContext, input: String| async move {
            let first = ctx.schedule_activity("Echo", input).await?;
            let go = ctx.schedule_wait("Go").await;
            Ok(format!("{first}+{go}"))
        })
        .build();
    (activities, orchestrations)
}

/// Starts `id` on a runtime over the file store `ts` and waits until it waits for "Go".
async fn start_waiting(ts: &common::TestStore, id: &str) -> (Runtime, Client) {
    let (activities, orchestrations) = waiting_registries();
    let options = RuntimeOptions { max_attempts: 3, ..ts.options.clone() };
    let rt = Runtime::start_with_options(ts.store.clone(), activities, orchestrations, options).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration(id, "WaitThenEcho", "x").await.unwrap();
    common::wait_until_subscribed(&client, id).await;
    (rt, client)
}

/// Runs one SQL statement on the file store's database from outside the provider.
async fn tamper(ts: &common::TestStore, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&ts.url).await.unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap();
    assert!(done.rows_affected() > 0, "{sql} changed nothing");
    conn.close().await.unwrap();
}

/// Waits for `id` to end; it must fail (not complete) with a message containing `expected`.
async fn assert_fails(client: &Client, id: &str, expected: &str) -> ErrorDetails {
    let status = client.wait_for_orchestration(id, Duration::from_secs(30)).await.unwrap();
    match status {
        OrchestrationStatus::Failed { details } => {
            assert!(details.message.contains(expected), "{id} failed, but with: {}", details.message);
            details
        }
        other => panic!("{id} must fail, it ended {other:?}"),
    }
}

// The first history row removed: replay finds no start event and fails the instance. The
// failure is written after the last stored id (the row count pointed at a taken id, so the
// commit failed the same way forever), and it ends the instance, visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_missing_its_first_row_fails_the_instance() {
    let mut ts = common::uncached(common::file_store().await);
    let _dir = ts.dir.take();
    let (rt, client) = start_waiting(&ts, "gap").await;
    tamper(&ts, "DELETE FROM history WHERE instance_id = 'gap' AND event_id = 1").await;
    client.raise_event("gap", "Go", "now").await.unwrap();
    let details = assert_fails(&client, "gap", "corrupt history").await;
    assert_eq!(details.category, duroxide::ErrorCategory::CorruptHistory, "{details:?}");
    rt.shutdown(None).await;
}

// A history row made unreadable while the instance is held in this node's cache: the
// cached turn must not carry on as if nothing happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_instance_notices_its_history_was_corrupted() {
    let mut ts = common::file_store().await;
    let _dir = ts.dir.take();
    assert!(ts.options.instance_cache_size > 0);
    let (rt, client) = start_waiting(&ts, "rot").await;
    tamper(&ts, "UPDATE history SET data = '{not json' WHERE instance_id = 'rot' AND event_id = 2").await;
    client.raise_event("rot", "Go", "now").await.unwrap();
    assert_fails(&client, "rot", "event 2").await;
    rt.shutdown(None).await;
}

// A commit that fails the same way every time (here: any turn that writes events) is not
// retried forever: after max_attempts the instance fails as poison, and the failure is
// recorded on the instance even though it cannot be written to the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_always_fails_ends_as_poison() {
    let ts = common::memory_store().await;
    let faulty = Arc::new(FailingFetches::new(ts.store.clone()));
    let (activities, orchestrations) = waiting_registries();
    let options = RuntimeOptions { max_attempts: 3, ..ts.options.clone() };
    let rt = Runtime::start_with_options(faulty.clone(), activities, orchestrations, options).await;
    let client = Client::new(faulty.clone());
    faulty.reject_event_commits.store(true, Ordering::SeqCst);
    client.start_orchestration("stuck", "WaitThenEcho", "x").await.unwrap();
    let status = client.wait_for_orchestration("stuck", Duration::from_secs(30)).await.unwrap();
    rt.shutdown(None).await;
    match status {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, duroxide::ErrorCategory::Poison, "{details:?}");
            assert!(details.message.contains("more than max_attempts = 3"), "{}", details.message);
        }
        other => panic!("the instance must fail as poison, it ended {other:?}"),
    }
}

// A store that refuses a turn's changes for good (invalid input) would refuse every retry:
// the instance fails at once with the store's reason instead of after max_attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_the_store_refuses_fails_the_instance_at_once() {
    let ts = common::memory_store().await;
    let faulty = Arc::new(FailingFetches::new(ts.store.clone()));
    let (activities, orchestrations) = waiting_registries();
    let options = RuntimeOptions { max_attempts: 50, ..ts.options.clone() };
    let rt = Runtime::start_with_options(faulty.clone(), activities, orchestrations, options).await;
    let client = Client::new(faulty.clone());
    faulty.refuse_activity_commits.store(true, Ordering::SeqCst);
    client.start_orchestration("refused", "WaitThenEcho", "x").await.unwrap();
    let status = client.wait_for_orchestration("refused", Duration::from_secs(10)).await.unwrap();
    rt.shutdown(None).await;
    match status {
        OrchestrationStatus::Failed { details } => {
            assert_eq!(details.category, duroxide::ErrorCategory::Configuration, "{details:?}");
            assert!(details.message.contains("activity input refused"), "{}", details.message);
        }
        other => panic!("the instance must fail, it ended {other:?}"),
    }
}

// A started instance whose orchestration no node has registered can still be cancelled:
// cancelling a never-started instance needs none of its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_instance_of_an_unregistered_orchestration_can_be_cancelled() {
    let ts = common::memory_store().await;
    let rt = common::start_runtime(
        &ts,
        ActivityRegistry::builder().build(),
        OrchestrationRegistry::builder().build(),
    )
    .await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("orphan", "NobodyHasMe", "x").await.unwrap();
    client.cancel_instance("orphan", "not needed").await.unwrap();
    let status = client.wait_for_orchestration("orphan", Duration::from_secs(10)).await.unwrap();
    rt.shutdown(None).await;
    assert_eq!(status, OrchestrationStatus::Cancelled { reason: "not needed".into() });
}

/// A store whose next `failures` orchestration fetches fail (`usize::MAX`: all fetches,
/// activity fetches too).
struct FailingFetches {
    inner: Arc<dyn Provider>,
    failures: AtomicUsize,
    /// Turn commits that append events fail (as a store would whose history cannot take
    /// them).
    reject_event_commits: std::sync::atomic::AtomicBool,
    /// Turn commits that schedule activities are refused as invalid input (as PostgreSQL
    /// refuses a NUL byte), a refusal no retry can change.
    refuse_activity_commits: std::sync::atomic::AtomicBool,
}

impl FailingFetches {
    fn new(inner: Arc<dyn Provider>) -> Self {
        FailingFetches {
            inner,
            failures: AtomicUsize::new(0),
            reject_event_commits: false.into(),
            refuse_activity_commits: false.into(),
        }
    }

    fn fail_always(&self) {
        self.failures.store(usize::MAX, Ordering::SeqCst);
    }

    fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }

    fn check_activity_fetch(&self) -> Result<(), ProviderError> {
        if self.failures.load(Ordering::SeqCst) == usize::MAX {
            return Err(ProviderError::Storage("injected fetch failure".into()));
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ProviderError> {
        let left = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            usize::MAX => Some(usize::MAX),
            n => Some(n - 1),
        });
        match left {
            Ok(_) => Err(ProviderError::Storage("injected fetch failure".into())),
            Err(_) => Ok(()),
        }
    }
}

mod failing_fetches {
    use super::FailingFetches;
    use duroxide::provider::{
        ActivityWorkItem, BlockedInstance, ExecutionRecord, FetchFilter, InstanceRecord, InstanceSnapshot,
        Notifiers, OrchestrationItem, OutboundMessage, TurnCommit, VersionCount, WorkerIdentity,
    };
    use duroxide::{Event, ProviderError};
    use std::sync::Arc;
    use std::time::Duration;

    duroxide::provider_wrapper! {
    impl Provider for FailingFetches {
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
            self.check()?;
            self.inner.fetch_orchestration_item(lock_timeout, filter).await
        }
        async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
            if self.reject_event_commits.load(std::sync::atomic::Ordering::SeqCst)
                && !commit.new_events.is_empty()
            {
                return Err(ProviderError::Storage("injected: the history takes no more events".into()));
            }
            if self.refuse_activity_commits.load(std::sync::atomic::Ordering::SeqCst)
                && !commit.activities.is_empty()
            {
                return Err(ProviderError::InvalidInput("injected: activity input refused".into()));
            }
            self.inner.commit_turn(lock_token, commit).await
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
            self.check_activity_fetch()?;
            self.inner.fetch_work_item(lock_timeout, worker).await
        }
        async fn renew_sessions(
            &self,
            worker: &WorkerIdentity,
            idle_timeout: Duration,
        ) -> Result<Vec<String>, ProviderError> {
            self.inner.renew_sessions(worker, idle_timeout).await
        }
        async fn renew_work_item(
            &self,
            lock_token: &str,
            lock_timeout: Duration,
        ) -> Result<(), ProviderError> {
            self.inner.renew_work_item(lock_token, lock_timeout).await
        }
        async fn complete_work_item(
            &self,
            lock_token: &str,
            completion: OutboundMessage,
        ) -> Result<(), ProviderError> {
            self.inner.complete_work_item(lock_token, completion).await
        }
        async fn abandon_work_item(
            &self,
            lock_token: &str,
            delay: Option<Duration>,
        ) -> Result<(), ProviderError> {
            self.inner.abandon_work_item(lock_token, delay).await
        }
        async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
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
}

// Names and ids the code chooses face the same limits as the client's: a call with one no
// store could take fails to the code, with the limit named, instead of breaking the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_ids_chosen_by_the_code_are_checked_against_the_limits() {
    let ts = common::memory_store().await;
    let orchestrations = OrchestrationRegistry::builder()
        .register("BadIds", |ctx: OrchestrationContext, _input: String| async move {
            let activity = ctx.schedule_activity("a".repeat(600), "x").await;
            let child = ctx.schedule_sub_orchestration_with_id("Child", "c".repeat(2000), "x").await;
            let nul = ctx.schedule_sub_orchestration_with_id("Child", "bad\0id", "x").await;
            let messages: Vec<String> =
                [activity, child, nul].into_iter().map(|r| r.unwrap_or_else(|e| e.message)).collect();
            Ok(messages.join("|"))
        })
        .build();
    let rt = common::start_runtime(&ts, ActivityRegistry::builder().build(), orchestrations).await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("bad-ids", "BadIds", "").await.unwrap();
    let output = common::completed(&client, "bad-ids").await;
    rt.shutdown(None).await;
    assert_eq!(
        output,
        "activity name is 600 bytes; the limit is 512 bytes|\
         sub-orchestration instance id is 2000 bytes; the limit is 1024 bytes|\
         sub-orchestration instance id contains the control character '\\0'"
    );
}

// An event raised to an instance whose orchestration no node has yet: the event is fetched
// without the held-back start message, and must wait for it, not count toward poison. Once
// a node with the code comes up, the instance runs and receives the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_an_instance_waiting_for_its_code_does_not_poison_it() {
    let ts = common::memory_store().await;
    let options = RuntimeOptions { max_attempts: 3, ..ts.options.clone() };
    let without_code = Runtime::start_with_options(
        ts.store.clone(),
        ActivityRegistry::builder().build(),
        OrchestrationRegistry::builder().build(),
        options.clone(),
    )
    .await;
    let client = Client::new(ts.store.clone());
    client.start_orchestration("early", "Later", "").await.unwrap();
    client.raise_event("early", "Go", "went").await.unwrap();
    // Many fetches of the event alone (the start is held back up to 200 ms at a time).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = client.get_orchestration_status("early").await.unwrap();
    assert!(!status.is_terminal(), "the instance must still wait for its code: {status:?}");
    without_code.shutdown(None).await;
    let orchestrations = OrchestrationRegistry::builder()
        .register("Later", |ctx: OrchestrationContext, _input: String| async move {
            Ok(ctx.schedule_wait("Go").await)
        })
        .build();
    let with_code = Runtime::start_with_options(
        ts.store.clone(),
        ActivityRegistry::builder().build(),
        orchestrations,
        options,
    )
    .await;
    assert_eq!(common::completed(&client, "early").await, "went");
    with_code.shutdown(None).await;
}
