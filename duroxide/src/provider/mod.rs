//! Storage: the [`Provider`] trait every store implements, and the data it moves.
//!
//! A provider keeps, per instance, the history of each execution, a queue of messages for
//! the orchestration (start, completions, timers, events, cancellation) and a queue of
//! activity work. Its central promise is [`Provider::commit_turn`]: one atomic call that
//! appends a turn's events, enqueues its work and messages, deletes the messages the turn
//! consumed and releases the instance lock. A crash before that call loses nothing: the
//! messages become visible again when the lock expires and the turn runs again.
//!
//! Implementations: [`sqlite`] (the embedded default) and `postgres` (feature `postgres`,
//! for many processes on one database). The conformance suite every provider must pass is
//! `validation` (feature `provider-test`); see `docs/providers.md`.

#[cfg(feature = "postgres")]
pub mod postgres;
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "provider-test")]
pub mod validation;

use crate::history::{ErrorDetails, Event, ParentLink};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// Longest instance id, in bytes (UTF-8), that every store accepts.
///
/// One limit for all stores, so an id that works on SQLite also works on PostgreSQL, whose
/// index entries must stay under about 2,700 bytes and whose notifications under 8,000. The
/// [`Client`](crate::Client) refuses longer ids with
/// [`ClientError::TooLong`](crate::ClientError::TooLong).
pub const MAX_INSTANCE_ID_BYTES: usize = 1024;

/// Longest orchestration or activity name, in bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 512;

/// Longest external event name, in bytes (UTF-8).
pub const MAX_EVENT_NAME_BYTES: usize = 512;

/// Checks an identifier (instance id, orchestration, activity or event name) against the
/// limits every store shares: not empty or only whitespace, at most `limit` bytes, and no
/// control characters (PostgreSQL cannot store a NUL byte in text). Returns what is wrong.
pub fn check_identifier(value: &str, limit: usize) -> Result<(), IdentifierProblem> {
    if value.trim().is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    if value.len() > limit {
        return Err(IdentifierProblem::TooLong { length: value.len(), limit });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(IdentifierProblem::ControlCharacter(c));
    }
    Ok(())
}

/// Why [`check_identifier`] refused a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierProblem {
    /// Empty or only whitespace.
    Empty,
    /// Longer than the limit.
    TooLong {
        /// Its length in bytes.
        length: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Contains a control character (NUL, newline, ...).
    ControlCharacter(char),
}

impl std::fmt::Display for IdentifierProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentifierProblem::Empty => write!(f, "is empty"),
            IdentifierProblem::TooLong { length, limit } => {
                write!(f, "is {length} bytes; the limit is {limit} bytes")
            }
            IdentifierProblem::ControlCharacter(c) => write!(f, "contains the control character {c:?}"),
        }
    }
}

