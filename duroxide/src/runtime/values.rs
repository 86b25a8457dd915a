//! What a turn does for the instance's durable values besides running the code: reading
//! the values of other instances that `ctx.get_value_from` asked for (their answers go to
//! this instance's queue in the turn's own commit), and carrying the values into a new
//! execution after continue-as-new (the `ValuesCarried` event that follows its start).
//!
//! The values themselves are written by the store from the turn's value events, in the
//! same commit (see `Provider::get_value`).

use super::Inner;
use super::backoff::retry_delay;
use crate::history::{Event, EventKind};
use crate::provider::{Attempt, OrchestrationItem, OrchestratorMessage, OutboundMessage, ProviderError};
use crate::replay::Action;

/// A read `ctx.get_value_from` asked for: (`ValueReadScheduled` id, instance, key).
pub(super) type ValueRead = (u64, String, String);

/// The reads among a turn's actions.
pub(super) fn requested_reads(actions: &[Action]) -> Vec<ValueRead> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ReadValue { event_id, instance, key } => Some((*event_id, instance.clone(), key.clone())),
            _ => None,
        })
        .collect()
}

/// Reads each requested value now and addresses the answers to `instance` (execution
/// `execution_id`), to be enqueued by the turn's commit. What was read is recorded when the
/// next turn delivers it, so a replay sees these values whatever the other instance holds
/// by then.
pub(super) async fn read_requested(
    inner: &Inner,
    instance: &str,
    execution_id: u64,
    reads: Vec<ValueRead>,
) -> Result<Vec<OutboundMessage>, ProviderError> {
    let mut answers = Vec::with_capacity(reads.len());
    for (event_id, other, key) in reads {
        let value = inner.store.get_value(&other, &key).await?;
        answers.push(OutboundMessage {
            instance: instance.to_string(),
            message: OrchestratorMessage::ValueRead { execution_id, event_id, value },
            visible_at_ms: None,
        });
    }
    Ok(answers)
}

/// The `ValuesCarried` event of a continued execution (event 2, after its start): the
/// values the instance holds, which the previous execution's last turn wrote in the same
/// commit that started this one. `None` when it holds none.
pub(super) async fn carried_values(
    inner: &Inner,
    instance: &str,
    now: u64,
) -> Result<Option<Event>, ProviderError> {
    let values = inner.store.get_values(instance).await?;
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(Event { event_id: 2, timestamp_ms: now, kind: EventKind::ValuesCarried { values } }))
}

/// Gives the item back after a failed read, counted (an instance whose reads keep failing
/// ends as poison with this note), to be retried after a backoff.
pub(super) async fn retry_after_read_error(inner: &Inner, item: &OrchestrationItem, err: &ProviderError) {
    tracing::warn!(instance = %item.instance, error = %err, "reading values failed; retrying");
    let delay = Some(retry_delay(item.attempt, &inner.options));
    let note = Some(format!("reading values failed: {err}"));
    let _ = inner.store.abandon_orchestration_item(&item.lock_token, delay, note, Attempt::Counted).await;
}
