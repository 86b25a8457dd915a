//! The replay engine: a pure function of (history, new messages, orchestration code) to
//! (new events, actions, outcome).
//!
//! No I/O and no clock live here: the caller passes the turn's wall-clock time in
//! [`TurnEnv`]. The engine drives the orchestration future with a no-op waker, feeding it
//! completions one at a time in history order and polling after each, so the code observes
//! exactly the interleaving it observed when the history was written:
//!
//! 1. Poll once; every scheduling call the code makes is matched, by sequence, against the
//!    decision events already in history (kind, name and input must be equal), or, past the
//!    end of history, recorded as a new decision with an [`Action`] for the runtime.
//! 2. Deliver each completion already in history (by the id of its scheduling event), poll.
//! 3. Check that every decision in history was made again; then deliver this turn's new
//!    messages the same way, appending them to history. Duplicate or unknown completions are
//!    dropped, never applied twice. A cancellation among the new messages goes first, so
//!    no code runs in a turn that is cancelled.
//!
//! External events go to waits first come, first served, and a wait the code drops unread
//! gives up its place (recorded as `ExternalUnsubscribed`); see `ExternalQueue`. The
//! engine also enforces the turn's limits from [`TurnEnv`]: history length per execution
//! and custom status size.
//!
//! An engine can be kept between turns (the runtime's instance cache): `run_turn` only ever
//! feeds new messages to the live future, which produces the same history as a cold replay.

use crate::context::OrchestrationContext;
use crate::error::OrchestrationError;
use crate::history::{DUROXIDE_VERSION, ErrorDetails, Event, EventKind, digest};
use futures::future::BoxFuture;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

/// Code the engine can run: the registered orchestration function.
pub trait OrchestrationHandler: Send + Sync + 'static {
    /// Starts one execution.
    fn invoke(
        &self,
        ctx: OrchestrationContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, OrchestrationError>>;
}

impl<F, Fut> OrchestrationHandler for F
where
    F: Fn(OrchestrationContext, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, OrchestrationError>> + Send + 'static,
{
    fn invoke(
        &self,
        ctx: OrchestrationContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, OrchestrationError>> {
        Box::pin((self)(ctx, input))
    }
}

/// Work the runtime must do because the orchestration made a new decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Enqueue an activity for the workers.
    ScheduleActivity {
        /// The `ActivityScheduled` event id.
        event_id: u64,
        /// Activity name.
        name: String,
        /// Input.
        input: String,
        /// Session it must run on.
        session_id: Option<String>,
    },
    /// Deliver a `TimerFired` at `fire_at_ms`.
    CreateTimer {
        /// The `TimerCreated` event id.
        event_id: u64,
        /// Due time, ms since the epoch.
        fire_at_ms: u64,
    },
    /// Start a child instance linked to this one.
    StartSubOrchestration {
        /// The `SubOrchestrationScheduled` event id.
        event_id: u64,
        /// Orchestration name.
        name: String,
        /// Requested version.
        version: Option<String>,
        /// Child instance id.
        instance: String,
        /// Input.
        input: String,
    },
    /// Start an unrelated instance.
    StartDetached {
        /// Orchestration name.
        name: String,
        /// Requested version.
        version: Option<String>,
        /// Instance id.
        instance: String,
        /// Input.
        input: String,
    },
    /// Tell the activity's worker to stop, or drop it from the queue.
    CancelActivity {
        /// The `ActivityScheduled` event id.
        event_id: u64,
    },
    /// Cancel a child instance.
    CancelSubOrchestration {
        /// Child instance id.
        instance: String,
        /// Reason passed to the child.
        reason: String,
    },
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnOutcome {
    /// The orchestration waits for more messages.
    Pending,
    /// Returned `Ok(output)`.
    Completed(String),
    /// Failed (error, panic, cancellation, nondeterminism).
    Failed(ErrorDetails),
    /// Ended this execution; the next one starts with this input and version.
    ContinuedAsNew {
        /// Input of the next execution.
        input: String,
        /// Version of the next execution.
        version: String,
    },
}

impl TurnOutcome {
    /// True when the execution ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, TurnOutcome::Pending)
    }
}

/// Default limit on the events of one execution's history: 50,000.
///
/// Far above what a well-shaped execution records (a loop of 10,000 activities writes about
/// 20,000 events), and about where Temporal stops a workflow (51,200 events), yet small
/// enough that a cold replay of the longest allowed history stays in the tens of
/// milliseconds and its rows stay cheap to load. An execution that needs more should call
/// `continue_as_new`.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 50_000;

/// Inputs a turn needs from the outside world.
#[derive(Debug, Clone)]
pub struct TurnEnv {
    /// Wall-clock time of this turn (ms since the Unix epoch); used only for new decisions.
    pub now_ms: u64,
    /// Largest payload (activity input, orchestration output, custom status, ...) in bytes.
    pub max_payload_bytes: usize,
    /// Most events one execution's history may hold. A turn that would append past it fails
    /// the execution (a configuration error that points to `continue_as_new`); only the
    /// failure's own events (cancellation of open work, the terminal event) go past it.
    pub max_history_events: usize,
}

impl Default for TurnEnv {
    fn default() -> Self {
        Self {
            now_ms: 0,
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
        }
    }
}

/// What one turn produced.
#[derive(Debug, Clone)]
pub struct TurnResult {
    /// Events to append to the execution's history, in order.
    pub new_events: Vec<Event>,
    /// Work to enqueue.
    pub actions: Vec<Action>,
    /// How the turn ended.
    pub outcome: TurnOutcome,
    /// The custom status after this turn, if the code ever set one.
    pub custom_status: Option<Option<String>>,
    /// Messages that were dropped (duplicates, unknown ids), with the reason; for logging.
    pub dropped: Vec<String>,
}

/// A history the engine cannot replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The history is malformed (no start event, dangling or duplicate completion, ...).
    #[error("corrupt history: {0}")]
    CorruptHistory(String),
}

