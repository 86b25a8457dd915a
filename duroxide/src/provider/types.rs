//! The data a [`Provider`](super::Provider) moves: instance records and states, locked work
//! (orchestration items, activity work items), turn commits, fetch filters, worker
//! identities, and snapshots for export and import. Not here: queue messages (`messages`),
//! errors (`errors`), wake-ups (`notifiers`), identifier limits (`limits`).

use super::{OrchestratorMessage, OutboundMessage};
use crate::history::{ErrorDetails, Event};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// Custom status set by the orchestration (kept when the instance finishes and carried
    /// across continue-as-new).
    pub custom_status: Option<String>,
    /// How many times the custom status has changed (each recorded `CustomStatusSet`), so
    /// a client can wait for the next change
    /// ([`Client::wait_for_status_change`](crate::Client::wait_for_status_change)). 0 in
    /// snapshots exported before it existed.
    #[serde(default)]
    pub custom_status_version: u64,
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
    /// When it started, ms since the epoch (0 when unknown: exported by an older version).
    #[serde(default)]
    pub started_at_ms: u64,
    /// Its last change (for a finished execution, when it finished), ms since the epoch.
    #[serde(default)]
    pub updated_at_ms: u64,
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
    /// When the item became runnable, ms since the epoch: when its turn scheduled it, or
    /// when a retry delay ended (0: not known). Fetches fill it in (it starts the
    /// schedule-to-start time of the metrics); stores ignore it on enqueue and export.
    #[serde(default)]
    pub visible_at_ms: u64,
    /// The worker tag the activity is routed to (`None`: untagged). Only runtimes whose
    /// [`TagFilter`](super::TagFilter) accepts it fetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The orchestration that scheduled it (empty for work queued before this was kept).
    #[serde(default)]
    pub orchestration_name: String,
    /// The version of the execution that scheduled it (empty when not known, as above).
    #[serde(default)]
    pub orchestration_version: String,
}

/// Who is fetching activity work, for session affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerIdentity {
    /// Unique among the runtimes running at one time; sessions are held by it. A runtime
    /// restarted with the same id (`RuntimeOptions::worker_node_id`) holds its sessions
    /// again at once.
    pub worker_id: String,
    /// How long a claimed session stays with this worker without renewal.
    pub session_lease: Duration,
    /// Most sessions with work (queued or running) this worker holds at once; work of
    /// further sessions is left to others. Idle sessions it still holds (until the idle
    /// timeout releases them) do not count, so they never keep it from new sessions.
    pub max_sessions: u32,
    /// Which activities this worker takes, by tag; a fetch never returns others.
    pub tags: super::TagFilter,
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

/// Everything one turn changes, committed atomically by
/// [`Provider::commit_turn`](super::Provider::commit_turn).
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

impl TurnCommit {
    /// How many custom status changes the turn records (its `CustomStatusSet` events): the
    /// amount a store raises the instance's
    /// [`custom_status_version`](InstanceRecord::custom_status_version) by.
    pub fn status_changes(&self) -> u64 {
        self.new_events
            .iter()
            .filter(|e| matches!(e.kind, crate::history::EventKind::CustomStatusSet { .. }))
            .count() as u64
    }
}

/// Which instances
/// [`Provider::complete_work_items_and_lock`](super::Provider::complete_work_items_and_lock)
/// may lock for the caller.
pub struct LockAfterComplete<'a> {
    /// Most instances to lock.
    pub max_instances: usize,
    /// How long they stay locked.
    pub lock_timeout: Duration,
    /// Only instances this filter allows (as for a fetch).
    pub filter: &'a FetchFilter,
    /// The caller's live copy of an instance, as a [`CachedPosition`], so the
    /// store may skip reading its history (see `fetch_orchestration_item_cached`).
    pub cached: &'a CachedLookup<'a>,
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

/// A sortable integer for a version (`major`, `minor`, `patch`, 20 bits each; pre-release
/// tags are ignored), so stores can filter duroxide-version ranges in their queries.
pub fn version_key(v: &semver::Version) -> i64 {
    const MAX: u64 = (1 << 20) - 1;
    ((v.major.min(MAX) << 40) | (v.minor.min(MAX) << 20) | v.patch.min(MAX)) as i64
}

/// Everything a store holds about one instance, for moving it to another store
/// ([`Provider::export_instance`](super::Provider::export_instance),
/// [`Provider::import_instance`](super::Provider::import_instance), [`crate::transfer`]).
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
    /// The instance's durable values, sorted by key. Exports written before values
    /// existed load with none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, String>,
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

/// How many instances of one (name, version, duroxide version) are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    /// Orchestration name.
    pub name: String,
    /// Version of the current execution (`None`: not started yet, no version pinned).
    pub version: Option<String>,
    /// The duroxide version that wrote the current execution (`None`: not started yet).
    pub duroxide_version: Option<String>,
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

/// Whether releasing a locked orchestration item
/// ([`Provider::abandon_orchestration_item`](super::Provider::abandon_orchestration_item))
/// counts its fetch toward poison (`RuntimeOptions::max_attempts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The turn failed (a commit error, an unreadable history): this fetch counts.
    Counted,
    /// The instance is not at fault (no node here can run it yet, or this node releases
    /// it unstarted at shutdown): this fetch is given back.
    GivenBack,
}

/// Where a node's live copy of an instance stands, so that a cached fetch may skip reading
/// a history the node already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedPosition {
    /// The execution the copy is of.
    pub execution_id: u64,
    /// The id of the last event the copy holds.
    pub last_event_id: u64,
}

/// What a cached fetch asks the caller: its [`CachedPosition`] of an instance, if it holds
/// one.
pub type CachedLookup<'a> = dyn for<'s> Fn(&'s str) -> Option<CachedPosition> + Send + Sync + 'a;
