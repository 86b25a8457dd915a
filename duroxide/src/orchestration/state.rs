//! The live state of one execution, shared by the code's [`OrchestrationContext`](super::OrchestrationContext) and the
//! replay engine: history, decisions, completions, event waits, pending actions.
//!
//! The context records decisions and reads completions through it; the engine
//! ([`crate::replay`]) builds it from history, feeds it completions and turns what it
//! records (new events, actions, a divergence from history) into a turn's result. It holds
//! no replay rules beyond matching each decision against the next one in history.

use super::turn::{Action, TurnEnv};
use crate::history::{ErrorDetails, Event, EventKind, TaskKind};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

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
    pub(super) seq: u64,
    pub(super) value: CompletionValue,
}

/// What a wait waits for: a raised event of a name, or the next message of an event queue.
/// The two are separate name spaces with the same first-come, first-served routing; they
/// differ in what happens at continue-as-new (unread queue messages are carried over,
/// buffered raised events are not).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum WaitKey {
    /// `schedule_wait(name)` / `ExternalRaised`.
    Event(String),
    /// `dequeue_event(queue)` / `QueueMessageReceived`.
    Queue(String),
}

/// Raised events (or queue messages) and open waits of one [`WaitKey`].
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

/// Where the code left its history: the decision history expected at that point, and the
/// call the code made instead (`None`: the code ended without making it). The replay
/// engine turns it into the nondeterminism failure.
#[derive(Debug, Clone)]
pub(crate) struct Divergence {
    pub expected: Event,
    pub actual: Option<EventKind>,
}

/// The live state of one execution, shared by the [`OrchestrationContext`](super::OrchestrationContext) the code holds
/// and the replay engine that drives it: history, decisions, completions and event waits.
pub(crate) struct ExecutionState {
    instance: String,
    execution_id: u64,
    name: String,
    version: String,
    history: Vec<Event>,
    /// How many of `history` were already stored when the current turn began.
    persisted_len: usize,
    /// History indexes of decision events, in order.
    decisions: Vec<usize>,
    /// How many decision events existed before this engine made any decision itself.
    baseline_decisions: usize,
    decision_cursor: usize,
    /// Baseline completions not yet delivered.
    baseline_deliveries_pending: usize,
    next_event_id: u64,
    /// Scheduled tasks by event id.
    tasks: HashMap<u64, TaskKind>,
    completions: HashMap<u64, Completion>,
    /// External events, queue messages and their waits (see [`ExternalQueue`]).
    external: HashMap<WaitKey, ExternalQueue>,
    /// What every wait waits for, by its `ExternalSubscribed` / `QueueSubscribed` event id.
    wait_names: HashMap<u64, WaitKey>,
    /// Waits whose future returned its event to the code (the code has it; it is not
    /// carried over at continue-as-new).
    received: HashSet<u64>,
    /// One entry per composite future being polled (innermost last): the latest history
    /// position of a completion the code consumed during that poll.
    consumed_frames: Vec<u64>,
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
    divergence: Option<Divergence>,
    /// A failure the code cannot catch (history limit, oversized custom status); the engine
    /// fails the execution after the current poll.
    fatal: Option<ErrorDetails>,
    custom_status: Option<Option<String>>,
    /// The instance's durable values as the code sees them now: those carried into this
    /// execution, then every write the code made (see `values.rs`). Sorted by key.
    pub(super) values: BTreeMap<String, String>,
    continue_as_new: Option<(String, String)>,
    env: TurnEnv,
    /// Set while the engine drops the orchestration future, so drops do not cancel work.
    tearing_down: bool,
}