/// A message for an orchestration instance, kept in its queue until a turn consumes it.
///
/// Serialized as JSON with a `type` tag; the names are part of the storage format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrchestratorMessage {
    /// Start the instance's first execution.
    StartOrchestration {
        /// Orchestration name.
        name: String,
        /// Pinned version, or `None` to let the node's policy choose.
        #[serde(default)]
        version: Option<String>,
        /// Input.
        input: String,
        /// Parent, for sub-orchestrations.
        #[serde(default)]
        parent: Option<ParentLink>,
    },
    /// Start execution `execution_id` after a continue-as-new.
    ContinueAsNew {
        /// The new execution's id.
        execution_id: u64,
        /// Orchestration name.
        name: String,
        /// Version of the new execution.
        version: String,
        /// Input.
        input: String,
        /// Parent link carried over from the first execution.
        #[serde(default)]
        parent: Option<ParentLink>,
    },
    /// An activity succeeded.
    ActivityCompleted {
        /// Execution that scheduled it.
        execution_id: u64,
        /// Its `ActivityScheduled` event id.
        event_id: u64,
        /// Output.
        result: String,
    },
    /// An activity failed.
    ActivityFailed {
        /// Execution that scheduled it.
        execution_id: u64,
        /// Its `ActivityScheduled` event id.
        event_id: u64,
        /// Why.
        details: ErrorDetails,
    },
    /// A timer is due.
    TimerFired {
        /// Execution that created it.
        execution_id: u64,
        /// Its `TimerCreated` event id.
        event_id: u64,
        /// Due time.
        fire_at_ms: u64,
    },
    /// An external event.
    ExternalRaised {
        /// Event name.
        name: String,
        /// Payload.
        data: String,
    },
    /// A child orchestration completed.
    SubOrchestrationCompleted {
        /// Parent execution that scheduled it.
        execution_id: u64,
        /// The parent's `SubOrchestrationScheduled` event id.
        event_id: u64,
        /// Output.
        result: String,
    },
    /// A child orchestration failed or was cancelled.
    SubOrchestrationFailed {
        /// Parent execution that scheduled it.
        execution_id: u64,
        /// The parent's `SubOrchestrationScheduled` event id.
        event_id: u64,
        /// Why.
        details: ErrorDetails,
    },
    /// Cancel the instance.
    CancelRequested {
        /// Why.
        reason: String,
    },
}

impl OrchestratorMessage {
    /// Stable type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            OrchestratorMessage::StartOrchestration { .. } => "StartOrchestration",
            OrchestratorMessage::ContinueAsNew { .. } => "ContinueAsNew",
            OrchestratorMessage::ActivityCompleted { .. } => "ActivityCompleted",
            OrchestratorMessage::ActivityFailed { .. } => "ActivityFailed",
            OrchestratorMessage::TimerFired { .. } => "TimerFired",
            OrchestratorMessage::ExternalRaised { .. } => "ExternalRaised",
            OrchestratorMessage::SubOrchestrationCompleted { .. } => "SubOrchestrationCompleted",
            OrchestratorMessage::SubOrchestrationFailed { .. } => "SubOrchestrationFailed",
            OrchestratorMessage::CancelRequested { .. } => "CancelRequested",
        }
    }
}

/// A message addressed to an instance, as committed by a turn or a client.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// Target instance.
    pub instance: String,
    /// The message.
    pub message: OrchestratorMessage,
    /// Not visible before this time (ms since the epoch); timers use it.
    pub visible_at_ms: Option<u64>,
}

/// Lifecycle state of an instance as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceState {
    /// Created; no turn has run yet.
    Pending,
    /// At least one turn ran; not finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error (including cancellation).
    Failed,
}

impl InstanceState {
    /// Stable storage name.
    pub fn as_str(&self) -> &'static str {
        match self {
            InstanceState::Pending => "Pending",
            InstanceState::Running => "Running",
            InstanceState::Completed => "Completed",
            InstanceState::Failed => "Failed",
        }
    }
    /// Parses a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Pending" => InstanceState::Pending,
            "Running" => InstanceState::Running,
            "Completed" => InstanceState::Completed,
            "Failed" => InstanceState::Failed,
            _ => return None,
        })
    }
    /// True for Completed and Failed.
    pub fn is_terminal(&self) -> bool {
        matches!(self, InstanceState::Completed | InstanceState::Failed)
    }
}

/// What a provider knows about an instance, without its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// Instance id.
    pub instance: String,
    /// Orchestration name.
    pub name: String,
    /// Pinned version of the current execution (`None` until the first turn picks one).
    pub version: Option<String>,
    /// Current execution id (0 before the first turn).
    pub execution_id: u64,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Output, when completed.
    pub output: Option<String>,
    /// Error, when failed.
    pub error: Option<ErrorDetails>,
    /// Custom status set by the orchestration.
    pub custom_status: Option<String>,
    /// Parent instance, for sub-orchestrations.
    pub parent_instance: Option<String>,
    /// The duroxide version that wrote the current execution.
    pub duroxide_version: Option<String>,
    /// Why the instance is not making progress, when the runtime knows (e.g. no node has
    /// its orchestration registered).
    pub status_note: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: u64,
    /// Last update, ms since the epoch.
    pub updated_at_ms: u64,
}

