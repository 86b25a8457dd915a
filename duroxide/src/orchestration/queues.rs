//! Event queues from the orchestration's side: [`OrchestrationContext::dequeue_event`].
//!
//! A queue is a named FIFO of messages sent with
//! [`Client::enqueue_event`](crate::Client::enqueue_event). Each message is recorded in
//! history (`QueueMessageReceived`) when a turn takes it in, and goes to the oldest open
//! dequeue of its queue, or waits for the next one. Unlike raised events, messages the code
//! has not received when it continues as new are carried into the next execution, in
//! order, so a continue-as-new loop consuming a stream loses and duplicates nothing. See
//! `docs/event-queues.md`.

use super::OrchestrationContext;
use super::context::call_site;
use super::futures::{EventFuture, TaskFuture};
use super::state::{WaitKey, lock};
use crate::history::{EventKind, TaskKind};

impl OrchestrationContext {
    /// Waits for the next message of event queue `queue`, in the order the messages were
    /// enqueued.
    ///
    /// A message is consumed only when the code receives it (the future returns it). A
    /// dequeue dropped before that (it lost a [`select2`](Self::select2), say) gives up its
    /// place and hands its message, if it had been given one, to the next dequeue of the
    /// queue: a losing dequeue never eats a message.
    ///
    /// ```no_run
    /// # use duroxide::{OrchestrationContext, OrchestrationError};
    /// # async fn demo(ctx: OrchestrationContext, total: u64) -> Result<String, OrchestrationError> {
    /// let command = ctx.dequeue_event("commands").await;
    /// let total = total + command.len() as u64;
    /// ctx.continue_as_new(total.to_string()); // unread commands are carried over
    /// Ok(String::new())
    /// # }
    /// ```
    #[track_caller]
    pub fn dequeue_event(&self, queue: impl Into<String>) -> EventFuture {
        let loc = std::panic::Location::caller();
        let queue = queue.into();
        let mut st = lock(&self.state);
        let id = st.decide(
            |_| EventKind::QueueSubscribed { queue: queue.clone(), call_site: call_site(loc) },
            |_, _| None,
        );
        if let Some(id) = id {
            st.subscribe(id, WaitKey::Queue(queue));
        }
        drop(st);
        EventFuture(TaskFuture::new(self.state.clone(), id, TaskKind::External))
    }
}