impl ExecutionState {
    /// State over a history whose first `persisted_len` events are stored (the rest are new
    /// in the first turn). The caller has checked that the history is well formed. Returns
    /// the history indexes of the stored completions, to deliver in the first turn.
    pub(crate) fn new(
        instance: &str,
        execution_id: u64,
        name: String,
        version: String,
        history: Vec<Event>,
        persisted_len: usize,
    ) -> (Self, Vec<usize>) {
        let mut decisions = Vec::new();
        let mut completions = Vec::new();
        let mut cancelled = HashSet::new();
        let mut unsubscribed = HashSet::new();
        let mut values = BTreeMap::new();
        for (i, e) in history.iter().enumerate() {
            if e.kind.is_decision() {
                decisions.push(i);
            }
            if e.kind.completed_task().is_some() {
                completions.push(i);
            }
            match &e.kind {
                EventKind::ExternalRaised { .. } | EventKind::QueueMessageReceived { .. } => {
                    completions.push(i)
                }
                EventKind::ActivityCancelRequested { source_event_id }
                | EventKind::SubOrchestrationCancelRequested { source_event_id } => {
                    cancelled.insert(*source_event_id);
                }
                EventKind::ExternalUnsubscribed { source_event_id } => {
                    unsubscribed.insert(*source_event_id);
                }
                EventKind::ValuesCarried { values: carried } => values = carried.clone(),
                _ => {}
            }
        }
        let next_event_id = history.len() as u64 + 1;
        let persisted_len = persisted_len.min(history.len());
        let baseline_decisions = decisions.iter().filter(|&&i| i < persisted_len).count();
        let baseline_completions: Vec<usize> =
            completions.into_iter().filter(|&i| i < persisted_len).collect();
        let state = ExecutionState {
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
            received: HashSet::new(),
            consumed_frames: Vec::new(),
            unsubscribed,
            children: HashMap::new(),
            cancelled,
            replaying_stored: false,
            actions: Vec::new(),
            divergence: None,
            fatal: None,
            custom_status: None,
            values,
            continue_as_new: None,
            env: TurnEnv::default(),
            tearing_down: false,
            decisions,
            history,
        };
        (state, baseline_completions)
    }

    /// This instance's id.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The execution this state replays.
    pub(crate) fn execution_id(&self) -> u64 {
        self.execution_id
    }

    /// The orchestration's registered name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The version this execution is pinned to.
    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// The history so far, including this turn's new events.
    pub(crate) fn history(&self) -> &[Event] {
        &self.history
    }

    /// The current turn's limits and clock.
    pub(crate) fn env(&self) -> &TurnEnv {
        &self.env
    }

    /// The custom status as last set (`None`: never set by this execution).
    pub(crate) fn custom_status(&self) -> Option<Option<String>> {
        self.custom_status.clone()
    }

    /// The next execution's input and version, once the code called `continue_as_new`.
    pub(crate) fn continued_as_new(&self) -> Option<(String, String)> {
        self.continue_as_new.clone()
    }

    pub(crate) fn set_continue_as_new(&mut self, input: String, version: String) {
        self.continue_as_new = Some((input, version));
    }

    /// Starts a turn with `env`; returns how many events were stored before it.
    pub(crate) fn begin_turn(&mut self, env: TurnEnv) -> usize {
        self.env = env;
        self.actions.clear();
        self.persisted_len
    }

    /// Ends a turn: its new events (from `first_new`), actions and custom status. Everything
    /// in history counts as stored from now on.
    pub(crate) fn end_turn(&mut self, first_new: usize) -> (Vec<Event>, Vec<Action>, Option<Option<String>>) {
        let new_events = self.history[first_new..].to_vec();
        self.persisted_len = self.history.len();
        (new_events, std::mem::take(&mut self.actions), self.custom_status.clone())
    }

    pub(crate) fn set_replaying_stored(&mut self, replaying: bool) {
        self.replaying_stored = replaying;
    }

    pub(crate) fn set_tearing_down(&mut self, tearing_down: bool) {
        self.tearing_down = tearing_down;
    }

    /// Delivers the stored completion at history `index` during the first turn's replay.
    pub(crate) fn deliver_stored(&mut self, index: usize) -> Result<(), String> {
        self.baseline_deliveries_pending -= 1;
        self.deliver(index)
    }

    /// Appends a new completion to history and delivers it.
    pub(crate) fn deliver_new(&mut self, kind: EventKind) -> Result<(), String> {
        self.push_event(kind);
        self.deliver(self.history.len() - 1)
    }

    /// The first decision the code left, if it made a different call than history records.
    pub(crate) fn divergence(&self) -> Option<&Divergence> {
        self.divergence.as_ref()
    }

    /// A stored decision the code did not make again, once the stored turns replayed (and
    /// no other divergence was found first).
    pub(crate) fn unreplayed_decision(&self) -> Option<Divergence> {
        if self.divergence.is_some() || self.decision_cursor >= self.baseline_decisions {
            return None;
        }
        let expected = self.history[self.decisions[self.decision_cursor]].clone();
        Some(Divergence { expected, actual: None })
    }

    /// A failure the code cannot catch, raised by the last poll: a recorded fatal error, or
    /// a history that outgrew its limit in this turn.
    pub(crate) fn fatal_after_poll(&self) -> Option<ErrorDetails> {
        let grew = self.history.len() > self.persisted_len;
        self.fatal.clone().or_else(|| if grew { self.history_limit_error(0) } else { None })
    }

