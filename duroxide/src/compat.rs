//! The history-store API of early duroxide releases, kept so code written against it (and
//! the migration guide's storage-migration snippet) still compiles and works.
//!
//! New code should use [`crate::transfer`], which also moves queued events and every
//! execution. This layer rebuilds an instance from the history of its current execution
//! alone: activities without a result are queued again, timers that have not fired are
//! re-armed for their recorded due time; external events that were raised but not yet
//! consumed are not part of a history and are therefore not carried over.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use duroxide::compat::{HistoryStoreExt, InMemoryHistoryStore};
//! use duroxide::SqliteProvider;
//! let old_store = InMemoryHistoryStore::new();
//! let new_store = SqliteProvider::new("sqlite::memory:", None).await?;
//! for instance in old_store.list_instances().await {
//!     let history = old_store.read(&instance).await;
//!     new_store.create_instance(&instance).await?;
//!     new_store.append(&instance, history).await?;
//! }
//! # Ok(()) }
//! ```

use crate::history::{Event, EventKind};
use crate::provider::{
    ActivityWorkItem, ExecutionRecord, ExecutionSnapshot, InstanceRecord, InstanceSnapshot, InstanceState,
    OrchestratorMessage, PendingMessage, Provider, ProviderError,
};
use std::collections::HashSet;
use std::sync::Arc;

/// Early-release methods on any store: `create_instance(id)` then `append(id, history)`.
#[async_trait::async_trait]
pub trait HistoryStoreExt {
    /// Checks that `instance` is free in this store (the instance itself is written by
    /// [`append`](Self::append)).
    async fn create_instance(&self, instance: &str) -> Result<(), ProviderError>;

    /// Recreates `instance` from the history of one execution (see the module docs for
    /// what is rebuilt).
    async fn append(&self, instance: &str, history: Vec<Event>) -> Result<(), ProviderError>;
}

#[async_trait::async_trait]
impl<P: Provider + ?Sized> HistoryStoreExt for P {
    async fn create_instance(&self, instance: &str) -> Result<(), ProviderError> {
        match self.get_instance(instance).await? {
            Some(_) => Err(ProviderError::InstanceExists(instance.to_string())),
            None => Ok(()),
        }
    }

    async fn append(&self, instance: &str, history: Vec<Event>) -> Result<(), ProviderError> {
        self.import_instance(snapshot_from_history(instance, history)?).await
    }
}

