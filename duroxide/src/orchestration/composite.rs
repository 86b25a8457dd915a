//! [`Composite`]: a multi-step `async` block as a durable future, so it can race other
//! durable futures in `select2`/`select`/`select3`.
//!
//! A composite completes at the history position of the *last* completion its code
//! consumed (the latest activity result, timer, event or queue message it received). A
//! select compares that position with the other contenders' like any other completion, so
//! "two activities in sequence against a deadline" is decided by history order, the same
//! on every replay. The engine polls the orchestration after every single completion it
//! delivers, in history order, so a composite runs its next step at the same point of
//! history whether the turn was replayed or continued from memory.
//!
//! A composite that loses is dropped with whatever it was waiting for: its pending
//! activities get `ActivityCancelRequested`, its sub-orchestrations are cancelled and its
//! waits give their claim back (`ExternalUnsubscribed`), all recorded in history.

use super::OrchestrationContext;
use super::futures::DurableFuture;
use super::state::{ExecutionState, lock};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// A multi-step `async` block usable wherever a durable future is; made by
/// [`OrchestrationContext::composite`].
#[must_use = "durable futures do nothing useful unless awaited; dropping one cancels its work"]
pub struct Composite<F: Future> {
    state: Arc<Mutex<ExecutionState>>,
    future: Option<Pin<Box<F>>>,
    output: Option<F::Output>,
    /// Latest history position consumed by the block so far.
    consumed: u64,
    /// Set when the block finished: the position it completed at.
    completed_at: Option<u64>,
}

impl<F: Future> std::fmt::Debug for Composite<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composite").field("completed_at", &self.completed_at).finish_non_exhaustive()
    }
}

// The block is pinned in its box and the output is never pinned, so moving a composite is
// always fine.
impl<F: Future> Unpin for Composite<F> {}

impl<F: Future + Send> DurableFuture for Composite<F>
where
    F::Output: Send,
{
    fn completion_seq(&self) -> Option<u64> {
        self.completed_at
    }

    fn advance(&mut self, cx: &mut Context<'_>) {
        let Some(future) = self.future.as_mut() else { return };
        lock(&self.state).push_consumed_frame();
        let polled = future.as_mut().poll(cx);
        let consumed = lock(&self.state).pop_consumed_frame();
        self.consumed = self.consumed.max(consumed);
        if let Poll::Ready(v) = polled {
            self.future = None;
            self.output = Some(v);
            self.completed_at = Some(self.consumed);
        }
    }
}

impl<F: Future + Send> Future for Composite<F>
where
    F::Output: Send,
{
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.advance(cx);
        match this.output.take() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

impl OrchestrationContext {
    /// Wraps an `async` block of several durable steps so it can race other durable futures
    /// in a select. It completes at the history position of the last completion it
    /// consumed; the select's winner is the earliest completion in history as always.
    ///
    /// ```no_run
    /// # use duroxide::{Either2, OrchestrationContext, OrchestrationError};
    /// # use std::time::Duration;
    /// # async fn demo(ctx: OrchestrationContext) -> Result<String, OrchestrationError> {
    /// let steps = ctx.composite(async {
    ///     let a = ctx.schedule_activity("Reserve", "sku-1").await?;
    ///     ctx.schedule_activity("Charge", a).await
    /// });
    /// match ctx.select2(steps, ctx.schedule_timer(Duration::from_secs(30))).await {
    ///     Either2::First(receipt) => Ok(receipt?),
    ///     // The pending step was cancelled (ActivityCancelRequested in history).
    ///     Either2::Second(()) => Err(OrchestrationError::application("deadline passed")),
    /// }
    /// # }
    /// ```
    pub fn composite<F: Future + Send>(&self, future: F) -> Composite<F>
    where
        F::Output: Send,
    {
        Composite {
            state: self.state.clone(),
            future: Some(Box::pin(future)),
            output: None,
            consumed: 0,
            completed_at: None,
        }
    }
}
