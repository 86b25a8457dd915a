//! Running one activity attempt: poison check, the handler call with its context and
//! session state, and turning the outcome into the message for the instance.
//!
//! Taking activities lives in `activity_dispatcher`; committing the result lives in
//! `completions`; keeping the lock while it runs lives in `lock_renewal`.

use super::Inner;
use super::backoff::retry_delay;
use super::completions::enqueue_completion;
use super::lock_renewal::{AbortOnDrop, HeldActivity};
use super::metrics::{self, ActivityEnd, InFlight, RetryReason};
use super::sessions::session_state_for;
use crate::context::ActivityContext;
use crate::history::{ErrorCategory, ErrorDetails};
use crate::provider::{ActivityWorkItem, OrchestratorMessage, ProviderError};
use crate::registry::ActivityHandler;
use crate::replay::panic_message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Runs one activity attempt in its `duroxide.activity` span: a child of the turn that
/// handed it over on this node, otherwise a root carrying the same `instance` and
/// `execution` fields as the turn spans.
pub(super) async fn run_activity(inner: &Arc<Inner>, mut held: HeldActivity) {
    let item = &held.item;
    let parent = held.parent.take();
    let span = tracing::info_span!(
        parent: parent.as_ref().and_then(|p| p.id()),
        "duroxide.activity",
        instance = %item.instance,
        execution = item.execution_id,
        event_id = item.event_id,
        activity = %item.name,
        attempt = item.attempt,
        session = item.session_id.as_deref(),
        outcome = tracing::field::Empty,
    );
    drop(parent); // the activity's span holds its parent from here on
    attempt(inner, held).instrument(span).await
}

async fn attempt(inner: &Arc<Inner>, held: HeldActivity) {
    let opts = &inner.options;
    let item = held.item.clone();
    let span = tracing::Span::current();
    if item.attempt > 1 {
        metrics::activity_retried(&item.name, RetryReason::Redelivery);
    }
    let message = if item.attempt > opts.max_attempts {
        span.record("outcome", "poison");
        metrics::activity_failed(&item.name, ErrorCategory::Poison);
        failed(
            &item,
            ErrorDetails::poison(format!(
                "activity '{}' (instance '{}', event {}) was fetched {} times, more than max_attempts = {}; \
             earlier attempts did not complete (worker crash, lock expiry or not registered on the nodes that fetched it)",
                item.name, item.instance, item.event_id, item.attempt, opts.max_attempts
            )),
        )
    } else if let Some(handler) = inner.activities.get(&item.name) {
        match invoke(inner, held, handler).await {
            Some(message) => message,
            None => return,
        }
    } else {
        span.record("outcome", "not_registered");
        tracing::warn!(activity = %item.name, "activity not registered on this node; leaving it for another node");
        let _ = inner.store.abandon_work_item(&item.lock_token, Some(retry_delay(item.attempt, opts))).await;
        return;
    };
    enqueue_completion(inner, &item, message).await;
}

fn failed(item: &ActivityWorkItem, details: ErrorDetails) -> OrchestratorMessage {
    OrchestratorMessage::ActivityFailed { execution_id: item.execution_id, event_id: item.event_id, details }
}

