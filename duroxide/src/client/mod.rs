//! The client: start instances, raise events, cancel, read status and history.
//!
//! A [`Client`] talks only to the store, never to a runtime, so any process that can reach
//! the store can drive instances served by runtimes elsewhere.
//!
//! This file holds the client's core (starting, events, cancellation, status, waiting);
//! the operator calls (filtered listings, describe, history pages, delete, prune,
//! terminate, store summary) live in `management`, event queues and typed events in
//! `queues`, waiting for custom status changes in `status`, the runtimes' presence
//! (which workers run, which tags nobody serves) in `workers`.

mod management;
mod queues;
mod status;
mod values;
mod workers;

pub(crate) use management::finished_only;
pub use management::{BulkDelete, MAX_HISTORY_PAGE, MAX_PAGE_SIZE};
pub use status::StatusChange;
pub use workers::WorkerPresence;

use crate::history::EventKind;
use crate::history::{ErrorCategory, ErrorDetails, Event};
use crate::provider::instrumented::Instrumented;
use crate::provider::{
    ExecutionRecord, IdentifierProblem, InstanceRecord, InstanceState, MAX_EVENT_NAME_BYTES,
    MAX_INSTANCE_ID_BYTES, MAX_NAME_BYTES, Notifiers, OrchestratorMessage, OutboundMessage, Provider,
    ProviderError, VersionCount, check_identifier,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an instance stands, as seen by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrchestrationStatus {
    /// No instance has this id.
    NotFound,
    /// Created, not started by any node yet.
    Pending {
        /// Why it has not started, when a node recorded a reason (for example: no node has
        /// the orchestration registered).
        note: Option<String>,
    },
    /// Started and not finished.
    Running {
        /// The custom status the orchestration set, if any.
        custom_status: Option<String>,
    },
    /// Finished with an output.
    Completed {
        /// The output.
        output: String,
    },
    /// Finished with an error.
    Failed {
        /// Why.
        details: ErrorDetails,
    },
    /// Cancelled through [`Client::cancel_instance`] (or by its parent).
    Cancelled {
        /// The reason given.
        reason: String,
    },
}

impl OrchestrationStatus {
    /// True when the instance finished (completed, failed or cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OrchestrationStatus::Completed { .. }
                | OrchestrationStatus::Failed { .. }
                | OrchestrationStatus::Cancelled { .. }
        )
    }

    pub(crate) fn from_record(r: Option<InstanceRecord>) -> Self {
        let Some(r) = r else { return OrchestrationStatus::NotFound };
        match r.state {
            InstanceState::Pending => OrchestrationStatus::Pending { note: r.status_note },
            InstanceState::Running => OrchestrationStatus::Running { custom_status: r.custom_status },
            InstanceState::Completed => {
                OrchestrationStatus::Completed { output: r.output.unwrap_or_default() }
            }
            InstanceState::Failed => {
                let details =
                    r.error.unwrap_or_else(|| ErrorDetails::infrastructure("failed without details"));
                if details.category == ErrorCategory::Cancelled {
                    OrchestrationStatus::Cancelled { reason: details.message }
                } else {
                    OrchestrationStatus::Failed { details }
                }
            }
        }
    }
}

/// Unfinished (pending or running) instances of one orchestration version, as
/// [`Client::list_running_versions`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningVersion {
    /// Orchestration name.
    pub name: String,
    /// The version its instances are pinned to (`None`: not pinned yet, never started).
    pub version: Option<String>,
    /// How many instances of it are pending or running.
    pub instances: u64,
}

/// How a finished instance ended (see [`ClientError::InstanceFinished`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinalState {
    /// Completed with an output.
    Completed,
    /// Failed with an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl std::fmt::Display for FinalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FinalState::Completed => "completed",
            FinalState::Failed => "failed",
            FinalState::Cancelled => "cancelled",
        })
    }
}

impl FinalState {
    /// The final state of a terminal status; `None` while the instance has not finished.
    pub fn of(status: &OrchestrationStatus) -> Option<Self> {
        match status {
            OrchestrationStatus::Completed { .. } => Some(FinalState::Completed),
            OrchestrationStatus::Failed { .. } => Some(FinalState::Failed),
            OrchestrationStatus::Cancelled { .. } => Some(FinalState::Cancelled),
            _ => None,
        }
    }
}

