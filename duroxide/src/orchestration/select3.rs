//! Three-way forms of the deterministic combinators: [`Select3`] and [`Join3`], for
//! futures of different output types (`select`/`join` take a `Vec` of one type).
//! Same rules as [`select2`](crate::OrchestrationContext::select2) and
//! [`join2`](crate::OrchestrationContext::join2): the winner is the earliest completion
//! in history, losers are dropped (cancelling their work).

use super::futures::DurableFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Output of [`OrchestrationContext::select3`](crate::OrchestrationContext::select3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Either3<A, B, C> {
    /// The first future won.
    First(A),
    /// The second future won.
    Second(B),
    /// The third future won.
    Third(C),
}

/// Future returned by [`OrchestrationContext::select3`](crate::OrchestrationContext::select3).
#[must_use = "futures do nothing unless awaited"]
pub struct Select3<A, B, C> {
    pub(super) a: Option<A>,
    pub(super) b: Option<B>,
    pub(super) c: Option<C>,
}

impl<A, B, C> Unpin for Select3<A, B, C> {}

fn seq_of<F: DurableFuture>(f: &mut Option<F>, cx: &mut Context<'_>) -> Option<u64> {
    let f = f.as_mut()?;
    f.advance(cx);
    f.completion_seq()
}

fn poll_taken<F: DurableFuture>(slot: &mut Option<F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    match slot.as_mut() {
        Some(f) => Pin::new(f).poll(cx),
        None => Poll::Pending,
    }
}

impl<A: DurableFuture, B: DurableFuture, C: DurableFuture> Future for Select3<A, B, C> {
    type Output = Either3<A::Output, B::Output, C::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let seqs = [seq_of(&mut this.a, cx), seq_of(&mut this.b, cx), seq_of(&mut this.c, cx)];
        // Earliest in history; on a tie (errors known at scheduling time), the first listed.
        let Some((_, winner)) = seqs.iter().enumerate().filter_map(|(i, s)| s.map(|s| (s, i))).min() else {
            return Poll::Pending;
        };
        let out = match winner {
            0 => poll_taken(&mut this.a, cx).map(Either3::First),
            1 => poll_taken(&mut this.b, cx).map(Either3::Second),
            _ => poll_taken(&mut this.c, cx).map(Either3::Third),
        };
        if out.is_ready() {
            // The losers are dropped here, which cancels their work.
            this.a = None;
            this.b = None;
            this.c = None;
        }
        out
    }
}

/// Future returned by [`OrchestrationContext::join3`](crate::OrchestrationContext::join3).
#[must_use = "futures do nothing unless awaited"]
pub struct Join3<A: Future, B: Future, C: Future> {
    pub(super) a: Option<A>,
    pub(super) b: Option<B>,
    pub(super) c: Option<C>,
    pub(super) ra: Option<A::Output>,
    pub(super) rb: Option<B::Output>,
    pub(super) rc: Option<C::Output>,
}

impl<A: Future, B: Future, C: Future> Unpin for Join3<A, B, C> {}

fn poll_into<F: DurableFuture>(slot: &mut Option<F>, out: &mut Option<F::Output>, cx: &mut Context<'_>) {
    if let Some(f) = slot.as_mut()
        && let Poll::Ready(v) = Pin::new(f).poll(cx)
    {
        *out = Some(v);
        *slot = None;
    }
}

impl<A: DurableFuture, B: DurableFuture, C: DurableFuture> Future for Join3<A, B, C> {
    type Output = (A::Output, B::Output, C::Output);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        poll_into(&mut this.a, &mut this.ra, cx);
        poll_into(&mut this.b, &mut this.rb, cx);
        poll_into(&mut this.c, &mut this.rc, cx);
        match (this.ra.take(), this.rb.take(), this.rc.take()) {
            (Some(a), Some(b), Some(c)) => Poll::Ready((a, b, c)),
            (ra, rb, rc) => {
                (this.ra, this.rb, this.rc) = (ra, rb, rc);
                Poll::Pending
            }
        }
    }
}