/// A completion value delivered to a scheduled task.
#[derive(Debug, Clone)]
pub(crate) enum CompletionValue {
    Ok(String),
    Err(ErrorDetails),
    Unit,
}

#[derive(Debug, Clone)]
pub(crate) struct Completion {
    /// Position in history of the event that delivered it; `select` picks the lowest.
    pub seq: u64,
    pub value: CompletionValue,
}

pub(crate) use crate::history::TaskKind;

/// Raised events and open waits of one event name.
///
/// Events go to waits first come, first served: a raised event goes to the oldest wait
/// still waiting, or is buffered for the next wait the code makes. A wait the code drops
/// without having received its event gives up its place (and hands back the event it was
/// given, if any), so no event is lost to a wait nobody reads.
#[derive(Debug, Default)]
struct ExternalQueue {
    /// Events no wait holds, as (history position, data), oldest first.
    buffered: VecDeque<(u64, String)>,
    /// Waits without an event yet, oldest first.
    waiting: VecDeque<u64>,
}

/// Shared state between the engine and the [`OrchestrationContext`] the code holds.
pub(crate) struct ReplayState {
    pub instance: String,
    pub execution_id: u64,
    pub name: String,
    pub version: String,
    pub history: Vec<Event>,
    /// How many of `history` were already stored when the current turn began.
    persisted_len: usize,
    /// History indexes of decision events, in order.
    decisions: Vec<usize>,
    /// How many decision events existed before this engine made any decision itself.
    baseline_decisions: usize,
    pub decision_cursor: usize,
    /// Baseline completions not yet delivered.
    baseline_deliveries_pending: usize,
    next_event_id: u64,
    /// Scheduled tasks by event id.
    pub tasks: HashMap<u64, TaskKind>,
    pub completions: HashMap<u64, Completion>,
    /// External events and waits by event name (see [`ExternalQueue`]).
    external: HashMap<String, ExternalQueue>,
    /// Event name of every wait, by its `ExternalSubscribed` event id.
    wait_names: HashMap<u64, String>,
    /// Waits whose `ExternalUnsubscribed` is already in history.
    unsubscribed: HashSet<u64>,
    /// Sub-orchestration instance ids by event id.
    children: HashMap<u64, String>,
    /// Event ids whose cancellation is already recorded.
    cancelled: HashSet<u64>,
    /// Set while the engine re-runs the code of turns already stored (the first turn of an
    /// engine over a stored history that the code already ran on): everything the code does
    /// then was done, and recorded, when that history was written.
    replaying_stored: bool,
    actions: Vec<Action>,
    pub nondeterminism: Option<String>,
    /// A failure the code cannot catch (history limit, oversized custom status); the engine
    /// fails the execution after the current poll.
    fatal: Option<ErrorDetails>,
    pub custom_status: Option<Option<String>>,
    pub continue_as_new: Option<(String, String)>,
    pub env: TurnEnv,
    /// Set while the engine drops the orchestration future, so drops do not cancel work.
    tearing_down: bool,
}

