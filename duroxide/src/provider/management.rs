//! What the management calls of a [`Provider`](super::Provider) take and return: instance
//! filters and cursor pages, instance descriptions (executions, pending work, timers,
//! messages, children), history pages, deletes, pruning, termination and the store
//! summary. The calls themselves are on the trait; [`Client`](crate::Client) wraps them
//! with checks and loops (bulk deletes in bounded batches).

use super::{InstanceRecord, InstanceState, OrchestratorMessage};
use crate::history::Event;
use serde::{Deserialize, Serialize};

/// Which instances a management call selects. Every field that is set must match; the
/// default selects every instance.
///
/// ```
/// use duroxide::provider::{InstanceFilter, InstanceState};
/// let failed_orders = InstanceFilter::default()
///     .state(InstanceState::Failed)
///     .name("OrderPipeline")
///     .updated_after_ms(1_764_806_400_000);
/// assert!(!failed_orders.is_empty());
/// assert!(InstanceFilter::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFilter {
    /// Any of these states (empty: any state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<InstanceState>,
    /// Orchestration name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pinned version of the current execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Parent instance (the children of one instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Instance ids that start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    /// Created at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after_ms: Option<u64>,
    /// Created before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before_ms: Option<u64>,
    /// Last updated at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_after_ms: Option<u64>,
    /// Last updated before this time (ms since the epoch). For a finished instance this is
    /// when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_before_ms: Option<u64>,
}

impl InstanceFilter {
    /// True when no field is set (the filter selects every instance).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
    /// Adds a state to the states selected.
    pub fn state(mut self, state: InstanceState) -> Self {
        if !self.states.contains(&state) {
            self.states.push(state);
        }
        self
    }
    /// Only instances of this orchestration.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Only instances whose current execution runs this version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
    /// Only children of this instance.
    pub fn parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = Some(parent.into());
        self
    }
    /// Only instances whose id starts with `prefix`.
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.id_prefix = Some(prefix.into());
        self
    }
    /// Only instances created at or after `ms` (ms since the epoch).
    pub fn created_after_ms(mut self, ms: u64) -> Self {
        self.created_after_ms = Some(ms);
        self
    }
    /// Only instances created before `ms`.
    pub fn created_before_ms(mut self, ms: u64) -> Self {
        self.created_before_ms = Some(ms);
        self
    }
    /// Only instances updated at or after `ms`.
    pub fn updated_after_ms(mut self, ms: u64) -> Self {
        self.updated_after_ms = Some(ms);
        self
    }
    /// Only instances last updated before `ms` (finished before, for finished ones).
    pub fn updated_before_ms(mut self, ms: u64) -> Self {
        self.updated_before_ms = Some(ms);
        self
    }
    /// Whether `record` matches (what the stores' queries compute, for tests and for
    /// stores without a query language).
    pub fn matches(&self, record: &InstanceRecord) -> bool {
        (self.states.is_empty() || self.states.contains(&record.state))
            && self.name.as_ref().is_none_or(|n| *n == record.name)
            && self.version.as_ref().is_none_or(|v| record.version.as_ref() == Some(v))
            && self.parent.as_ref().is_none_or(|p| record.parent_instance.as_ref() == Some(p))
            && self.id_prefix.as_ref().is_none_or(|p| record.instance.starts_with(p.as_str()))
            && self.created_after_ms.is_none_or(|t| record.created_at_ms >= t)
            && self.created_before_ms.is_none_or(|t| record.created_at_ms < t)
            && self.updated_after_ms.is_none_or(|t| record.updated_at_ms >= t)
            && self.updated_before_ms.is_none_or(|t| record.updated_at_ms < t)
    }
}

/// The order of a listing. Both are stable: instances are ordered by creation time, then
/// id, so a page never repeats or skips an instance, whatever is inserted meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListOrder {
    /// Most recently created first (the default).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// A position in a listing: the last instance of the page before. Opaque to users as a
