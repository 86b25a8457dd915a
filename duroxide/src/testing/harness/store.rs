//! The store wrapper of a [`TestHarness`](super::TestHarness): it holds the timers that
//! turns create until the virtual clock reaches them, and tells when the store is quiet.
//!
//! A turn commits a timer as a message that becomes visible at its due time. Stores compare
//! that time with the system clock, which a virtual clock has left behind (or not reached):
//! so the wrapper takes delayed messages out of every commit and keeps them in memory,
//! and the harness hands each to the store, visible at once, when virtual time reaches it.
//! Everything else passes through unchanged.

use crate::history::Event;
use crate::provider::{
    ActivityWorkItem, Attempt, BlockedInstance, CachedLookup, ExecutionRecord, FetchFilter, InstanceRecord,
    InstanceSnapshot, LockAfterComplete, Notifiers, OrchestrationItem, OutboundMessage, Provider,
    ProviderError, TurnCommit, VersionCount, WorkerIdentity,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A timer a turn committed, waiting for virtual time to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTimer {
    /// The instance it is for.
    pub instance: String,
    /// When it fires (virtual ms since the epoch).
    pub fire_at_ms: u64,
    /// The message it delivers.
    message: OutboundMessage,
    /// Commit order, so timers due at the same time fire in the order they were created.
    seq: u64,
}

/// The harness's view of its store (see the module docs).
pub(crate) struct VirtualTimeStore {
    inner: Arc<dyn Provider>,
    timers: Mutex<Vec<PendingTimer>>,
    next_seq: AtomicU64,
    /// Commits begun and ended: a quiet store read while a commit runs may miss timers
    /// the commit is about to hold, so such a reading does not count.
    commits_begun: AtomicU64,
    commits_ended: AtomicU64,
}

/// Counts a commit as ended even when its future is dropped half-way.
struct CommitEnds<'a>(&'a AtomicU64);

impl Drop for CommitEnds<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl VirtualTimeStore {
    pub(crate) fn new(inner: Arc<dyn Provider>) -> Self {
        Self {
            inner,
            timers: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(0),
            commits_begun: AtomicU64::new(0),
            commits_ended: AtomicU64::new(0),
        }
    }

    /// Timers not yet fired, earliest first.
    pub(crate) fn pending_timers(&self) -> Vec<PendingTimer> {
        let mut timers = self.lock().clone();
        timers.sort_by_key(|t| (t.fire_at_ms, t.seq));
        timers
    }

    /// When the earliest held timer fires.
    pub(crate) fn next_fire_ms(&self) -> Option<u64> {
        self.lock().iter().map(|t| t.fire_at_ms).min()
    }

    /// Hands every timer due by `now_ms` to the store, visible at once, in due order.
    /// A timer of an instance deleted meanwhile is dropped (nobody can receive it).
    pub(crate) async fn fire_due(&self, now_ms: u64) -> Result<usize, ProviderError> {
        let due = {
            let mut timers = self.lock();
            let (mut due, waiting): (Vec<_>, Vec<_>) = timers.drain(..).partition(|t| t.fire_at_ms <= now_ms);
            *timers = waiting;
            due.sort_by_key(|t| (t.fire_at_ms, t.seq));
            due
        };
        let n = due.len();
        for timer in due {
            let message = OutboundMessage { visible_at_ms: None, ..timer.message };
            if let Err(e) = self.inner.enqueue_message(message).await {
                if self.inner.get_instance(&timer.instance).await?.is_some() {
                    return Err(e);
                }
                tracing::debug!(instance = %timer.instance, "timer of a deleted instance dropped");
            }
        }
        Ok(n)
    }

