//! One turn of an instance: from the locked [`OrchestrationItem`] to the committed result,
//! in named steps (finished instance, poison, engine from the cache or from history, run,
//! commit with hand-over of activities, cache).
//!
//! The loop that takes items lives in `orchestration_dispatcher`; the commit's contents are
//! built in `turn_commit`; failing an instance without running it lives in `failure`.

use super::Inner;
use super::activity_dispatcher::eager_backlog;
use super::backoff::retry_delay;
use super::cache::CachedInstance;
use super::failure::{
    cancel_reason, commit_or_abandon, commit_or_fail, fail_as_poison, fail_without_replay, not_runnable_here,
    retry_unreadable_history,
};
use super::lock_renewal::HeldActivity;
use super::metrics::{self, Ending, InFlight, TurnSource};
use super::turn_commit::{TurnTarget, bare_commit, commit_from_turn, update_from};
use crate::history::{ErrorDetails, Event, EventKind};
use crate::provider::{ActivityWorkItem, Attempt, OrchestrationItem, OrchestratorMessage, TurnCommit};
use crate::replay::{ReplayEngine, TurnEnv, TurnResult, started_event};
use std::time::Instant;
use tracing::Instrument;

/// The engine a turn runs, with the execution it replays.
struct TurnEngine {
    name: String,
    version: String,
    execution_id: u64,
    engine: ReplayEngine,
    /// Whether it came from the cache, from replaying the history, or is new.
    source: TurnSource,
}

