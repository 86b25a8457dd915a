//! The replay engine: a pure function of (history, new messages, orchestration code) to
//! (new events, actions, outcome).
//!
//! No I/O and no clock live here: the caller passes the turn's wall-clock time in
//! [`TurnEnv`]. The engine drives the orchestration future with a no-op waker, feeding it
//! completions one at a time in history order and polling after each, so the code observes
//! exactly the interleaving it observed when the history was written:
//!
//! 1. Poll once; every scheduling call the code makes is matched, by sequence, against the
//!    decision events already in history (kind, name and input must be equal), or, past the
//!    end of history, recorded as a new decision with an [`Action`] for the runtime.
//! 2. Deliver each completion already in history (by the id of its scheduling event), poll.
//! 3. Check that every decision in history was made again; then deliver this turn's new
//!    messages the same way, appending them to history. Duplicate or unknown completions are
//!    dropped, never applied twice. A cancellation among the new messages goes first, so
//!    no code runs in a turn that is cancelled.
//!
//! The state the code and the engine share (decisions, completions, event waits) lives in
//! [`crate::orchestration`](mod@crate::orchestration); this module drives it and never the reverse. Files:
//! `engine.rs` runs turns ([`ReplayEngine`]); `nondeterminism.rs` turns a divergence
//! between code and history into the failure that names both calls. The engine also
//! enforces the turn's limits from [`TurnEnv`]: history length per execution, payload and
//! custom status size.
//!
//! An engine can be kept between turns (the runtime's instance cache): `run_turn` only ever
//! feeds new messages to the live future, which produces the same history as a cold replay.

mod engine;
mod nondeterminism;

pub use crate::orchestration::turn::{Action, DEFAULT_MAX_HISTORY_EVENTS, TurnEnv};
pub use engine::ReplayEngine;

use crate::error::OrchestrationError;
use crate::history::{DUROXIDE_VERSION, ErrorDetails, Event, EventKind};
use crate::orchestration::OrchestrationContext;
use futures::future::BoxFuture;
use std::future::Future;

/// Code the engine can run: the registered orchestration function.
pub trait OrchestrationHandler: Send + Sync + 'static {
    /// Starts one execution.
    fn invoke(
        &self,
        ctx: OrchestrationContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, OrchestrationError>>;
}

impl<F, Fut> OrchestrationHandler for F
where
    F: Fn(OrchestrationContext, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, OrchestrationError>> + Send + 'static,
{
    fn invoke(
        &self,
        ctx: OrchestrationContext,
        input: String,
    ) -> BoxFuture<'static, Result<String, OrchestrationError>> {
        Box::pin((self)(ctx, input))
    }
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnOutcome {
    /// The orchestration waits for more messages.
    Pending,
    /// Returned `Ok(output)`.
    Completed(String),
    /// Failed (error, panic, cancellation, nondeterminism).
    Failed(ErrorDetails),
    /// Ended this execution; the next one starts with this input and version.
    ContinuedAsNew {
        /// Input of the next execution.
        input: String,
        /// Version of the next execution.
        version: String,
    },
}

impl TurnOutcome {
    /// True when the execution ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, TurnOutcome::Pending)
    }
}

/// What one turn produced.
#[derive(Debug, Clone)]
pub struct TurnResult {
    /// Events to append to the execution's history, in order.
    pub new_events: Vec<Event>,
    /// Work to enqueue.
    pub actions: Vec<Action>,
    /// How the turn ended.
    pub outcome: TurnOutcome,
    /// The custom status after this turn, if the code ever set one.
    pub custom_status: Option<Option<String>>,
    /// Messages that were dropped (duplicates, unknown ids), with the reason; for logging.
    pub dropped: Vec<String>,
    /// On continue-as-new: the queue messages the code had not received, as (queue, data),
    /// oldest first, including those that arrived in this turn after the code continued.
    /// The runtime hands them to the next execution. Empty otherwise.
    pub carried_queue_messages: Vec<(String, String)>,
}

/// A history the engine cannot replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The history is malformed (no start event, dangling or duplicate completion, ...).
    #[error("corrupt history: {0}")]
    CorruptHistory(String),
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Builds the first event of an execution.
pub fn started_event(
    name: &str,
    version: &str,
    input: &str,
    parent: Option<crate::history::ParentLink>,
    now_ms: u64,
) -> Event {
    Event {
        event_id: 1,
        timestamp_ms: now_ms,
        kind: EventKind::OrchestrationStarted {
            name: name.to_string(),
            version: version.to_string(),
            input: input.to_string(),
            parent,
            duroxide_version: DUROXIDE_VERSION.to_string(),
        },
    }
}