    /// Whether nothing can run without time passing: no message queued for any instance
    /// (no turn to run or running), and no activity queued or running except the `parked`
    /// ones that wait for virtual time. `None` when a commit ran while the store was read
    /// (ask again).
    pub(crate) async fn is_quiet(&self, parked: usize) -> Result<Option<bool>, ProviderError> {
        let begun = self.commits_begun.load(Ordering::SeqCst);
        if self.commits_ended.load(Ordering::SeqCst) != begun {
            return Ok(Some(false));
        }
        let s = self.inner.store_summary().await?;
        if self.commits_begun.load(Ordering::SeqCst) != begun {
            return Ok(None);
        }
        let total = |q: &crate::provider::QueueDepth| q.ready + q.locked + q.delayed;
        Ok(Some(total(&s.orchestrator_queue) == 0 && total(&s.activity_queue) <= parked as u64))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PendingTimer>> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

crate::provider_wrapper! {
    impl Provider for VirtualTimeStore {
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
            self.inner.fetch_orchestration_item(lock_timeout, filter).await
        }

        async fn fetch_orchestration_item_cached(
            &self,
            lock_timeout: Duration,
            filter: &FetchFilter,
            cached: &CachedLookup<'_>,
        ) -> Result<Option<OrchestrationItem>, ProviderError> {
            self.inner.fetch_orchestration_item_cached(lock_timeout, filter, cached).await
        }

        async fn fetch_orchestration_items_cached(
            &self,
            lock_timeout: Duration,
            filter: &FetchFilter,
            cached: &CachedLookup<'_>,
            max: usize,
        ) -> Result<Vec<OrchestrationItem>, ProviderError> {
            self.inner.fetch_orchestration_items_cached(lock_timeout, filter, cached, max).await
        }

        async fn commit_turn(&self, lock_token: &str, mut commit: TurnCommit) -> Result<(), ProviderError> {
            self.commits_begun.fetch_add(1, Ordering::SeqCst);
            let _ends = CommitEnds(&self.commits_ended);
            let (delayed, now): (Vec<_>, Vec<_>) =
                commit.messages.drain(..).partition(|m| m.visible_at_ms.is_some());
            commit.messages = now;
            self.inner.commit_turn(lock_token, commit).await?;
            let mut timers = self.lock();
            for message in delayed {
                timers.push(PendingTimer {
                    instance: message.instance.clone(),
                    fire_at_ms: message.visible_at_ms.unwrap_or(0),
                    message,
                    seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
                });
            }
            Ok(())
        }

        async fn abandon_orchestration_item(
            &self,
            lock_token: &str,
            delay: Option<Duration>,
            note: Option<String>,
            attempt: Attempt,
        ) -> Result<(), ProviderError> {
            self.inner.abandon_orchestration_item(lock_token, delay, note, attempt).await
        }

        async fn renew_orchestration_lock(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
            self.inner.renew_orchestration_lock(lock_token, lock_timeout).await
        }

        async fn fetch_work_item(
            &self,
            lock_timeout: Duration,
            worker: &WorkerIdentity,
        ) -> Result<Option<ActivityWorkItem>, ProviderError> {
            self.inner.fetch_work_item(lock_timeout, worker).await
        }

        async fn fetch_work_items(
            &self,
            lock_timeout: Duration,
            worker: &WorkerIdentity,
            max: usize,
        ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
            self.inner.fetch_work_items(lock_timeout, worker, max).await
        }

        async fn renew_sessions(&self, worker: &WorkerIdentity, idle_timeout: Duration) -> Result<Vec<String>, ProviderError> {
            self.inner.renew_sessions(worker, idle_timeout).await
        }

        async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
            self.inner.renew_work_item(lock_token, lock_timeout).await
        }

        async fn complete_work_item(&self, lock_token: &str, completion: OutboundMessage) -> Result<(), ProviderError> {
            self.inner.complete_work_item(lock_token, completion).await
        }

        async fn complete_work_items(&self, items: Vec<(String, OutboundMessage)>) -> Vec<Result<(), ProviderError>> {
            self.inner.complete_work_items(items).await
        }

        async fn complete_work_items_and_lock(
            &self,
            items: Vec<(String, OutboundMessage)>,
            lock: LockAfterComplete<'_>,
        ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
            self.inner.complete_work_items_and_lock(items, lock).await
        }

        async fn abandon_work_item(&self, lock_token: &str, delay: Option<Duration>) -> Result<(), ProviderError> {
            self.inner.abandon_work_item(lock_token, delay).await
        }

        async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
            self.inner.get_instance(instance).await
        }

        async fn read_history(&self, instance: &str, execution_id: Option<u64>) -> Result<Vec<Event>, ProviderError> {
            self.inner.read_history(instance, execution_id).await
        }

        async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
            self.inner.list_executions(instance).await
        }

        async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
            self.inner.list_instances().await
        }

        async fn list_blocked_instances(&self, filter: &FetchFilter, limit: u32) -> Result<Vec<BlockedInstance>, ProviderError> {
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