/// string ([`InstanceCursor::encode`], [`InstanceCursor::parse`]).
///
/// ```
/// use duroxide::provider::{InstanceCursor, ListOrder};
/// let c = InstanceCursor { order: ListOrder::NewestFirst, created_at_ms: 42, instance: "order-7".into() };
/// let text = c.encode();
/// assert_eq!(InstanceCursor::parse(&text).unwrap(), c);
/// assert!(InstanceCursor::parse("not a cursor").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceCursor {
    /// The order of the listing the cursor belongs to.
    pub order: ListOrder,
    /// Creation time of the last instance returned.
    pub created_at_ms: u64,
    /// Id of the last instance returned.
    pub instance: String,
}

/// A cursor string that is not one [`InstanceCursor::encode`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed cursor '{cursor}': {reason}; pass the `next_cursor` of the previous page unchanged")]
pub struct CursorError {
    /// The string given.
    pub cursor: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InstanceCursor {
    /// The cursor as an opaque string: `n` or `o` (the order), the creation time, and the
    /// id in hex, separated by `.`.
    pub fn encode(&self) -> String {
        let order = match self.order {
            ListOrder::NewestFirst => 'n',
            ListOrder::OldestFirst => 'o',
        };
        let hex: String = self.instance.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{order}.{}.{hex}", self.created_at_ms)
    }

    /// Reads a cursor [`encode`](Self::encode) wrote.
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let fail = |reason: &str| CursorError { cursor: text.to_string(), reason: reason.to_string() };
        let mut parts = text.split('.');
        let (Some(order), Some(time), Some(hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail("expected three parts separated by '.'"));
        };
        let order = match order {
            "n" => ListOrder::NewestFirst,
            "o" => ListOrder::OldestFirst,
            _ => return Err(fail("unknown order")),
        };
        let created_at_ms = time.parse::<u64>().map_err(|_| fail("the time is not a number"))?;
        if hex.len() % 2 != 0 || hex.is_empty() {
            return Err(fail("the id is not hex"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| fail("the id is not hex"))?;
        let instance = String::from_utf8(bytes).map_err(|_| fail("the id is not UTF-8"))?;
        Ok(Self { order, created_at_ms, instance })
    }
}

/// What page of a listing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Order of the listing.
    pub order: ListOrder,
    /// Most instances on the page (at least 1).
    pub limit: u32,
    /// Continue after this position (`None`: from the start).
    pub after: Option<InstanceCursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { order: ListOrder::NewestFirst, limit: 100, after: None }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePage {
    /// The instances, in the listing's order.
    pub instances: Vec<InstanceRecord>,
    /// Where the next page starts (`None`: this was the last page).
    pub next_cursor: Option<String>,
}

/// How many instances are in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCount {
    /// The state.
    pub state: InstanceState,
    /// Number of instances.
    pub count: u64,
}

/// Everything a store knows about one instance, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDescription {
    /// The instance record (state, versions, output or error, custom status, note).
    pub record: InstanceRecord,
    /// When a node holds the instance for a turn: until when (ms since the epoch).
    pub locked_until_ms: Option<u64>,
    /// Every execution, oldest first.
    pub executions: Vec<super::ExecutionRecord>,
    /// Activities scheduled and not yet completed.
    pub pending_activities: Vec<PendingActivity>,
    /// Durable timers that have not fired yet.
    pub pending_timers: Vec<PendingTimer>,
    /// Messages waiting for the orchestration (completions, events, timers, cancellation).
    pub queued_messages: Vec<QueuedMessage>,
    /// Sub-orchestrations started by the instance.
    pub children: Vec<ChildInstance>,
}

