//! Durable futures: what scheduling calls on an [`OrchestrationContext`](crate::OrchestrationContext) return.
//!
//! A durable future completes when the replay engine delivers its completion event, never
//! by itself; its place in history ([`DurableFuture::completion_seq`]) is what
//! `select`/`join` order by. Dropping an unfinished future tells the engine the code no
//! longer waits for the work (which cancels activities and sub-orchestrations).

use super::state::{CompletionValue, ExecutionState, lock};
use crate::history::ErrorDetails;
use crate::history::TaskKind;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future whose completion is ordered by history, usable with
/// [`OrchestrationContext::select2`](crate::OrchestrationContext::select2), [`select`](crate::OrchestrationContext::select) and
/// [`join`](crate::OrchestrationContext::join).
pub trait DurableFuture: Future + Unpin + Send {
    /// Position in history of the event that completed this future, once it has completed.
    fn completion_seq(&self) -> Option<u64>;

    /// Lets a future that runs code of its own (a [`Composite`](super::Composite)) make
    /// progress before a combinator reads [`completion_seq`](Self::completion_seq).
    /// Combinators call it on every poll; a scheduled task's future does nothing here, so
    /// asking it does not consume its completion (a queue wait that loses a select keeps
    /// its message for the next wait).
    fn advance(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Transforms the output with `f` when the future completes; the result is still a
    /// durable future, ordered by the same history position, so it can go into
    /// `select`/`join` beside futures of other output types.
    ///
    /// ```no_run
    /// # use duroxide::{DurableFuture, OrchestrationContext};
    /// # async fn demo(ctx: OrchestrationContext) {
    /// let len = ctx.schedule_activity("Fetch", "url").map(|r| r.map(|body| body.len()));
    /// let _bytes = len.await;
    /// # }
    /// ```
    fn map<U, G>(self, f: G) -> Map<Self, G>
    where
        Self: Sized,
        G: FnOnce(Self::Output) -> U + Send + Unpin,
    {
        Map { inner: self, f: Some(f) }
    }
}

/// A durable future whose output is transformed by a function; see [`DurableFuture::map`].
#[must_use = "durable futures do nothing useful unless awaited; dropping one cancels its work"]
pub struct Map<F, G> {
    inner: F,
    f: Option<G>,
}

impl<F, G> std::fmt::Debug for Map<F, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map").finish_non_exhaustive()
    }
}

