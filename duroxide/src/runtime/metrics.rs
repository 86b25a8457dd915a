//! The runtime's metrics: one function per event the runtime counts, times or samples, so
//! a call site is one line and every name, label and unit lives here (the table in
//! `docs/observability.md` lists them).
//!
//! Everything goes through the `metrics` facade: with no recorder installed every call is
//! a no-op. Labels are bounded: orchestration name and version, activity name, store kind
//! and operation, outcome and error kind ([`ErrorCategory`] names); never instance ids.
//! Spans are not here: they are opened where the work runs (`turn`, `activity_run`,
//! `provider::instrumented`).

use crate::history::ErrorCategory;
use crate::provider::{ProviderError, QueueDepth, StoreSummary};
use crate::replay::TurnOutcome;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use std::time::Duration;

// Orchestrations (labels: orchestration, version).
const STARTS: &str = "duroxide_orchestration_starts_total";
const COMPLETIONS: &str = "duroxide_orchestration_completions_total";
const FAILURES: &str = "duroxide_orchestration_failures_total";
const CANCELLATIONS: &str = "duroxide_orchestration_cancellations_total";
const CONTINUED_AS_NEW: &str = "duroxide_orchestration_continued_as_new_total";
const TURNS: &str = "duroxide_orchestration_turns_total";
const TURN_DURATION: &str = "duroxide_orchestration_turn_duration_seconds";
const TURNS_IN_FLIGHT: &str = "duroxide_orchestration_turns_in_flight";
const TIMERS_FIRED: &str = "duroxide_timers_fired_total";
const TIMER_LATENESS: &str = "duroxide_timer_lateness_seconds";
// The instance cache (no labels).
const CACHE_HITS: &str = "duroxide_instance_cache_hits_total";
const CACHE_MISSES: &str = "duroxide_instance_cache_misses_total";
const CACHE_SIZE: &str = "duroxide_instance_cache_size";
// Activities (label: activity).
const ACTIVITY_EXECUTIONS: &str = "duroxide_activity_executions_total";
const ACTIVITY_DURATION: &str = "duroxide_activity_duration_seconds";
const ACTIVITY_SCHEDULE_TO_START: &str = "duroxide_activity_schedule_to_start_seconds";
const ACTIVITY_RETRIES: &str = "duroxide_activity_retries_total";
const ACTIVITY_FAILURES: &str = "duroxide_activity_failures_total";
const ACTIVITY_CANCELLATIONS: &str = "duroxide_activity_cancellations_total";
const ACTIVITIES_IN_FLIGHT: &str = "duroxide_activities_in_flight";
// The store (labels: store, operation).
const STORE_CALL_DURATION: &str = "duroxide_store_call_duration_seconds";
const STORE_ERRORS: &str = "duroxide_store_errors_total";
const QUEUE_DEPTH: &str = "duroxide_queue_depth";
const QUEUE_OLDEST_READY_AGE: &str = "duroxide_queue_oldest_ready_age_seconds";
const INSTANCES: &str = "duroxide_instances";

/// How the engine of a turn was obtained: the `source` label of the turn metrics and the
/// `source` field of the turn span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TurnSource {
    /// The live engine of this node's previous turn, from the instance cache: no replay.
    Cached,
    /// Rebuilt from the stored history: the earlier turns were replayed.
    Replayed,
    /// The first turn of an execution: nothing to replay.
    New,
}

impl TurnSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TurnSource::Cached => "cached",
            TurnSource::Replayed => "replayed",
            TurnSource::New => "new",
        }
    }
}

/// How a turn ended an execution, taken from its outcome before the commit consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    Failed(ErrorCategory),
    ContinuedAsNew,
}

impl Ending {
    /// `None` while the execution goes on.
    pub(crate) fn of(outcome: &TurnOutcome) -> Option<Ending> {
        match outcome {
            TurnOutcome::Pending => None,
            TurnOutcome::Completed(_) => Some(Ending::Completed),
            TurnOutcome::Failed(details) => Some(Ending::Failed(details.category)),
            TurnOutcome::ContinuedAsNew { .. } => Some(Ending::ContinuedAsNew),
        }
    }

    /// The `outcome` field of the turn span.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Failed(ErrorCategory::Cancelled) => "cancelled",
            Ending::Failed(_) => "failed",
            Ending::ContinuedAsNew => "continued_as_new",
        }
    }
}

/// How an activity attempt ended: the `outcome` label of the activity metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActivityEnd {
    /// Returned a result (the `ActivityCompleted` message).
    Completed,
    /// Returned an error, panicked or produced an output over the payload limit.
    Failed(ErrorCategory),
    /// Its lock was lost while it ran (another worker has it): the result is dropped.
    LockLost,
}

impl ActivityEnd {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActivityEnd::Completed => "completed",
            ActivityEnd::Failed(_) => "failed",
            ActivityEnd::LockLost => "lock_lost",
        }
    }
}

