//! The [`TurnCommit`] a turn writes: built here, in one place, from the engine's new events,
//! actions and outcome, and the bare commit that ends a turn without running code.
//!
//! Running the engine lives in `turn`; sending the commit to the store and what happens when
//! it fails live in `turn` and `failure`.

use crate::history::ParentLink;
use crate::provider::{
    ActivityWorkItem, InstanceState, InstanceUpdate, OrchestrationItem, OrchestratorMessage, OutboundMessage,
    QueueMessage, TurnCommit,
};
use crate::replay::{Action, TurnOutcome, TurnResult};
use std::time::Duration;

/// A commit that writes `update` and nothing else; callers add what their turn produced.
pub(super) fn bare_commit(execution_id: u64, update: InstanceUpdate) -> TurnCommit {
    TurnCommit {
        execution_id,
        new_events: Vec::new(),
        update,
        next_execution_id: None,
        activities: Vec::new(),
        activity_lock_timeout: Duration::ZERO,
        cancelled_activities: Vec::new(),
        messages: Vec::new(),
    }
}

/// The instance's stored state again, as `name` / `version` in `state`.
pub(super) fn update_from(
    item: &OrchestrationItem,
    name: &str,
    version: &str,
    state: InstanceState,
) -> InstanceUpdate {
    InstanceUpdate {
        name: name.to_string(),
        version: version.to_string(),
        state,
        output: item.record.output.clone(),
        error: item.record.error.clone(),
        custom_status: None,
    }
}

/// The execution a turn ran, as its commit needs it.
pub(super) struct TurnTarget<'a> {
    pub(super) instance: &'a str,
    pub(super) execution_id: u64,
    pub(super) name: &'a str,
    pub(super) version: &'a str,
    /// The parent to tell when the execution ends (from its start event).
    pub(super) parent: Option<ParentLink>,
}

/// Everything a turn writes: its events, the work its actions enqueue, and the instance's
/// new state with the messages its outcome sends.
pub(super) fn commit_from_turn(
    target: &TurnTarget<'_>,
    result: TurnResult,
    activity_lock_timeout: Duration,
) -> TurnCommit {
    let update = InstanceUpdate {
        name: target.name.to_string(),
        version: target.version.to_string(),
        state: InstanceState::Running,
        output: None,
        error: None,
        custom_status: result.custom_status,
    };
    let mut commit = TurnCommit {
        new_events: result.new_events,
        activity_lock_timeout,
        ..bare_commit(target.execution_id, update)
    };
    for action in result.actions {
        add_action(&mut commit, target, action);
    }
    add_outcome(&mut commit, target, result.outcome);
    carry_queue_messages(&mut commit, target, result.carried_queue_messages);
    commit
}

/// Continue-as-new: the unread queue messages ride on the message that starts the next
/// execution, in the same commit, so none is lost or received twice.
fn carry_queue_messages(commit: &mut TurnCommit, target: &TurnTarget<'_>, carried: Vec<(String, String)>) {
    if carried.is_empty() {
        return;
    }
    let next = commit.next_execution_id;
    for m in commit.messages.iter_mut().filter(|m| m.instance == target.instance) {
        if let OrchestratorMessage::ContinueAsNew { execution_id, queue_messages, .. } = &mut m.message
            && Some(*execution_id) == next
        {
            queue_messages.extend(carried.into_iter().map(|(queue, data)| QueueMessage { queue, data }));
            return;
        }
    }
}

fn add_action(commit: &mut TurnCommit, target: &TurnTarget<'_>, action: Action) {
    let exec = target.execution_id;
    let send = |instance: String, message: OrchestratorMessage, visible_at_ms: Option<u64>| OutboundMessage {
        instance,
        message,
        visible_at_ms,
    };
    match action {
        Action::ScheduleActivity { event_id, name, input, session_id, tag } => {
            commit.activities.push(ActivityWorkItem {
                instance: target.instance.to_string(),
                execution_id: exec,
                event_id,
                name,
                input,
                session_id,
                lock_token: String::new(),
                attempt: 0,
                session_claimed: false,
                visible_at_ms: 0,
                tag,
                orchestration_name: target.name.to_string(),
                orchestration_version: target.version.to_string(),
            })
        }
        Action::CreateTimer { event_id, fire_at_ms } => commit.messages.push(send(
            target.instance.to_string(),
            OrchestratorMessage::TimerFired { execution_id: exec, event_id, fire_at_ms },
            Some(fire_at_ms),
        )),
        Action::StartSubOrchestration { event_id, name, version, instance, input } => {
            let parent = ParentLink { instance: target.instance.to_string(), execution_id: exec, event_id };
            let start =
                OrchestratorMessage::StartOrchestration { name, version, input, parent: Some(parent) };
            commit.messages.push(send(instance, start, None))
        }
        Action::StartDetached { name, version, instance, input } => {
            let start = OrchestratorMessage::StartOrchestration { name, version, input, parent: None };
            commit.messages.push(send(instance, start, None))
        }
        Action::CancelActivity { event_id } => commit.cancelled_activities.push(event_id),
        Action::CancelSubOrchestration { instance, reason } => {
            commit.messages.push(send(instance, OrchestratorMessage::CancelRequested { reason }, None))
        }
        // Read before the commit; the answers join its messages (`values`).
        Action::ReadValue { .. } => {}
    }
}

fn add_outcome(commit: &mut TurnCommit, target: &TurnTarget<'_>, outcome: TurnOutcome) {
    let parent = &target.parent;
    let to_parent = |message: OrchestratorMessage| OutboundMessage {
        instance: parent.as_ref().map(|p| p.instance.clone()).unwrap_or_default(),
        message,
        visible_at_ms: None,
    };
    match outcome {
        TurnOutcome::Pending => {}
        TurnOutcome::Completed(output) => {
            commit.update.state = InstanceState::Completed;
            commit.update.output = Some(output.clone());
            if let Some(p) = parent {
                commit.messages.push(to_parent(OrchestratorMessage::SubOrchestrationCompleted {
                    execution_id: p.execution_id,
                    event_id: p.event_id,
                    result: output,
                }));
            }
        }
        TurnOutcome::Failed(details) => {
            if details.category != crate::ErrorCategory::Cancelled {
                tracing::warn!(instance = %target.instance, error = %details, "orchestration failed");
            }
            commit.update.state = InstanceState::Failed;
            commit.update.error = Some(details.clone());
            if let Some(p) = parent {
                commit.messages.push(to_parent(OrchestratorMessage::SubOrchestrationFailed {
                    execution_id: p.execution_id,
                    event_id: p.event_id,
                    details,
                }));
            }
        }
        TurnOutcome::ContinuedAsNew { input, version: next_version } => {
            let next = target.execution_id + 1;
            commit.next_execution_id = Some(next);
            // The custom status stays as the ending execution left it (carried over).
            commit.messages.push(OutboundMessage {
                instance: target.instance.to_string(),
                message: OrchestratorMessage::ContinueAsNew {
                    execution_id: next,
                    name: target.name.to_string(),
                    version: next_version.clone(),
                    input,
                    parent: parent.clone(),
                    queue_messages: Vec::new(),
                },
                // Visible at once, whatever the clocks: a fetch that sees messages sent
                // after this commit must see this start message too, or it would hold them
                // back (and behind later ones) as "arrived before the start message".
                visible_at_ms: Some(0),
            });
            commit.update.version = next_version;
        }
    }
}