/// Summary of one execution of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Execution id.
    pub execution_id: u64,
    /// Version it ran.
    pub version: String,
    /// How it ended (`Running` while current).
    pub state: InstanceState,
    /// Number of events.
    pub event_count: u64,
}

/// A locked batch of messages for one instance, with the history needed to run a turn.
#[derive(Debug, Clone)]
pub struct OrchestrationItem {
    /// Instance id.
    pub instance: String,
    /// Token that proves this lock; pass it to commit/abandon.
    pub lock_token: String,
    /// The instance record (created when the instance was started).
    pub record: InstanceRecord,
    /// History of the current execution, in order.
    pub history: Vec<Event>,
    /// Set when the stored history could not be read (corrupt, or written by a newer
    /// duroxide with unknown event types); `history` is empty then.
    pub history_error: Option<String>,
    /// The id of the last event stored for the current execution (also when unreadable).
    /// Event ids run 1..n, so this is the number of events of an intact history; it is
    /// taken from the ids, so that a new event never reuses a stored id.
    pub history_len: u64,
    /// A counter the store raises whenever a stored history row of the instance is changed
    /// or removed (appending events does not raise it; 0 where a store does not keep it).
    /// A node that holds the instance in memory compares it with the value it saw last, so
    /// a history changed under it (corruption, a hand edit, a restore) is read and checked
    /// again instead of trusted.
    pub history_rev: u64,
    /// The locked messages, oldest first.
    pub messages: Vec<OrchestratorMessage>,
    /// How many times these messages have been fetched, this time included.
    pub attempt: u32,
}

/// A locked activity to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityWorkItem {
    /// Instance that scheduled it.
    pub instance: String,
    /// Execution that scheduled it.
    pub execution_id: u64,
    /// The `ActivityScheduled` event id.
    pub event_id: u64,
    /// Activity name.
    pub name: String,
    /// Input.
    pub input: String,
    /// Session the activity must run on (`None`: any worker).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Token proving the lock (empty when enqueuing).
    pub lock_token: String,
    /// How many times it has been fetched, this time included (0 when enqueuing).
    pub attempt: u32,
    /// True when this fetch claimed the session for this worker (its first activity here,
    /// or a takeover from a worker whose lease expired).
    #[serde(default)]
    pub session_claimed: bool,
}

/// Who is fetching activity work, for session affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// Unique per runtime (process); sessions are held by it.
    pub worker_id: String,
    /// How long a claimed session stays with this worker without renewal.
    pub session_lease: Duration,
    /// Most sessions with work (queued or running) this worker holds at once; work of
    /// further sessions is left to others. Idle sessions it still holds (until the idle
    /// timeout releases them) do not count, so they never keep it from new sessions.
    pub max_sessions: u32,
}

/// New state of the instance after a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceUpdate {
    /// Orchestration name.
    pub name: String,
    /// Version of the current execution.
    pub version: String,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Output, when completed.
    pub output: Option<String>,
    /// Error, when failed.
    pub error: Option<ErrorDetails>,
    /// `Some(x)`: set the custom status to `x`; `None`: leave it.
    pub custom_status: Option<Option<String>>,
}

