//! The [`Provider`] implementation of [`FaultyProvider`]: every trait method goes through
//! the fault schedule before (and, for faults after the call, after) the wrapped store.

use super::*;

#[async_trait::async_trait]
impl Provider for FaultyProvider {
    async fn create_instance(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: &str,
    ) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::CreateInstance, self.inner.create_instance(instance, name, version, input))
            .await
    }

    async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::EnqueueMessage, self.inner.enqueue_message(message)).await
    }

    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.remember_lock(LockKind::Orchestration, lock_timeout);
        self.wrap(
            ProviderOp::FetchOrchestrationItem,
            self.inner.fetch_orchestration_item(lock_timeout, filter),
        )
        .await
    }

    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
    ) -> Result<Option<OrchestrationItem>, ProviderError> {
        self.remember_lock(LockKind::Orchestration, lock_timeout);
        self.wrap(
            ProviderOp::FetchOrchestrationItemCached,
            self.inner.fetch_orchestration_item_cached(lock_timeout, filter, cached),
        )
        .await
    }

    async fn fetch_orchestration_items_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &CachedLookup<'_>,
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        self.remember_lock(LockKind::Orchestration, lock_timeout);
        self.wrap(
            ProviderOp::FetchOrchestrationItemsCached,
            self.inner.fetch_orchestration_items_cached(lock_timeout, filter, cached, max),
        )
        .await
    }

    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::CommitTurn, self.inner.commit_turn(lock_token, commit)).await
    }

    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        attempt: Attempt,
    ) -> Result<(), ProviderError> {
        self.wrap(
            ProviderOp::AbandonOrchestrationItem,
            self.inner.abandon_orchestration_item(lock_token, delay, note, attempt),
        )
        .await
    }

    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError> {
        self.wrap(
            ProviderOp::RenewOrchestrationLock,
            self.inner.renew_orchestration_lock(lock_token, lock_timeout),
        )
        .await
    }

    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError> {
        self.remember_lock(LockKind::Activity, lock_timeout);
        self.wrap(ProviderOp::FetchWorkItem, self.inner.fetch_work_item(lock_timeout, worker)).await
    }

    async fn fetch_work_items(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
        max: usize,
    ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
        self.remember_lock(LockKind::Activity, lock_timeout);
        self.wrap(ProviderOp::FetchWorkItems, self.inner.fetch_work_items(lock_timeout, worker, max)).await
    }

    async fn renew_sessions(
        &self,
        worker: &WorkerIdentity,
        idle_timeout: Duration,
    ) -> Result<Vec<String>, ProviderError> {
        self.wrap(ProviderOp::RenewSessions, self.inner.renew_sessions(worker, idle_timeout)).await
    }

    async fn renew_work_item(&self, lock_token: &str, lock_timeout: Duration) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::RenewWorkItem, self.inner.renew_work_item(lock_token, lock_timeout)).await
    }

    async fn complete_work_item(
        &self,
        lock_token: &str,
        completion: OutboundMessage,
    ) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::CompleteWorkItem, self.inner.complete_work_item(lock_token, completion)).await
    }

    async fn complete_work_items(
        &self,
        items: Vec<(String, OutboundMessage)>,
    ) -> Vec<Result<(), ProviderError>> {
        let n = items.len();
        self.wrap_batch(ProviderOp::CompleteWorkItems, n, self.inner.complete_work_items(items)).await
    }

    async fn complete_work_items_and_lock(
        &self,
        items: Vec<(String, OutboundMessage)>,
        lock: LockAfterComplete<'_>,
    ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
        let op = ProviderOp::CompleteWorkItemsAndLock;
        self.remember_lock(LockKind::Orchestration, lock.lock_timeout);
        let n = items.len();
        let fail_after = match self.before(op).await {
            Err(e) => return (vec![Err(e); n], Vec::new()),
            Ok(fail_after) => fail_after,
        };
        let (results, locked) = self.inner.complete_work_items_and_lock(items, lock).await;
        match fail_after {
            // The instances it locked stay locked until their lock expires, as when the
            // reply of a committed transaction is lost.
            Some(call) => {
                self.record(op, call, Fault::FailedAfter);
                (vec![Err(self.error(op, call, "after")); results.len()], Vec::new())
            }
            None => (results, locked),
        }
    }

    async fn abandon_work_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
    ) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::AbandonWorkItem, self.inner.abandon_work_item(lock_token, delay)).await
    }

    async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, ProviderError> {
        self.wrap(ProviderOp::GetValue, self.inner.get_value(instance, key)).await
    }

    async fn get_values(
        &self,
        instance: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ProviderError> {
        self.wrap(ProviderOp::GetValues, self.inner.get_values(instance)).await
    }

    async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
        self.wrap(ProviderOp::GetInstance, self.inner.get_instance(instance)).await
    }

    async fn read_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ProviderError> {
        self.wrap(ProviderOp::ReadHistory, self.inner.read_history(instance, execution_id)).await
    }

    async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
        self.wrap(ProviderOp::ListExecutions, self.inner.list_executions(instance)).await
    }

    async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
        self.wrap(ProviderOp::ListInstances, self.inner.list_instances()).await
    }

    async fn list_blocked_instances(
        &self,
        filter: &FetchFilter,
        limit: u32,
    ) -> Result<Vec<BlockedInstance>, ProviderError> {
        self.wrap(ProviderOp::ListBlockedInstances, self.inner.list_blocked_instances(filter, limit)).await
    }

    async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
        self.wrap(ProviderOp::CountInstancesByVersion, self.inner.count_instances_by_version()).await
    }

    async fn list_instances_page(
        &self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<InstancePage, ProviderError> {
        self.wrap(ProviderOp::ListInstancesPage, self.inner.list_instances_page(filter, page)).await
    }

    async fn count_instances(&self, filter: &InstanceFilter) -> Result<u64, ProviderError> {
        self.wrap(ProviderOp::CountInstances, self.inner.count_instances(filter)).await
    }

    async fn count_instances_by_state(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<StateCount>, ProviderError> {
        self.wrap(ProviderOp::CountInstancesByState, self.inner.count_instances_by_state(filter)).await
    }

    async fn describe_instance(&self, instance: &str) -> Result<Option<InstanceDescription>, ProviderError> {
        self.wrap(ProviderOp::DescribeInstance, self.inner.describe_instance(instance)).await
    }

    async fn read_history_page(
        &self,
        instance: &str,
        execution_id: Option<u64>,
        after_event_id: u64,
        limit: u32,
    ) -> Result<HistoryPage, ProviderError> {
        let call = self.inner.read_history_page(instance, execution_id, after_event_id, limit);
        self.wrap(ProviderOp::ReadHistoryPage, call).await
    }

    async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, ProviderError> {
        self.wrap(ProviderOp::DeleteInstance, self.inner.delete_instance(instance, force)).await
    }

    async fn delete_instances(
        &self,
        filter: &InstanceFilter,
        after: Option<&InstanceCursor>,
        max: u32,
    ) -> Result<DeleteBatch, ProviderError> {
        self.wrap(ProviderOp::DeleteInstances, self.inner.delete_instances(filter, after, max)).await
    }

    async fn prune_executions(&self, instance: &str, options: &PruneOptions) -> Result<u64, ProviderError> {
        self.wrap(ProviderOp::PruneExecutions, self.inner.prune_executions(instance, options)).await
    }

    async fn terminate_instance(
        &self,
        instance: &str,
        reason: &str,
    ) -> Result<TerminateOutcome, ProviderError> {
        self.wrap(ProviderOp::TerminateInstance, self.inner.terminate_instance(instance, reason)).await
    }

    async fn store_summary(&self) -> Result<StoreSummary, ProviderError> {
        self.wrap(ProviderOp::StoreSummary, self.inner.store_summary()).await
    }

    async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
        self.wrap(ProviderOp::ExportInstance, self.inner.export_instance(instance)).await
    }

    async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::ImportInstance, self.inner.import_instance(snapshot)).await
    }

    async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::SetStatusNote, self.inner.set_status_note(instance, note)).await
    }

    async fn record_worker(&self, record: &WorkerRecord) -> Result<(), ProviderError> {
        self.wrap(ProviderOp::RecordWorker, self.inner.record_worker(record)).await
    }

    async fn remove_worker(&self, worker_id: &str) -> Result<bool, ProviderError> {
        self.wrap(ProviderOp::RemoveWorker, self.inner.remove_worker(worker_id)).await
    }

    async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ProviderError> {
        self.wrap(ProviderOp::ListWorkers, self.inner.list_workers()).await
    }

    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        self.inner.notifiers()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
