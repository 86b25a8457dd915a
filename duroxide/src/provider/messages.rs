//! Messages for orchestration instances: what sits in an instance's queue
//! ([`OrchestratorMessage`]), how a turn or client addresses one ([`OutboundMessage`]), and
//! the shared reply to a start whose id is taken. Not here: history events (`crate::history`)
//! and activity work items (`types`).

use crate::history::{ErrorDetails, ParentLink};
use serde::{Deserialize, Serialize};

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
        /// Queue messages the previous execution had not received, oldest first; the new
        /// execution receives them before any message that arrives later. Messages written
        /// before event queues existed have none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        queue_messages: Vec<QueueMessage>,
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
    /// The value another instance held when this instance's turn asked for it
    /// (`ctx.get_value_from`); becomes a `ValueReadCompleted` event.
    ValueRead {
        /// Execution that asked.
        execution_id: u64,
        /// Its `ValueReadScheduled` event id.
        event_id: u64,
        /// The value (`None`: no such key or instance).
        #[serde(default)]
        value: Option<String>,
    },
    /// A message for one of the instance's event queues
    /// ([`Client::enqueue_event`](crate::Client::enqueue_event)).
    QueueMessage {
        /// Queue name.
        queue: String,
        /// Payload.
        data: String,
    },
}

/// A queue message carried from one execution to the next (see
/// [`OrchestratorMessage::ContinueAsNew`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMessage {
    /// Queue name.
    pub queue: String,
    /// Payload.
    pub data: String,
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
            OrchestratorMessage::ValueRead { .. } => "ValueRead",
            OrchestratorMessage::QueueMessage { .. } => "QueueMessage",
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
