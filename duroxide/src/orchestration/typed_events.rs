//! Typed forms of events, queues and continue-as-new, so orchestration code never
//! serialises by hand: [`OrchestrationContext::schedule_wait_typed`],
//! [`OrchestrationContext::dequeue_event_typed`],
//! [`OrchestrationContext::continue_as_new_typed`]. Payloads are JSON (serde); a payload
//! that does not decode is an error value naming the event or queue and the expected type,
//! never a panic. The client side is `Client::raise_event_typed` / `enqueue_event_typed`.

use super::OrchestrationContext;
use super::futures::{DurableFuture, EventFuture};
use crate::error::OrchestrationError;
use crate::history::ErrorDetails;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::type_name;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// An event or queue message decoded as `T`; returned by
/// [`OrchestrationContext::schedule_wait_typed`] and
/// [`OrchestrationContext::dequeue_event_typed`]. A durable future like the wait it wraps.
#[must_use = "durable futures do nothing useful unless awaited; dropping one cancels its work"]
pub struct TypedEventFuture<T> {
    inner: EventFuture,
    /// `event 'name'` or `queue 'name'`, for decode errors.
    what: String,
    _payload: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedEventFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedEventFuture")
            .field("what", &self.what)
            .field("payload", &type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Future for TypedEventFuture<T> {
    type Output = Result<T, ErrorDetails>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll(cx).map(|raw| {
            serde_json::from_str(&raw).map_err(|e| {
                ErrorDetails::configuration(format!(
                    "the payload of {} does not decode as `{}`: {e}",
                    this.what,
                    type_name::<T>()
                ))
            })
        })
    }
}

impl<T: DeserializeOwned> DurableFuture for TypedEventFuture<T> {
    fn completion_seq(&self) -> Option<u64> {
        self.inner.completion_seq()
    }
}

impl OrchestrationContext {
    /// [`schedule_wait`](Self::schedule_wait) with the payload decoded from JSON as `T`
    /// (what [`Client::raise_event_typed`](crate::Client::raise_event_typed) sends).
    #[track_caller]
    pub fn schedule_wait_typed<T: DeserializeOwned>(&self, name: impl Into<String>) -> TypedEventFuture<T> {
        let name = name.into();
        let what = format!("event '{name}'");
        TypedEventFuture { inner: self.schedule_wait(name), what, _payload: PhantomData }
    }

    /// [`dequeue_event`](Self::dequeue_event) with the message decoded from JSON as `T`
    /// (what [`Client::enqueue_event_typed`](crate::Client::enqueue_event_typed) sends).
    #[track_caller]
    pub fn dequeue_event_typed<T: DeserializeOwned>(&self, queue: impl Into<String>) -> TypedEventFuture<T> {
        let queue = queue.into();
        let what = format!("queue '{queue}'");
        TypedEventFuture { inner: self.dequeue_event(queue), what, _payload: PhantomData }
    }

    /// [`continue_as_new`](Self::continue_as_new) with the next execution's input encoded as
    /// JSON. Fails (continuing nothing) when `input` cannot be encoded.
    pub fn continue_as_new_typed<T: Serialize>(&self, input: &T) -> Result<(), OrchestrationError> {
        let json = serde_json::to_string(input).map_err(|e| {
            OrchestrationError::from(ErrorDetails::configuration(format!(
                "could not encode the continue-as-new input (`{}`): {e}",
                type_name::<T>()
            )))
        })?;
        self.continue_as_new(json);
        Ok(())
    }
}