impl ReplayState {
    /// True while the code re-runs what stored turns already did. This includes the code
    /// that ran after the last stored decision or completion (a status set, a log line):
    /// it is stored too, and must not be recorded or logged again.
    pub fn is_replaying(&self) -> bool {
        self.replaying_stored
            || self.baseline_deliveries_pending > 0
            || self.decision_cursor < self.baseline_decisions
    }

    fn push_event(&mut self, kind: EventKind) -> u64 {
        let event_id = self.next_event_id;
        self.next_event_id += 1;
        self.history.push(Event { event_id, timestamp_ms: self.env.now_ms, kind });
        event_id
    }

    /// Matches a scheduling decision against history, or records it as new.
    /// Returns the event id, or `None` after a nondeterminism error.
    pub fn decide(
        &mut self,
        make: impl FnOnce(u64) -> EventKind,
        action: impl FnOnce(u64, &EventKind) -> Option<Action>,
    ) -> Option<u64> {
        if self.nondeterminism.is_some() || self.fatal.is_some() {
            return None;
        }
        if self.decision_cursor < self.decisions.len() {
            let expected = self.history[self.decisions[self.decision_cursor]].clone();
            let actual = make(expected.event_id);
            if decision_matches(&expected.kind, &actual) {
                self.decision_cursor += 1;
                return Some(expected.event_id);
            }
            self.nondeterminism = Some(format!(
                "nondeterministic orchestration '{}' (instance '{}', execution {}): history \
                 expected {} at event {} but the code now makes {}",
                self.name,
                self.instance,
                self.execution_id,
                describe(&expected.kind, Some(&self.version)),
                expected.event_id,
                describe(&actual, None),
            ));
            return None;
        }
        if let Some(e) = self.history_limit_error(1) {
            self.fatal = Some(e);
            return None;
        }
        let id = self.next_event_id;
        let kind = make(id);
        if let Some(a) = action(id, &kind) {
            self.actions.push(a);
        }
        let id = self.push_event(kind);
        self.decisions.push(self.history.len() - 1);
        self.decision_cursor += 1;
        Some(id)
    }

    pub fn register_task(&mut self, id: u64, kind: TaskKind) {
        self.tasks.insert(id, kind);
    }

    pub fn register_child(&mut self, id: u64, instance: String) {
        self.children.insert(id, instance);
    }

    /// The failure of an execution whose history would hold more than `max_history_events`
    /// events after `adding` more.
    fn history_limit_error(&self, adding: usize) -> Option<ErrorDetails> {
        let max = self.env.max_history_events;
        (self.history.len().saturating_add(adding) > max).then(|| {
            ErrorDetails::history_limit(format!(
                "execution {} of instance '{}' (orchestration '{}') would grow past \
                 max_history_events = {max} events; an orchestration that loops or runs long \
                 must call continue_as_new to go on in a new execution with an empty history",
                self.execution_id, self.instance, self.name
            ))
        })
    }

    /// Opens a wait: it takes the oldest buffered event of its name, or queues for the next.
    pub fn subscribe(&mut self, id: u64, name: &str) {
        self.wait_names.insert(id, name.to_string());
        let queue = self.external.entry(name.to_string()).or_default();
        match queue.buffered.pop_front() {
            Some((seq, data)) => {
                self.completions.insert(id, Completion { seq, value: CompletionValue::Ok(data) });
            }
            None => queue.waiting.push_back(id),
        }
    }

    /// Gives a raised event (at history position `seq`) to the oldest open wait of its name,
    /// or buffers it in history order.
    fn route_external(&mut self, name: &str, seq: u64, data: String) {
        let queue = self.external.entry(name.to_string()).or_default();
        match queue.waiting.pop_front() {
            Some(wait) => {
                self.completions.insert(wait, Completion { seq, value: CompletionValue::Ok(data) });
            }
            None => {
                let at = queue.buffered.partition_point(|(s, _)| *s < seq);
                queue.buffered.insert(at, (seq, data));
            }
        }
    }