impl<F, G, U> Future for Map<F, G>
where
    F: DurableFuture,
    G: FnOnce(F::Output) -> U + Send + Unpin,
{
    type Output = U;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<U> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(v) => match this.f.take() {
                Some(f) => Poll::Ready(f(v)),
                // Polled again after completing: like the futures it wraps, it stays pending.
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, G, U> DurableFuture for Map<F, G>
where
    F: DurableFuture,
    G: FnOnce(F::Output) -> U + Send + Unpin,
{
    fn completion_seq(&self) -> Option<u64> {
        self.inner.completion_seq()
    }
    fn advance(&mut self, cx: &mut Context<'_>) {
        self.inner.advance(cx)
    }
}

/// Shared implementation of the scheduled-task futures.
pub(super) struct TaskFuture {
    state: Arc<Mutex<ExecutionState>>,
    /// `None` when scheduling failed (nondeterminism): the future never completes and the
    /// engine fails the instance.
    id: Option<u64>,
    /// An error known at scheduling time (oversized payload).
    immediate: Option<ErrorDetails>,
    done: bool,
}

impl TaskFuture {
    pub(super) fn new(state: Arc<Mutex<ExecutionState>>, id: Option<u64>, kind: TaskKind) -> Self {
        if let Some(id) = id {
            lock(&state).register_task(id, kind);
        }
        Self { state, id, immediate: None, done: false }
    }

    pub(super) fn failed(state: Arc<Mutex<ExecutionState>>, e: ErrorDetails) -> Self {
        Self { state, id: None, immediate: Some(e), done: false }
    }

    pub(super) fn seq(&self) -> Option<u64> {
        if self.immediate.is_some() {
            return Some(0);
        }
        let id = self.id?;
        lock(&self.state).completion(id).map(|c| c.seq)
    }

    pub(super) fn poll_value(&mut self) -> Poll<CompletionValue> {
        if let Some(e) = self.immediate.take() {
            self.done = true;
            return Poll::Ready(CompletionValue::Err(e));
        }
        let Some(id) = self.id else { return Poll::Pending };
        let mut st = lock(&self.state);
        match st.completion(id).cloned() {
            Some(c) => {
                self.done = true;
                st.note_received(id, c.seq);
                Poll::Ready(c.value)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for TaskFuture {
    fn drop(&mut self) {
        if let (false, Some(id)) = (self.done, self.id) {
            lock(&self.state).cancel_task(id, "the orchestration no longer waits for it");
        }
    }
}

fn into_result(v: CompletionValue) -> Result<String, ErrorDetails> {
    match v {
        CompletionValue::Ok(s) => Ok(s),
        CompletionValue::Err(e) => Err(e),
        CompletionValue::Unit => Ok(String::new()),
    }
}

macro_rules! task_future {
    ($(#[$doc:meta])* $name:ident, $out:ty, $map:expr) => {
        $(#[$doc])*
        #[must_use = "durable futures do nothing useful unless awaited; dropping one cancels its work"]
        pub struct $name(pub(super) TaskFuture);

        impl Future for $name {
            type Output = $out;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<$out> {
                self.get_mut().0.poll_value().map($map)
            }
        }

        impl DurableFuture for $name {
            fn completion_seq(&self) -> Option<u64> {
                self.0.seq()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("event_id", &self.0.id).finish()
            }
        }
    };
}

task_future!(
    /// The result of an activity: its output, or why it failed.
    ActivityFuture,
    Result<String, ErrorDetails>,
    into_result
);

impl ActivityFuture {
    /// Routes this activity to the runtimes that serve `tag` (a worker pool, say `"gpu"`;
    /// see `RuntimeOptions::activity_tags`). Call it on the scheduling call itself:
    /// `ctx.schedule_activity("Render", input).with_tag("gpu")`.
    ///
    /// The tag is recorded with the `ActivityScheduled` event and its work item. It is
    /// routing, not part of the decision: when a replay reaches an activity already in
    /// history, the recorded tag stands (the work was queued with it) and a different tag
    /// here is not a nondeterminism error. A tag that no store can take (empty, longer
    /// than [`MAX_TAG_BYTES`](crate::provider::MAX_TAG_BYTES), control characters) fails
    /// the activity with a configuration error, and its work is never queued.
    pub fn with_tag(self, tag: impl Into<String>) -> ActivityFuture {
        let tag = tag.into();
        let Some(id) = self.0.id else { return self };
        let problem = crate::provider::check_identifier(&tag, crate::provider::MAX_TAG_BYTES).err();
        let mut st = lock(&self.0.state);
        let name = st.tag_new_activity(id, &tag, problem.is_none());
        drop(st);
        match (problem, name) {
            (Some(problem), Some(name)) => {
                // Dropping the scheduled future records its cancellation; the work itself
                // was taken out of the turn's actions above, so it is never queued.
                let state = self.0.state.clone();
                drop(self);
                ActivityFuture(TaskFuture::failed(
                    state,
                    ErrorDetails::configuration(format!("tag of activity '{name}' {problem}")),
                ))
            }
            _ => self,
        }
    }
}
task_future!(
    /// Completes when the durable timer fires.
    TimerFuture,
    (),
    |_| ()
);
task_future!(
    /// The payload of an external event.
    EventFuture,
    String,
    |v| into_result(v).unwrap_or_default()
);
task_future!(
    /// The output of a sub-orchestration, or why it failed.
    SubOrchestrationFuture,
    Result<String, ErrorDetails>,
    into_result
);

/// A recorded system value (a GUID). Ready at once.
#[derive(Debug)]
#[must_use = "await the recorded value"]
pub struct SystemCallFuture {
    value: Option<(u64, String)>,
}

impl SystemCallFuture {
    /// `value` is the recorded `(event id, value)`, `None` after a nondeterminism error.
    pub(super) fn new(value: Option<(u64, String)>) -> Self {
        Self { value }
    }
}

impl Future for SystemCallFuture {
    type Output = String;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<String> {
        match &self.value {
            Some((_, v)) => Poll::Ready(v.clone()),
            // Nondeterminism: the engine fails the instance.
            None => Poll::Pending,
        }
    }
}

impl DurableFuture for SystemCallFuture {
    fn completion_seq(&self) -> Option<u64> {
        self.value.as_ref().map(|(id, _)| id - 1)
    }
}

/// The recorded current time. Ready at once.
#[derive(Debug)]
#[must_use = "await the recorded time"]
pub struct UtcNowFuture(pub(super) SystemCallFuture);

impl Future for UtcNowFuture {
    type Output = SystemTime;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SystemTime> {
        Pin::new(&mut self.0).poll(cx).map(|v| {
            let ms = v.parse::<u64>().unwrap_or(0);
            UNIX_EPOCH + Duration::from_millis(ms)
        })
    }
}

impl DurableFuture for UtcNowFuture {
    fn completion_seq(&self) -> Option<u64> {
        self.0.completion_seq()
    }
}