/// Everything one turn changes, committed atomically by [`Provider::commit_turn`].
#[derive(Debug, Clone, PartialEq)]
pub struct TurnCommit {
    /// The execution the events belong to.
    pub execution_id: u64,
    /// Events to append (ids continue the stored history).
    pub new_events: Vec<Event>,
    /// New instance state.
    pub update: InstanceUpdate,
    /// When set, the instance's current execution becomes this one (continue-as-new).
    pub next_execution_id: Option<u64>,
    /// Activities to enqueue. One that carries a `lock_token` is stored already locked with
    /// that token for `activity_lock_timeout`, its first attempt counted: the runtime hands
    /// it straight to one of its idle workers instead of having a worker fetch it.
    pub activities: Vec<ActivityWorkItem>,
    /// Lock duration for activities enqueued with a lock token (see `activities`).
    pub activity_lock_timeout: Duration,
    /// Activities (by `ActivityScheduled` id in this execution) whose queued work must be
    /// dropped, or whose running worker must be told to stop.
    pub cancelled_activities: Vec<u64>,
    /// Messages to this and other instances. A `StartOrchestration` creates its instance;
    /// if that instance exists already and the message has a parent, the provider sends
    /// the parent a `SubOrchestrationFailed` instead.
    pub messages: Vec<OutboundMessage>,
}

/// Which instances [`Provider::complete_work_items_and_lock`] may lock for the caller.
pub struct LockAfterComplete<'a> {
    /// Most instances to lock.
    pub max_instances: usize,
    /// How long they stay locked.
    pub lock_timeout: Duration,
    /// Only instances this filter allows (as for a fetch).
    pub filter: &'a FetchFilter,
    /// The caller's live copy of an instance, as `(execution_id, history_len)`, so the
    /// store may skip reading its history (see `fetch_orchestration_item_cached`).
    pub cached: &'a (dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
}

impl std::fmt::Debug for LockAfterComplete<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockAfterComplete")
            .field("max_instances", &self.max_instances)
            .field("lock_timeout", &self.lock_timeout)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// Which orchestration items a node may fetch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchFilter {
    /// Only instances whose name is listed; for pinned instances, also only listed
    /// versions (`None`: any).
    pub orchestrations: Option<Vec<(String, Vec<String>)>>,
    /// Only executions written by a duroxide version in this range (`None`: any).
    pub duroxide_versions: Option<SemverRange>,
}

/// An inclusive range of semantic versions.
///
/// ```
/// use duroxide::SemverRange;
/// use semver::Version;
/// let r = SemverRange::new(Version::new(0, 1, 0), Version::new(0, 9, 0));
/// assert!(r.contains(&Version::new(0, 2, 3)));
/// assert!(!r.contains(&Version::new(1, 0, 0)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemverRange {
    /// Lowest version included.
    pub min: semver::Version,
    /// Highest version included.
    pub max: semver::Version,
}

impl SemverRange {
    /// The range `min..=max`.
    pub fn new(min: semver::Version, max: semver::Version) -> Self {
        Self { min, max }
    }
    /// Whether `v` is inside.
    pub fn contains(&self, v: &semver::Version) -> bool {
        *v >= self.min && *v <= self.max
    }
}

/// The contract for a `StartOrchestration` whose instance id is taken, shared by all stores:
/// a sub-orchestration's parent is told (the returned message, to enqueue in the same
/// transaction); a detached start is skipped with a warning.
pub fn start_conflict_reply(start: &OutboundMessage) -> Option<OutboundMessage> {
    let OrchestratorMessage::StartOrchestration { parent, .. } = &start.message else { return None };
    let Some(p) = parent else {
        tracing::warn!(instance = %start.instance, "detached start skipped: instance already exists");
        return None;
    };
    Some(OutboundMessage {
        instance: p.instance.clone(),
        message: OrchestratorMessage::SubOrchestrationFailed {
            execution_id: p.execution_id,
            event_id: p.event_id,
            details: ErrorDetails::configuration(format!(
                "cannot start sub-orchestration: instance '{}' already exists",
                start.instance
            )),
        },
        visible_at_ms: None,
    })
}

/// A sortable integer for a version (`major`, `minor`, `patch`, 20 bits each; pre-release
/// tags are ignored), so stores can filter duroxide-version ranges in their queries.
pub fn version_key(v: &semver::Version) -> i64 {
    const MAX: u64 = (1 << 20) - 1;
    ((v.major.min(MAX) << 40) | (v.minor.min(MAX) << 20) | v.patch.min(MAX)) as i64
}

