//! Ending or deferring a turn without running the orchestration's code: failing an
//! instance (poison, corrupt history, a store that refuses the turn), committing with a
//! fallback when the commit fails, and leaving an instance to a node that can run it.
//!
//! Running a turn lives in `turn`; the commit's contents are built in `turn_commit`.

use super::Inner;
use super::backoff::retry_delay;
use super::metrics::{self, Ending};
use super::turn_commit::{bare_commit, update_from};
use crate::history::{ErrorDetails, Event, EventKind, ParentLink};
use crate::provider::{
    Attempt, InstanceState, OrchestrationItem, OrchestratorMessage, OutboundMessage, ProviderError,
    TurnCommit,
};
use crate::replay::started_event;
use std::time::Duration;

/// Commits a turn; on failure releases the lock so the messages are retried (the attempt
/// counts, with the error as the reason a later poison failure gives). Returns whether the
/// turn is now stored.
pub(super) async fn commit_or_abandon(inner: &Inner, item: &OrchestrationItem, commit: TurnCommit) -> bool {
    match inner.store.commit_turn(&item.lock_token, commit).await {
        Ok(()) => true,
        Err(e) => {
            release_after_failed_commit(inner, item, e).await;
            false
        }
    }
}

async fn release_after_failed_commit(inner: &Inner, item: &OrchestrationItem, e: ProviderError) {
    if let ProviderError::LockLost(msg) = e {
        tracing::warn!(instance = %item.instance, "turn discarded, lock lost: {msg}");
        return;
    }
    tracing::warn!(instance = %item.instance, error = %e, "turn commit failed; messages will be retried");
    let note = Some(format!("the turn could not be stored: {e}"));
    let delay = Some(Duration::from_millis(100));
    let _ = inner.store.abandon_orchestration_item(&item.lock_token, delay, note, Attempt::Counted).await;
}

/// Commits a turn's changes. A store that refuses them for good (invalid input such as a
/// NUL byte, corrupt data) would refuse them again on every retry, so the instance fails at
/// once with the store's reason. Returns whether the turn is now stored.
pub(super) async fn commit_or_fail(inner: &Inner, item: &OrchestrationItem, commit: TurnCommit) -> bool {
    match inner.store.commit_turn(&item.lock_token, commit).await {
        Ok(()) => true,
        Err(e @ (ProviderError::InvalidInput(_) | ProviderError::Corrupt(_))) => {
            let details = ErrorDetails::configuration(format!("the store refused the turn's changes: {e}"));
            fail_without_replay(inner, item, details).await;
            false
        }
        Err(e) => {
            release_after_failed_commit(inner, item, e).await;
            false
        }
    }
}