/// An activity waiting for a worker or running on one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingActivity {
    /// Execution that scheduled it.
    pub execution_id: u64,
    /// Its `ActivityScheduled` event id.
    pub event_id: u64,
    /// Activity name.
    pub name: String,
    /// The session it must run on, if any.
    pub session_id: Option<String>,
    /// How many times a worker has taken it.
    pub attempts: u32,
    /// When it becomes (or became) available to workers (ms since the epoch).
    pub visible_at_ms: u64,
    /// While a worker holds it: the worker's id, when the store knows it (an activity a
    /// turn handed straight to a worker of its node records none).
    pub locked_by: Option<String>,
    /// While a worker holds it: until when.
    pub locked_until_ms: Option<u64>,
    /// The orchestration no longer waits for it; the worker is told to stop.
    pub cancel_requested: bool,
    /// The worker tag it is routed to (`None`: untagged). Only runtimes serving the tag
    /// take it (see `docs/activity-routing.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Whether a live runtime serves its tag (one whose filter admits the tag, with at
    /// least one activity slot): `Some(false)` means no running node will ever take it
    /// until one serving the tag starts. Filled by
    /// [`Client::describe_instance`](crate::Client::describe_instance) from the runtimes'
    /// presence records; `None` where nobody looked (a store's own
    /// [`Provider::describe_instance`](super::Provider::describe_instance)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<bool>,
}

/// A durable timer that has not fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTimer {
    /// Execution that created it.
    pub execution_id: u64,
    /// Its `TimerCreated` event id.
    pub event_id: u64,
    /// When it fires (ms since the epoch).
    pub fire_at_ms: u64,
}

/// A message queued for an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Queue position (increasing).
    pub id: u64,
    /// The message.
    pub message: OrchestratorMessage,
    /// When it was enqueued (ms since the epoch).
    pub enqueued_at_ms: u64,
    /// When it becomes visible (the fire time, for a timer).
    pub visible_at_ms: u64,
    /// How many times it has been fetched.
    pub attempts: u32,
    /// Whether a turn holds it now.
    pub locked: bool,
}

/// A sub-orchestration of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildInstance {
    /// Instance id.
    pub instance: String,
    /// Orchestration name.
    pub name: String,
    /// Pinned version, once started.
    pub version: Option<String>,
    /// Lifecycle state.
    pub state: InstanceState,
}

/// A page of one execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The execution read.
    pub execution_id: u64,
    /// Events after the requested position, in order.
    pub events: Vec<Event>,
    /// Pass as `after_event_id` for the next page (`None`: this was the last).
    pub next_after_event_id: Option<u64>,
}

/// Which executions of a continue-as-new instance
/// [`Provider::prune_executions`](super::Provider::prune_executions) removes. The current
/// execution is never removed; an execution is removed when it matches every field set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneOptions {
    /// Keep the last `n` executions (the current one included).
    pub keep_last: Option<u32>,
    /// Remove only executions that finished before this time (ms since the epoch).
    pub finished_before_ms: Option<u64>,
}

impl PruneOptions {
    /// The ids of the executions these options remove, given every execution of an
    /// instance (any order) and its current one: never the current one; with `keep_last`,
    /// not the newest `keep_last - 1` others; with `finished_before_ms`, only those updated
    /// before it. What a store's prune and a dry run both compute.
    ///
    /// ```
    /// use duroxide::provider::{ExecutionRecord, InstanceState, PruneOptions};
    /// let exec = |id, updated_at_ms| ExecutionRecord {
    ///     execution_id: id,
    ///     version: "1.0.0".into(),
    ///     state: InstanceState::Completed,
    ///     event_count: 3,
    ///     started_at_ms: 0,
    ///     updated_at_ms,
    /// };
    /// let all = [exec(1, 10), exec(2, 20), exec(3, 30), exec(4, 40)];
    /// let keep_two = PruneOptions { keep_last: Some(2), finished_before_ms: None };
    /// assert_eq!(keep_two.select(&all, 4), vec![2, 1]);
    /// let old = PruneOptions { keep_last: None, finished_before_ms: Some(25) };
    /// assert_eq!(old.select(&all, 4), vec![2, 1]);
    /// ```
    pub fn select(&self, executions: &[super::ExecutionRecord], current: u64) -> Vec<u64> {
        let mut older: Vec<&super::ExecutionRecord> =
            executions.iter().filter(|e| e.execution_id != current).collect();
        older.sort_by_key(|e| std::cmp::Reverse(e.execution_id));
        let keep = self.keep_last.map_or(0, |k| k.saturating_sub(1) as usize);
        older
            .iter()
            .enumerate()
            .filter(|(i, _)| self.keep_last.is_none() || *i >= keep)
            .filter(|(_, e)| self.finished_before_ms.is_none_or(|t| e.updated_at_ms < t))
            .map(|(_, e)| e.execution_id)
            .collect()
    }
}

