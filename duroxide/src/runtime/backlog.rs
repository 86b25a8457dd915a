//! [`Backlog`]: items this node has locked for its own dispatchers or workers, waiting for
//! one of them to take them, with one wake-up per item queued.
//!
//! Both backlogs are this type: instances locked for the next turn (`ReadyTurns`, in the
//! orchestration dispatcher) and activities locked for the workers (`EagerActivities`, in
//! the activity dispatcher). How much each may hold is decided there, not here.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A queue of locked items and the wake-ups of the idle takers.
pub(super) struct Backlog<T, S = ()> {
    state: Mutex<BacklogState<T, S>>,
    /// Wakes one idle taker per queued item.
    notify: Notify,
}

/// What is under the backlog's lock.
pub(super) struct BacklogState<T, S> {
    pub(super) queue: VecDeque<T>,
    /// Shutting down: nothing more may be locked for this node.
    pub(super) closed: bool,
    /// The owner's bookkeeping that must change together with the queue.
    pub(super) extra: S,
}

impl<T, S: Default> Default for Backlog<T, S> {
    fn default() -> Self {
        Backlog {
            state: Mutex::new(BacklogState { queue: VecDeque::new(), closed: false, extra: S::default() }),
            notify: Notify::new(),
        }
    }
}

impl<T, S> Backlog<T, S> {
    pub(super) fn lock(&self) -> MutexGuard<'_, BacklogState<T, S>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Completes when an item is queued (enable it before looking at the queue, so a push
    /// in between is not missed).
    pub(super) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// Queues `items` and wakes a taker for each.
    pub(super) fn push(&self, items: Vec<T>) {
        self.push_with(items, |_| {});
    }

    /// Queues `items` after `update` changed the bookkeeping, in the same step, and wakes a
    /// taker for each.
    pub(super) fn push_with(&self, items: Vec<T>, update: impl FnOnce(&mut S)) {
        let n = items.len();
        {
            let mut s = self.lock();
            update(&mut s.extra);
            s.queue.extend(items);
        }
        for _ in 0..n {
            self.notify.notify_one();
        }
    }

    pub(super) fn pop(&self) -> Option<T> {
        self.lock().queue.pop_front()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lock().queue.is_empty()
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
    }
}
