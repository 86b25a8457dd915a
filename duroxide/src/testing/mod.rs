//! What users need to test their own orchestrations.
//!
//! - [`TestHarness`] runs orchestrations in-process on a private in-memory store, on a
//!   [`VirtualClock`]: durable timers fire as soon as nothing else can run (a 30-day
//!   timeout completes in milliseconds), `ctx.utc_now()` reads the virtual time, and tests
//!   move time by hand ([`TestHarness::advance`]) to raise events or cancel at a chosen
//!   moment. Activities can be replaced by mocks ([`ActivityMock`], [`TypedActivityMock`])
//!   that record their inputs. See `docs/testing.md`.
//! - [`replay_history`] replays a recorded history against the code you have now and fails
//!   with the nondeterminism error if the code would no longer produce it: record histories
//!   of real instances (`duroxide history ID --json > ID.json`, or
//!   [`crate::Client::export_history_json`]), keep them as fixtures, and replay them in CI
//!   ([`replay_histories_in`]) so a change that would break running instances fails a test
//!   instead of production.
//! - [`faults`] wraps any store in a [`FaultyProvider`] that injects seeded failures,
//!   delays and lost locks, to test that the runtime (or your own store) survives them.

pub mod faults;
mod harness;
mod replay;

pub use faults::{FaultConfig, FaultyProvider};
pub use harness::{
    ActivityMock, HarnessError, PendingTimer, TestHarness, TestHarnessBuilder, TypedActivityMock,
    VirtualClock,
};
pub use replay::{
    FolderReplay, FolderReplayError, ReplayCheckError, ReplayReport, replay_histories_in, replay_history,
    replay_history_file, replay_history_json,
};

/// Implements [`Provider`](crate::provider::Provider) for a wrapper that intercepts some
/// calls: the methods written in the block, plus the management methods
/// (`list_instances_page` … `store_summary`, the durable values and the presence records)
/// forwarded unchanged to the field named after
/// `forward_management_to`, so a test wrapper of the dispatch path need not spell them out.
/// [`Provider::kind`](crate::Provider::kind) is forwarded too.
/// The shape (the wrapper's own methods elided; `duroxide/tests/dispatch_paths.rs` has a
/// complete one):
///
/// ```text
/// duroxide::provider_wrapper! {
///     impl Provider for Counting {
///         forward_management_to: inner;
///         async fn create_instance(&self, ...) -> Result<(), ProviderError> { ... }
///         // ... every other method this wrapper intercepts or forwards ...
///     }
/// }
/// ```
#[macro_export]
macro_rules! provider_wrapper {
    (impl Provider for $ty:ty { forward_management_to: $inner:ident; $($body:tt)* }) => {
        #[$crate::__private::async_trait]
        impl $crate::provider::Provider for $ty {
        $($body)*
        async fn list_instances_page(
            &self,
            filter: &$crate::provider::InstanceFilter,
            page: &$crate::provider::PageRequest,
        ) -> Result<$crate::provider::InstancePage, $crate::ProviderError> {
            self.$inner.list_instances_page(filter, page).await
        }
        async fn count_instances(&self, filter: &$crate::provider::InstanceFilter) -> Result<u64, $crate::ProviderError> {
            self.$inner.count_instances(filter).await
        }
        async fn count_instances_by_state(
            &self,
            filter: &$crate::provider::InstanceFilter,
        ) -> Result<Vec<$crate::provider::StateCount>, $crate::ProviderError> {
            self.$inner.count_instances_by_state(filter).await
        }
        async fn describe_instance(
            &self,
            instance: &str,
        ) -> Result<Option<$crate::provider::InstanceDescription>, $crate::ProviderError> {
            self.$inner.describe_instance(instance).await
        }
        async fn read_history_page(
            &self,
            instance: &str,
            execution_id: Option<u64>,
            after_event_id: u64,
            limit: u32,
        ) -> Result<$crate::provider::HistoryPage, $crate::ProviderError> {
            self.$inner.read_history_page(instance, execution_id, after_event_id, limit).await
        }
        async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, $crate::ProviderError> {
            self.$inner.delete_instance(instance, force).await
        }
        async fn delete_instances(
            &self,
            filter: &$crate::provider::InstanceFilter,
            after: Option<&$crate::provider::InstanceCursor>,
            max: u32,
        ) -> Result<$crate::provider::DeleteBatch, $crate::ProviderError> {
            self.$inner.delete_instances(filter, after, max).await
        }
        async fn prune_executions(
            &self,
            instance: &str,
            options: &$crate::provider::PruneOptions,
        ) -> Result<u64, $crate::ProviderError> {
            self.$inner.prune_executions(instance, options).await
        }
        async fn terminate_instance(
            &self,
            instance: &str,
            reason: &str,
        ) -> Result<$crate::provider::TerminateOutcome, $crate::ProviderError> {
            self.$inner.terminate_instance(instance, reason).await
        }
        async fn store_summary(&self) -> Result<$crate::provider::StoreSummary, $crate::ProviderError> {
            self.$inner.store_summary().await
        }
        async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, $crate::ProviderError> {
            self.$inner.get_value(instance, key).await
        }
        async fn get_values(
            &self,
            instance: &str,
        ) -> Result<::std::collections::BTreeMap<String, String>, $crate::ProviderError> {
            self.$inner.get_values(instance).await
        }
        async fn record_worker(
            &self,
            record: &$crate::provider::WorkerRecord,
        ) -> Result<(), $crate::ProviderError> {
            self.$inner.record_worker(record).await
        }
        async fn remove_worker(&self, worker_id: &str) -> Result<bool, $crate::ProviderError> {
            self.$inner.remove_worker(worker_id).await
        }
        async fn list_workers(&self) -> Result<Vec<$crate::provider::WorkerRecord>, $crate::ProviderError> {
            self.$inner.list_workers().await
        }
        fn kind(&self) -> &'static str {
            self.$inner.kind()
        }
        }
    };
}
