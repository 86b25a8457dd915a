//! The management calls on PostgreSQL: each opens a read transaction (one snapshot) or the
//! write transaction and runs the shared statements (`provider::sql::management`) in it.

use super::transfer::Tx;
use super::*;
use crate::provider::sql::management as shared;

impl PostgresProvider {
    /// Runs `f` in a read transaction (one consistent snapshot).
    async fn read<R>(
        &self,
        f: impl AsyncFnOnce(&mut Tx<'_>) -> Result<R, ProviderError>,
    ) -> Result<R, ProviderError> {
        let mut tx = self.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        let out = f(&mut Tx(&mut tx)).await?;
        tx.rollback().await.map_err(storage)?;
        Ok(out)
    }

    /// Runs `f` in a read-committed transaction and commits it; rows it must hold are
    /// locked by its statements (`FOR UPDATE`), so a turn commit of the same instance
    /// waits for it or it for the commit.
    async fn write<R>(
        &self,
        f: impl AsyncFnOnce(&mut Tx<'_>) -> Result<R, ProviderError>,
    ) -> Result<R, ProviderError> {
        let mut tx = self.begin().await?;
        let out = f(&mut Tx(&mut tx)).await?;
        tx.commit().await.map_err(storage)?;
        Ok(out)
    }

    pub(super) async fn list_page(
        &self,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<InstancePage, ProviderError> {
        self.read(async |tx| shared::list_page(tx, filter, page).await).await
    }

    pub(super) async fn count(&self, filter: &InstanceFilter) -> Result<u64, ProviderError> {
        self.read(async |tx| shared::count(tx, filter).await).await
    }

    pub(super) async fn count_by_state(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<StateCount>, ProviderError> {
        self.read(async |tx| shared::count_by_state(tx, filter).await).await
    }

    pub(super) async fn describe(
        &self,
        instance: &str,
    ) -> Result<Option<InstanceDescription>, ProviderError> {
        let now = crate::now_ms();
        self.read(async |tx| shared::describe(tx, instance, now).await).await
    }

    pub(super) async fn history_page(
        &self,
        instance: &str,
        execution_id: Option<u64>,
        after_event_id: u64,
        limit: u32,
    ) -> Result<HistoryPage, ProviderError> {
        self.read(async |tx| shared::history_page(tx, instance, execution_id, after_event_id, limit).await)
            .await
    }

    pub(super) async fn delete_tree(
        &self,
        instance: &str,
        force: bool,
    ) -> Result<Vec<String>, ProviderError> {
        self.write(async |tx| shared::delete_tree(tx, instance, force).await).await
    }

    pub(super) async fn delete_batch(
        &self,
        filter: &InstanceFilter,
        after: Option<&InstanceCursor>,
        max: u32,
    ) -> Result<DeleteBatch, ProviderError> {
        self.write(async |tx| shared::delete_batch(tx, filter, after, max).await).await
    }

    pub(super) async fn prune(&self, instance: &str, options: &PruneOptions) -> Result<u64, ProviderError> {
        self.write(async |tx| shared::prune(tx, instance, options).await).await
    }

    pub(super) async fn terminate(
        &self,
        instance: &str,
        reason: &str,
    ) -> Result<TerminateOutcome, ProviderError> {
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        let done = shared::terminate(&mut Tx(&mut tx), instance, reason, now).await?;
        let mut wake_ups = Vec::new();
        if done.parent_notified.is_some() {
            wake_ups.push(orchestrator_wake(&self.origin, None));
        }
        if let TerminateOutcome::Terminated(ids) = &done.outcome {
            wake_ups.extend(ids.iter().map(|id| finished_wake(id)));
        }
        tx.commit().await.map_err(storage)?;
        if done.parent_notified.is_some() {
            self.notifiers.wake_orchestrator_at(None);
        }
        if let TerminateOutcome::Terminated(ids) = &done.outcome {
            for id in ids {
                let _ = self.notifiers.finished.send(Finished::id_only(id.clone()));
            }
        }
        self.send_wakeups(wake_ups).await;
        Ok(done.outcome)
    }

    pub(super) async fn summary(&self, live_only: bool) -> Result<StoreSummary, ProviderError> {
        let now = crate::now_ms();
        self.read(async |tx| shared::summary(tx, now, live_only).await).await
    }

    pub(super) async fn write_worker(&self, record: &WorkerRecord) -> Result<(), ProviderError> {
        self.write(async |tx| shared::record_worker(tx, record).await).await
    }

    pub(super) async fn delete_worker(&self, worker_id: &str) -> Result<bool, ProviderError> {
        self.write(async |tx| shared::remove_worker(tx, worker_id).await).await
    }

    pub(super) async fn worker_records(&self) -> Result<Vec<WorkerRecord>, ProviderError> {
        self.read(async |tx| shared::list_workers(tx).await).await
    }

    /// The plans the database chooses for a listing page and a count with `filter`
    /// (`EXPLAIN` of the statements the management calls run), so an operator can
    /// check that a filter is served by an index on a large store.
    ///
    /// ```no_run
    /// # async fn demo(store: duroxide::PostgresProvider) -> Result<(), duroxide::ProviderError> {
    /// use duroxide::provider::{InstanceFilter, InstanceState};
    /// let failed = InstanceFilter::default().state(InstanceState::Failed);
    /// for q in store.management_query_plans(&failed).await? {
    ///     println!("{}: {}", q.query, q.plan.join(" / "));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn management_query_plans(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<QueryPlan>, ProviderError> {
        self.read(async |tx| shared::plans(tx, "EXPLAIN", "QUERY PLAN", filter).await).await
    }
}