/// Everything a store holds about one instance, for moving it to another store
/// ([`Provider::export_instance`], [`Provider::import_instance`], [`crate::transfer`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSnapshot {
    /// The instance record (state, pinned versions, custom status, ...).
    pub record: InstanceRecord,
    /// Every execution with its full history, oldest first.
    pub executions: Vec<ExecutionSnapshot>,
    /// Messages not yet consumed (events, completions, timers with their due time).
    pub messages: Vec<PendingMessage>,
    /// Activity work not yet completed (imported unlocked, attempts kept).
    pub activities: Vec<ActivityWorkItem>,
}

/// One execution in an [`InstanceSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSnapshot {
    /// The execution's summary.
    pub record: ExecutionRecord,
    /// The duroxide version that wrote it.
    pub duroxide_version: String,
    /// Its history.
    pub history: Vec<Event>,
}

/// A queued message in an [`InstanceSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingMessage {
    /// The message.
    pub message: OrchestratorMessage,
    /// When it becomes visible (ms since the epoch).
    pub visible_at_ms: u64,
}

/// How many instances of one (name, version) are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    /// Orchestration name.
    pub name: String,
    /// Version of the current execution (`None`: not started yet, no version pinned).
    pub version: Option<String>,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Number of instances.
    pub count: u64,
}

/// An instance with visible messages that a [`FetchFilter`] keeps a node from running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedInstance {
    /// Instance id.
    pub instance: String,
    /// Orchestration name.
    pub name: String,
    /// Pinned version, if any.
    pub version: Option<String>,
    /// The duroxide version that wrote its current execution, if any.
    pub duroxide_version: Option<String>,
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// An instance with this id exists already.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// No instance with this id.
    #[error("instance '{0}' not found")]
    InstanceNotFound(String),
    /// The lock token is no longer valid (expired and taken by someone else).
    #[error("lock lost: {0}")]
    LockLost(String),
    /// The work item was cancelled by its orchestration.
    #[error("work item cancelled by its orchestration")]
    Cancelled,
    /// Stored data cannot be read (corrupt, or written by a newer duroxide). Permanent.
    #[error("corrupt or unreadable data: {0}")]
    Corrupt(String),
    /// The database failed; retrying may help.
    #[error("storage error: {0}")]
    Storage(String),
    /// The schema could not be created or upgraded.
    #[error("migration error: {0}")]
    Migration(String),
    /// The provider was configured wrongly (bad URL, bad option).
    #[error("invalid configuration: {0}")]
    Configuration(String),
    /// The store refused the data itself (a NUL byte PostgreSQL cannot store, a value too
    /// large for an index or a column). Permanent: retrying the same write fails again.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ProviderError {
    /// True for errors that may go away when retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Storage(_))
    }
}

/// In-process wake-ups, so dispatchers in the same process react to new work at once
/// instead of waiting for the next poll.
#[derive(Debug)]
pub struct Notifiers {
    /// New orchestration messages are visible.
    pub orchestrator: Notify,
    /// New activity work is visible.
    pub worker: Notify,
    /// An instance reached a terminal state.
    pub finished: broadcast::Sender<Finished>,
}

/// Notice that an instance reached a terminal state (see [`Notifiers::finished`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The instance id.
    pub instance: String,
    /// The instance as the finishing turn committed it, when the commit happened in this
    /// process; `None` for a notice relayed from another process (read the store then).
    pub record: Option<Arc<InstanceRecord>>,
}

impl Finished {
    /// A notice without the record (relayed from another process).
    pub fn id_only(instance: impl Into<String>) -> Self {
        Self { instance: instance.into(), record: None }
    }