    /// The code dropped wait `id` without receiving its event: the wait gives up its place,
    /// and an event it was handed goes to the next wait. Recorded in history, so the choice
    /// never depends on whether the engine was cached or replayed.
    fn release_wait(&mut self, id: u64) {
        let Some(name) = self.wait_names.get(&id).cloned() else { return };
        if !self.unsubscribed.contains(&id) {
            // A wait of a stored turn without the event was dropped by a version that kept
            // the claim: keep it, so the history replays as it was written.
            if self.replaying_stored && (id as usize) <= self.persisted_len {
                return;
            }
            self.unsubscribed.insert(id);
            self.push_event(EventKind::ExternalUnsubscribed { source_event_id: id });
        }
        if let Some(queue) = self.external.get_mut(&name) {
            queue.waiting.retain(|w| *w != id);
        }
        if let Some(Completion { seq, value: CompletionValue::Ok(data) }) = self.completions.remove(&id) {
            self.route_external(&name, seq, data);
        }
    }

    pub fn completion(&self, id: u64) -> Option<&Completion> {
        self.completions.get(&id)
    }

    /// Records that the code no longer waits for task `id` (its future was dropped).
    pub fn cancel_task(&mut self, id: u64, reason: &str) {
        if self.tearing_down {
            return;
        }
        if self.tasks.get(&id) == Some(&TaskKind::External) {
            // Also when the event was already handed to it: the code never received it.
            self.release_wait(id);
            return;
        }
        if self.completions.contains_key(&id) || !self.cancelled.insert(id) {
            return;
        }
        match self.tasks.get(&id) {
            Some(TaskKind::Activity) => {
                self.push_event(EventKind::ActivityCancelRequested { source_event_id: id });
                self.actions.push(Action::CancelActivity { event_id: id });
            }
            Some(TaskKind::SubOrchestration) => {
                self.push_event(EventKind::SubOrchestrationCancelRequested { source_event_id: id });
                if let Some(instance) = self.children.get(&id).cloned() {
                    self.actions
                        .push(Action::CancelSubOrchestration { instance, reason: reason.to_string() });
                }
            }
            // Timers and event subscriptions hold no work elsewhere.
            _ => {}
        }
    }

    /// Records a custom status; only new (non-replayed) calls append an event. A new status
    /// over `max_payload_bytes` fails the execution instead (stored statuses replay as
    /// they are, whatever the limit is now).
    pub fn set_custom_status(&mut self, status: Option<String>) {
        if self.fatal.is_some() || self.nondeterminism.is_some() {
            return;
        }
        if !self.is_replaying() && self.custom_status.as_ref() != Some(&status) {
            let (size, limit) = (status.as_ref().map_or(0, String::len), self.env.max_payload_bytes);
            if size > limit {
                self.fatal = Some(ErrorDetails::payload_too_large(format!(
                    "custom status is {size} bytes; the limit is {limit} bytes"
                )));
                return;
            }
            self.push_event(EventKind::CustomStatusSet { status: status.clone() });
        }
        self.custom_status = Some(status);
    }

    /// Delivers a completion event (from history or new). Returns an error message when the
    /// event must be dropped.
    fn deliver(&mut self, index: usize) -> Result<(), String> {
        let seq = index as u64;
        let kind = self.history[index].kind.clone();
        let target = kind.completed_task();
        let value = match kind {
            EventKind::ActivityCompleted { result, .. }
            | EventKind::SubOrchestrationCompleted { result, .. } => CompletionValue::Ok(result),
            EventKind::ActivityFailed { details, .. } | EventKind::SubOrchestrationFailed { details, .. } => {
                CompletionValue::Err(details)
            }
            EventKind::TimerFired { .. } => CompletionValue::Unit,
            EventKind::ExternalRaised { name, data } => {
                self.route_external(&name, seq, data);
                return Ok(());
            }
            other => return Err(format!("{} is not a completion", other.type_name())),
        };
        let Some((id, expected)) = target else {
            unreachable!("every completion above names its scheduling event")
        };
        self.check_completion(id, expected)?;
        self.completions.insert(id, Completion { seq, value });
        Ok(())
    }

    fn check_completion(&self, id: u64, expected: TaskKind) -> Result<(), String> {
        // Event ids are history positions (checked when the engine is built).
        let scheduled =
            (id as usize).checked_sub(1).and_then(|i| self.history.get(i)).map(|e| e.kind.scheduled_task());
        match scheduled {
            Some(Some(k)) if k == expected => {}
            Some(_) => return Err(format!("event {id} is not a {expected:?} scheduling event")),
            None => return Err(format!("no scheduling event with id {id}")),
        }
        if self.completions.contains_key(&id) {
            return Err(format!("{expected:?} {id} is already completed"));
        }
        Ok(())
    }

