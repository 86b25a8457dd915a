//! The history log: the events that record everything an orchestration did.
//!
//! An instance's history is a list of [`Event`]s per execution. It is the single source of
//! truth that deterministic replay rebuilds orchestration state from, so its JSON form is
//! stable: event and field names never change, and fields added later are
//! `#[serde(default)]` so histories written by older duroxide versions always load.
//! This module holds data only; the replay rules live in [`crate::replay`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// Failures are stored inside events; `duroxide::history::ErrorDetails` is their long-standing path.
pub use super::error::{ErrorCategory, ErrorDetails};

/// The version of duroxide that is writing histories (this crate's version).
pub const DUROXIDE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One entry of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position of this event in its execution's history, starting at 1. Scheduling events
    /// are referred to by this id from their completions.
    pub event_id: u64,
    /// Wall-clock time (milliseconds since the Unix epoch) at which the event was recorded.
    /// Informational only: replay never reads it.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Link from a sub-orchestration to the parent that scheduled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent's instance id.
    pub instance: String,
    /// The parent's execution that scheduled the child.
    pub execution_id: u64,
    /// The id of the parent's `SubOrchestrationScheduled` event.
    pub event_id: u64,
}

/// Everything that can be recorded in a history.
///
/// The `type` tag and field names are part of the storage format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// First event of every execution.
    OrchestrationStarted {
        /// Registered orchestration name.
        name: String,
        /// Orchestration version this execution is pinned to.
        version: String,
        /// Input of this execution.
        input: String,
        /// Set when this instance is a sub-orchestration.
        #[serde(default)]
        parent: Option<ParentLink>,
        /// The duroxide version that wrote this execution's history.
        duroxide_version: String,
    },
    /// The orchestration returned `Ok`.
    OrchestrationCompleted {
        /// Serialized output.
        output: String,
    },
    /// The orchestration failed (returned `Err`, panicked, was cancelled, diverged from its
    /// history or was poisoned).
    OrchestrationFailed {
        /// Why.
        details: ErrorDetails,
    },
    /// The execution ended by continuing as a new execution.
    OrchestrationContinuedAsNew {
        /// Input of the next execution.
        input: String,
        /// Version of the next execution.
        version: String,
    },
    /// Someone asked to cancel the instance.
    OrchestrationCancelRequested {
        /// The reason given by the caller.
        reason: String,
    },
    /// An activity was scheduled.
    ActivityScheduled {
        /// Activity name.
        name: String,
        /// Serialized input.
        input: String,
        /// Where in the orchestration's source the call was made (`file:line:column`).
        #[serde(default)]
        call_site: Option<String>,
        /// The session the activity must run on (`None`: any worker). Histories written
        /// before sessions existed load with `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// The worker tag the activity was routed to (`None`: untagged work, taken by
        /// runtimes that serve untagged activities). Routing only: it is not part of the
        /// decision a replay matches (see `docs/activity-routing.md`). Histories written
        /// before tags existed load with `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
    },
    /// An activity returned `Ok`.
    ActivityCompleted {
        /// The `ActivityScheduled` event this completes.
        source_event_id: u64,
        /// Serialized result.
        result: String,
    },
    /// An activity failed (returned `Err`, panicked, or was poisoned).
    ActivityFailed {
        /// The `ActivityScheduled` event this completes.
        source_event_id: u64,
        /// Why.
        details: ErrorDetails,
    },
    /// The orchestration no longer waits for an activity (it lost a select or was dropped).
    ActivityCancelRequested {
        /// The `ActivityScheduled` event being cancelled.
        source_event_id: u64,
    },
    /// A durable timer was created.
    TimerCreated {
        /// Requested delay in milliseconds.
        delay_ms: u64,
        /// When it fires, in milliseconds since the Unix epoch.
        fire_at_ms: u64,
        /// Call site of `schedule_timer`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// A durable timer fired.
    TimerFired {
        /// The `TimerCreated` event.
        source_event_id: u64,
        /// When it was due.
        fire_at_ms: u64,
    },
    /// The orchestration started waiting for an external event.
    ExternalSubscribed {
        /// Event name.
        name: String,
        /// Call site of `schedule_wait`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The orchestration stopped waiting for an external event (or a queue message, see
    /// [`EventKind::QueueSubscribed`]) without receiving it (the
    /// wait lost a select or was dropped). The wait gives up its claim: the next event of
    /// that name, or the one it was handed but never returned to the code, goes to the next
    /// wait. Histories written before this event existed have none: their dropped waits keep
    /// their claim on replay, as they did when the history was written.
    ExternalUnsubscribed {
        /// The `ExternalSubscribed` event of the wait.
        source_event_id: u64,
    },
    /// An external event was raised for this instance. It goes to the oldest wait of that
    /// name still waiting, or, if there is none, to the next wait the code makes (see the
    /// orchestration guide, "External events").
    ExternalRaised {
        /// Event name.
        name: String,
        /// Payload.
        data: String,
    },
    /// A sub-orchestration was scheduled.
    SubOrchestrationScheduled {
        /// Orchestration name.
        name: String,
        /// Requested version (`None`: the child's version policy decides).
        #[serde(default)]
        version: Option<String>,
        /// Child instance id.
        instance: String,
        /// Serialized input.
        input: String,
        /// Call site.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// A sub-orchestration completed.
    SubOrchestrationCompleted {
        /// The `SubOrchestrationScheduled` event.
        source_event_id: u64,
        /// Serialized output.
        result: String,
    },
    /// A sub-orchestration failed or was cancelled.
    SubOrchestrationFailed {
        /// The `SubOrchestrationScheduled` event.
        source_event_id: u64,
        /// Why.
        details: ErrorDetails,
    },
    /// The orchestration no longer waits for a sub-orchestration; the child is cancelled.
    SubOrchestrationCancelRequested {
        /// The `SubOrchestrationScheduled` event.
        source_event_id: u64,
    },
    /// A detached (fire-and-forget) orchestration was started.
    OrchestrationChained {
        /// Orchestration name.
        name: String,
        /// Requested version.
        #[serde(default)]
        version: Option<String>,
        /// Instance id of the new orchestration.
        instance: String,
        /// Serialized input.
        input: String,
        /// Call site.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// A nondeterministic value (a guid, the current time) recorded so replay returns the same.
    SystemCall {
        /// Which call: `"guid"` or `"utc_now"`.
        op: String,
        /// The recorded value.
        value: String,
        /// Call site.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The orchestration set its custom status.
    CustomStatusSet {
        /// The new custom status (`None` clears it).
        status: Option<String>,
    },
    /// The orchestration set one of its instance's durable values (`ctx.set_value`).
    ValueSet {
        /// The key.
        key: String,
        /// The new value.
        value: String,
        /// Call site of `set_value`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The orchestration removed one of its instance's values (`ctx.clear_value`).
    ValueCleared {
        /// The key.
        key: String,
        /// Call site of `clear_value`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The orchestration removed all of its instance's values (`ctx.clear_all_values`).
    ValuesCleared {
        /// Call site of `clear_all_values`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The orchestration asked for a value of another instance (`ctx.get_value_from`).
    ValueReadScheduled {
        /// The instance whose value is read.
        instance: String,
        /// The key.
        key: String,
        /// Call site of `get_value_from`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// The instance's values carried into this execution by a continue-as-new: the second
    /// event of a continued execution whose instance held values, so the execution's
    /// history alone replays its state.
    ValuesCarried {
        /// Every value, sorted by key.
        values: std::collections::BTreeMap<String, String>,
    },
    /// The value a `ValueReadScheduled` read, as it was when the runtime read it.
    ValueReadCompleted {
        /// The `ValueReadScheduled` event.
        source_event_id: u64,
        /// The value (`None`: the instance had no such key, or does not exist).
        value: Option<String>,
    },
    /// The orchestration started waiting for the next message of an event queue
    /// (`ctx.dequeue_event`). A decision, matched by queue name on replay. A wait dropped
    /// before it received its message is released with [`EventKind::ExternalUnsubscribed`],
    /// which hands the message on to the next wait of the queue.
    QueueSubscribed {
        /// Queue name.
        queue: String,
        /// Call site of `dequeue_event`.
        #[serde(default)]
        call_site: Option<String>,
    },
    /// A message arrived on an event queue (`Client::enqueue_event`), or was carried into
    /// this execution, unread, from the one before it (continue-as-new). Messages of a
    /// queue go to its waits in the order they appear in history.
    QueueMessageReceived {
        /// Queue name.
        queue: String,
        /// Payload.
        data: String,
    },
}

impl EventKind {
    /// The stable type name of this event (its `type` tag).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::OrchestrationStarted { .. } => "OrchestrationStarted",
            EventKind::OrchestrationCompleted { .. } => "OrchestrationCompleted",
            EventKind::OrchestrationFailed { .. } => "OrchestrationFailed",
            EventKind::OrchestrationContinuedAsNew { .. } => "OrchestrationContinuedAsNew",
            EventKind::OrchestrationCancelRequested { .. } => "OrchestrationCancelRequested",
            EventKind::ActivityScheduled { .. } => "ActivityScheduled",
            EventKind::ActivityCompleted { .. } => "ActivityCompleted",
            EventKind::ActivityFailed { .. } => "ActivityFailed",
            EventKind::ActivityCancelRequested { .. } => "ActivityCancelRequested",
            EventKind::TimerCreated { .. } => "TimerCreated",
            EventKind::TimerFired { .. } => "TimerFired",
            EventKind::ExternalSubscribed { .. } => "ExternalSubscribed",
            EventKind::ExternalUnsubscribed { .. } => "ExternalUnsubscribed",
            EventKind::ExternalRaised { .. } => "ExternalRaised",
            EventKind::SubOrchestrationScheduled { .. } => "SubOrchestrationScheduled",
            EventKind::SubOrchestrationCompleted { .. } => "SubOrchestrationCompleted",
            EventKind::SubOrchestrationFailed { .. } => "SubOrchestrationFailed",
            EventKind::SubOrchestrationCancelRequested { .. } => "SubOrchestrationCancelRequested",
            EventKind::OrchestrationChained { .. } => "OrchestrationChained",
            EventKind::SystemCall { .. } => "SystemCall",
            EventKind::CustomStatusSet { .. } => "CustomStatusSet",
            EventKind::ValueSet { .. } => "ValueSet",
            EventKind::ValueCleared { .. } => "ValueCleared",
            EventKind::ValuesCleared { .. } => "ValuesCleared",
            EventKind::ValueReadScheduled { .. } => "ValueReadScheduled",
            EventKind::ValuesCarried { .. } => "ValuesCarried",
            EventKind::ValueReadCompleted { .. } => "ValueReadCompleted",
            EventKind::QueueSubscribed { .. } => "QueueSubscribed",
            EventKind::QueueMessageReceived { .. } => "QueueMessageReceived",
        }
    }

    /// True for events that record a decision of the orchestration code (matched by sequence
    /// during replay).
    pub fn is_decision(&self) -> bool {
        matches!(
            self,
            EventKind::ActivityScheduled { .. }
                | EventKind::TimerCreated { .. }
                | EventKind::ExternalSubscribed { .. }
                | EventKind::SubOrchestrationScheduled { .. }
                | EventKind::OrchestrationChained { .. }
                | EventKind::SystemCall { .. }
                | EventKind::ValueSet { .. }
                | EventKind::ValueCleared { .. }
                | EventKind::ValuesCleared { .. }
                | EventKind::ValueReadScheduled { .. }
                | EventKind::QueueSubscribed { .. }
        )
    }

    /// True for events that end an execution.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::OrchestrationCompleted { .. }
                | EventKind::OrchestrationFailed { .. }
                | EventKind::OrchestrationContinuedAsNew { .. }
        )
    }
}

/// The kinds of work a scheduling event starts and its completion event finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskKind {
    Activity,
    Timer,
    External,
    SubOrchestration,
    ValueRead,
}

impl EventKind {
    /// For an event that completes scheduled work: the id of the scheduling event it
    /// completes, and that work's kind. Raised external events name no scheduling event
    /// (they go to waits by name), so they are not included.
    pub(crate) fn completed_task(&self) -> Option<(u64, TaskKind)> {
        match self {
            EventKind::ActivityCompleted { source_event_id, .. }
            | EventKind::ActivityFailed { source_event_id, .. } => {
                Some((*source_event_id, TaskKind::Activity))
            }
            EventKind::TimerFired { source_event_id, .. } => Some((*source_event_id, TaskKind::Timer)),
            EventKind::SubOrchestrationCompleted { source_event_id, .. }
            | EventKind::SubOrchestrationFailed { source_event_id, .. } => {
                Some((*source_event_id, TaskKind::SubOrchestration))
            }
            EventKind::ValueReadCompleted { source_event_id, .. } => {
                Some((*source_event_id, TaskKind::ValueRead))
            }
            _ => None,
        }
    }

    /// Whether `now`, a decision the code makes, is the same call as this recorded decision:
    /// kind and the fields that identify the call (name, input, version, instance, session,
    /// delay), never call sites or timestamps. An activity's tag is not compared: it says
    /// where the work runs, not what it is, so re-routing an activity in a new deployment
    /// does not break instances in flight (their recorded work keeps its recorded tag).
    pub(crate) fn is_same_decision(&self, now: &EventKind) -> bool {
        use EventKind::*;
        match (self, now) {
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
            (ValueSet { key: a, value: av, .. }, ValueSet { key: b, value: bv, .. }) => a == b && av == bv,
            (ValueCleared { key: a, .. }, ValueCleared { key: b, .. }) => a == b,
            (ValuesCleared { .. }, ValuesCleared { .. }) => true,
            (
                ValueReadScheduled { instance: a, key: ak, .. },
                ValueReadScheduled { instance: b, key: bk, .. },
            ) => a == b && ak == bk,
            (QueueSubscribed { queue: a, .. }, QueueSubscribed { queue: b, .. }) => a == b,
            _ => false,
        }
    }

    /// For a scheduling event: the kind of work it starts.
    pub(crate) fn scheduled_task(&self) -> Option<TaskKind> {
        match self {
            EventKind::ActivityScheduled { .. } => Some(TaskKind::Activity),
            EventKind::TimerCreated { .. } => Some(TaskKind::Timer),
            EventKind::ExternalSubscribed { .. } => Some(TaskKind::External),
            EventKind::SubOrchestrationScheduled { .. } => Some(TaskKind::SubOrchestration),
            EventKind::ValueReadScheduled { .. } => Some(TaskKind::ValueRead),
            // A queue wait is a wait like an event wait; only the name space differs.
            EventKind::QueueSubscribed { .. } => Some(TaskKind::External),
            _ => None,
        }
    }
}

/// Short, stable digest of a payload, used in error messages instead of the payload itself.
pub fn digest(payload: &str) -> String {
    let hash = Sha256::digest(payload.as_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Serializes a history to JSON (one array).
pub fn to_json(events: &[Event]) -> Result<String, serde_json::Error> {
    serde_json::to_string(events)
}

/// Parses a history written by [`to_json`] (or any earlier duroxide version).
pub fn from_json(json: &str) -> Result<Vec<Event>, serde_json::Error> {
    serde_json::from_str(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_roundtrip_with_stable_tags() {
        let e = Event {
            event_id: 2,
            timestamp_ms: 7,
            kind: EventKind::ActivityScheduled {
                name: "A".into(),
                input: "x".into(),
                call_site: Some("src/main.rs:1:1".into()),
                session_id: None,
                tag: None,
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""type":"ActivityScheduled""#), "{json}");
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }

    #[test]
    fn old_events_without_optional_fields_load() {
        let json = r#"{"event_id":1,"type":"ActivityScheduled","name":"A","input":"i"}"#;
        let e: Event = serde_json::from_str(json).unwrap();
        assert_eq!(
            e.kind,
            EventKind::ActivityScheduled {
                name: "A".into(),
                input: "i".into(),
                call_site: None,
                session_id: None,
                tag: None
            }
        );
        assert_eq!(e.timestamp_ms, 0);
    }

    #[test]
    fn activity_tags_round_trip_and_are_left_out_when_absent() {
        let tagged = EventKind::ActivityScheduled {
            name: "A".into(),
            input: "i".into(),
            call_site: None,
            session_id: None,
            tag: Some("gpu".into()),
        };
        let json = serde_json::to_string(&tagged).unwrap();
        assert!(json.contains(r#""tag":"gpu""#), "{json}");
        assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), tagged);
        let untagged = EventKind::ActivityScheduled {
            name: "A".into(),
            input: "i".into(),
            call_site: None,
            session_id: None,
            tag: None,
        };
        assert!(!serde_json::to_string(&untagged).unwrap().contains("tag"));
        // Routing is not part of the decision: a re-tagged call still matches.
        assert!(tagged.is_same_decision(&untagged));
    }

    #[test]
    fn unknown_event_type_is_an_error() {
        let json = r#"{"event_id":1,"type":"SomethingFromTheFuture"}"#;
        assert!(serde_json::from_str::<Event>(json).is_err());
    }

    #[test]
    fn every_completion_names_its_scheduling_event_and_kind() {
        let failed = || ErrorDetails::application("x");
        let cases = [
            (EventKind::ActivityCompleted { source_event_id: 2, result: String::new() }, TaskKind::Activity),
            (EventKind::ActivityFailed { source_event_id: 2, details: failed() }, TaskKind::Activity),
            (EventKind::TimerFired { source_event_id: 2, fire_at_ms: 0 }, TaskKind::Timer),
            (
                EventKind::SubOrchestrationCompleted { source_event_id: 2, result: String::new() },
                TaskKind::SubOrchestration,
            ),
            (
                EventKind::SubOrchestrationFailed { source_event_id: 2, details: failed() },
                TaskKind::SubOrchestration,
            ),
        ];
        for (event, kind) in cases {
            assert_eq!(event.completed_task(), Some((2, kind)), "{}", event.type_name());
        }
        let raised = EventKind::ExternalRaised { name: "n".into(), data: String::new() };
        assert_eq!(raised.completed_task(), None);
        assert_eq!(EventKind::ActivityCancelRequested { source_event_id: 2 }.completed_task(), None);
    }

    #[test]
    fn digest_is_short_and_stable() {
        assert_eq!(digest("abc"), digest("abc"));
        assert_ne!(digest("abc"), digest("abd"));
        assert_eq!(digest("abc").len(), 12);
    }
}
