//! The operator calls of the [`Client`]: filtered and paged listings, counts, describe,
//! paged history and its JSON export, delete (one, or in bulk by filter in bounded
//! batches), pruning of old executions, termination and the store summary. Each checks its
//! arguments, then calls the store's management method of the same name.

use super::{Client, ClientError, FinalState, OrchestrationStatus};
use crate::history::Event;
use crate::provider::{
    HistoryPage, InstanceCursor, InstanceDescription, InstanceFilter, InstancePage, InstanceState, ListOrder,
    MAX_INSTANCE_ID_BYTES, PageRequest, PruneOptions, StateCount, StoreSummary, TerminateOutcome,
};

/// The most instances one listing page may hold.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// The most events one history page may hold.
pub const MAX_HISTORY_PAGE: u32 = 10_000;

/// What a bulk delete ([`Client::delete_instances`]) removes.
///
/// ```
/// use duroxide::BulkDelete;
/// use duroxide::provider::{InstanceFilter, InstanceState};
/// // Failed instances that finished before a point in time, at most 10,000 of them.
/// let old_failures = BulkDelete::matching(
///     InstanceFilter::default().state(InstanceState::Failed).updated_before_ms(1_764_806_400_000),
/// )
/// .limit(10_000);
/// # let _ = old_failures;
/// // Every finished instance: an empty filter must be asked for explicitly.
/// let everything = BulkDelete::all();
/// # let _ = everything;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkDelete {
    /// The instances to remove (only finished ones are ever removed).
    pub filter: InstanceFilter,
    /// Most instances to remove (`None`: all that match).
    pub limit: Option<u64>,
    /// Instances per transaction (default 500), so no lock is held for long.
    pub batch_size: u32,
    /// Set by [`BulkDelete::all`]: an empty filter means "every finished instance".
    pub everything: bool,
}

impl BulkDelete {
    /// The finished instances `filter` selects. An empty filter is refused
    /// ([`ClientError::EmptyFilter`]); use [`BulkDelete::all`] for that.
    pub fn matching(filter: InstanceFilter) -> Self {
        Self { filter, limit: None, batch_size: 500, everything: false }
    }
    /// Every finished instance.
    pub fn all() -> Self {
        Self { everything: true, ..Self::matching(InstanceFilter::default()) }
    }
    /// Removes at most `n` instances.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
    /// Instances per transaction.
    pub fn batch_size(mut self, n: u32) -> Self {
        self.batch_size = n;
        self
    }
}