    /// Ids of scheduled activities and sub-orchestrations that have neither completed nor
    /// been cancelled.
    fn open_work(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(id, k)| {
                matches!(k, TaskKind::Activity | TaskKind::SubOrchestration)
                    && !self.completions.contains_key(id)
                    && !self.cancelled.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// Whether a decision the code makes now equals the one recorded in history.
fn decision_matches(recorded: &EventKind, now: &EventKind) -> bool {
    use EventKind::*;
    match (recorded, now) {
        (
            ActivityScheduled { name: a, input: ai, session_id: asn, .. },
            ActivityScheduled { name: b, input: bi, session_id: bsn, .. },
        ) => a == b && ai == bi && asn == bsn,
        (TimerCreated { delay_ms: a, .. }, TimerCreated { delay_ms: b, .. }) => a == b,
        (ExternalSubscribed { name: a, .. }, ExternalSubscribed { name: b, .. }) => a == b,
        (
            SubOrchestrationScheduled { name: a, version: av, instance: ai, input: ain, .. },
            SubOrchestrationScheduled { name: b, version: bv, instance: bi, input: bin, .. },
        ) => a == b && av == bv && ai == bi && ain == bin,
        (
            OrchestrationChained { name: a, version: av, instance: ai, input: ain, .. },
            OrchestrationChained { name: b, version: bv, instance: bi, input: bin, .. },
        ) => a == b && av == bv && ai == bi && ain == bin,
        (SystemCall { op: a, .. }, SystemCall { op: b, .. }) => a == b,
        _ => false,
    }
}

/// Describes a decision for a nondeterminism message: kind, name, input digest, call site
/// and (for recorded decisions) the version that recorded it.
fn describe(kind: &EventKind, recorded_by: Option<&str>) -> String {
    let site = |s: &Option<String>| s.clone().unwrap_or_else(|| "unknown call site".into());
    let by = recorded_by.map(|v| format!(", recorded by version {v}")).unwrap_or_default();
    match kind {
        EventKind::ActivityScheduled { name, input, call_site, session_id: None } => {
            format!("schedule_activity(\"{name}\", input #{}) at {}{by}", digest(input), site(call_site))
        }
        EventKind::ActivityScheduled { name, input, call_site, session_id: Some(session) } => format!(
            "schedule_activity_on_session(\"{name}\", input #{}, session \"{session}\") at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::TimerCreated { delay_ms, call_site, .. } => {
            format!("schedule_timer({delay_ms} ms) at {}{by}", site(call_site))
        }
        EventKind::ExternalSubscribed { name, call_site } => {
            format!("schedule_wait(\"{name}\") at {}{by}", site(call_site))
        }
        EventKind::SubOrchestrationScheduled { name, instance, input, call_site, .. } => format!(
            "schedule_sub_orchestration(\"{name}\", instance \"{instance}\", input #{}) at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::OrchestrationChained { name, instance, input, call_site, .. } => format!(
            "schedule_orchestration(\"{name}\", instance \"{instance}\", input #{}) at {}{by}",
            digest(input),
            site(call_site)
        ),
        EventKind::SystemCall { op, call_site, .. } => {
            format!("system call {op} at {}{by}", site(call_site))
        }
        other => other.type_name().to_string(),
    }
}

/// Runs one orchestration execution against its history.
pub struct ReplayEngine {
    state: Arc<Mutex<ReplayState>>,
    handler: Arc<dyn OrchestrationHandler>,
    future: Option<BoxFuture<'static, Result<String, OrchestrationError>>>,
    input: String,
    /// Baseline completion events (history indexes) still to deliver on the first turn.
    baseline_completions: Vec<usize>,
    started: bool,
    finished: Option<TurnOutcome>,
}

pub(crate) fn lock(state: &Mutex<ReplayState>) -> MutexGuard<'_, ReplayState> {
    // A panic in user code never happens while this lock is held, but stay robust anyway.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplayEngine {
    /// Prepares to replay `history` (which starts with `OrchestrationStarted`). Events at
    /// index `persisted_len` and later are treated as new in the first turn (the runtime
    /// passes the start event of a fresh execution that way).
    pub fn new(
        handler: Arc<dyn OrchestrationHandler>,
        instance: &str,
        execution_id: u64,
        history: Vec<Event>,
        persisted_len: usize,
    ) -> Result<Self, ReplayError> {
        let (name, version, input) = match history.first().map(|e| &e.kind) {
            Some(EventKind::OrchestrationStarted { name, version, input, .. }) => {
                (name.clone(), version.clone(), input.clone())
            }
            Some(other) => {
                return Err(ReplayError::CorruptHistory(format!(
                    "first event is {}, expected OrchestrationStarted",
                    other.type_name()
                )));
            }
            None => return Err(ReplayError::CorruptHistory("history is empty".into())),
        };
        let mut decisions = Vec::new();
        let mut baseline_completions = Vec::new();
        let mut cancelled = HashSet::new();
        let mut unsubscribed = HashSet::new();
        for (i, e) in history.iter().enumerate() {
            if e.event_id != i as u64 + 1 {
                return Err(ReplayError::CorruptHistory(format!(
                    "event at position {} has id {}; ids must run 1, 2, 3, ...",
                    i + 1,
                    e.event_id
                )));
            }
            if i > 0 && matches!(e.kind, EventKind::OrchestrationStarted { .. }) {
                return Err(ReplayError::CorruptHistory(format!(
                    "second OrchestrationStarted at event {}",
                    e.event_id
                )));
            }
            if e.kind.is_decision() {
                decisions.push(i);
            }
            if e.kind.completed_task().is_some() {
                baseline_completions.push(i);
            }
            match &e.kind {
                EventKind::ExternalRaised { .. } => baseline_completions.push(i),
                EventKind::ActivityCancelRequested { source_event_id }
                | EventKind::SubOrchestrationCancelRequested { source_event_id } => {
                    cancelled.insert(*source_event_id);
                }
                EventKind::ExternalUnsubscribed { source_event_id } => {
                    unsubscribed.insert(*source_event_id);
                }
                _ => {}
            }
        }
        let next_event_id = history.len() as u64 + 1;
        let persisted_len = persisted_len.min(history.len());
        let baseline_decisions = decisions.iter().filter(|&&i| i < persisted_len).count();
        let baseline_completions: Vec<usize> =
            baseline_completions.into_iter().filter(|&i| i < persisted_len).collect();
        let state = ReplayState {
            instance: instance.to_string(),
            execution_id,
            name,
            version,
            persisted_len,
            baseline_decisions,
            decision_cursor: 0,
            baseline_deliveries_pending: baseline_completions.len(),
            next_event_id,
            tasks: HashMap::new(),
            completions: HashMap::new(),
            external: HashMap::new(),
            wait_names: HashMap::new(),
            unsubscribed,
            children: HashMap::new(),
            cancelled,
            replaying_stored: false,
            actions: Vec::new(),
            nondeterminism: None,
            fatal: None,
            custom_status: None,
            continue_as_new: None,
            env: TurnEnv::default(),
            tearing_down: false,
            decisions,
            history,
        };
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            handler,
            future: None,
            input,
            baseline_completions,
            started: false,
            finished: None,
        })
    }

