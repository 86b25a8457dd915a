//! Storage: the [`Provider`] trait every store implements.
//!
//! A provider keeps, per instance, the history of each execution, a queue of messages for
//! the orchestration (start, completions, timers, events, cancellation) and a queue of
//! activity work. Its central promise is [`Provider::commit_turn`]: one atomic call that
//! appends a turn's events, enqueues its work and messages, deletes the messages the turn
//! consumed and releases the instance lock. A crash before that call loses nothing: the
//! messages become visible again when the lock expires and the turn runs again.
//!
//! This file holds the trait only. The data it moves lives in `types` (records, items,
//! commits, filters, snapshots) and `messages` (queue messages), its error in `errors`,
//! in-process wake-ups in `notifiers`, the shared identifier limits in `limits` and the
//! runtimes' presence records in `workers`; all of
//! them are re-exported here, so `duroxide::provider::X` names every one. `instrumented`
//! holds the wrapper that times and traces every call of the runtime and the client.
//!
//! Implementations: [`sqlite`] (the embedded default) and `postgres` (feature `postgres`,
//! for many processes on one database). The conformance suite every provider must pass is
//! `validation` (feature `provider-test`); see `docs/providers.md`.

mod errors;
pub(crate) mod instrumented;
mod limits;
mod management;
mod messages;
mod notifiers;
mod types;
mod values;
mod workers;

#[cfg(feature = "postgres")]
pub mod postgres;
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod tags;
#[cfg(feature = "provider-test")]
pub mod validation;

pub use errors::ProviderError;
pub use limits::{
    IdentifierProblem, MAX_EVENT_NAME_BYTES, MAX_INSTANCE_ID_BYTES, MAX_NAME_BYTES, MAX_TAG_BYTES,
    check_identifier,
};
pub use management::*;
pub use messages::{OrchestratorMessage, OutboundMessage, QueueMessage, start_conflict_reply};
pub use notifiers::{Finished, Notifiers};
pub use tags::TagFilter;
pub use types::*;
pub use values::{ValueWrite, apply_value_writes, value_writes};
pub use workers::{
    GONE_AFTER_HEARTBEATS, GONE_WORKER_RETENTION_MS, GONE_WORKERS_DELETED_PER_WRITE, WorkerRecord,
};

use crate::history::Event;
use std::sync::Arc;
use std::time::Duration;

