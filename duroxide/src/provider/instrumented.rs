//! [`Instrumented`]: the wrapper the runtime and the client put around their store, so every
//! store call gets one `duroxide.store` span and one latency sample (and an error count when
//! it fails), labelled by operation and store kind.
//!
//! Every method of [`Provider`] is forwarded explicitly, the optional capabilities
//! included, so the wrapper hides nothing the store offers (its notifiers, its batch
//! fetches, its complete-and-lock). The metric names live in `runtime::metrics`.

use super::*;
use crate::history::Event;
use crate::runtime::metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A store whose calls are timed and traced. Not public: the runtime and the client wrap
/// the store they are given and hand the original back from their `store()` accessors, so a
/// store is never wrapped twice.
pub(crate) struct Instrumented {
    inner: Arc<dyn Provider>,
    /// The inner store's kind, read once (it is a constant).
    kind: &'static str,
}

impl Instrumented {
    pub(crate) fn wrap(inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        let kind = inner.kind();
        Arc::new(Instrumented { inner, kind })
    }

    fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::debug_span!("duroxide.store", store = self.kind, operation)
    }

    /// Runs one store call in its span, recording its latency and its error.
    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let start = Instant::now();
        let result = call.instrument(self.span(operation)).await;
        metrics::store_call(self.kind, operation, start.elapsed());
        if let Err(e) = &result {
            metrics::store_error(self.kind, operation, e);
        }
        result
    }

    /// Counts the failed items of a batch call (one result per item).
    fn count_item_errors(&self, operation: &'static str, results: &[Result<(), ProviderError>]) {
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            metrics::store_error(self.kind, operation, e);
        }
    }
}