    /// The parent link recorded in this execution's start event (sub-orchestrations).
    pub fn parent(&self) -> Option<crate::history::ParentLink> {
        match lock(&self.state).history.first().map(|e| &e.kind) {
            Some(EventKind::OrchestrationStarted { parent, .. }) => parent.clone(),
            _ => None,
        }
    }

    /// Length of the history, including events appended by earlier turns of this engine.
    pub fn history_len(&self) -> usize {
        lock(&self.state).history.len()
    }

    /// Runs a turn: replays history on the first call, then delivers `messages` (completion
    /// events without ids) in order.
    ///
    /// A cancellation among `messages` goes first, before any code runs in this turn: the
    /// execution ends cancelled, no new work of this turn is scheduled, and the other
    /// messages are dropped with the ended execution. (Stored turns still replay, to find
    /// the open work the cancellation must stop.)
    pub fn run_turn(&mut self, mut messages: Vec<EventKind>, env: TurnEnv) -> TurnResult {
        if let Some(i) =
            messages.iter().position(|m| matches!(m, EventKind::OrchestrationCancelRequested { .. }))
        {
            let cancel = messages.remove(i);
            messages.insert(0, cancel);
        }
        let cancel_first = matches!(messages.first(), Some(EventKind::OrchestrationCancelRequested { .. }));
        let first_new = {
            let mut st = lock(&self.state);
            st.env = env;
            st.actions.clear();
            st.persisted_len
        };
        let mut dropped = Vec::new();

        // Nothing but (at most) the start event is stored: no code ran yet, and with a
        // cancellation pending none may.
        let nothing_to_replay = first_new <= 1;
        if self.finished.is_none() && !self.started && cancel_first && nothing_to_replay {
            self.started = true;
        }
        if self.finished.is_none() && !self.started {
            self.started = true;
            // Beyond the start event, the code ran when the stored turns were written.
            lock(&self.state).replaying_stored = first_new > 1;
            let ctx = OrchestrationContext::new(self.state.clone());
            self.future = Some(self.handler.invoke(ctx, self.input.clone()));
            self.poll_step();
            for index in std::mem::take(&mut self.baseline_completions) {
                if self.finished.is_some() {
                    break;
                }
                let res = {
                    let mut st = lock(&self.state);
                    st.baseline_deliveries_pending -= 1;
                    st.deliver(index)
                };
                if let Err(msg) = res {
                    self.fail_corrupt(msg);
                    break;
                }
                self.poll_step();
            }
            lock(&self.state).replaying_stored = false;
            self.check_all_decisions_replayed();
        }

        for kind in messages {
            if self.finished.is_some() {
                dropped.push(format!("{} after the execution ended", kind.type_name()));
                continue;
            }
            if let EventKind::OrchestrationCancelRequested { reason } = kind {
                self.cancel(reason);
                continue;
            }
            let mut limit = None;
            let res = {
                let mut st = lock(&self.state);
                if let Some(err) = validate_new_completion(&st, &kind) {
                    Err(err)
                } else if let Some(e) = st.history_limit_error(1) {
                    limit = Some(e);
                    Err(format!("{} past max_history_events", kind.type_name()))
                } else {
                    st.push_event(kind);
                    let index = st.history.len() - 1;
                    st.deliver(index)
                }
            };
            match res {
                Ok(()) => self.poll_step(),
                Err(why) => dropped.push(why),
            }
            if let Some(e) = limit {
                self.finish_failed(e);
            }
        }

        let mut st = lock(&self.state);
        let new_events = st.history[first_new..].to_vec();
        st.persisted_len = st.history.len();
        TurnResult {
            new_events,
            actions: std::mem::take(&mut st.actions),
            outcome: self.finished.clone().unwrap_or(TurnOutcome::Pending),
            custom_status: st.custom_status.clone(),
            dropped,
        }
    }

