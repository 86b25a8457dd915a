//! [`ReplayEngine`]: runs the turns of one execution, driving its orchestration future.

use super::nondeterminism;
use super::{OrchestrationHandler, ReplayError, TurnEnv, TurnOutcome, TurnResult, panic_message};
use crate::error::OrchestrationError;
use crate::history::{ErrorDetails, Event, EventKind};
use crate::orchestration::OrchestrationContext;
use crate::orchestration::state::{ExecutionState, lock};
use futures::future::BoxFuture;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Runs one orchestration execution against its history.
pub struct ReplayEngine {
    state: Arc<Mutex<ExecutionState>>,
    handler: Arc<dyn OrchestrationHandler>,
    future: Option<BoxFuture<'static, Result<String, OrchestrationError>>>,
    input: String,
    /// Baseline completion events (history indexes) still to deliver on the first turn.
    baseline_completions: Vec<usize>,
    started: bool,
    finished: Option<TurnOutcome>,
    /// Unread queue messages handed to the next execution (continue-as-new).
    carried: Vec<(String, String)>,
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
        }
        let (state, baseline_completions) =
            ExecutionState::new(instance, execution_id, name, version, history, persisted_len);
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            handler,
            future: None,
            input,
            baseline_completions,
            started: false,
            finished: None,
            carried: Vec::new(),
        })
    }

    /// The parent link recorded in this execution's start event (sub-orchestrations).
    pub fn parent(&self) -> Option<crate::history::ParentLink> {
        match lock(&self.state).history().first().map(|e| &e.kind) {
            Some(EventKind::OrchestrationStarted { parent, .. }) => parent.clone(),
            _ => None,
        }
    }

    /// Length of the history, including events appended by earlier turns of this engine.
    pub fn history_len(&self) -> usize {
        lock(&self.state).history().len()
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
        let first_new = lock(&self.state).begin_turn(env);
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
            lock(&self.state).set_replaying_stored(first_new > 1);
            let ctx = OrchestrationContext::new(self.state.clone());
            self.future = Some(self.handler.invoke(ctx, self.input.clone()));
            self.poll_step();
            for index in std::mem::take(&mut self.baseline_completions) {
                if self.finished.is_some() {
                    break;
                }
                let res = lock(&self.state).deliver_stored(index);
                if let Err(msg) = res {
                    self.fail_corrupt(msg);
                    break;
                }
                self.poll_step();
            }
            lock(&self.state).set_replaying_stored(false);
            self.check_all_decisions_replayed();
        }

        for kind in messages {
            if let (
                Some(TurnOutcome::ContinuedAsNew { .. }),
                EventKind::QueueMessageReceived { queue, data },
            ) = (&self.finished, &kind)
            {
                // Arrived after the code continued as new: the next execution receives it.
                self.carried.push((queue.clone(), data.clone()));
                continue;
            }
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
                if let Some(err) = st.check_new_completion(&kind) {
                    Err(err)
                } else if let Some(e) = st.history_limit_error(1) {
                    limit = Some(e);
                    Err(format!("{} past max_history_events", kind.type_name()))
                } else {
                    st.deliver_new(kind)
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

        let (new_events, actions, custom_status) = lock(&self.state).end_turn(first_new);
        TurnResult {
            new_events,
            actions,
            outcome: self.finished.clone().unwrap_or(TurnOutcome::Pending),
            custom_status,
            dropped,
            carried_queue_messages: std::mem::take(&mut self.carried),
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
        let (diverged, fatal) = {
            let st = lock(&self.state);
            (st.divergence().map(|d| nondeterminism::failure(&st, d)), st.fatal_after_poll())
        };
        if let Some(details) = diverged {
            self.finish_failed(details);
            return;
        }
        if let Some(details) = fatal {
            self.finish_failed(details);
            return;
        }
        match polled {
            Err(panic) => {
                let msg = panic_message(&panic);
                let name = lock(&self.state).name().to_string();
                self.finish_failed(ErrorDetails::application(format!(
                    "orchestration '{name}' panicked: {msg}"
                )));
            }
            Ok(Poll::Ready(result)) => {
                // Its locals were dropped as it returned: the check for unreplayed decisions
                // runs after the baseline is delivered.
                let can = lock(&self.state).continued_as_new();
                if let Some((input, version)) = can {
                    self.finish(TurnOutcome::ContinuedAsNew { input, version });
                    return;
                }
                match result {
                    Ok(output) => {
                        let limit = lock(&self.state).env().max_payload_bytes;
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
                let can = lock(&self.state).continued_as_new();
                if let Some((input, version)) = can {
                    self.finish(TurnOutcome::ContinuedAsNew { input, version });
                }
            }
        }
    }

    fn check_all_decisions_replayed(&mut self) {
        let failure = {
            let st = lock(&self.state);
            st.unreplayed_decision().map(|d| nondeterminism::failure(&st, &d))
        };
        if let Some(details) = failure {
            // Code that finished early diverged too: its outcome must not stand. Its terminal
            // event is new (never stored), so it can be taken back.
            if self.finished.take().is_some() {
                lock(&self.state).take_back_new_event();
            }
            self.finish_failed(details);
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
            if matches!(outcome, TurnOutcome::ContinuedAsNew { .. }) {
                self.carried = st.unread_queue_messages();
            }
            st.cancel_open_work(&reason);
            st.set_tearing_down(true);
        }
        self.future = None;
        let mut st = lock(&self.state);
        st.set_tearing_down(false);
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
        lock(&self.state).set_tearing_down(true);
        self.future = None;
    }
}