#[async_trait::async_trait]
impl Provider for Instrumented {
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        self.call("create_instance", self.inner.create_instance(instance, name, version, input)).await
    }

    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        self.call("enqueue_message", self.inner.enqueue_message(message)).await
    }

    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.call("fetch_orchestration_item", self.inner.fetch_orchestration_item(lock_timeout, filter)).await
    }

    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        self.call("commit_turn", self.inner.commit_turn(lock_token, commit)).await
    }

    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        attempt: Attempt,
    ) -> Result<(), ProviderError> {
        let call = self.inner.abandon_orchestration_item(lock_token, delay, note, attempt);
        self.call("abandon_orchestration_item", call).await
    }

    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        self.call("renew_orchestration_lock", self.inner.renew_orchestration_lock(lock_token, lock_timeout))
            .await
    }

    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError> {
        self.call("fetch_work_item", self.inner.fetch_work_item(lock_timeout, worker)).await
    }

    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        self.call("renew_sessions", self.inner.renew_sessions(worker, idle_timeout)).await
    }

    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        self.call("renew_work_item", self.inner.renew_work_item(lock_token, lock_timeout)).await
    }

    async fn complete_work_item(
        &self,
        lock_token: &str,
        completion: OutboundMessage,
    ) -> Result<(), ProviderError> {
        self.call("complete_work_item", self.inner.complete_work_item(lock_token, completion)).await
    }

    async fn abandon_work_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.call("abandon_work_item", self.inner.abandon_work_item(lock_token, delay)).await
    }

    async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, ProviderError> {
        self.call("get_value", self.inner.get_value(instance, key)).await
    }

    async fn get_values(
        &self,
        instance: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProviderError> {
        self.call("get_values", self.inner.get_values(instance)).await
    }

    async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        self.call("get_instance", self.inner.get_instance(instance)).await
    }

    async fn read_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        self.call("read_history", self.inner.read_history(instance, execution_id)).await
    }

    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        self.call("list_executions", self.inner.list_executions(instance)).await
    }

    async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
        self.call("list_instances", self.inner.list_instances()).await
    }

    async fn list_blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError> {
        self.call("list_blocked_instances", self.inner.list_blocked_instances(filter, limit)).await
    }

    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        self.call("count_instances_by_version", self.inner.count_instances_by_version()).await
    }

    async fn count_live_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        self.call("count_live_instances_by_version", self.inner.count_live_instances_by_version()).await
    }

    async fn list_instances_page(
        &self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<InstancePage, ProviderError> {
        self.call("list_instances_page", self.inner.list_instances_page(filter, page)).await
    }

    async fn count_instances(&self, filter: &InstanceFilter) -> Result<u64, ProviderError> {
        self.call("count_instances", self.inner.count_instances(filter)).await
    }

    async fn count_instances_by_state(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<StateCount>, ProviderError> {
        self.call("count_instances_by_state", self.inner.count_instances_by_state(filter)).await
    }

    async fn describe_instance(&self, instance: &str) -> Result<Option<InstanceDescription>, ProviderError> {
        self.call("describe_instance", self.inner.describe_instance(instance)).await
    }

    async fn read_history_page(
        &self,
        instance: &str,
        execution_id: Option<u64>,
        after_event_id: u64,
        limit: u32,
    ) -> Result<HistoryPage, ProviderError> {
        let call = self.inner.read_history_page(instance, execution_id, after_event_id, limit);
        self.call("read_history_page", call).await
    }

    async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, ProviderError> {
        self.call("delete_instance", self.inner.delete_instance(instance, force)).await
    }

    async fn delete_instances(
        &self,
        filter: &InstanceFilter,
        after: Option<&InstanceCursor>,
        max: u32,
    ) -> Result<DeleteBatch, ProviderError> {
        self.call("delete_instances", self.inner.delete_instances(filter, after, max)).await
    }

    async fn prune_executions(&self, instance: &str, options: &PruneOptions) -> Result<u64, ProviderError> {
        self.call("prune_executions", self.inner.prune_executions(instance, options)).await
    }

    async fn terminate_instance(
        &self,
        instance: &str,
        reason: &str,
    ) -> Result<TerminateOutcome, ProviderError> {
        self.call("terminate_instance", self.inner.terminate_instance(instance, reason)).await
    }

    async fn store_summary(&self) -> Result<StoreSummary, ProviderError> {
        self.call("store_summary", self.inner.store_summary()).await
    }

    async fn live_summary(&self) -> Result<StoreSummary, ProviderError> {
        self.call("live_summary", self.inner.live_summary()).await
    }

    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        self.call("export_instance", self.inner.export_instance(instance)).await
    }

    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        self.call("import_instance", self.inner.import_instance(snapshot)).await
    }

    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        self.call("set_status_note", self.inner.set_status_note(instance, note)).await
    }

    async fn record_worker(&self, record: &WorkerRecord) -> Result<(), ProviderError> {
        self.call("record_worker", self.inner.record_worker(record)).await
    }

    async fn remove_worker(&self, worker_id: &str) -> Result<bool, ProviderError> {
        self.call("remove_worker", self.inner.remove_worker(worker_id)).await
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ProviderError> {
        self.call("list_workers", self.inner.list_workers()).await
    }

    // ---- Optional capabilities: forwarded, never left to the defaults, so the store's own
    // (faster) versions are the ones that run.
    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        let call = self.inner.fetch_orchestration_item_cached(lock_timeout, filter, cached);
        self.call("fetch_orchestration_item_cached", call).await
    }

    async fn fetch_orchestration_items_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let call = self.inner.fetch_orchestration_items_cached(lock_timeout, filter, cached, max);
        self.call("fetch_orchestration_items_cached", call).await
    }

    async fn fetch_work_items(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        self.call("fetch_work_items", self.inner.fetch_work_items(lock_timeout, worker, max)).await
    }

    async fn complete_work_items(
        &self,
        items: Vec<(String, OutboundMessage)>,
    ) -> Vec<Result<(), ProviderError>> {
        const OPERATION: &str = "complete_work_items";
        let start = Instant::now();
        let results = self.inner.complete_work_items(items).instrument(self.span(OPERATION)).await;
        metrics::store_call(self.kind, OPERATION, start.elapsed());
        self.count_item_errors(OPERATION, &results);
        results
    }

    async fn complete_work_items_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: LockAfterComplete<'_>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        const OPERATION: &str = "complete_work_items_and_lock";
        let start = Instant::now();
        let call = self.inner.complete_work_items_and_lock(items, lock);
        let (results, locked) = call.instrument(self.span(OPERATION)).await;
        metrics::store_call(self.kind, OPERATION, start.elapsed());
        self.count_item_errors(OPERATION, &results);
        (results, locked)
    }

    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        self.inner.notifiers()
    }

    fn kind(&self) -> &'static str {
        self.kind
    }
}

#[cfg(all(test, feature = "provider-test", feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::provider::sqlite::SqliteProvider;

    async fn wrapped() -> Arc<dyn Provider> {
        Instrumented::wrap(Arc::new(SqliteProvider::in_memory().await.expect("in-memory SQLite")))
    }

    /// The wrapped store passes the whole conformance suite: the wrapper changes nothing a
    /// store promises, its batch calls and wake-ups included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrapped_store_passes_the_conformance_suite() {
        let factory: crate::provider::validation::Factory = Arc::new(wrapped);
        let failures = crate::provider::validation::run_all(factory).await;
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[tokio::test]
    async fn the_wrapper_keeps_the_stores_kind_and_notifiers() {
        let store = wrapped().await;
        assert_eq!(store.kind(), "sqlite");
        assert!(store.notifiers().is_some());
    }
}