/// Calls the handler and returns the message its outcome sends to the instance, or `None`
/// when there is nothing to send (the lock was lost, or the run was aborted by shutdown).
async fn invoke(
    inner: &Inner,
    held: HeldActivity,
    handler: Arc<dyn ActivityHandler>,
) -> Option<OrchestratorMessage> {
    let opts = &inner.options;
    let item = held.item.clone();
    let (session_state, session_new) = session_state_for(inner, &item);
    let ctx = ActivityContext {
        instance: item.instance.clone(),
        execution_id: item.execution_id,
        event_id: item.event_id,
        name: item.name.clone(),
        attempt: item.attempt,
        cancel: held.cancel.clone(),
        session_id: item.session_id.clone(),
        session_new,
        session_state,
        worker_id: inner.worker.worker_id.clone(),
        orchestration_name: item.orchestration_name.clone(),
        orchestration_version: item.orchestration_version.clone(),
        tag: item.tag.clone(),
        client: Some(inner.client.clone()),
    };
    if item.visible_at_ms > 0 {
        let waited = Duration::from_millis(crate::now_ms().saturating_sub(item.visible_at_ms));
        metrics::activity_started(&item.name, waited);
    }
    let _in_flight = InFlight::activity();
    let started = Instant::now();
    // Both the activity and its lock renewal die with this task (shutdown timeout,
    // runtime dropped): an orphaned renewal would keep the lock alive forever and no
    // other worker could retry. The handler runs in the attempt's span, so its
    // `ctx.trace_*` events belong to it.
    let call = handler.invoke(ctx, item.input.clone()).instrument(tracing::Span::current());
    let mut run = AbortOnDrop(tokio::spawn(call));
    let cancel = held.cancel.clone();
    let outcome = match run_with_grace(&mut run, &cancel, opts.cancellation_grace_period).await {
        Graced::Ran(outcome) => outcome,
        Graced::Aborted => {
            tracing::warn!(activity = %item.name, instance = %item.instance, grace = ?opts.cancellation_grace_period,
                "cancelled activity did not stop within its grace period; aborted");
            metrics::activity_cancelled(&item.name, true);
            if let Some(ProviderError::LockLost(_)) = held.finish().await {
                ended(&item, ActivityEnd::LockLost, started);
                return None;
            }
            let details = ErrorDetails::cancelled(format!(
                "activity '{}' was aborted: it was cancelled and did not stop within the grace period of {:?}",
                item.name, opts.cancellation_grace_period
            ));
            ended(&item, ActivityEnd::Failed(ErrorCategory::Cancelled), started);
            return Some(failed(&item, details));
        }
    };
    if cancel.is_cancelled() {
        tracing::info!(activity = %item.name, instance = %item.instance, "cancelled activity stopped within its grace period");
        metrics::activity_cancelled(&item.name, false);
    }
    if let Some(ProviderError::LockLost(_)) = held.finish().await {
        tracing::warn!(activity = %item.name, instance = %item.instance, "activity lock lost; result dropped, another worker retries");
        ended(&item, ActivityEnd::LockLost, started);
        return None;
    }
    let message = match outcome {
        Ok(Ok(output)) if output.len() > opts.max_payload_bytes => failed(
            &item,
            ErrorDetails::payload_too_large(format!(
                "output of activity '{}' is {} bytes; the limit is {} bytes",
                item.name,
                output.len(),
                opts.max_payload_bytes
            )),
        ),
        Ok(Ok(output)) => OrchestratorMessage::ActivityCompleted {
            execution_id: item.execution_id,
            event_id: item.event_id,
            result: output,
        },
        Ok(Err(e)) => failed(&item, e.into_details()),
        Err(join) if join.is_panic() => {
            let msg = panic_message(&join.into_panic());
            failed(&item, ErrorDetails::application(format!("activity '{}' panicked: {msg}", item.name)))
        }
        Err(_) => return None, // aborted by shutdown: the lock expires and the work is retried
    };
    let end = match &message {
        OrchestratorMessage::ActivityFailed { details, .. } => ActivityEnd::Failed(details.category),
        _ => ActivityEnd::Completed,
    };
    ended(&item, end, started);
    Some(message)
}

/// How a run ended: by itself (its join result), or aborted after its grace period.
enum Graced {
    Ran(Result<Result<String, crate::ActivityError>, tokio::task::JoinError>),
    Aborted,
}

/// Waits for the run; once `cancel` is signalled, at most `grace` longer, then aborts it
/// (which frees the worker that awaits it).
async fn run_with_grace(
    run: &mut AbortOnDrop<Result<String, crate::ActivityError>>,
    cancel: &crate::context::tokio_util_lite::CancellationToken,
    grace: Duration,
) -> Graced {
    let deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        outcome = &mut run.0 => Graced::Ran(outcome),
        () = deadline => {
            run.0.abort();
            Graced::Aborted
        }
    }
}

/// Records how an attempt that ran ended, in its span and its metrics.
fn ended(item: &ActivityWorkItem, end: ActivityEnd, started: Instant) {
    tracing::Span::current().record("outcome", end.as_str());
    metrics::activity_finished(&item.name, end, started.elapsed());
}
