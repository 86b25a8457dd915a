//! [`OrchestrationContext`]: the handle orchestration code makes its decisions through.
//!
//! Every scheduling call is a *decision*: it is recorded in history the first time and
//! matched against history on replay (see [`crate::replay`]). The call is made when the
//! method is called (not when the future is first polled), so the order of decisions is the
//! program order of the calls. The futures the calls return are in
//! [`futures`](super::futures), `select`/`join` in [`combinators`](super::combinators);
//! retried and typed calls are in [`retry`](super::retry) and `typed.rs`.

use super::combinators::{Join, Join2, Select, Select2};
use super::futures::{
    ActivityFuture, DurableFuture, EventFuture, SubOrchestrationFuture, SystemCallFuture, TaskFuture,
    TimerFuture, UtcNowFuture,
};
use super::select3::{Join3, Select3};
use super::state::{ExecutionState, WaitKey, lock};
use super::turn::Action;
use crate::history::TaskKind;
use crate::history::{ErrorDetails, EventKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The orchestration's handle to the runtime. Cheap to clone.
///
/// Orchestration code must be deterministic: everything that can differ between runs (time,
/// randomness, I/O) goes through this context or an activity.
///
/// ```no_run
/// use duroxide::{OrchestrationContext, OrchestrationError};
/// async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, OrchestrationError> {
///     let greeting = ctx.schedule_activity("Greet", name).await?;
///     ctx.trace_info(format!("greeted: {greeting}"));
///     Ok(greeting)
/// }
/// ```
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(super) state: Arc<Mutex<ExecutionState>>,
}

impl std::fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("OrchestrationContext")
            .field("instance", &st.instance())
            .field("execution_id", &st.execution_id())
            .field("name", &st.name())
            .field("version", &st.version())
            .finish()
    }
}

pub(crate) fn call_site(loc: &std::panic::Location<'_>) -> Option<String> {
    Some(format!("{}:{}:{}", loc.file(), loc.line(), loc.column()))
}

impl OrchestrationContext {
    pub(crate) fn new(state: Arc<Mutex<ExecutionState>>) -> Self {
        Self { state }
    }

    /// This instance's id.
    pub fn instance_id(&self) -> String {
        lock(&self.state).instance().to_string()
    }

    /// The current execution (1 for the first, +1 after each continue-as-new).
    pub fn execution_id(&self) -> u64 {
        lock(&self.state).execution_id()
    }

    /// The orchestration's registered name.
    pub fn orchestration_name(&self) -> String {
        lock(&self.state).name().to_string()
    }

    /// The version this execution is pinned to.
    pub fn orchestration_version(&self) -> String {
        lock(&self.state).version().to_string()
    }

    /// True while the code re-runs decisions already in history. Side effects such as logs
    /// should happen only when this is false (the `trace_*` methods do that for you).
    pub fn is_replaying(&self) -> bool {
        lock(&self.state).is_replaying()
    }

    fn oversized(&self, what: &str, payload: &str) -> Option<ErrorDetails> {
        let limit = lock(&self.state).env().max_payload_bytes;
        (payload.len() > limit).then(|| {
            ErrorDetails::payload_too_large(format!(
                "{what} is {} bytes; the limit is {limit} bytes",
                payload.len()
            ))
        })
    }

    /// An identifier the code chose (activity or child orchestration name, child instance
    /// id) that no store could take: the call fails instead of the turn's commit.
    fn bad_identifier(what: &str, value: &str, limit: usize) -> Option<ErrorDetails> {
        crate::provider::check_identifier(value, limit)
            .err()
            .map(|problem| ErrorDetails::configuration(format!("{what} {problem}")))
    }

    /// Schedules an activity and returns a future of its result.
    ///
    /// Dropping the future before it completes (for example when it loses a
    /// [`select2`](Self::select2)) cancels the activity.
    ///
    /// The activity is untagged: runtimes that serve untagged work take it (the default).
    /// To route it to a worker pool, call [`ActivityFuture::with_tag`] on the result:
    /// `ctx.schedule_activity("Render", input).with_tag("gpu")`.
    #[track_caller]
    pub fn schedule_activity(&self, name: impl Into<String>, input: impl Into<String>) -> ActivityFuture {
        self.activity_at(std::panic::Location::caller(), name.into(), input.into(), None, None)
    }