impl Client {
    /// One page of the instances `filter` selects, newest or oldest first. Pass the
    /// previous page's `next_cursor` as `cursor` to continue; instances created meanwhile
    /// never make a page repeat or skip one.
    ///
    /// ```no_run
    /// # async fn demo(client: duroxide::Client) -> Result<(), duroxide::ClientError> {
    /// use duroxide::provider::{InstanceFilter, InstanceState, ListOrder};
    /// let failed = InstanceFilter::default().state(InstanceState::Failed);
    /// let mut cursor = None;
    /// loop {
    ///     let page = client.list_instances_page(&failed, ListOrder::NewestFirst, 100, cursor.as_deref()).await?;
    ///     for r in &page.instances {
    ///         println!("{} {:?}", r.instance, r.error);
    ///     }
    ///     match page.next_cursor {
    ///         Some(next) => cursor = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "list_instances_page")
    )]
    pub async fn list_instances_page(
        &self,
        filter: &InstanceFilter,
        order: ListOrder,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<InstancePage, ClientError> {
        if limit == 0 || limit > MAX_PAGE_SIZE {
            return Err(ClientError::InvalidArgument(format!(
                "page size must be between 1 and {MAX_PAGE_SIZE} (was {limit})"
            )));
        }
        let after = cursor.map(InstanceCursor::parse).transpose()?;
        if let Some(c) = &after
            && c.order != order
        {
            return Err(ClientError::InvalidCursor(crate::provider::CursorError {
                cursor: cursor.unwrap_or_default().to_string(),
                reason: format!("it belongs to a listing in {:?} order, not {order:?}", c.order),
            }));
        }
        check_filter(filter)?;
        Ok(self.calls.list_instances_page(filter, &PageRequest { order, limit, after }).await?)
    }

    /// How many instances `filter` selects.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "count_instances")
    )]
    pub async fn count_instances(&self, filter: &InstanceFilter) -> Result<u64, ClientError> {
        check_filter(filter)?;
        Ok(self.calls.count_instances(filter).await?)
    }

    /// How many instances `filter` selects, per state (states with none left out).
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "count_instances_by_state")
    )]
    pub async fn count_instances_by_state(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<StateCount>, ClientError> {
        check_filter(filter)?;
        Ok(self.calls.count_instances_by_state(filter).await?)
    }

    /// Everything stored about an instance: record, executions, pending activities (with
    /// who holds them, and whether a live worker serves their tag:
    /// [`PendingActivity::served`](crate::provider::PendingActivity::served)), timers,
    /// queued messages and children.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "describe_instance", instance = %instance))]
    pub async fn describe_instance(&self, instance: &str) -> Result<InstanceDescription, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        let mut d = self
            .calls
            .describe_instance(instance)
            .await?
            .ok_or_else(|| ClientError::NotFound(instance.to_string()))?;
        self.add_served(&mut d).await?;
        Ok(d)
    }

    /// At most `limit` events of one execution (`None`: the current one) after
    /// `after_event_id` (0: from the start), for reading long histories a page at a time.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "read_history_page", instance = %instance))]
    pub async fn read_history_page(
        &self,
        instance: &str,
        execution_id: Option<u64>,
        after_event_id: u64,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        if limit == 0 || limit > MAX_HISTORY_PAGE {
            return Err(ClientError::InvalidArgument(format!(
                "history page size must be between 1 and {MAX_HISTORY_PAGE} (was {limit})"
            )));
        }
        self.check_execution(instance, execution_id).await?;
        Ok(self.calls.read_history_page(instance, execution_id, after_event_id, limit).await?)
    }

    /// The whole history of one execution (`None`: the current one), read a page at a
    /// time, as the JSON [`crate::testing::replay_history_json`] accepts unchanged.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "export_history_json", instance = %instance))]
    pub async fn export_history_json(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<String, ClientError> {
        let events = self.read_full_history(instance, execution_id).await?;
        crate::history::to_json(&events)
            .map_err(|e| ClientError::Provider(crate::provider::ProviderError::Corrupt(e.to_string())))
    }

    /// Every event of one execution, read in pages.
    async fn read_full_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ClientError> {
        let mut events = Vec::new();
        let mut after = 0;
        let mut execution = execution_id;
        loop {
            let page = self.read_history_page(instance, execution, after, 1_000).await?;
            // Stay on the execution the first page read, even if the instance continues
            // as new meanwhile.
            execution = Some(page.execution_id);
            events.extend(page.events);
            match page.next_after_event_id {
                Some(next) => after = next,
                None => return Ok(events),
            }
        }
    }

    /// Fails with [`ClientError::NotFound`] naming the execution when the instance has
    /// no such execution.
    async fn check_execution(&self, instance: &str, execution_id: Option<u64>) -> Result<(), ClientError> {
        let Some(e) = execution_id else { return Ok(()) };
        let executions = self.calls.list_executions(instance).await?;
        if executions.is_empty() && self.calls.get_instance(instance).await?.is_none() {
            return Err(ClientError::NotFound(instance.to_string()));
        }
        if !executions.iter().any(|x| x.execution_id == e) {
            return Err(ClientError::NotFound(format!("{instance} (execution {e})")));
        }
        Ok(())
    }

    /// Removes a finished instance and its sub-orchestrations with everything stored about
    /// them, atomically; returns the ids removed. An unfinished one is refused
    /// ([`ClientError::InstanceRunning`]) unless `force`, which removes it as it stands
    /// (a node running it loses its lock and writes nothing more).
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "delete_instance", instance = %instance))]
    pub async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Ok(self.calls.delete_instance(instance, force).await?)
    }

    /// Removes finished instances in bounded batches (each its own short transaction) and
    /// returns how many were removed, sub-orchestrations included. Refuses an empty filter
    /// unless [`BulkDelete::all`], and a filter on unfinished states.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "delete_instances")
    )]
    pub async fn delete_instances(&self, what: &BulkDelete) -> Result<u64, ClientError> {
        check_bulk_delete(what)?;
        let mut deleted = 0u64;
        let mut after: Option<InstanceCursor> = None;
        loop {
            let remaining = what.limit.map(|l| l.saturating_sub(deleted));
            if remaining == Some(0) {
                return Ok(deleted);
            }
            let max = remaining.map_or(what.batch_size, |r| r.min(u64::from(what.batch_size)) as u32);
            let batch = self.calls.delete_instances(&what.filter, after.as_ref(), max).await?;
            deleted += batch.deleted;
            match batch.next {
                Some(next) => after = Some(next),
                None => return Ok(deleted),
            }
        }
    }

    /// How many instances [`delete_instances`](Self::delete_instances) would select (its
    /// finished roots; sub-orchestrations go with them), for a dry run.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "count_deletable")
    )]
    pub async fn count_deletable(&self, what: &BulkDelete) -> Result<u64, ClientError> {
        check_bulk_delete(what)?;
        let n = self.count_instances(&finished_only(&what.filter)).await?;
        Ok(what.limit.map_or(n, |l| n.min(l)))
    }

    /// Removes old executions of a continue-as-new instance, keeping the current one;
    /// returns how many were removed.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "prune_executions", instance = %instance))]
    pub async fn prune_executions(&self, instance: &str, options: &PruneOptions) -> Result<u64, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        check_prune(options)?;
        Ok(self.calls.prune_executions(instance, options).await?)
    }

    /// How many executions [`prune_executions`](Self::prune_executions) would remove now,
    /// for a dry run.
    pub async fn count_prunable(&self, instance: &str, options: &PruneOptions) -> Result<u64, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        check_prune(options)?;
        let record = self
            .store
            .get_instance(instance)
            .await?
            .ok_or_else(|| ClientError::NotFound(instance.to_string()))?;
        let executions = self.store.list_executions(instance).await?;
        Ok(options.select(&executions, record.execution_id).len() as u64)
    }

    /// [`count_prunable`](Self::count_prunable) over every instance `filter` selects.
    pub async fn count_prunable_where(
        &self,
        filter: &InstanceFilter,
        options: &PruneOptions,
    ) -> Result<u64, ClientError> {
        check_prune(options)?;
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page =
                self.list_instances_page(filter, ListOrder::OldestFirst, 500, cursor.as_deref()).await?;
            for r in page.instances.iter().filter(|r| r.execution_id > 1) {
                let executions = self.store.list_executions(&r.instance).await?;
                total += options.select(&executions, r.execution_id).len() as u64;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(total),
            }
        }
    }

    /// [`prune_executions`](Self::prune_executions) on every instance `filter` selects;
    /// returns how many executions were removed in all.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "prune_executions_where")
    )]
    pub async fn prune_executions_where(
        &self,
        filter: &InstanceFilter,
        options: &PruneOptions,
    ) -> Result<u64, ClientError> {
        check_prune(options)?;
        let mut pruned = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page =
                self.list_instances_page(filter, ListOrder::OldestFirst, 500, cursor.as_deref()).await?;
            for r in &page.instances {
                if r.execution_id > 1 {
                    match self.calls.prune_executions(&r.instance, options).await {
                        Ok(n) => pruned += n,
                        // Deleted since the page was read: nothing to prune.
                        Err(crate::provider::ProviderError::InstanceNotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(pruned),
            }
        }
    }

    /// Ends an unfinished instance now, without running its code, and its unfinished
    /// sub-orchestrations with it: each fails with category
    /// [`Terminated`](crate::ErrorCategory::Terminated) and `reason`; a waiting parent is
    /// told. Unlike [`cancel_instance`](Self::cancel_instance), the code gets no chance to
    /// clean up. Returns the ids terminated; a finished instance is refused with
    /// [`ClientError::InstanceFinished`].
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "terminate_instance", instance = %instance))]
    pub async fn terminate_instance(&self, instance: &str, reason: &str) -> Result<Vec<String>, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        self.check_payload("termination reason", reason)?;
        match self.calls.terminate_instance(instance, reason).await? {
            TerminateOutcome::Terminated(ids) => Ok(ids),
            TerminateOutcome::AlreadyFinished(_) => {
                let status = self.get_orchestration_status(instance).await?;
                Err(ClientError::InstanceFinished {
                    instance: instance.to_string(),
                    state: FinalState::of(&status).unwrap_or(match status {
                        OrchestrationStatus::Completed { .. } => FinalState::Completed,
                        _ => FinalState::Failed,
                    }),
                })
            }
        }
    }

    /// Instances per state and queue depths, for health checks, and per tag the activities
    /// waiting for a worker with how many live workers serve the tag
    /// ([`TagBacklog::served_by`](crate::provider::TagBacklog::served_by)).
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "store_summary")
    )]
    pub async fn store_summary(&self) -> Result<StoreSummary, ClientError> {
        let mut summary = self.calls.store_summary().await?;
        self.add_served_by(&mut summary).await?;
        Ok(summary)
    }
}