    /// A notice that some instance finished, which one unknown (relayed from another
    /// process that could not name it); every waiter should read the store again.
    pub fn unknown() -> Self {
        Self { instance: String::new(), record: None }
    }

    /// Whether this notice may be about `instance` (it names it, or names none).
    pub fn concerns(&self, instance: &str) -> bool {
        self.instance.is_empty() || self.instance == instance
    }
}

impl Default for Notifiers {
    fn default() -> Self {
        Self { orchestrator: Notify::new(), worker: Notify::new(), finished: broadcast::channel(1024).0 }
    }
}

impl Notifiers {
    /// Wakes orchestration dispatchers now, or at `visible_at_ms` for delayed messages.
    pub fn wake_orchestrator_at(self: &Arc<Self>, visible_at_ms: Option<u64>) {
        let delay = visible_at_ms.map(|t| t.saturating_sub(crate::now_ms())).unwrap_or(0);
        if delay == 0 {
            self.orchestrator.notify_waiters();
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let me = Arc::downgrade(self);
            handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if let Some(me) = me.upgrade() {
                    me.orchestrator.notify_waiters();
                }
            });
        }
    }
}

/// A durable store for histories and queues.
///
/// All methods must be safe to call concurrently from many tasks (and, for stores that
/// support it, many processes). See the module docs for the contract of `commit_turn`.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
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

    /// Locks the oldest instance with visible messages that `filter` allows and returns
    /// them with the current execution's history. Each call counts an attempt on the
    /// returned messages.
    async fn fetch_orchestration_item(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
    ) -> Result<Option<OrchestrationItem>, ProviderError>;

    /// Like [`fetch_orchestration_item`](Self::fetch_orchestration_item) for a node that
    /// keeps live orchestrations in memory: `cached(instance)` returns the execution id and
    /// history length this node already holds. When they equal what is stored, the store
    /// may skip reading the history and return the item with an empty `history` (and the
    /// stored `history_len`); the node then continues from memory. The default reads it.
    async fn fetch_orchestration_item_cached(
        &self,
        lock_timeout: Duration,
        filter: &FetchFilter,
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
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
        cached: &(dyn for<'s> Fn(&'s str) -> Option<(u64, u64)> + Send + Sync),
        max: usize,
    ) -> Result<Vec<OrchestrationItem>, ProviderError> {
        let _ = max;
        Ok(self.fetch_orchestration_item_cached(lock_timeout, filter, cached).await?.into_iter().collect())
    }

    /// Atomically applies a turn and releases the lock (see the module docs).
    async fn commit_turn(&self, lock_token: &str, commit: TurnCommit) -> Result<(), ProviderError>;

    /// Releases the lock without consuming the messages; they become visible again after
    /// `delay`. `note` is recorded on the instance for operators. When `count_attempt` is
    /// false the fetch does not count toward poison.
    async fn abandon_orchestration_item(
        &self,
        lock_token: &str,
        delay: Option<Duration>,
        note: Option<String>,
        count_attempt: bool,
    ) -> Result<(), ProviderError>;

    /// Extends an orchestration lock.
    async fn renew_orchestration_lock(
        &self,
        lock_token: &str,
        lock_timeout: Duration,
    ) -> Result<(), ProviderError>;

    /// Locks the next visible activity `worker` may run: one without a session, one of a
    /// session this worker holds, or one of a free or expired session, which this worker
    /// then claims (if it holds fewer than `max_sessions`).
    async fn fetch_work_item(
        &self,
        lock_timeout: Duration,
        worker: &WorkerIdentity,
    ) -> Result<Option<ActivityWorkItem>, ProviderError>;

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

    /// Releases an activity lock; the item is retried after `delay`.
    async fn abandon_work_item(&self, lock_token: &str, delay: Option<Duration>)
    -> Result<(), ProviderError>;

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

    /// In-process wake-ups; `None` means dispatchers must poll.
    fn notifiers(&self) -> Option<Arc<Notifiers>> {
        None
    }
}