/// Why an activity runs again: the `reason` label of `duroxide_activity_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryReason {
    /// The orchestration's `RetryPolicy` scheduled it again after a failure.
    Policy,
    /// The store delivered the same work item again (an earlier attempt crashed, lost its
    /// lock, or ran on a node that had not registered it).
    Redelivery,
}

/// Registers the description and unit of every metric with the installed recorder (a
/// Prometheus exporter prints them as `# HELP` and `# TYPE`). Cheap and idempotent; the
/// runtime calls it when it starts.
pub(crate) fn describe() {
    describe_counter!(STARTS, Unit::Count, "Instances whose first execution started its first turn.");
    describe_counter!(COMPLETIONS, Unit::Count, "Executions that completed with an output.");
    describe_counter!(FAILURES, Unit::Count, "Executions that failed, by error kind (cancellations apart).");
    describe_counter!(CANCELLATIONS, Unit::Count, "Executions that ended cancelled.");
    describe_counter!(CONTINUED_AS_NEW, Unit::Count, "Executions that continued as new.");
    describe_counter!(TURNS, Unit::Count, "Turns committed, by how the engine was obtained (source).");
    describe_histogram!(TURN_DURATION, Unit::Seconds, "Time from taking a locked instance to its commit.");
    describe_gauge!(TURNS_IN_FLIGHT, Unit::Count, "Turns running on this node now.");
    describe_counter!(TIMERS_FIRED, Unit::Count, "Timers delivered to a turn.");
    describe_histogram!(
        TIMER_LATENESS,
        Unit::Seconds,
        "How long after its due time a timer reached its turn."
    );
    describe_counter!(CACHE_HITS, Unit::Count, "Turns that continued a live engine from the instance cache.");
    describe_counter!(
        CACHE_MISSES,
        Unit::Count,
        "Turns that replayed a stored history with the cache enabled."
    );
    describe_gauge!(CACHE_SIZE, Unit::Count, "Live orchestrations in this node's instance cache.");
    describe_counter!(ACTIVITY_EXECUTIONS, Unit::Count, "Activity attempts that ran, by outcome.");
    describe_histogram!(ACTIVITY_DURATION, Unit::Seconds, "Run time of an activity attempt.");
    describe_histogram!(
        ACTIVITY_SCHEDULE_TO_START,
        Unit::Seconds,
        "Time from an activity becoming runnable (scheduled, or released for a retry) to its start."
    );
    describe_counter!(ACTIVITY_RETRIES, Unit::Count, "Activities run again, by reason (policy, redelivery).");
    describe_counter!(ACTIVITY_FAILURES, Unit::Count, "Activity attempts that failed, by error kind.");
    describe_counter!(
        ACTIVITY_CANCELLATIONS,
        Unit::Count,
        "Running activities whose result was no longer wanted, by outcome (stopped, aborted)."
    );
    describe_gauge!(ACTIVITIES_IN_FLIGHT, Unit::Count, "Activities running on this node now.");
    describe_histogram!(STORE_CALL_DURATION, Unit::Seconds, "Latency of a store call, by operation.");
    describe_counter!(STORE_ERRORS, Unit::Count, "Store calls that failed, by operation and error.");
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Messages or work items in a store queue, by state.");
    describe_gauge!(QUEUE_OLDEST_READY_AGE, Unit::Seconds, "Age of the oldest ready item of a queue.");
    describe_gauge!(INSTANCES, Unit::Count, "Instances in the store, by state.");
}

