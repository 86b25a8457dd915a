//! An execution's history as a timeline, drawn on the server as inline SVG: time runs left
//! to right in ms from the execution's first event; activities, timers and
//! sub-orchestrations are bars from their scheduling event to their completion (still open
//! ones reach "now", a timer not fired yet reaches its fire time); every other event is a
//! mark on the top row. Hovering shows the details (SVG `<title>`), no script needed.
//!
//! This file turns a history into bars and marks; `svg` draws them.

mod svg;
#[cfg(test)]
mod tests;

pub(crate) use svg::render;

use super::html::{duration, time, truncate};
use crate::history::{Event, EventKind};
use std::collections::HashMap;

/// What a bar stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarKind {
    Activity,
    Timer,
    SubOrchestration,
}

impl BarKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            BarKind::Activity => "activity",
            BarKind::Timer => "timer",
            BarKind::SubOrchestration => "sub-orchestration",
        }
    }
}

/// How a bar's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Completed (a timer: fired).
    Completed,
    /// Failed.
    Failed,
    /// The orchestration stopped waiting for it.
    Cancelled,
    /// Still running: the bar reaches now.
    Open,
    /// A timer that has not fired: the bar reaches its fire time.
    Planned,
    /// Never completed, and the execution has ended.
    Abandoned,
}

impl Outcome {
    pub(super) fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::Open => "open",
            Outcome::Planned => "planned",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// One piece of scheduled work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    pub(crate) kind: BarKind,
    /// The scheduling event's id.
    pub(crate) event_id: u64,
    pub(crate) label: String,
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) outcome: Outcome,
    /// Input, result or error, for the tooltip.
    pub(crate) detail: String,
}

/// One event shown as a point in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) event_id: u64,
    pub(crate) at_ms: u64,
    /// The event type, as a CSS class.
    pub(crate) class: &'static str,
    pub(crate) label: String,
}

/// The timeline of one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timeline {
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
    pub(crate) bars: Vec<Bar>,
    pub(crate) marks: Vec<Mark>,
}

/// The timeline of `events` (one execution, in order). `open` says whether the execution
/// still runs: unfinished work then reaches `now_ms`.
pub(crate) fn build(events: &[Event], now_ms: u64, open: bool) -> Timeline {
    let start_ms = events.first().map_or(0, |e| e.timestamp_ms);
    let last_ms = events.iter().map(|e| e.timestamp_ms).max().unwrap_or(start_ms);
    let mut b = Builder::default();
    for e in events {
        b.add(e);
    }
    let Builder { mut bars, marks, .. } = b;
    for b in bars.iter_mut().filter(|b| b.outcome == Outcome::Open) {
        match (b.kind, open) {
            // A timer that has not fired keeps its fire time as its end.
            (BarKind::Timer, true) => b.outcome = Outcome::Planned,
            (_, true) => b.end_ms = now_ms.max(b.start_ms),
            (_, false) => {
                b.end_ms = last_ms.max(b.start_ms);
                b.outcome = Outcome::Abandoned;
            }
        }
    }
    let end_ms = bars.iter().map(|b| b.end_ms).chain([last_ms]).max().unwrap_or(start_ms);
    Timeline { start_ms, end_ms: end_ms.max(start_ms + 1), bars, marks }
}

/// Bars and marks collected event by event.
#[derive(Default)]
struct Builder {
    bars: Vec<Bar>,
    /// Bar index by scheduling event id.
    by_id: HashMap<u64, usize>,
    marks: Vec<Mark>,
}

impl Builder {
    fn bar(&mut self, e: &Event, kind: BarKind, label: String, end_ms: u64, detail: String) {
        self.by_id.insert(e.event_id, self.bars.len());
        self.bars.push(Bar {
            kind,
            event_id: e.event_id,
            label,
            start_ms: e.timestamp_ms,
            end_ms,
            outcome: Outcome::Open,
            detail,
        });
    }

    /// Ends the bar of `source` at `e`, if it is still open.
    fn close(&mut self, e: &Event, source: u64, outcome: Outcome, detail: Option<String>) {
        if let Some(b) = self.by_id.get(&source).and_then(|&i| self.bars.get_mut(i))
            && b.outcome == Outcome::Open
        {
            b.end_ms = e.timestamp_ms.max(b.start_ms);
            b.outcome = outcome;
            if let Some(d) = detail {
                b.detail = format!("{}\n{d}", b.detail);
            }
        }
    }

    fn mark(&mut self, e: &Event, class: &'static str, label: String) {
        self.marks.push(Mark { event_id: e.event_id, at_ms: e.timestamp_ms, class, label });
    }