    /// Schedules an activity on a session: every activity of one session id runs on the
    /// worker that holds the session (so it can keep state in memory between calls). The
    /// session id is part of the decision: changing it is a nondeterminism error.
    #[track_caller]
    pub fn schedule_activity_on_session(
        &self,
        name: impl Into<String>,
        input: impl Into<String>,
        session_id: impl Into<String>,
    ) -> ActivityFuture {
        let loc = std::panic::Location::caller();
        self.activity_at(loc, name.into(), input.into(), Some(session_id.into()), None)
    }

    pub(crate) fn activity_at(
        &self,
        loc: &std::panic::Location<'_>,
        name: String,
        input: String,
        session_id: Option<String>,
        tag: Option<String>,
    ) -> ActivityFuture {
        let bad = Self::bad_identifier("activity name", &name, crate::provider::MAX_NAME_BYTES)
            .or_else(|| self.oversized(&format!("input of activity '{name}'"), &input))
            .or_else(|| {
                let tag = tag.as_deref()?;
                Self::bad_identifier(
                    &format!("tag of activity '{name}'"),
                    tag,
                    crate::provider::MAX_TAG_BYTES,
                )
            });
        if let Some(e) = bad {
            return ActivityFuture(TaskFuture::failed(self.state.clone(), e));
        }
        let id = lock(&self.state).decide(
            |_| EventKind::ActivityScheduled {
                name: name.clone(),
                input: input.clone(),
                call_site: call_site(loc),
                session_id: session_id.clone(),
                tag: tag.clone(),
            },
            |id, _| {
                Some(Action::ScheduleActivity {
                    event_id: id,
                    name: name.clone(),
                    input: input.clone(),
                    session_id: session_id.clone(),
                    tag: tag.clone(),
                })
            },
        );
        ActivityFuture(TaskFuture::new(self.state.clone(), id, TaskKind::Activity))
    }

    /// A durable timer: completes after `delay`, surviving restarts.
    #[track_caller]
    pub fn schedule_timer(&self, delay: Duration) -> TimerFuture {
        self.timer_at(std::panic::Location::caller(), delay)
    }

    pub(crate) fn timer_at(&self, loc: &std::panic::Location<'_>, delay: Duration) -> TimerFuture {
        let delay_ms = delay.as_millis().min(u64::MAX as u128) as u64;
        let mut st = lock(&self.state);
        let fire_at_ms = st.env().now_ms.saturating_add(delay_ms);
        let id = st.decide(
            |_| EventKind::TimerCreated { delay_ms, fire_at_ms, call_site: call_site(loc) },
            |id, _| Some(Action::CreateTimer { event_id: id, fire_at_ms }),
        );
        drop(st);
        TimerFuture(TaskFuture::new(self.state.clone(), id, TaskKind::Timer))
    }

    /// Waits for an external event raised with [`crate::Client::raise_event`].
    ///
    /// Events of a name go to its waits first come, first served: a raised event goes to the
    /// oldest wait still waiting, or is kept for the next wait made. An event is consumed
    /// only when the code receives it: dropping the future first (it lost a
    /// [`select2`](Self::select2), say) gives up its place, and the next wait of that name
    /// receives the event instead (see the orchestration guide, "External events").
    #[track_caller]
    pub fn schedule_wait(&self, name: impl Into<String>) -> EventFuture {
        let loc = std::panic::Location::caller();
        let name = name.into();
        let mut st = lock(&self.state);
        let id = st.decide(
            |_| EventKind::ExternalSubscribed { name: name.clone(), call_site: call_site(loc) },
            |_, _| None,
        );
        if let Some(id) = id {
            st.subscribe(id, WaitKey::Event(name.clone()));
        }
        drop(st);
        EventFuture(TaskFuture::new(self.state.clone(), id, TaskKind::External))
    }

    /// Starts a child orchestration (instance id derived from this instance) and returns a
    /// future of its output. Dropping the future cancels the child.
    #[track_caller]
    pub fn schedule_sub_orchestration(
        &self,
        name: impl Into<String>,
        input: impl Into<String>,
    ) -> SubOrchestrationFuture {
        self.sub_orchestration(std::panic::Location::caller(), name.into(), None, None, input.into())
    }

    /// Like [`schedule_sub_orchestration`](Self::schedule_sub_orchestration) with an explicit
    /// child instance id.
    #[track_caller]
    pub fn schedule_sub_orchestration_with_id(
        &self,
        name: impl Into<String>,
        instance: impl Into<String>,
        input: impl Into<String>,
    ) -> SubOrchestrationFuture {
        let loc = std::panic::Location::caller();
        self.sub_orchestration(loc, name.into(), None, Some(instance.into()), input.into())
    }

