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

/// A store whose next `failures` orchestration fetches fail (`usize::MAX`: all fetches,
/// activity fetches too).
struct FailingFetches {
    inner: Arc<dyn Provider>,
    failures: AtomicUsize,
}

impl FailingFetches {
    fn new(inner: Arc<dyn Provider>) -> Self {
        FailingFetches { inner, failures: AtomicUsize::new(0) }
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
    use duroxide::{Event, Provider, ProviderError};
    use std::sync::Arc;
    use std::time::Duration;

    #[async_trait::async_trait]
    impl Provider for FailingFetches {
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
            self.inner.commit_turn(lock_token, commit).await
        }
        async fn abandon_orchestration_item(
            &self,
            lock_token: &str,
            delay: Option<Duration>,
            note: Option<String>,
            count_attempt: bool,
        ) -> Result<(), ProviderError> {
            self.inner.abandon_orchestration_item(lock_token, delay, note, count_attempt).await
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