    fn add(&mut self, e: &Event) {
        let t = e.timestamp_ms;
        match &e.kind {
            EventKind::ActivityScheduled { name, input, .. } => {
                self.bar(e, BarKind::Activity, name.clone(), t, format!("input: {}", truncate(input, 200)))
            }
            EventKind::TimerCreated { delay_ms, fire_at_ms, .. } => self.bar(
                e,
                BarKind::Timer,
                format!("{} timer", duration(*delay_ms)),
                (*fire_at_ms).max(t),
                format!("fires at {}", time(*fire_at_ms)),
            ),
            EventKind::SubOrchestrationScheduled { name, instance, .. } => self.bar(
                e,
                BarKind::SubOrchestration,
                format!("{name} ({instance})"),
                t,
                format!("instance: {instance}"),
            ),
            EventKind::ActivityCompleted { source_event_id, result }
            | EventKind::SubOrchestrationCompleted { source_event_id, result } => self.close(
                e,
                *source_event_id,
                Outcome::Completed,
                Some(format!("result: {}", truncate(result, 200))),
            ),
            EventKind::ActivityFailed { source_event_id, details }
            | EventKind::SubOrchestrationFailed { source_event_id, details } => self.close(
                e,
                *source_event_id,
                Outcome::Failed,
                Some(format!("error: {}", truncate(&details.message, 200))),
            ),
            EventKind::ActivityCancelRequested { source_event_id }
            | EventKind::SubOrchestrationCancelRequested { source_event_id } => {
                self.close(e, *source_event_id, Outcome::Cancelled, None)
            }
            EventKind::TimerFired { source_event_id, .. } => {
                self.close(e, *source_event_id, Outcome::Completed, None)
            }
            EventKind::OrchestrationStarted { name, version, .. } => {
                self.mark(e, "started", format!("started {name} {version}"))
            }
            EventKind::OrchestrationCompleted { output } => {
                self.mark(e, "completed", format!("completed: {}", truncate(output, 200)))
            }
            EventKind::OrchestrationFailed { details } => {
                self.mark(e, "failed", format!("failed: {}", truncate(&details.message, 200)))
            }
            EventKind::OrchestrationContinuedAsNew { version, .. } => {
                self.mark(e, "continued", format!("continued as new ({version})"))
            }
            EventKind::OrchestrationCancelRequested { reason } => {
                self.mark(e, "cancel", format!("cancel requested: {reason}"))
            }
            EventKind::ExternalSubscribed { name, .. } => {
                self.mark(e, "wait", format!("waits for event {name}"))
            }
            EventKind::ExternalUnsubscribed { .. } => {
                self.mark(e, "wait", "stopped waiting for an event".into())
            }
            EventKind::ExternalRaised { name, data } => {
                self.mark(e, "event", format!("event {name} raised: {}", truncate(data, 200)))
            }
            EventKind::OrchestrationChained { name, instance, .. } => {
                self.mark(e, "chained", format!("started {name} ({instance}), detached"))
            }
            EventKind::SystemCall { op, value, .. } => self.mark(e, "system", format!("{op}: {value}")),
            EventKind::CustomStatusSet { status } => {
                self.mark(e, "status", format!("custom status: {}", status.as_deref().unwrap_or("(cleared)")))
            }
            EventKind::ValueSet { key, value, .. } => {
                self.mark(e, "value", format!("value {key} = {}", truncate(value, 200)))
            }
            EventKind::ValueCleared { key, .. } => self.mark(e, "value", format!("value {key} cleared")),
            EventKind::ValuesCleared { .. } => self.mark(e, "value", "all values cleared".into()),
            EventKind::ValuesCarried { values } => {
                self.mark(e, "value", format!("{} values carried over", values.len()))
            }
            EventKind::ValueReadScheduled { instance, key, .. } => self.bar(
                e,
                BarKind::Activity,
                format!("read {key} of {instance}"),
                t,
                format!("instance: {instance}"),
            ),
            EventKind::ValueReadCompleted { source_event_id, value } => self.close(
                e,
                *source_event_id,
                Outcome::Completed,
                Some(format!("value: {}", truncate(value.as_deref().unwrap_or("(not set)"), 200))),
            ),
            EventKind::QueueSubscribed { queue, .. } => {
                self.mark(e, "wait", format!("waits for the next message of queue {queue}"))
            }
            EventKind::QueueMessageReceived { queue, data } => {
                self.mark(e, "event", format!("queue {queue} message: {}", truncate(data, 200)))
            }
        }
    }
}