/// Runs one turn of a locked instance and commits it (or ends the item another way: a
/// finished instance, poison, an unreadable history, a node that cannot run it), in the
/// turn's `duroxide.turn` span: the orchestration's code and its `ctx.trace_*` events run
/// inside it, and the activities it hands over to this node's workers are its children.
pub(super) async fn run_turn(inner: &Inner, item: OrchestrationItem) {
    let span = tracing::info_span!(
        "duroxide.turn",
        instance = %item.instance,
        // A new execution gets id 1; a continued one's id is already on the record.
        execution = item.record.execution_id.max(1),
        orchestration = %item.record.name,
        // Known once the execution runs (the first turn picks it; recorded then).
        version = item.record.version.as_deref(),
        source = tracing::field::Empty,
        messages = item.messages.len(),
        new_events = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    take_turn(inner, item, &span).instrument(span.clone()).await
}

async fn take_turn(inner: &Inner, item: OrchestrationItem, span: &tracing::Span) {
    let started = Instant::now();
    let _in_flight = InFlight::turn();
    let now = inner.options.clock.now_ms();
    if item.record.state.is_terminal() {
        span.record("outcome", "late_messages");
        consume_late_messages(inner, &item).await;
        return;
    }
    if item.attempt > inner.options.max_attempts {
        fail_as_poison(inner, &item).await;
        return;
    }
    if let Some(err) = &item.history_error {
        span.record("outcome", "unreadable_history");
        retry_unreadable_history(inner, &item, err).await;
        return;
    }
    let prepared = match take_live_engine(inner, &item) {
        Some(live) => live,
        None => match prepare_engine(inner, &item, now).await {
            Some(prepared) => prepared,
            None => return,
        },
    };
    let TurnEngine { name, version, execution_id: exec, mut engine, source } = prepared;
    if inner.options.instance_cache_size > 0 && source != TurnSource::New {
        metrics::cache_lookup(source == TurnSource::Cached);
    }
    if item.record.version.is_none() {
        span.record("version", version.as_str());
    }
    span.record("source", source.as_str());
    let result = run_engine(inner, &item, &mut engine, (&name, &version, exec), now);
    let ending = Ending::of(&result.outcome);
    span.record("new_events", result.new_events.len());
    span.record("outcome", ending.map_or("pending", Ending::as_str));
    // The engine holds the execution's start event, also when the store skipped the history.
    let target = TurnTarget {
        instance: &item.instance,
        execution_id: exec,
        name: &name,
        version: &version,
        parent: engine.parent(),
    };
    let reads = super::values::requested_reads(&result.actions);
    let mut commit = commit_from_turn(&target, result, inner.options.activity_lock_timeout);
    if !reads.is_empty() {
        match super::values::read_requested(inner, &item.instance, exec, reads).await {
            Ok(answers) => commit.messages.extend(answers),
            Err(e) => return super::values::retry_after_read_error(inner, &item, &e).await,
        }
    }
    let committed = commit_with_hand_over(inner, &item, commit).await;
    if !committed {
        return;
    }
    metrics::turn_committed(&name, &version, source, started.elapsed());
    if source == TurnSource::New && item.record.execution_id == 0 {
        metrics::orchestration_started(&name, &version);
    }
    match ending {
        Some(ending) => metrics::execution_ended(&name, &version, ending),
        None if inner.options.instance_cache_size > 0 => {
            let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.put(
                item.instance.clone(),
                CachedInstance { execution_id: exec, history_rev: item.history_rev, engine },
                inner.options.instance_cache_size,
            );
            metrics::cache_size(cache.len());
        }
        None => {}
    }
}

/// A finished instance consumes late messages without running anything.
async fn consume_late_messages(inner: &Inner, item: &OrchestrationItem) {
    let version = item.record.version.clone().unwrap_or_default();
    let update = update_from(item, &item.record.name, &version, item.record.state);
    commit_or_abandon(inner, item, bare_commit(item.record.execution_id, update)).await;
}

/// A live engine from this node's previous turn continues without replay, if it is
/// exactly at the stored history (no other node ran a turn in between). The store may
/// then have skipped reading the history at all.
/// A stored history row changed or removed in place (corruption, a hand edit) raises the
/// store's revision: the copy is then not trusted, and the history is read and checked.
fn take_live_engine(inner: &Inner, item: &OrchestrationItem) -> Option<TurnEngine> {
    let taken = {
        let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        let taken = cache.take(&item.instance);
        if taken.is_some() {
            metrics::cache_size(cache.len());
        }
        taken
    };
    let live = taken.filter(|c| {
        item.history_len > 0
            && c.execution_id == item.record.execution_id
            && c.engine.history_len() as u64 == item.history_len
            && c.history_rev == item.history_rev
    })?;
    Some(TurnEngine {
        name: item.record.name.clone(),
        version: item.record.version.clone().unwrap_or_default(),
        execution_id: live.execution_id,
        engine: live.engine,
        source: TurnSource::Cached,
    })
}

/// Runs the orchestration's code over the item's messages.
fn run_engine(
    inner: &Inner,
    item: &OrchestrationItem,
    engine: &mut ReplayEngine,
    (name, version, exec): (&str, &str, u64),
    now: u64,
) -> TurnResult {
    let opts = &inner.options;
    let messages = carried_queue_messages(item, exec)
        .chain(item.messages.iter().filter_map(|m| to_event(m, exec)))
        .collect();
    for m in &item.messages {
        if let OrchestratorMessage::TimerFired { execution_id, fire_at_ms, .. } = m
            && *execution_id == exec
        {
            metrics::timer_fired(name, version, *fire_at_ms, now);
        }
    }
    let result = engine.run_turn(
        messages,
        TurnEnv {
            now_ms: now,
            max_payload_bytes: opts.max_payload_bytes,
            max_history_events: opts.max_history_events,
            value_limits: opts.value_limits,
        },
    );
    for d in &result.dropped {
        tracing::debug!(instance = %item.instance, "{d}");
    }
    result
}

/// Commits the turn. Activities this node's workers can take (up to one waiting per worker)
/// are stored locked for them and handed over after the commit, saving each a fetch from
/// the store. Returns whether the turn is now stored.
async fn commit_with_hand_over(inner: &Inner, item: &OrchestrationItem, mut commit: TurnCommit) -> bool {
    let can_hand_over = |a: &ActivityWorkItem| {
        a.session_id.is_none()
            && inner.worker.tags.accepts(a.tag.as_deref())
            && inner.activities.get(&a.name).is_some()
    };
    let reserved = inner.eager.reserve(
        commit.activities.iter().filter(|a| can_hand_over(a)).count(),
        eager_backlog(&inner.options),
    );
    let mut handed = Vec::with_capacity(reserved);
    let now = crate::now_ms();
    for a in commit.activities.iter_mut().filter(|a| can_hand_over(a)).take(reserved) {
        a.lock_token = format!("eager-{}", uuid::Uuid::new_v4());
        a.attempt = 1;
        a.visible_at_ms = now;
        handed.push(a.clone());
    }
    let committed = commit_or_fail(inner, item, commit).await;
    let handed = if committed {
        // The turn's span (current here) becomes the parent of each activity's span.
        let turn = tracing::Span::current();
        handed.into_iter().map(|a| HeldActivity::hold(inner, a).with_parent(turn.clone())).collect()
    } else {
        Vec::new()
    };
    inner.eager.hand_over(reserved, handed);
    committed
}

/// Builds the replay engine for an item from its history (read now if the store skipped
/// it), starting a fresh execution when there is none. Returns `None` after handling the
/// item some other way (abandoned, failed).
async fn prepare_engine(inner: &Inner, item: &OrchestrationItem, now: u64) -> Option<TurnEngine> {
    let mut history = full_history(inner, item).await?;
    let persisted_len = history.len();
    let mut exec = item.record.execution_id;
    if history.is_empty() {
        let new = start_execution(inner, item, now).await?;
        exec = new.execution_id;
        history.push(new.started);
        if exec > 1 {
            match super::values::carried_values(inner, &item.instance, now).await {
                Ok(carried) => history.extend(carried),
                Err(e) => {
                    super::values::retry_after_read_error(inner, item, &e).await;
                    return None;
                }
            }
        }
    }
    let (name, version) = match &history[0].kind {
        EventKind::OrchestrationStarted { name, version, .. } => (name.clone(), version.clone()),
        _ => {
            let details =
                ErrorDetails::corrupt_history("corrupt history: first event is not OrchestrationStarted");
            fail_without_replay(inner, item, details).await;
            return None;
        }
    };
    let handler = match inner.orchestrations.resolve(&name, Some(&version)) {
        Ok((_, h)) => h,
        Err(err) => {
            not_runnable_here(inner, item, err.to_string()).await;
            return None;
        }
    };
    let source = if persisted_len == 0 { TurnSource::New } else { TurnSource::Replayed };
    match ReplayEngine::new(handler, &item.instance, exec, history, persisted_len) {
        Ok(engine) => Some(TurnEngine { name, version, execution_id: exec, engine, source }),
        Err(err) => {
            fail_without_replay(inner, item, ErrorDetails::corrupt_history(err.to_string())).await;
            None
        }
    }
}

/// The execution's stored history, read now if the store skipped it. Returns `None` after
/// abandoning the item when the read fails.
async fn full_history(inner: &Inner, item: &OrchestrationItem) -> Option<Vec<Event>> {
    if !(item.history.is_empty() && item.history_len > 0) {
        return Some(item.history.clone());
    }
    match inner.store.read_history(&item.instance, Some(item.record.execution_id)).await {
        Ok(h) => Some(h),
        Err(e) => {
            // Counted: an unreadable history fails the instance as poison after
            // max_attempts, with this note as the reason.
            tracing::warn!(instance = %item.instance, error = %e, "reading history failed; retrying");
            let delay = Some(retry_delay(item.attempt, &inner.options));
            let note = Some(format!("reading the history failed: {e}"));
            let _ =
                inner.store.abandon_orchestration_item(&item.lock_token, delay, note, Attempt::Counted).await;
            None
        }
    }
}

/// An execution about to run its first turn.
struct NewExecution {
    execution_id: u64,
    /// Its `OrchestrationStarted` event, the first of its history.
    started: Event,
}

/// The first event of an execution that has no history yet, with the execution's id, from
/// the item's start message. Returns `None` after handling the item some other way.
async fn start_execution(inner: &Inner, item: &OrchestrationItem, now: u64) -> Option<NewExecution> {
    let opts = &inner.options;
    let exec = item.record.execution_id;
    // Never started and already cancelled: it ends here, without its code (which no
    // node may have) and without waiting for its start message (held back while no
    // node could run it, it may not be in this batch).
    if exec == 0
        && let Some(reason) = cancel_reason(item)
    {
        fail_without_replay(inner, item, ErrorDetails::cancelled(reason)).await;
        return None;
    }
    let start = item.messages.iter().find_map(|m| match m {
        OrchestratorMessage::StartOrchestration { name, version, input, parent } if exec == 0 => {
            Some((1, name.clone(), version.clone(), input.clone(), parent.clone()))
        }
        OrchestratorMessage::ContinueAsNew { execution_id, name, version, input, parent, .. }
            if *execution_id == exec =>
        {
            Some((*execution_id, name.clone(), Some(version.clone()), input.clone(), parent.clone()))
        }
        _ => None,
    });
    let Some((e, name, version, input, parent)) = start else {
        // The start message is queued but held back (no node could run it yet): the
        // other messages wait for it. Not counted toward poison, as for the start
        // itself: the instance is not at fault.
        let note = Some("messages arrived before the instance's start message".to_string());
        let delay = Some(opts.max_unregistered_backoff);
        let _ =
            inner.store.abandon_orchestration_item(&item.lock_token, delay, note, Attempt::GivenBack).await;
        return None;
    };
    let resolved = match inner.orchestrations.resolve(&name, version.as_deref()) {
        Ok((v, _)) => v,
        Err(err) => {
            not_runnable_here(inner, item, err.to_string()).await;
            return None;
        }
    };
    Some(NewExecution { execution_id: e, started: started_event(&name, &resolved, &input, parent, now) })
}

/// Converts a queued message into the history event the engine delivers, dropping those
/// addressed to another execution.
fn to_event(m: &OrchestratorMessage, exec: u64) -> Option<EventKind> {
    let mine = |e: u64| e == exec;
    Some(match m.clone() {
        OrchestratorMessage::StartOrchestration { .. } | OrchestratorMessage::ContinueAsNew { .. } => {
            return None;
        }
        OrchestratorMessage::ActivityCompleted { execution_id, event_id, result } if mine(execution_id) => {
            EventKind::ActivityCompleted { source_event_id: event_id, result }
        }
        OrchestratorMessage::ActivityFailed { execution_id, event_id, details } if mine(execution_id) => {
            EventKind::ActivityFailed { source_event_id: event_id, details }
        }
        OrchestratorMessage::TimerFired { execution_id, event_id, fire_at_ms } if mine(execution_id) => {
            EventKind::TimerFired { source_event_id: event_id, fire_at_ms }
        }
        OrchestratorMessage::SubOrchestrationCompleted { execution_id, event_id, result }
            if mine(execution_id) =>
        {
            EventKind::SubOrchestrationCompleted { source_event_id: event_id, result }
        }
        OrchestratorMessage::SubOrchestrationFailed { execution_id, event_id, details }
            if mine(execution_id) =>
        {
            EventKind::SubOrchestrationFailed { source_event_id: event_id, details }
        }
        OrchestratorMessage::ExternalRaised { name, data } => EventKind::ExternalRaised { name, data },
        OrchestratorMessage::CancelRequested { reason } => EventKind::OrchestrationCancelRequested { reason },
        OrchestratorMessage::ValueRead { execution_id, event_id, value } if mine(execution_id) => {
            EventKind::ValueReadCompleted { source_event_id: event_id, value }
        }
        OrchestratorMessage::QueueMessage { queue, data } => EventKind::QueueMessageReceived { queue, data },
        _ => return None,
    })
}

/// The queue messages the previous execution carried into execution `exec` (present only
/// in the batch that starts it). They come before every other message of the batch: they
/// arrived before any of them.
fn carried_queue_messages(item: &OrchestrationItem, exec: u64) -> impl Iterator<Item = EventKind> + '_ {
    item.messages
        .iter()
        .filter_map(move |m| match m {
            OrchestratorMessage::ContinueAsNew { execution_id, queue_messages, .. }
                if *execution_id == exec =>
            {
                Some(queue_messages)
            }
            _ => None,
        })
        .flatten()
        .map(|m| EventKind::QueueMessageReceived { queue: m.queue.clone(), data: m.data.clone() })
}