    /// Polls the orchestration once and settles the outcome if it ended.
    fn poll_step(&mut self) {
        if self.finished.is_some() {
            return;
        }
        let Some(fut) = self.future.as_mut() else { return };
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
        let (nondeterminism, fatal) = {
            let st = lock(&self.state);
            let grew = st.history.len() > st.persisted_len;
            let fatal = st.fatal.clone().or_else(|| if grew { st.history_limit_error(0) } else { None });
            (st.nondeterminism.clone(), fatal)
        };
        if let Some(msg) = nondeterminism {
            self.finish_failed(ErrorDetails::nondeterminism(msg));
            return;
        }
        if let Some(details) = fatal {
            self.finish_failed(details);
            return;
        }
        match polled {
            Err(panic) => {
                let msg = panic_message(&panic);
                let name = lock(&self.state).name.clone();
                self.finish_failed(ErrorDetails::application(format!(
                    "orchestration '{name}' panicked: {msg}"
                )));
            }
            Ok(Poll::Ready(result)) => {
                // Its locals were dropped as it returned: the check for unreplayed decisions
                // runs after the baseline is delivered.
                let can = lock(&self.state).continue_as_new.clone();
                if let Some((input, version)) = can {
                    self.finish(TurnOutcome::ContinuedAsNew { input, version });
                    return;
                }
                match result {
                    Ok(output) => {
                        let limit = lock(&self.state).env.max_payload_bytes;
                        if output.len() > limit {
                            self.finish_failed(ErrorDetails::payload_too_large(format!(
                                "orchestration output is {} bytes; the limit is {limit} bytes",
                                output.len()
                            )));
                        } else {
                            self.finish(TurnOutcome::Completed(output));
                        }
                    }
                    Err(e) => self.finish_failed(e.into_details()),
                }
            }
            Ok(Poll::Pending) => {
                let can = lock(&self.state).continue_as_new.clone();
                if let Some((input, version)) = can {
                    self.finish(TurnOutcome::ContinuedAsNew { input, version });
                }
            }
        }
    }