/// Builds an importable snapshot from one execution's history.
pub fn snapshot_from_history(instance: &str, history: Vec<Event>) -> Result<InstanceSnapshot, ProviderError> {
    let (name, version, dv, parent) = match history.first().map(|e| &e.kind) {
        Some(EventKind::OrchestrationStarted { name, version, duroxide_version, parent, .. }) => {
            (name.clone(), version.clone(), duroxide_version.clone(), parent.clone())
        }
        _ => {
            return Err(ProviderError::Corrupt(format!(
                "history of '{instance}' does not start with OrchestrationStarted"
            )));
        }
    };
    let mut state = InstanceState::Running;
    let (mut output, mut error, mut custom_status) = (None, None, None);
    let mut custom_status_version = 0u64;
    let mut done: HashSet<u64> = HashSet::new();
    for e in &history {
        match &e.kind {
            EventKind::ActivityCompleted { source_event_id, .. }
            | EventKind::ActivityFailed { source_event_id, .. }
            | EventKind::ActivityCancelRequested { source_event_id }
            | EventKind::TimerFired { source_event_id, .. } => {
                done.insert(*source_event_id);
            }
            EventKind::OrchestrationCompleted { output: o } => {
                state = InstanceState::Completed;
                output = Some(o.clone());
            }
            EventKind::OrchestrationFailed { details } => {
                state = InstanceState::Failed;
                error = Some(details.clone());
            }
            EventKind::CustomStatusSet { status } => {
                custom_status = status.clone();
                custom_status_version += 1;
            }
            _ => {}
        }
    }
    let mut messages = Vec::new();
    let mut activities = Vec::new();
    if !state.is_terminal() {
        for e in history.iter().filter(|e| !done.contains(&e.event_id)) {
            match &e.kind {
                EventKind::ActivityScheduled { name: activity, input, session_id, tag, .. } => activities
                    .push(ActivityWorkItem {
                        instance: instance.to_string(),
                        execution_id: 1,
                        event_id: e.event_id,
                        name: activity.clone(),
                        input: input.clone(),
                        session_id: session_id.clone(),
                        lock_token: String::new(),
                        attempt: 0,
                        session_claimed: false,
                        visible_at_ms: 0,
                        tag: tag.clone(),
                        orchestration_name: name.clone(),
                        orchestration_version: version.clone(),
                    }),
                EventKind::TimerCreated { fire_at_ms, .. } => messages.push(PendingMessage {
                    message: OrchestratorMessage::TimerFired {
                        execution_id: 1,
                        event_id: e.event_id,
                        fire_at_ms: *fire_at_ms,
                    },
                    visible_at_ms: *fire_at_ms,
                }),
                _ => {}
            }
        }
    }
    let mut values = std::collections::BTreeMap::new();
    crate::provider::apply_value_writes(&mut values, crate::provider::value_writes(&history));
    let now = crate::now_ms();
    Ok(InstanceSnapshot {
        record: InstanceRecord {
            instance: instance.to_string(),
            name,
            version: Some(version.clone()),
            execution_id: 1,
            state,
            output,
            error,
            custom_status,
            custom_status_version,
            parent_instance: parent.map(|p| p.instance),
            duroxide_version: Some(dv.clone()),
            status_note: None,
            created_at_ms: history.first().map(|e| e.timestamp_ms).unwrap_or(now),
            updated_at_ms: now,
        },
        executions: vec![ExecutionSnapshot {
            record: ExecutionRecord {
                execution_id: 1,
                version,
                state,
                event_count: history.len() as u64,
                started_at_ms: 0,
                updated_at_ms: 0,
            },
            duroxide_version: dv,
            history,
        }],
        messages,
        activities,
        values,
    })
}

/// An in-memory store with the early-release reading API (`list_instances`, `read`).
/// Backed by a private in-memory SQLite database, opened on first use.
#[derive(Default)]
pub struct InMemoryHistoryStore {
    store: tokio::sync::OnceCell<Arc<dyn Provider>>,
}

impl std::fmt::Debug for InMemoryHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryHistoryStore").finish_non_exhaustive()
    }
}

impl InMemoryHistoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The underlying store, to run a runtime or client on it.
    pub async fn provider(&self) -> Result<Arc<dyn Provider>, ProviderError> {
        self.store
            .get_or_try_init(|| async {
                let p = crate::SqliteProvider::new("sqlite::memory:", None).await?;
                Ok::<Arc<dyn Provider>, ProviderError>(Arc::new(p))
            })
            .await
            .cloned()
    }

    /// All instance ids (empty if the store cannot be read; the error is logged).
    pub async fn list_instances(&self) -> Vec<String> {
        match self.provider().await {
            Ok(p) => p.list_instances().await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "listing instances failed");
                Vec::new()
            }),
            Err(e) => {
                tracing::error!(error = %e, "opening the in-memory store failed");
                Vec::new()
            }
        }
    }

    /// The current execution's history (empty if unknown or unreadable; errors are logged).
    pub async fn read(&self, instance: &str) -> Vec<Event> {
        match self.provider().await {
            Ok(p) => p.read_history(instance, None).await.unwrap_or_else(|e| {
                tracing::error!(instance, error = %e, "reading history failed");
                Vec::new()
            }),
            Err(e) => {
                tracing::error!(error = %e, "opening the in-memory store failed");
                Vec::new()
            }
        }
    }
}