/// A durable store for histories and queues.
///
/// All methods must be safe to call concurrently from many tasks (and, for stores that
/// support it, many processes). See the module docs for the contract of `commit_turn`.
///
/// # Required methods
///
/// The methods without a default are the contract a store must implement: creating
/// instances and enqueuing messages, the orchestration turn (fetch, commit, abandon,
/// renew), activity work and sessions (fetch, renew, complete, abandon), reads for the
/// client and operators, export/import, and the runtimes' presence records. The conformance suite
/// (`provider::validation`, feature `provider-test`) checks all of them.
///
/// # Optional capabilities
///
/// The rest have defaults built on the required methods, so a minimal store is correct
/// without them; a store overrides them to be faster. The conformance suite checks them
/// whether overridden or not.
///
/// | Capability | Methods | Default |
/// |---|---|---|
/// | Cached fetch | [`fetch_orchestration_item_cached`](Self::fetch_orchestration_item_cached) | ignores the cache hint and calls `fetch_orchestration_item` (always reads history) |
/// | Batch orchestration fetch | [`fetch_orchestration_items_cached`](Self::fetch_orchestration_items_cached) | one item, from `fetch_orchestration_item_cached` |
/// | Batch activity fetch | [`fetch_work_items`](Self::fetch_work_items) | one item, from `fetch_work_item` |
/// | Batch completion | [`complete_work_items`](Self::complete_work_items) | `complete_work_item` once per item, in order |
/// | Complete and hand over the lock | [`complete_work_items_and_lock`](Self::complete_work_items_and_lock) | `complete_work_items`, locks no instance |
/// | In-process wake-ups | [`notifiers`](Self::notifiers) | `None`: dispatchers poll |
/// | Kind, for metrics and spans | [`kind`](Self::kind) | `"other"` |
///
/// Each default calls the next simpler capability rather than the required method
/// directly, so a store that overrides, say, only the cached fetch gets caching in batch
/// fetches too.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    // ---- Required: instances and their queues
    /// Creates an instance and enqueues its start message. Fails with
    /// [`ProviderError::InstanceExists`] if the id is taken.
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError>;

    /// Enqueues a message for an existing instance (events, cancellation).
    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError>;

    // ---- Required: orchestration turns (fetch, commit, abandon, renew)
    /// Locks the oldest instance with visible messages that `filter` allows and returns
    /// them with the current execution's history. Each call counts an attempt on the
    /// returned messages.
    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError>;

    /// Atomically applies a turn and releases the lock (see the module docs).
    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError>;

    /// Releases the lock without consuming the messages; they become visible again after
    /// `delay`. `note` is recorded on the instance for operators. With
    /// [`Attempt::GivenBack`] the fetch does not count toward poison.
    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        attempt: Attempt,
    ) -> Result<(), ProviderError>;

    /// Extends an orchestration lock.
    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError>;

    // ---- Required: activity work and sessions
    /// Locks the next visible activity `worker` may run: one without a session, one of a
    /// session this worker holds, or one of a free or expired session, which this worker
    /// then claims (if it holds fewer than `max_sessions`).
    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError>;

    /// Extends the leases of `worker`'s sessions and releases those idle for longer than
    /// `idle_timeout` with no activity running. Returns the released session ids.
    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError>;

    /// Extends an activity lock. Fails with [`ProviderError::Cancelled`] when the
    /// orchestration cancelled the activity, [`ProviderError::LockLost`] when it expired.
    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError>;

    /// Atomically deletes the work item and enqueues its completion for the instance.
    async fn complete_work_item(
        &self,
        lock_token: &str,
        completion: OutboundMessage,
    ) -> Result<(), ProviderError>;

    /// Releases an activity lock; the item is retried after `delay`.
    async fn abandon_work_item(&self, lock_token: &str, delay: Option<Duration>)
    -> Result<(), ProviderError>;

    // ---- Required: reads and management
    /// The instance record.
    async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError>;

    /// History of one execution (`None`: the current one).
    async fn read_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError>;

    /// All executions of an instance, oldest first.
    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError>;

    /// All instance ids, oldest first.
    async fn list_instances(&self) -> Result<Vec<String>, ProviderError>;

    /// Instances with visible, unlocked messages that `filter` rejects (at most `limit`),
    /// so a node can tell operators why they do not run.
    async fn list_blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError>;

    /// Instance counts per (name, version, state), sorted by name and version; operators
    /// use it to see when a version has no running instances left and can be retired.
    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError>;

    /// [`count_instances_by_version`](Self::count_instances_by_version) for unfinished
    /// instances only (pending and running): what a starting node checks against its
    /// registry. A store should answer from an index on the state, so the cost does not grow
    /// with finished instances; the default filters the full counts.
    async fn count_live_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        let mut counts = self.count_instances_by_version().await?;
        counts.retain(|c| !c.state.is_terminal());
        Ok(counts)
    }

    // ---- Required: management (operators, the CLI, the console)
    /// One page of the instances `filter` selects, in `page.order` (creation time, then
    /// id), starting after `page.after`. Uses an index for every filter field, so a page
    /// costs the same however many instances the store holds.
    async fn list_instances_page(
        &self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<InstancePage, ProviderError>;

    /// How many instances `filter` selects.
    async fn count_instances(&self, filter: &InstanceFilter) -> Result<u64, ProviderError>;

    /// How many instances `filter` selects, per state (states with none left out), in the
    /// order of [`InstanceState`].
    async fn count_instances_by_state(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<StateCount>, ProviderError>;

    /// Everything stored about an instance (`None`: no such instance), read in one
    /// consistent snapshot.
    async fn describe_instance(&self, instance: &str) -> Result<Option<InstanceDescription>, ProviderError>;

    /// At most `limit` events of one execution (`None`: the current one) with ids after
    /// `after_event_id` (0: from the start). Fails with
    /// [`ProviderError::InstanceNotFound`] for an unknown instance and
    /// [`ProviderError::Corrupt`] for an unreadable event.
    async fn read_history_page(
        &self,
        instance: &str,
        execution_id: Option<u64>,
        after_event_id: u64,
        limit: u32,
    ) -> Result<HistoryPage, ProviderError>;

    /// Removes an instance and its sub-orchestrations (recursively) with everything
    /// stored about them (executions, history, queued messages and timers, activity
    /// work), atomically; returns the ids removed, the instance first. Unless `force`,
    /// fails with [`ProviderError::InstanceRunning`] when any of them has not finished.
    /// A node that holds one of them for a turn loses its lock: its commit fails and
    /// writes nothing, so a deleted instance never comes back.
    async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, ProviderError>;

    /// One bounded batch of a bulk delete: removes up to `max` finished instances that
    /// `filter` selects (oldest first, after `after`), each with its sub-orchestrations, in
    /// one short transaction. Unfinished instances are never selected; a finished one with
    /// an unfinished sub-orchestration is skipped. Callers loop on
    /// [`DeleteBatch::next`]; [`Client::delete_instances`](crate::Client::delete_instances)
    /// does.
    async fn delete_instances(
        &self,
        filter: &InstanceFilter,
        after: Option<&InstanceCursor>,
        max: u32,
    ) -> Result<DeleteBatch, ProviderError>;

    /// Removes old executions of a continue-as-new instance (their rows and histories) as
    /// `options` says, never the current one; returns how many were removed.
    async fn prune_executions(&self, instance: &str, options: &PruneOptions) -> Result<u64, ProviderError>;

    /// Ends an unfinished instance now without running its code: its current execution
    /// gets an `OrchestrationFailed` event (category `Terminated`, message `reason`), its
    /// queued messages, timers and activity work are dropped, its lock is released (a turn
    /// in flight fails to commit), a waiting parent is sent the failure, and its
    /// unfinished sub-orchestrations are terminated the same way, all atomically.
    async fn terminate_instance(
        &self,
        instance: &str,
        reason: &str,
    ) -> Result<TerminateOutcome, ProviderError>;

    /// Instances per state and the depth of each queue, for health checks.
    async fn store_summary(&self) -> Result<StoreSummary, ProviderError>;

    /// [`store_summary`](Self::store_summary) with instance counts for unfinished states
    /// only (pending and running; `instances` lists just those): what a runtime samples into
    /// its gauges every few seconds. A store should answer it from indexes, so the cost
    /// follows live work, not the number of finished instances kept; the default returns
    /// the full summary.
    async fn live_summary(&self) -> Result<StoreSummary, ProviderError> {
        self.store_summary().await
    }

    // ---- Required: moving instances between stores
    /// Reads everything about an instance for moving it to another store. Stop runtimes
    /// first: work locked by a running node is exported as if unlocked.
    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError>;

    /// Recreates an exported instance (fails with [`ProviderError::InstanceExists`] if the
    /// id is taken). Running instances continue on this store.
    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError>;

    /// Records why an instance is not making progress (shown in its status while pending).
    /// Nodes call it periodically for every instance they cannot run, so a store should
    /// not rewrite a note that is already there.
    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError>;

    // ---- Required: durable values (key-value state per instance)
    // `commit_turn` keeps them: it applies the value events among a turn's new events
    // (`ValueSet`, `ValueCleared`, `ValuesCleared`, `ValuesCarried`, in order; see
    // `provider::value_writes`) to the instance's values in the same transaction, so
    // these reads never load or replay the history. Deleting an instance removes its
    // values; export and import carry them.
    /// The instance's value of `key` (`None`: no such key, or no such instance).
    async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, ProviderError>;

    /// Every value of the instance, sorted by key (empty: none, or no such instance).
    async fn get_values(
        &self,
        instance: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProviderError>;

    // ---- Required: worker presence (which runtimes run, and what they serve)
    // Each runtime writes its own record at start and on every heartbeat and removes it on
    // a graceful shutdown. A store keeps the records as written and never judges them:
    // readers decide liveness from `last_seen_ms` and `heartbeat_ms`
    // (`WorkerRecord::is_live`).
    /// Inserts or replaces (by `worker_id`) a runtime's presence record, exactly as given.
    /// In the same call, deletes at most [`GONE_WORKERS_DELETED_PER_WRITE`] records that
    /// have been gone for longer than [`GONE_WORKER_RETENTION_MS`] as of
    /// `record.last_seen_ms` (the writer's clock), so records of nodes that crashed do
    /// not pile up.
    async fn record_worker(&self, record: &WorkerRecord) -> Result<(), ProviderError>;

    /// Removes a runtime's presence record (a graceful shutdown); false when there was none.
    async fn remove_worker(&self, worker_id: &str) -> Result<bool, ProviderError>;

    /// Every presence record the store holds, live and gone, by worker id.
    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ProviderError>;

    // ---- Optional capabilities (see the table above). Each default falls back to the
    // next simpler method, so overriding any one of them keeps the others correct.
    /// Like [`fetch_orchestration_item`](Self::fetch_orchestration_item) for a node that
    /// keeps live orchestrations in memory: `cached(instance)` returns the
    /// [`CachedPosition`] (execution id and last event id) this node already holds. When it
    /// equals what is stored, the store may skip reading the history and return the item with an empty `history` (and the
    /// stored `history_len`); the node then continues from memory. The default reads it.
    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        let _ = cached;
        self.fetch_orchestration_item(lock_timeout, filter).await
    }

    /// Locks up to `max` instances, as that many calls of
    /// [`fetch_orchestration_item_cached`](Self::fetch_orchestration_item_cached) would, in
    /// one transaction where the store can (a node with several idle dispatchers then pays
    /// for one fetch). Oldest first; empty when nothing is ready. Each item has its own lock
    /// token. The default fetches one.
    async fn fetch_orchestration_items_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let _ = max;
        Ok(self.fetch_orchestration_item_cached(lock_timeout, filter, cached).await?.into_iter().collect())
    }

    /// Locks up to `max` activities, as that many calls of
    /// [`fetch_work_item`](Self::fetch_work_item) would, in one transaction where the store
    /// can. Oldest first, in the order `fetch_work_item` would return them; empty when
    /// nothing is runnable. Each item has its own lock token. The default fetches one.
    async fn fetch_work_items(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        let _ = max;
        Ok(self.fetch_work_item(lock_timeout, worker).await?.into_iter().collect())
    }

    /// Completes several work items at once (each as `complete_work_item` would), in one
    /// transaction where the store can, so completions share one durable commit. Returns one
    /// result per item, in order: a lost lock fails only its own item.
    async fn complete_work_items(
        &self,
        items: Vec<(String, OutboundMessage)>,
    ) -> Vec<Result<(), ProviderError>> {
        let mut results = Vec::with_capacity(items.len());
        for (token, completion) in items {
            results.push(self.complete_work_item(&token, completion).await);
        }
        results
    }

    /// Completes work items as [`complete_work_items`](Self::complete_work_items) does and,
    /// in the same transaction, locks up to `lock.max_instances` of the instances the
    /// completions went to (those nobody holds and that `lock.filter` allows), returning
    /// them as [`fetch_orchestration_item_cached`](Self::fetch_orchestration_item_cached)
    /// would. The runtime runs their next turn at once, without a fetch. The default locks
    /// nothing.
    async fn complete_work_items_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: LockAfterComplete<'_>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let _ = lock;
        (self.complete_work_items(items).await, Vec::new())
    }

    /// In-process wake-ups; `None` means dispatchers must poll.
    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        None
    }

    /// What kind of store this is, as the `store` label of metrics and the `store` field of
    /// spans (`"sqlite"`, `"postgres"`). A short constant: it is a label value, so it must
    /// not vary per instance or per process. A wrapper returns its inner store's kind.
    fn kind(&self) -> &'static str {
        "other"
    }
}
