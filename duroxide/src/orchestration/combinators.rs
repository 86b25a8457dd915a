//! Deterministic combinators: `select2`/`select` and `join2`/`join` over durable futures.
//!
//! A select resolves to the future whose completion comes first *in history*, never by
//! polling order or wall clock, so replay picks the same winner; the losers are dropped,
//! which cancels their work. Built by [`OrchestrationContext`](crate::OrchestrationContext) methods.
//!
//! Before comparing, a select lets every contender [`advance`](DurableFuture::advance):
//! a [`Composite`](super::Composite) (an `async` block of several steps) runs its code
//! then, and completes at the history position of the last completion it consumed. A
//! scheduled task's future is never polled unless it wins, so a losing queue or event wait
//! keeps its message. The three-way forms are in `select3`.

use super::futures::DurableFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Output of [`OrchestrationContext::select2`](crate::OrchestrationContext::select2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Either2<A, B> {
    /// The first future won.
    First(A),
    /// The second future won.
    Second(B),
}

/// Future returned by [`OrchestrationContext::select2`](crate::OrchestrationContext::select2).
#[must_use = "futures do nothing unless awaited"]
pub struct Select2<A, B> {
    pub(super) a: Option<A>,
    pub(super) b: Option<B>,
}

impl<A: DurableFuture, B: DurableFuture> Future for Select2<A, B> {
    type Output = Either2<A::Output, B::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(a) = self.a.as_mut() {
            a.advance(cx);
        }
        if let Some(b) = self.b.as_mut() {
            b.advance(cx);
        }
        let sa = self.a.as_ref().and_then(|a| a.completion_seq());
        let sb = self.b.as_ref().and_then(|b| b.completion_seq());
        let first = match (sa, sb) {
            (Some(x), Some(y)) => x <= y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Poll::Pending,
        };
        if first {
            let Some(mut a) = self.a.take() else { return Poll::Pending };
            let out = Pin::new(&mut a).poll(cx);
            if let Poll::Ready(v) = out {
                self.b = None;
                return Poll::Ready(Either2::First(v));
            }
            self.a = Some(a);
        } else {
            let Some(mut b) = self.b.take() else { return Poll::Pending };
            let out = Pin::new(&mut b).poll(cx);
            if let Poll::Ready(v) = out {
                self.a = None;
                return Poll::Ready(Either2::Second(v));
            }
            self.b = Some(b);
        }
        Poll::Pending
    }
}

impl<A: DurableFuture, B: DurableFuture> Unpin for Select2<A, B> {}

/// Future returned by [`OrchestrationContext::select`](crate::OrchestrationContext::select).
#[must_use = "futures do nothing unless awaited"]
pub struct Select<F> {
    pub(super) futures: Vec<F>,
}

impl<F: DurableFuture> Future for Select<F> {
    type Output = (usize, F::Output);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for f in self.futures.iter_mut() {
            f.advance(cx);
        }
        let winner =
            self.futures.iter().enumerate().filter_map(|(i, f)| f.completion_seq().map(|s| (s, i))).min();
        let Some((_, i)) = winner else { return Poll::Pending };
        match Pin::new(&mut self.futures[i]).poll(cx) {
            Poll::Ready(v) => {
                // Losers are dropped here, which cancels their work.
                self.futures.clear();
                Poll::Ready((i, v))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Future returned by [`OrchestrationContext::join`](crate::OrchestrationContext::join).
#[must_use = "futures do nothing unless awaited"]
pub struct Join<F: Future> {
    pub(super) futures: Vec<Option<F>>,
    pub(super) outputs: Vec<Option<F::Output>>,
}

impl<F: DurableFuture> Unpin for Join<F> {}

impl<F: DurableFuture> Future for Join<F> {
    type Output = Vec<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for (slot, out) in this.futures.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot
                && let Poll::Ready(v) = Pin::new(f).poll(cx)
            {
                *out = Some(v);
                *slot = None;
            }
        }
        if this.outputs.iter().all(Option::is_some) {
            Poll::Ready(this.outputs.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    }
}

/// Future returned by [`OrchestrationContext::join2`](crate::OrchestrationContext::join2).
#[must_use = "futures do nothing unless awaited"]
pub struct Join2<A: Future, B: Future> {
    pub(super) a: A,
    pub(super) b: B,
    pub(super) ra: Option<A::Output>,
    pub(super) rb: Option<B::Output>,
}

impl<A: DurableFuture, B: DurableFuture> Unpin for Join2<A, B> {}

impl<A: DurableFuture, B: DurableFuture> Future for Join2<A, B> {
    type Output = (A::Output, B::Output);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.ra.is_none()
            && let Poll::Ready(v) = Pin::new(&mut this.a).poll(cx)
        {
            this.ra = Some(v);
        }
        if this.rb.is_none()
            && let Poll::Ready(v) = Pin::new(&mut this.b).poll(cx)
        {
            this.rb = Some(v);
        }
        match (this.ra.take(), this.rb.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (ra, rb) => {
                this.ra = ra;
                this.rb = rb;
                Poll::Pending
            }
        }
    }
}