/// A client call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `start_orchestration` with an id that is taken.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// The instance does not exist.
    #[error("instance '{0}' not found")]
    NotFound(String),
    /// A payload is larger than the configured limit.
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Which payload.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A version string is not semver.
    #[error("'{0}' is not a semantic version")]
    InvalidVersion(String),
    /// An instance id or name is empty or otherwise unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An instance id or a name is longer than every store accepts (see
    /// [`MAX_INSTANCE_ID_BYTES`], [`MAX_NAME_BYTES`], [`MAX_EVENT_NAME_BYTES`]).
    #[error("{field} is {length} bytes long; the limit is {limit} bytes")]
    TooLong {
        /// Which value (`instance id`, `orchestration name`, `event name`).
        field: String,
        /// Its length in bytes.
        length: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The instance has finished: an event raised to it or a cancellation would never be
    /// seen, so it is refused.
    #[error("instance '{instance}' has already finished ({state})")]
    InstanceFinished {
        /// Instance id.
        instance: String,
        /// How it ended.
        state: FinalState,
    },
    /// A listing cursor that is not one a previous page returned.
    #[error(transparent)]
    InvalidCursor(#[from] crate::provider::CursorError),
    /// The call removes only finished instances and this one (or a sub-orchestration of
    /// it, named here) has not finished.
    #[error("instance '{0}' has not finished; terminate it first, or force the delete")]
    InstanceRunning(String),
    /// A bulk delete without a filter, which would remove every finished instance.
    #[error("a bulk delete needs a filter; to remove every finished instance, ask for all explicitly")]
    EmptyFilter,
    /// `wait_for_orchestration` timed out; the instance is still running.
    #[error("instance '{instance}' did not finish within {waited:?}")]
    Timeout {
        /// Instance id.
        instance: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Provider(ProviderError),
    /// A value key was unusable, or a stored value was not the requested type.
    #[error(transparent)]
    Value(#[from] crate::orchestration::ValueError),
    /// `wait_for_value` timed out; the instance has not set the key.
    #[error("instance '{instance}' did not set value '{key}' within {waited:?}")]
    ValueTimeout {
        /// Instance id.
        instance: String,
        /// The key waited for.
        key: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// A typed payload (event, queue message) could not be encoded as JSON.
    #[error("could not encode {what} (`{type_name}`): {message}")]
    Encode {
        /// What was being sent (`event 'Approve' for instance 'order-1'`).
        what: String,
        /// The Rust type.
        type_name: &'static str,
        /// serde's message.
        message: String,
    },
}

impl From<ProviderError> for ClientError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::InstanceExists(i) => ClientError::InstanceExists(i),
            ProviderError::InstanceNotFound(i) => ClientError::NotFound(i),
            ProviderError::InvalidInput(m) => ClientError::InvalidArgument(m),
            ProviderError::InstanceRunning(i) => ClientError::InstanceRunning(i),
            other => ClientError::Provider(other),
        }
    }
}

/// Starts and manages instances through a store.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use duroxide::{Client, OrchestrationStatus, SqliteProvider};
/// use std::{sync::Arc, time::Duration};
/// let store = Arc::new(SqliteProvider::new("sqlite:./duroxide.db", None).await?);
/// let client = Client::new(store);
/// client.start_orchestration("greeting-1", "Hello", "World").await?;
/// if let OrchestrationStatus::Completed { output } =
///     client.wait_for_orchestration("greeting-1", Duration::from_secs(10)).await?
/// {
///     println!("{output}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    /// The store as given (`store()` returns it).
    store: Arc<dyn Provider>,
    /// The same store, wrapped so that every call is timed and traced
    /// (`provider::instrumented`); the client's calls go through it.
    calls: Arc<dyn Provider>,
    max_payload_bytes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("max_payload_bytes", &self.max_payload_bytes).finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `store` with the default payload limit.
    pub fn new(store: Arc<dyn Provider>) -> Self {
        Self {
            calls: Instrumented::wrap(store.clone()),
            store,
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }

    /// Sets the largest input or event payload this client accepts (keep it equal to the
    /// runtime's `RuntimeOptions::max_payload_bytes`).
    pub fn with_max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// The store this client uses.
    pub fn store(&self) -> &Arc<dyn Provider> {
        &self.store
    }

    fn check_payload(&self, what: impl Into<String>, payload: &str) -> Result<(), ClientError> {
        if payload.len() > self.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: what.into(),
                size: payload.len(),
                limit: self.max_payload_bytes,
            });
        }
        Ok(())
    }

    /// Checks an id or name against the limits every store shares.
    fn check_id(what: &str, id: &str, limit: usize) -> Result<(), ClientError> {
        match check_identifier(id, limit) {
            Ok(()) => Ok(()),
            Err(IdentifierProblem::Empty) => {
                Err(ClientError::InvalidArgument(format!("{what} must not be empty")))
            }
            Err(IdentifierProblem::TooLong { length, limit }) => {
                Err(ClientError::TooLong { field: what.to_string(), length, limit })
            }
            Err(IdentifierProblem::ControlCharacter(c)) => Err(ClientError::InvalidArgument(format!(
                "{what} must not contain control characters (found {:?})",
                c
            ))),
        }
    }

    /// Starts a new instance of `name`; the version is chosen by the policy of the node
    /// that runs it. Fails with [`ClientError::InstanceExists`] if `instance` is taken by a
    /// different start; repeating the same start (same name, version and input, e.g. after
    /// a storage error left its outcome unknown) succeeds without starting anything.
    ///
    /// The instance id must be 1 to [`MAX_INSTANCE_ID_BYTES`] bytes and the name 1 to
    /// [`MAX_NAME_BYTES`] bytes, without control characters ([`ClientError::TooLong`],
    /// [`ClientError::InvalidArgument`]).
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "start_orchestration", instance = %instance))]
    pub async fn start_orchestration(
        &self,
        instance: &str,
        name: &str,
        input: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.start(instance, name, None, input.into()).await
    }

    /// Starts a new instance pinned to `version` (idempotent as
    /// [`start_orchestration`](Self::start_orchestration) is: a repeated start matches when
    /// the instance runs `version`).
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "start_orchestration_versioned", instance = %instance))]
    pub async fn start_orchestration_versioned(
        &self,
        instance: &str,
        name: &str,
        version: &str,
        input: impl Into<String>,
    ) -> Result<(), ClientError> {
        semver::Version::parse(version).map_err(|_| ClientError::InvalidVersion(version.to_string()))?;
        self.start(instance, name, Some(version), input.into()).await
    }

    async fn start(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: String,
    ) -> Result<(), ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Self::check_id("orchestration name", name, MAX_NAME_BYTES)?;
        self.check_payload(format!("input of instance '{instance}'"), &input)?;
        match self.calls.create_instance(instance, name, version, &input).await {
            Ok(()) => Ok(()),
            Err(ProviderError::InstanceExists(id)) => {
                // A retry of a start whose write succeeded (its reply was lost) finds its own
                // instance: the same start is done, a different one is a conflict.
                if self.same_start(instance, name, version, &input).await {
                    Ok(())
                } else {
                    Err(ClientError::InstanceExists(id))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the existing `instance` was started by a client with exactly this name,
    /// version and input (unreadable data counts as a different start).
    async fn same_start(&self, instance: &str, name: &str, version: Option<&str>, input: &str) -> bool {
        let Ok(Some(record)) = self.calls.get_instance(instance).await else { return false };
        if record.name != name || record.parent_instance.is_some() {
            return false;
        }
        if record.execution_id >= 1 {
            // Started: the first execution's start event holds what the client sent.
            let Ok(history) = self.calls.read_history(instance, Some(1)).await else { return false };
            return match history.first().map(|e| &e.kind) {
                Some(EventKind::OrchestrationStarted {
                    name: n, version: v, input: i, parent: None, ..
                }) => n == name && i == input && version.is_none_or(|want| want == v),
                _ => false,
            };
        }
        // Not started yet: the start message is still queued.
        let Ok(snapshot) = self.calls.export_instance(instance).await else { return false };
        snapshot.messages.iter().any(|m| {
            matches!(&m.message, OrchestratorMessage::StartOrchestration { name: n, version: v, input: i, parent: None }
                if n == name && i == input && v.as_deref() == version)
        })
    }

    /// Fails with [`ClientError::NotFound`] or [`ClientError::InstanceFinished`] unless the
    /// instance exists and has not finished.
    async fn check_live(&self, instance: &str) -> Result<(), ClientError> {
        let status = self.get_orchestration_status(instance).await?;
        if let OrchestrationStatus::NotFound = status {
            return Err(ClientError::NotFound(instance.to_string()));
        }
        if let Some(state) = FinalState::of(&status) {
            return Err(ClientError::InstanceFinished { instance: instance.to_string(), state });
        }
        Ok(())
    }

    /// Raises an external event for an instance. Events raised before the orchestration
    /// waits for them are kept until it does.
    ///
    /// Fails with [`ClientError::NotFound`] for an unknown instance and
    /// [`ClientError::InstanceFinished`] for one that has finished (nothing would ever read
    /// the event). An instance that finishes while the event is being raised drops it.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "raise_event", instance = %instance))]
    pub async fn raise_event(
        &self,
        instance: &str,
        name: &str,
        data: impl Into<String>,
    ) -> Result<(), ClientError> {
        let data = data.into();
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        Self::check_id("event name", name, MAX_EVENT_NAME_BYTES)?;
        self.check_payload(format!("event '{name}' for instance '{instance}'"), &data)?;
        self.check_live(instance).await?;
        self.calls
            .enqueue_message(OutboundMessage {
                instance: instance.to_string(),
                message: OrchestratorMessage::ExternalRaised { name: name.to_string(), data },
                visible_at_ms: None,
            })
            .await?;
        Ok(())
    }

    /// Cancels an instance: it ends with status `Cancelled { reason }`, its running
    /// activities are told to stop and its sub-orchestrations are cancelled too.
    ///
    /// Fails with [`ClientError::NotFound`] for an unknown instance and
    /// [`ClientError::InstanceFinished`] for one that has already finished.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "cancel_instance", instance = %instance))]
    pub async fn cancel_instance(
        &self,
        instance: &str,
        reason: impl Into<String>,
    ) -> Result<(), ClientError> {
        let reason = reason.into();
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        self.check_payload(format!("cancellation reason for instance '{instance}'"), &reason)?;
        self.check_live(instance).await?;
        self.calls
            .enqueue_message(OutboundMessage {
                instance: instance.to_string(),
                message: OrchestratorMessage::CancelRequested { reason },
                visible_at_ms: None,
            })
            .await?;
        Ok(())
    }

    /// The instance's status.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "get_orchestration_status", instance = %instance))]
    pub async fn get_orchestration_status(&self, instance: &str) -> Result<OrchestrationStatus, ClientError> {
        Ok(OrchestrationStatus::from_record(self.calls.get_instance(instance).await?))
    }

    /// Everything the store knows about the instance (versions, execution, notes).
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "get_instance_info", instance = %instance))]
    pub async fn get_instance_info(&self, instance: &str) -> Result<Option<InstanceRecord>, ClientError> {
        Ok(self.calls.get_instance(instance).await?)
    }

    /// Waits until the instance finishes, returning its final status, or
    /// [`ClientError::Timeout`]. Returns as soon as the instance ends when the runtime
    /// shares this process or the store relays its notices (PostgreSQL), reading the store
    /// once a second meanwhile as a safety net; on a store whose writers elsewhere send no
    /// notice (a shared SQLite file) it polls, from 5 ms up to 500 ms.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "wait_for_orchestration", instance = %instance))]
    pub async fn wait_for_orchestration(
        &self,
        instance: &str,
        timeout: Duration,
    ) -> Result<OrchestrationStatus, ClientError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let notifiers = self.calls.notifiers();
        let mut finished = notifiers.as_ref().map(|n| n.finished.subscribe());
        let (mut poll, max_poll) = poll_bounds(notifiers.as_deref(), Duration::from_millis(500));
        loop {
            let status = self.get_orchestration_status(instance).await?;
            match status {
                OrchestrationStatus::NotFound => return Err(ClientError::NotFound(instance.to_string())),
                s if s.is_terminal() => return Ok(s),
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout { instance: instance.to_string(), waited: now - start });
            }
            let wait = poll.min(deadline - now);
            match finished.as_mut() {
                Some(rx) => {
                    // Re-read the status when this instance finishes (or notifications were
                    // missed), not on every other instance's completion; `wait` bounds the
                    // sleep for instances finished by other processes.
                    let ours = async {
                        loop {
                            match rx.recv().await {
                                Ok(f) if !f.concerns(instance) => continue,
                                Ok(f) => return f.record,
                                Err(_) => return None,
                            }
                        }
                    };
                    // A notice from a commit in this process carries the final record:
                    // no need to read it back.
                    if let Ok(Some(record)) = tokio::time::timeout(wait, ours).await {
                        let status = OrchestrationStatus::from_record(Some((*record).clone()));
                        if status.is_terminal() {
                            return Ok(status);
                        }
                    }
                    poll = (poll * 2).min(max_poll);
                }
                None => {
                    tokio::time::sleep(wait).await;
                    poll = (poll * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// History of an execution (`None`: the current one).
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "read_execution_history", instance = %instance))]
    pub async fn read_execution_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ClientError> {
        Ok(self.calls.read_history(instance, execution_id).await?)
    }

    /// All executions of an instance.
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "list_executions", instance = %instance))]
    pub async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ClientError> {
        Ok(self.calls.list_executions(instance).await?)
    }

    /// Instance counts per (name, version, state): a version whose `Pending` and `Running`
    /// counts are zero can be removed from the registries.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "count_instances_by_version")
    )]
    pub async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ClientError> {
        Ok(self.calls.count_instances_by_version().await?)
    }

    /// Running and pending instances per (name, version): a version that is not listed has
    /// no unfinished instance left and can be removed from the registries.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "list_running_versions")
    )]
    pub async fn list_running_versions(&self) -> Result<Vec<RunningVersion>, ClientError> {
        let mut out: Vec<RunningVersion> = Vec::new();
        for c in self.count_instances_by_version().await? {
            if c.state.is_terminal() {
                continue;
            }
            match out.last_mut() {
                Some(r) if r.name == c.name && r.version == c.version => r.instances += c.count,
                _ => out.push(RunningVersion { name: c.name, version: c.version, instances: c.count }),
            }
        }
        Ok(out)
    }

    /// All instance ids.
    #[tracing::instrument(
        name = "duroxide.client",
        level = "info",
        skip_all,
        fields(operation = "list_instances")
    )]
    pub async fn list_instances(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.calls.list_instances().await?)
    }
}