    /// Takes back the last event if it is new in this turn (a terminal event that must not
    /// stand).
    pub(crate) fn take_back_new_event(&mut self) {
        if self.history.len() > self.persisted_len {
            self.history.pop();
            self.next_event_id -= 1;
        }
    }

    /// Records cancellation of every open activity and sub-orchestration, with `reason`.
    pub(crate) fn cancel_open_work(&mut self, reason: &str) {
        for id in self.open_work() {
            self.cancel_task(id, reason);
        }
    }

    /// True while the code re-runs what stored turns already did. This includes the code
    /// that ran after the last stored decision or completion (a status set, a log line):
    /// it is stored too, and must not be recorded or logged again.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replaying_stored
            || self.baseline_deliveries_pending > 0
            || self.decision_cursor < self.baseline_decisions
    }

    pub(crate) fn push_event(&mut self, kind: EventKind) -> u64 {
        let event_id = self.next_event_id;
        self.next_event_id += 1;
        self.history.push(Event { event_id, timestamp_ms: self.env.now_ms, kind });
        event_id
    }

    /// The recorded decision the code's next decision call is matched against, while the
    /// code has not yet made every decision history holds.
    pub(crate) fn next_recorded_decision(&self) -> Option<&EventKind> {
        if self.divergence.is_some() || self.fatal.is_some() {
            return None;
        }
        self.decisions.get(self.decision_cursor).map(|&i| &self.history[i].kind)
    }

    /// Matches a scheduling decision against history, or records it as new.
    /// Returns the event id, or `None` after a nondeterminism error.
    pub(crate) fn decide(
        &mut self,
        make: impl FnOnce(u64) -> EventKind,
        action: impl FnOnce(u64, &EventKind) -> Option<Action>,
    ) -> Option<u64> {
        if self.divergence.is_some() || self.fatal.is_some() {
            return None;
        }
        if self.decision_cursor < self.decisions.len() {
            let expected = self.history[self.decisions[self.decision_cursor]].clone();
            let actual = make(expected.event_id);
            if expected.kind.is_same_decision(&actual) {
                self.decision_cursor += 1;
                return Some(expected.event_id);
            }
            self.divergence = Some(Divergence { expected, actual: Some(actual) });
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

    /// Tags activity `id` when this turn scheduled it (its action is still pending): the
    /// action and the recorded event get `tag` when `valid`; an invalid tag takes the
    /// action out (the work is never queued). An activity replayed from history keeps
    /// its recorded tag. Returns the activity's name.
    pub(crate) fn tag_new_activity(&mut self, id: u64, tag: &str, valid: bool) -> Option<String> {
        let event = self.history.iter_mut().rev().find(|e| e.event_id == id)?;
        let EventKind::ActivityScheduled { name, tag: event_tag, .. } = &mut event.kind else {
            return None;
        };
        let name = name.clone();
        let at = self
            .actions
            .iter()
            .position(|a| matches!(a, Action::ScheduleActivity { event_id, .. } if *event_id == id));
        let Some(at) = at else { return Some(name) };
        if !valid {
            self.actions.remove(at);
            return Some(name);
        }
        *event_tag = Some(tag.to_string());
        if let Action::ScheduleActivity { tag: action_tag, .. } = &mut self.actions[at] {
            *action_tag = Some(tag.to_string());
        }
        Some(name)
    }

    pub(crate) fn register_task(&mut self, id: u64, kind: TaskKind) {
        self.tasks.insert(id, kind);
    }

    pub(crate) fn register_child(&mut self, id: u64, instance: String) {
        self.children.insert(id, instance);
    }

    /// The failure of an execution whose history would hold more than `max_history_events`
    /// events after `adding` more.
    pub(crate) fn history_limit_error(&self, adding: usize) -> Option<ErrorDetails> {
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

    /// Opens a wait: it takes the oldest buffered event of its key, or queues for the next.
    pub(crate) fn subscribe(&mut self, id: u64, key: WaitKey) {
        self.wait_names.insert(id, key.clone());
        let queue = self.external.entry(key).or_default();
        match queue.buffered.pop_front() {
            Some((seq, data)) => {
                self.completions.insert(id, Completion { seq, value: CompletionValue::Ok(data) });
            }
            None => queue.waiting.push_back(id),
        }
    }

    /// Gives a raised event (at history position `seq`) to the oldest open wait of its name,
    /// or buffers it in history order.
    fn route_external(&mut self, key: &WaitKey, seq: u64, data: String) {
        let queue = self.external.entry(key.clone()).or_default();
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
        if self.received.contains(&id) {
            return;
        }
        if let Some(Completion { seq, value: CompletionValue::Ok(data) }) = self.completions.remove(&id) {
            self.route_external(&name, seq, data);
        }
    }

    pub(crate) fn completion(&self, id: u64) -> Option<&Completion> {
        self.completions.get(&id)
    }

    /// Records that the code no longer waits for task `id` (its future was dropped).
    pub(crate) fn cancel_task(&mut self, id: u64, reason: &str) {
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
    pub(crate) fn set_custom_status(&mut self, status: Option<String>) {
        if self.fatal.is_some() || self.divergence.is_some() {
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
    pub(crate) fn deliver(&mut self, index: usize) -> Result<(), String> {
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
            EventKind::ValueReadCompleted { value, .. } => {
                value.map_or(CompletionValue::Unit, CompletionValue::Ok)
            }
            EventKind::ExternalRaised { name, data } => {
                self.route_external(&WaitKey::Event(name), seq, data);
                return Ok(());
            }
            EventKind::QueueMessageReceived { queue, data } => {
                self.route_external(&WaitKey::Queue(queue), seq, data);
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

    /// Why a new message must be dropped instead of delivered, if it must.
    pub(crate) fn check_new_completion(&self, kind: &EventKind) -> Option<String> {
        if matches!(kind, EventKind::ExternalRaised { .. } | EventKind::QueueMessageReceived { .. }) {
            return None;
        }
        let Some((id, expected)) = kind.completed_task() else {
            return Some(format!("{} cannot be delivered to an orchestration", kind.type_name()));
        };
        self.check_completion(id, expected).err().map(|e| format!("dropped {}: {e}", kind.type_name()))
    }
}

impl ExecutionState {
    /// Records that the code received the completion of task `id` at history position
    /// `seq` (its future returned it): a wait that received its event no longer holds a
    /// message to carry over, and composite futures being polled take `seq` as a position
    /// they depend on.
    pub(crate) fn note_received(&mut self, id: u64, seq: u64) {
        if self.tasks.get(&id) == Some(&TaskKind::External) {
            self.received.insert(id);
        }
        self.note_consumed(seq);
    }

    /// Composite futures being polled depend on history position `seq`.
    pub(crate) fn note_consumed(&mut self, seq: u64) {
        if let Some(top) = self.consumed_frames.last_mut() {
            *top = (*top).max(seq);
        }
    }

    /// A composite future starts a poll.
    pub(crate) fn push_consumed_frame(&mut self) {
        self.consumed_frames.push(0);
    }

    /// A composite future ends a poll: the latest position it consumed during it (also
    /// counted for the composite around it, if any).
    pub(crate) fn pop_consumed_frame(&mut self) -> u64 {
        let seq = self.consumed_frames.pop().unwrap_or(0);
        self.note_consumed(seq);
        seq
    }

    /// Queue messages the code has not received, oldest first, as (queue, data): the
    /// messages no wait holds and those handed to a wait whose future never returned them.
    /// Continue-as-new carries them into the next execution.
    pub(crate) fn unread_queue_messages(&self) -> Vec<(String, String)> {
        let mut unread: Vec<(u64, String, String)> = Vec::new();
        for (key, q) in &self.external {
            let WaitKey::Queue(queue) = key else { continue };
            unread.extend(q.buffered.iter().map(|(seq, data)| (*seq, queue.clone(), data.clone())));
        }
        for (id, key) in &self.wait_names {
            let WaitKey::Queue(queue) = key else { continue };
            if self.received.contains(id) {
                continue;
            }
            if let Some(Completion { seq, value: CompletionValue::Ok(data) }) = self.completions.get(id) {
                unread.push((*seq, queue.clone(), data.clone()));
            }
        }
        unread.sort_by_key(|(seq, _, _)| *seq);
        unread.into_iter().map(|(_, q, d)| (q, d)).collect()
    }
}

pub(crate) fn lock(state: &Mutex<ExecutionState>) -> MutexGuard<'_, ExecutionState> {
    // A panic in user code never happens while this lock is held, but stay robust anyway.
    state.lock().unwrap_or_else(|e| e.into_inner())
}