    fn check_all_decisions_replayed(&mut self) {
        let msg = {
            let st = lock(&self.state);
            if st.nondeterminism.is_none() && st.decision_cursor < st.baseline_decisions {
                let e = &st.history[st.decisions[st.decision_cursor]];
                Some(format!(
                    "nondeterministic orchestration '{}' (instance '{}', execution {}): history \
                     expected {} at event {} but the code did not make it",
                    st.name,
                    st.instance,
                    st.execution_id,
                    describe(&e.kind, Some(&st.version)),
                    e.event_id
                ))
            } else {
                None
            }
        };
        if let Some(msg) = msg {
            // Code that finished early diverged too: its outcome must not stand. Its terminal
            // event is new (never stored), so it can be taken back.
            if self.finished.take().is_some() {
                let mut st = lock(&self.state);
                if st.history.len() > st.persisted_len {
                    st.history.pop();
                    st.next_event_id -= 1;
                }
            }
            self.finish_failed(ErrorDetails::nondeterminism(msg));
        }
    }

    fn fail_corrupt(&mut self, msg: String) {
        self.finish_failed(ErrorDetails::corrupt_history(format!("corrupt history: {msg}")));
    }

    fn cancel(&mut self, reason: String) {
        lock(&self.state).push_event(EventKind::OrchestrationCancelRequested { reason: reason.clone() });
        self.finish_failed(ErrorDetails::cancelled(reason));
    }

    fn finish_failed(&mut self, details: ErrorDetails) {
        self.finish(TurnOutcome::Failed(details));
    }

    /// Ends the execution: cancels open work, drops the code, appends the terminal event.
    fn finish(&mut self, outcome: TurnOutcome) {
        if self.finished.is_some() {
            return;
        }
        let reason = match &outcome {
            // A cancellation cascades to children with the caller's own reason.
            TurnOutcome::Failed(d) if d.category == crate::ErrorCategory::Cancelled => d.message.clone(),
            TurnOutcome::Failed(d) => format!("the orchestration ended: {d}"),
            _ => "the orchestration ended".to_string(),
        };
        {
            let mut st = lock(&self.state);
            for id in st.open_work() {
                st.cancel_task(id, &reason);
            }
            st.tearing_down = true;
        }
        self.future = None;
        let mut st = lock(&self.state);
        st.tearing_down = false;
        let kind = match &outcome {
            TurnOutcome::Completed(output) => EventKind::OrchestrationCompleted { output: output.clone() },
            TurnOutcome::Failed(details) => EventKind::OrchestrationFailed { details: details.clone() },
            TurnOutcome::ContinuedAsNew { input, version } => {
                EventKind::OrchestrationContinuedAsNew { input: input.clone(), version: version.clone() }
            }
            TurnOutcome::Pending => unreachable!("finish is only called with a terminal outcome"),
        };
        st.push_event(kind);
        drop(st);
        self.finished = Some(outcome);
    }
}

impl Drop for ReplayEngine {
    fn drop(&mut self) {
        // Dropping an unfinished orchestration (end of turn, cache eviction) must not record
        // cancellations: the work is still wanted by the next replay.
        lock(&self.state).tearing_down = true;
        self.future = None;
    }
}

fn validate_new_completion(st: &ReplayState, kind: &EventKind) -> Option<String> {
    if matches!(kind, EventKind::ExternalRaised { .. }) {
        return None;
    }
    let Some((id, expected)) = kind.completed_task() else {
        return Some(format!("{} cannot be delivered to an orchestration", kind.type_name()));
    };
    st.check_completion(id, expected).err().map(|e| format!("dropped {}: {e}", kind.type_name()))
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Builds the first event of an execution.
pub fn started_event(
    name: &str,
    version: &str,
    input: &str,
    parent: Option<crate::history::ParentLink>,
    now_ms: u64,
) -> Event {
    Event {
        event_id: 1,
        timestamp_ms: now_ms,
        kind: EventKind::OrchestrationStarted {
            name: name.to_string(),
            version: version.to_string(),
            input: input.to_string(),
            parent,
            duroxide_version: DUROXIDE_VERSION.to_string(),
        },
    }
}