    /// Starts a child orchestration at a specific version (`None`: the child's policy
    /// decides) and optional explicit instance id.
    #[track_caller]
    pub fn schedule_sub_orchestration_versioned(
        &self,
        name: impl Into<String>,
        version: Option<String>,
        instance: Option<String>,
        input: impl Into<String>,
    ) -> SubOrchestrationFuture {
        let loc = std::panic::Location::caller();
        self.sub_orchestration(loc, name.into(), version, instance, input.into())
    }

    fn sub_orchestration(
        &self,
        loc: &std::panic::Location<'_>,
        name: String,
        version: Option<String>,
        instance: Option<String>,
        input: String,
    ) -> SubOrchestrationFuture {
        let bad = Self::bad_identifier("sub-orchestration name", &name, crate::provider::MAX_NAME_BYTES)
            .or_else(|| {
                let id = instance.as_deref()?;
                Self::bad_identifier(
                    "sub-orchestration instance id",
                    id,
                    crate::provider::MAX_INSTANCE_ID_BYTES,
                )
            })
            .or_else(|| self.oversized(&format!("input of sub-orchestration '{name}'"), &input));
        if let Some(e) = bad {
            return SubOrchestrationFuture(TaskFuture::failed(self.state.clone(), e));
        }
        let mut st = lock(&self.state);
        let (parent, exec) = (st.instance().to_string(), st.execution_id());
        let child_id = |id: u64| instance.clone().unwrap_or_else(|| format!("{parent}::sub::{exec}.{id}"));
        let id = st.decide(
            |id| EventKind::SubOrchestrationScheduled {
                name: name.clone(),
                version: version.clone(),
                instance: child_id(id),
                input: input.clone(),
                call_site: call_site(loc),
            },
            |id, _| {
                Some(Action::StartSubOrchestration {
                    event_id: id,
                    name: name.clone(),
                    version: version.clone(),
                    instance: child_id(id),
                    input: input.clone(),
                })
            },
        );
        if let Some(id) = id {
            st.register_child(id, child_id(id));
        }
        drop(st);
        SubOrchestrationFuture(TaskFuture::new(self.state.clone(), id, TaskKind::SubOrchestration))
    }

    /// Starts an independent (detached) orchestration. Its outcome is not reported back.
    #[track_caller]
    pub fn schedule_orchestration(
        &self,
        name: impl Into<String>,
        instance: impl Into<String>,
        input: impl Into<String>,
    ) {
        let loc = std::panic::Location::caller();
        self.detached(loc, name.into(), None, instance.into(), input.into())
    }

    /// Starts an independent orchestration at a specific version.
    #[track_caller]
    pub fn schedule_orchestration_versioned(
        &self,
        name: impl Into<String>,
        version: impl Into<String>,
        instance: impl Into<String>,
        input: impl Into<String>,
    ) {
        let loc = std::panic::Location::caller();
        self.detached(loc, name.into(), Some(version.into()), instance.into(), input.into())
    }

    fn detached(
        &self,
        loc: &std::panic::Location<'_>,
        name: String,
        version: Option<String>,
        instance: String,
        input: String,
    ) {
        lock(&self.state).decide(
            |_| EventKind::OrchestrationChained {
                name: name.clone(),
                version: version.clone(),
                instance: instance.clone(),
                input: input.clone(),
                call_site: call_site(loc),
            },
            |_, _| {
                Some(Action::StartDetached {
                    name: name.clone(),
                    version: version.clone(),
                    instance: instance.clone(),
                    input: input.clone(),
                })
            },
        );
    }

    /// Ends this execution and starts a new one of the same instance and version with
    /// `input` and an empty history. Return from the orchestration right after calling it;
    /// whatever it returns is ignored.
    pub fn continue_as_new(&self, input: impl Into<String>) {
        let mut st = lock(&self.state);
        let version = st.version().to_string();
        st.set_continue_as_new(input.into(), version);
    }

    /// Like [`continue_as_new`](Self::continue_as_new), moving the instance to `version`.
    pub fn continue_as_new_versioned(&self, version: impl Into<String>, input: impl Into<String>) {
        lock(&self.state).set_continue_as_new(input.into(), version.into());
    }

    fn system_call(&self, loc: &std::panic::Location<'_>, op: &str, fresh: String) -> SystemCallFuture {
        let mut st = lock(&self.state);
        let id = st.decide(
            |_| EventKind::SystemCall { op: op.to_string(), value: fresh.clone(), call_site: call_site(loc) },
            |_, _| None,
        );
        let value = id.and_then(|id| match &st.history()[(id - 1) as usize].kind {
            EventKind::SystemCall { value, .. } => Some((id, value.clone())),
            _ => None,
        });
        SystemCallFuture::new(value)
    }