/// One batch of a bulk delete
/// ([`Provider::delete_instances`](super::Provider::delete_instances)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteBatch {
    /// Instances removed (those selected and their sub-orchestrations).
    pub deleted: u64,
    /// Selected instances left in place because a sub-orchestration of theirs still runs.
    pub skipped: u64,
    /// Where the batch stopped: pass it as `after` for the next batch (`None`: no selected
    /// instance is left after this batch).
    pub next: Option<InstanceCursor>,
}

/// What [`Provider::terminate_instance`](super::Provider::terminate_instance) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminateOutcome {
    /// These instances (the one asked for first, then its unfinished sub-orchestrations)
    /// are now failed with category `Terminated`.
    Terminated(Vec<String>),
    /// The instance had already finished; nothing changed.
    AlreadyFinished(InstanceState),
}

/// Depth of one queue, for health checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    /// Visible now and not held by anyone.
    pub ready: u64,
    /// Held by a node (a turn or a worker).
    pub locked: u64,
    /// Visible later (timers, retries after a delay).
    pub delayed: u64,
    /// Age of the oldest ready item (ms since it became visible), `None` when none is ready.
    pub oldest_ready_age_ms: Option<u64>,
}

/// A store's summary for health checks and dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSummary {
    /// When the summary was taken (ms since the epoch).
    pub taken_at_ms: u64,
    /// Instances per state (every state listed, zeros included).
    pub instances: Vec<StateCount>,
    /// Messages for orchestrations (starts, completions, events, timers).
    pub orchestrator_queue: QueueDepth,
    /// Activity work.
    pub activity_queue: QueueDepth,
    /// Sessions held by workers.
    pub sessions: u64,
    /// Activities waiting for a worker (queued, not held by one), per tag: untagged work
    /// first, then by tag. Work for a tag no runtime serves stays here, its oldest item
    /// getting older.
    #[serde(default)]
    pub activity_tags: Vec<TagBacklog>,
}

/// The activities of one tag waiting for a worker (see [`StoreSummary::activity_tags`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagBacklog {
    /// The tag (`None`: untagged work).
    pub tag: Option<String>,
    /// How many are waiting (queued and not held by a worker, due or delayed).
    pub waiting: u64,
    /// When the oldest of them became (or becomes) runnable, ms since the epoch.
    pub oldest_visible_at_ms: u64,
    /// How many live runtimes serve the tag (their filter admits it and they have at least
    /// one activity slot); 0 means no running node will take this work. Filled by
    /// [`Client::store_summary`](crate::Client::store_summary) from the runtimes' presence
    /// records; a store's own [`Provider::store_summary`](super::Provider::store_summary)
    /// leaves it 0.
    #[serde(default)]
    pub served_by: u32,
}

impl TagBacklog {
    /// How long the oldest has been runnable at `now` (0 if it is not yet due).
    pub fn oldest_age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.oldest_visible_at_ms)
    }
}

/// The plan a store's query planner chose for one management query (see
/// `SqliteProvider::management_query_plans`), so operators and tests can check that a
/// filter is served by an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPlan {
    /// Which query (`list` or `count`).
    pub query: String,
    /// Its SQL.
    pub sql: String,
    /// The plan, one line per plan row as the database prints it.
    pub plan: Vec<String>,
}