/// A filter's ids and names within the limits every store takes.
fn check_filter(filter: &InstanceFilter) -> Result<(), ClientError> {
    let too_long = [
        ("name", filter.name.as_deref(), crate::provider::MAX_NAME_BYTES),
        ("version", filter.version.as_deref(), crate::provider::MAX_NAME_BYTES),
        ("parent", filter.parent.as_deref(), MAX_INSTANCE_ID_BYTES),
        ("id prefix", filter.id_prefix.as_deref(), MAX_INSTANCE_ID_BYTES),
    ];
    for (what, value, limit) in too_long {
        if let Some(v) = value
            && v.len() > limit
        {
            return Err(ClientError::TooLong { field: format!("filter {what}"), length: v.len(), limit });
        }
    }
    Ok(())
}

fn check_bulk_delete(what: &BulkDelete) -> Result<(), ClientError> {
    if what.filter.is_empty() && !what.everything {
        return Err(ClientError::EmptyFilter);
    }
    if let Some(s) = what.filter.states.iter().find(|s| !s.is_terminal()) {
        return Err(ClientError::InvalidArgument(format!(
            "a bulk delete removes only finished instances, and {} instances have not finished; \
             terminate them first",
            s.as_str()
        )));
    }
    if what.batch_size == 0 {
        return Err(ClientError::InvalidArgument("batch size must be at least 1".into()));
    }
    check_filter(&what.filter)
}

fn check_prune(options: &PruneOptions) -> Result<(), ClientError> {
    if options.keep_last.is_none() && options.finished_before_ms.is_none() {
        return Err(ClientError::InvalidArgument(
            "say which executions to prune: keep the last N, or those finished before a time".into(),
        ));
    }
    if options.keep_last == Some(0) {
        return Err(ClientError::InvalidArgument(
            "keep at least the current execution (keep_last >= 1)".into(),
        ));
    }
    Ok(())
}

/// `filter` narrowed to finished states (what a bulk delete selects).
pub(crate) fn finished_only(filter: &InstanceFilter) -> InstanceFilter {
    let mut f = filter.clone();
    if f.states.is_empty() {
        f.states = vec![InstanceState::Completed, InstanceState::Failed];
    }
    f
}