/// How often a wait for an instance reads the store without a notice: first and at most
/// (doubling in between). Where notices reach this process from every writer
/// ([`Notifiers::sees_every_writer`]) a read is only a safety net, once a second; otherwise
/// (a shared SQLite file, a store without notifiers) from 5 ms up to `max`.
pub(crate) fn poll_bounds(notifiers: Option<&Notifiers>, max: Duration) -> (Duration, Duration) {
    const SAFETY_POLL: Duration = Duration::from_secs(1);
    match notifiers {
        Some(n) if n.sees_every_writer() => (SAFETY_POLL, SAFETY_POLL),
        _ => (Duration::from_millis(5), max),
    }
}

#[cfg(test)]
mod poll_tests {
    use super::*;

    #[test]
    fn waits_poll_only_as_a_safety_net_where_notices_cover_every_writer() {
        let max = Duration::from_millis(250);
        let shared = Notifiers::default();
        assert!(!shared.sees_every_writer());
        assert_eq!(poll_bounds(Some(&shared), max), (Duration::from_millis(5), max));
        assert_eq!(poll_bounds(None, max), (Duration::from_millis(5), max));
        let every = Notifiers::seeing_every_writer();
        assert!(every.sees_every_writer());
        assert_eq!(poll_bounds(Some(&every), max), (Duration::from_secs(1), Duration::from_secs(1)));
    }
}