/// Fails the instance without running its code (poison, corrupt history).
pub(super) async fn fail_without_replay(inner: &Inner, item: &OrchestrationItem, details: ErrorDetails) {
    tracing::error!(instance = %item.instance, error = %details, "instance failed");
    let category = details.category;
    let name = item.record.name.clone();
    let version = item.record.version.clone().unwrap_or_else(|| "0.0.0".into());
    let exec = item.record.execution_id.max(1);
    let mut new_events = Vec::new();
    if item.history_len == 0 {
        let input = item
            .messages
            .iter()
            .find_map(|m| match m {
                OrchestratorMessage::StartOrchestration { input, .. } => Some(input.clone()),
                _ => None,
            })
            .unwrap_or_default();
        new_events.push(started_event(&name, &version, &input, None, inner.options.clock.now_ms()));
    }
    new_events.push(Event {
        event_id: item.history_len.max(new_events.len() as u64) + 1,
        timestamp_ms: inner.options.clock.now_ms(),
        kind: EventKind::OrchestrationFailed { details: details.clone() },
    });
    let mut update = update_from(item, &name, &version, InstanceState::Failed);
    update.error = Some(details.clone());
    let mut messages = Vec::new();
    if let Some(parent) = parent_of(item) {
        messages.push(OutboundMessage {
            instance: parent.instance.clone(),
            message: OrchestratorMessage::SubOrchestrationFailed {
                execution_id: parent.execution_id,
                event_id: parent.event_id,
                details,
            },
            visible_at_ms: None,
        });
    }
    let commit = TurnCommit { new_events, messages, ..bare_commit(exec, update) };
    let ended = Ending::Failed(category);
    tracing::Span::current().record("outcome", ended.as_str());
    match inner.store.commit_turn(&item.lock_token, commit.clone()).await {
        Ok(()) => metrics::execution_ended(&name, &version, ended),
        Err(ProviderError::LockLost(msg)) => {
            tracing::warn!(instance = %item.instance, "failing the instance was discarded, lock lost: {msg}");
        }
        Err(e) => {
            // The history itself may be what cannot be written to (e.g. rows missing or
            // taken ids). The failure is then recorded on the instance alone, so the instance
            // still ends, visibly, instead of failing the same commit forever.
            tracing::error!(instance = %item.instance, error = %e, "recording the failure in history failed; recording it on the instance only");
            let bare = TurnCommit { new_events: Vec::new(), ..commit };
            if commit_or_abandon(inner, item, bare).await {
                metrics::execution_ended(&name, &version, ended);
            }
        }
    }
}

pub(super) fn parent_of(item: &OrchestrationItem) -> Option<ParentLink> {
    let from_history = item.history.first().and_then(|e| match &e.kind {
        EventKind::OrchestrationStarted { parent, .. } => parent.clone(),
        _ => None,
    });
    from_history.or_else(|| {
        item.messages.iter().find_map(|m| match m {
            OrchestratorMessage::StartOrchestration { parent, .. }
            | OrchestratorMessage::ContinueAsNew { parent, .. } => parent.clone(),
            _ => None,
        })
    })
}

/// The reason of a cancel request among the item's messages, if there is one.
pub(super) fn cancel_reason(item: &OrchestrationItem) -> Option<String> {
    item.messages.iter().find_map(|m| match m {
        OrchestratorMessage::CancelRequested { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// This node cannot run the instance (name or version not registered): leave it for a node
/// that can, with a growing delay and a note for operators. Does not count toward poison:
/// the instance is not at fault.
pub(super) async fn not_runnable_here(inner: &Inner, item: &OrchestrationItem, why: String) {
    tracing::warn!(instance = %item.instance, "{why}; will retry");
    let delay = retry_delay(item.attempt, &inner.options).min(inner.options.max_unregistered_backoff);
    let _ = inner
        .store
        .abandon_orchestration_item(&item.lock_token, Some(delay), Some(why), Attempt::GivenBack)
        .await;
}

/// Fails an instance fetched more than `max_attempts` times, with the last problem seen.
pub(super) async fn fail_as_poison(inner: &Inner, item: &OrchestrationItem) {
    let why = item
        .history_error
        .clone()
        .or_else(|| item.record.status_note.clone())
        .unwrap_or_else(|| "earlier turns did not commit (crash, lock expiry or storage errors)".into());
    let details = ErrorDetails::poison(format!(
        "instance '{}' was fetched {} times, more than max_attempts = {}; last problem: {why}",
        item.instance, item.attempt, inner.options.max_attempts
    ));
    fail_without_replay(inner, item, details).await;
}

/// The store could not read the history: the item is offered again later, the attempt
/// counted, with the error as the reason a later poison failure gives.
pub(super) async fn retry_unreadable_history(inner: &Inner, item: &OrchestrationItem, err: &str) {
    tracing::warn!(instance = %item.instance, attempt = item.attempt, "unreadable history: {err}");
    let delay = Some(retry_delay(item.attempt, &inner.options));
    let _ = inner
        .store
        .abandon_orchestration_item(&item.lock_token, delay, Some(err.to_string()), Attempt::Counted)
        .await;
}