    /// A new GUID, recorded in history so replays see the same value.
    #[track_caller]
    pub fn system_new_guid(&self) -> SystemCallFuture {
        let loc = std::panic::Location::caller();
        self.system_call(loc, "guid", uuid::Uuid::new_v4().to_string())
    }

    /// The current time, recorded in history so replays see the same value.
    #[track_caller]
    pub fn utc_now(&self) -> UtcNowFuture {
        let loc = std::panic::Location::caller();
        let now = lock(&self.state).env().now_ms;
        UtcNowFuture(self.system_call(loc, "utc_now", now.to_string()))
    }

    /// Resolves to whichever future completed first in history order; the other is dropped
    /// (and so cancelled).
    pub fn select2<A: DurableFuture, B: DurableFuture>(&self, a: A, b: B) -> Select2<A, B> {
        Select2 { a: Some(a), b: Some(b) }
    }

    /// Resolves to `(index, output)` of the future that completed first in history order; the
    /// others are dropped (and so cancelled).
    pub fn select<F: DurableFuture>(&self, futures: Vec<F>) -> Select<F> {
        Select { futures }
    }

    /// Resolves when all futures completed, with their outputs in the given order.
    pub fn join<F: DurableFuture>(&self, futures: Vec<F>) -> Join<F> {
        let n = futures.len();
        Join { futures: futures.into_iter().map(Some).collect(), outputs: (0..n).map(|_| None).collect() }
    }

    /// Resolves when both futures completed.
    pub fn join2<A: DurableFuture, B: DurableFuture>(&self, a: A, b: B) -> Join2<A, B> {
        Join2 { a, b, ra: None, rb: None }
    }

    /// Like [`select2`](Self::select2) over three futures of any output types.
    pub fn select3<A: DurableFuture, B: DurableFuture, C: DurableFuture>(
        &self,
        a: A,
        b: B,
        c: C,
    ) -> Select3<A, B, C> {
        Select3 { a: Some(a), b: Some(b), c: Some(c) }
    }

    /// Like [`join2`](Self::join2) over three futures of any output types.
    pub fn join3<A: DurableFuture, B: DurableFuture, C: DurableFuture>(
        &self,
        a: A,
        b: B,
        c: C,
    ) -> Join3<A, B, C> {
        Join3 { a: Some(a), b: Some(b), c: Some(c), ra: None, rb: None, rc: None }
    }

    /// Sets the custom status shown by [`crate::Client::get_orchestration_status`].
    ///
    /// A status larger than the runtime's `max_payload_bytes` fails the execution with a
    /// configuration error naming its size and the limit; the stored status stays as it was.
    pub fn set_custom_status(&self, status: impl Into<String>) {
        lock(&self.state).set_custom_status(Some(status.into()));
    }

    /// Clears the custom status.
    pub fn clear_custom_status(&self) {
        lock(&self.state).set_custom_status(None);
    }

    /// The custom status as last set by this execution.
    pub fn custom_status(&self) -> Option<String> {
        lock(&self.state).custom_status().flatten()
    }

    fn trace(&self, level: tracing::Level, message: &str) {
        let st = lock(&self.state);
        if st.is_replaying() {
            return;
        }
        let (instance, exec, name) = (st.instance().to_string(), st.execution_id(), st.name().to_string());
        drop(st);
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "duroxide::orchestration", instance = %instance, execution_id = exec, orchestration = %name, "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "duroxide::orchestration", instance = %instance, execution_id = exec, orchestration = %name, "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "duroxide::orchestration", instance = %instance, execution_id = exec, orchestration = %name, "{message}")
            }
            _ => {
                tracing::debug!(target: "duroxide::orchestration", instance = %instance, execution_id = exec, orchestration = %name, "{message}")
            }
        }
    }

    /// Logs at INFO, only when not replaying.
    pub fn trace_info(&self, message: impl AsRef<str>) {
        self.trace(tracing::Level::INFO, message.as_ref())
    }
    /// Logs at WARN, only when not replaying.
    pub fn trace_warn(&self, message: impl AsRef<str>) {
        self.trace(tracing::Level::WARN, message.as_ref())
    }
    /// Logs at ERROR, only when not replaying.
    pub fn trace_error(&self, message: impl AsRef<str>) {
        self.trace(tracing::Level::ERROR, message.as_ref())
    }
    /// Logs at DEBUG, only when not replaying.
    pub fn trace_debug(&self, message: impl AsRef<str>) {
        self.trace(tracing::Level::DEBUG, message.as_ref())
    }
}