/// The labels every orchestration metric carries.
fn orchestration(name: &str, version: &str) -> [(&'static str, String); 2] {
    [("orchestration", name.to_owned()), ("version", version.to_owned())]
}

/// An instance's first execution started its first turn.
pub(crate) fn orchestration_started(name: &str, version: &str) {
    counter!(STARTS, &orchestration(name, version)).increment(1);
}

/// A turn committed.
pub(crate) fn turn_committed(name: &str, version: &str, source: TurnSource, elapsed: Duration) {
    let [o, v] = orchestration(name, version);
    let labels = [o, v, ("source", source.as_str().to_owned())];
    counter!(TURNS, &labels).increment(1);
    histogram!(TURN_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// A committed turn (or a failure written without running the code) ended the execution.
pub(crate) fn execution_ended(name: &str, version: &str, ending: Ending) {
    let labels = orchestration(name, version);
    match ending {
        Ending::Completed => counter!(COMPLETIONS, &labels).increment(1),
        Ending::Failed(ErrorCategory::Cancelled) => counter!(CANCELLATIONS, &labels).increment(1),
        Ending::Failed(category) => {
            let [o, v] = labels;
            counter!(FAILURES, &[o, v, ("error_kind", category.as_str().to_owned())]).increment(1)
        }
        Ending::ContinuedAsNew => counter!(CONTINUED_AS_NEW, &labels).increment(1),
    }
}

/// A timer due at `fire_at_ms` was delivered to a turn at `now_ms`.
pub(crate) fn timer_fired(name: &str, version: &str, fire_at_ms: u64, now_ms: u64) {
    let labels = orchestration(name, version);
    counter!(TIMERS_FIRED, &labels).increment(1);
    let late = Duration::from_millis(now_ms.saturating_sub(fire_at_ms));
    histogram!(TIMER_LATENESS, &labels).record(late.as_secs_f64());
}

/// A turn took (hit) or did not find (miss) its live engine in the instance cache.
pub(crate) fn cache_lookup(hit: bool) {
    if hit {
        counter!(CACHE_HITS).increment(1);
    } else {
        counter!(CACHE_MISSES).increment(1);
    }
}

/// The instance cache now holds `entries` live orchestrations.
pub(crate) fn cache_size(entries: usize) {
    gauge!(CACHE_SIZE).set(entries as f64);
}

/// An activity attempt starts running, `waited` after it became runnable.
pub(crate) fn activity_started(name: &str, waited: Duration) {
    histogram!(ACTIVITY_SCHEDULE_TO_START, "activity" => name.to_owned()).record(waited.as_secs_f64());
}

/// An activity attempt ran for `elapsed` and ended as `end`.
pub(crate) fn activity_finished(name: &str, end: ActivityEnd, elapsed: Duration) {
    let labels = [("activity", name.to_owned()), ("outcome", end.as_str().to_owned())];
    counter!(ACTIVITY_EXECUTIONS, &labels).increment(1);
    histogram!(ACTIVITY_DURATION, &labels).record(elapsed.as_secs_f64());
    if let ActivityEnd::Failed(category) = end {
        activity_failed(name, category);
    }
}

/// An activity attempt failed with `category` (also without running: poison).
pub(crate) fn activity_failed(name: &str, category: ErrorCategory) {
    let labels = [("activity", name.to_owned()), ("error_kind", category.as_str().to_owned())];
    counter!(ACTIVITY_FAILURES, &labels).increment(1);
}

/// A running activity was cancelled and then stopped by itself within the grace period
/// (`aborted` false) or was aborted when the grace period ended.
pub(crate) fn activity_cancelled(name: &str, aborted: bool) {
    let outcome = if aborted { "aborted" } else { "stopped" };
    counter!(ACTIVITY_CANCELLATIONS, &[("activity", name.to_owned()), ("outcome", outcome.to_owned())])
        .increment(1);
}

/// An activity runs again, for `reason`.
pub(crate) fn activity_retried(name: &str, reason: RetryReason) {
    let reason = match reason {
        RetryReason::Policy => "policy",
        RetryReason::Redelivery => "redelivery",
    };
    counter!(ACTIVITY_RETRIES, &[("activity", name.to_owned()), ("reason", reason.to_owned())]).increment(1);
}

/// Counts one unit of work in flight on this node (turns or activities) while alive.
pub(crate) struct InFlight(&'static str);

impl InFlight {
    /// A turn starts.
    pub(crate) fn turn() -> Self {
        Self::enter(TURNS_IN_FLIGHT)
    }

    /// An activity starts.
    pub(crate) fn activity() -> Self {
        Self::enter(ACTIVITIES_IN_FLIGHT)
    }

    fn enter(name: &'static str) -> Self {
        gauge!(name).increment(1.0);
        InFlight(name)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

/// A store call of `operation` took `elapsed` and failed with `error`, if any.
pub(crate) fn store_call(store: &'static str, operation: &'static str, elapsed: Duration) {
    histogram!(STORE_CALL_DURATION, "store" => store, "operation" => operation).record(elapsed.as_secs_f64());
}

/// A store call of `operation` (or one item of a batch call) failed.
pub(crate) fn store_error(store: &'static str, operation: &'static str, error: &ProviderError) {
    counter!(STORE_ERRORS, "store" => store, "operation" => operation, "error" => error.kind()).increment(1);
}

/// The store's queue depths and instance counts, sampled now.
pub(crate) fn store_summary(store: &'static str, summary: &StoreSummary) {
    queue(store, "orchestrator", &summary.orchestrator_queue);
    queue(store, "activity", &summary.activity_queue);
    for count in &summary.instances {
        gauge!(INSTANCES, "store" => store, "state" => count.state.as_str()).set(count.count as f64);
    }
}

fn queue(store: &'static str, queue: &'static str, depth: &QueueDepth) {
    for (state, n) in [("ready", depth.ready), ("locked", depth.locked), ("delayed", depth.delayed)] {
        gauge!(QUEUE_DEPTH, "store" => store, "queue" => queue, "state" => state).set(n as f64);
    }
    let age = Duration::from_millis(depth.oldest_ready_age_ms.unwrap_or(0));
    gauge!(QUEUE_OLDEST_READY_AGE, "store" => store, "queue" => queue).set(age.as_secs_f64());
}
