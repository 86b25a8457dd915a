//! The `Provider` impl both stores share: each trait method forwards to the store's own
//! inherent method of the same job (`start_instance`, `commit`, `lock_ready_instances`,
//! `lock_work`, `complete_and_lock`, …), so the mapping from the contract to a store is
//! written once. What a store does lives in its own folder.

/// Implements `Provider` for `$store` by forwarding to its inherent methods. Expands where
/// the store's module imports `provider::*` (the trait's argument types).
macro_rules! provider_impl {
    ($store:ty, $kind:literal) => {
        #[async_trait::async_trait]
        impl $crate::provider::Provider for $store {
            async fn create_instance(
                &self,
                instance: &str,
                name: &str,
                version: Option<&str>,
                input: &str,
            ) -> Result<(), ProviderError> {
                self.start_instance(instance, name, version, input).await
            }

            async fn enqueue_message(&self, message: OutboundMessage) -> Result<(), ProviderError> {
                self.enqueue(message).await
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
                Ok(self.fetch_orchestration_items_cached(lock_timeout, filter, cached, 1).await?.pop())
            }

            async fn fetch_orchestration_items_cached(
                &self,
                lock_timeout: Duration,
                filter: &FetchFilter,
                cached: &CachedLookup<'_>,
                max: usize,
            ) -> Result<Vec<OrchestrationItem>, ProviderError> {
                self.lock_ready_instances(lock_timeout, filter, cached, max).await
            }

            async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError> {
                self.commit(lock_token, commit).await
            }

            async fn abandon_orchestration_item(
                &self,
                lock_token: &str,
                delay: Option<Duration>,
                note: Option<String>,
                attempt: $crate::provider::Attempt,
            ) -> Result<(), ProviderError> {
                self.abandon_instance(lock_token, delay, note, attempt).await
            }

            async fn renew_orchestration_lock(
                &self,
                lock_token: &str,
                lock_timeout: Duration,
            ) -> Result<(), ProviderError> {
                self.renew_instance_lock(lock_token, lock_timeout).await
            }

            async fn fetch_work_item(
                &self,
                lock_timeout: Duration,
                worker: &WorkerIdentity,
            ) -> Result<Option<ActivityWorkItem>, ProviderError> {
                Ok(self.fetch_work_items(lock_timeout, worker, 1).await?.pop())
            }

            async fn fetch_work_items(
                &self,
                lock_timeout: Duration,
                worker: &WorkerIdentity,
                max: usize,
            ) -> Result<Vec<ActivityWorkItem>, ProviderError> {
                if worker.tags.takes_nothing() {
                    return Ok(Vec::new());
                }
                self.lock_work(lock_timeout, worker, max).await
            }

            async fn renew_sessions(
                &self,
                worker: &WorkerIdentity,
                idle_timeout: Duration,
            ) -> Result<Vec<String>, ProviderError> {
                self.renew_worker_sessions(worker, idle_timeout).await
            }

            async fn renew_work_item(
                &self,
                lock_token: &str,
                lock_timeout: Duration,
            ) -> Result<(), ProviderError> {
                self.renew_work_lock(lock_token, lock_timeout).await
            }

            async fn complete_work_item(
                &self,
                lock_token: &str,
                completion: OutboundMessage,
            ) -> Result<(), ProviderError> {
                let mut results = self.complete_work_items(vec![(lock_token.to_string(), completion)]).await;
                results.pop().unwrap_or_else(|| Err(ProviderError::Storage("no result".into())))
            }

            async fn complete_work_items(
                &self,
                items: Vec<(String, OutboundMessage)>,
            ) -> Vec<Result<(), ProviderError>> {
                self.complete_and_lock(items, None).await.0
            }

            async fn complete_work_items_and_lock(
                &self,
                items: Vec<(String, OutboundMessage)>,
                lock: LockAfterComplete<'_>,
            ) -> (Vec<Result<(), ProviderError>>, Vec<OrchestrationItem>) {
                self.complete_and_lock(items, Some(lock)).await
            }

            async fn abandon_work_item(
                &self,
                lock_token: &str,
                delay: Option<Duration>,
            ) -> Result<(), ProviderError> {
                self.abandon_work(lock_token, delay).await
            }

            async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, ProviderError> {
                self.read_value(instance, key).await
            }

            async fn get_values(
                &self,
                instance: &str,
            ) -> Result<std::collections::BTreeMap<String, String>, ProviderError> {
                self.read_values(instance).await
            }

            async fn get_instance(&self, instance: &str) -> Result<Option<InstanceRecord>, ProviderError> {
                self.instance_record(instance).await
            }

            async fn read_history(
                &self,
                instance: &str,
                execution_id: Option<u64>,
            ) -> Result<Vec<Event>, ProviderError> {
                self.history_of(instance, execution_id).await
            }

            async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ProviderError> {
                self.executions_of(instance).await
            }

            async fn list_instances(&self) -> Result<Vec<String>, ProviderError> {
                self.instance_ids().await
            }

            async fn list_blocked_instances(
                &self,
                filter: &FetchFilter,
                limit: u32,
            ) -> Result<Vec<BlockedInstance>, ProviderError> {
                self.blocked_instances(filter, limit).await
            }

            async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
                self.version_counts(false).await
            }

            async fn count_live_instances_by_version(&self) -> Result<Vec<VersionCount>, ProviderError> {
                self.version_counts(true).await
            }

            async fn list_instances_page(
                &self,
                filter: &InstanceFilter,
                page: &PageRequest,
            ) -> Result<InstancePage, ProviderError> {
                self.list_page(filter, page).await
            }

            async fn count_instances(&self, filter: &InstanceFilter) -> Result<u64, ProviderError> {
                self.count(filter).await
            }

            async fn count_instances_by_state(
                &self,
                filter: &InstanceFilter,
            ) -> Result<Vec<StateCount>, ProviderError> {
                self.count_by_state(filter).await
            }

            async fn describe_instance(
                &self,
                instance: &str,
            ) -> Result<Option<InstanceDescription>, ProviderError> {
                self.describe(instance).await
            }

            async fn read_history_page(
                &self,
                instance: &str,
                execution_id: Option<u64>,
                after_event_id: u64,
                limit: u32,
            ) -> Result<HistoryPage, ProviderError> {
                self.history_page(instance, execution_id, after_event_id, limit).await
            }

            async fn delete_instance(
                &self,
                instance: &str,
                force: bool,
            ) -> Result<Vec<String>, ProviderError> {
                self.delete_tree(instance, force).await
            }

            async fn delete_instances(
                &self,
                filter: &InstanceFilter,
                after: Option<&InstanceCursor>,
                max: u32,
            ) -> Result<DeleteBatch, ProviderError> {
                self.delete_batch(filter, after, max).await
            }

            async fn prune_executions(
                &self,
                instance: &str,
                options: &PruneOptions,
            ) -> Result<u64, ProviderError> {
                self.prune(instance, options).await
            }

            async fn terminate_instance(
                &self,
                instance: &str,
                reason: &str,
            ) -> Result<TerminateOutcome, ProviderError> {
                self.terminate(instance, reason).await
            }

            async fn store_summary(&self) -> Result<StoreSummary, ProviderError> {
                self.summary(false).await
            }

            async fn live_summary(&self) -> Result<StoreSummary, ProviderError> {
                self.summary(true).await
            }

            async fn export_instance(&self, instance: &str) -> Result<InstanceSnapshot, ProviderError> {
                self.export(instance).await
            }

            async fn import_instance(&self, snapshot: InstanceSnapshot) -> Result<(), ProviderError> {
                self.import(snapshot).await
            }

            async fn set_status_note(&self, instance: &str, note: &str) -> Result<(), ProviderError> {
                self.write_status_note(instance, note).await
            }

            async fn record_worker(&self, record: &WorkerRecord) -> Result<(), ProviderError> {
                self.write_worker(record).await
            }

            async fn remove_worker(&self, worker_id: &str) -> Result<bool, ProviderError> {
                self.delete_worker(worker_id).await
            }

            async fn list_workers(&self) -> Result<Vec<WorkerRecord>, ProviderError> {
                self.worker_records().await
            }

            fn notifiers(&self) -> Option<Arc<Notifiers>> {
                Some(self.notifiers.clone())
            }

            fn kind(&self) -> &'static str {
                $kind
            }
        }
    };
}
pub(crate) use provider_impl;
