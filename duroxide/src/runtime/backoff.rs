//! Waits before retrying: after a failed fetch ([`ErrorBackoff`]) and for an item this node
//! cannot handle yet ([`retry_delay`]).
//!
//! What is retried and when to give up (poison) is decided by the callers.

use super::options::RuntimeOptions;
use super::shutdown::Shutdown;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::futures::Notified;

/// The wait between fetches that failed: doubling from 50 ms up to 5 s, back to the start
/// as soon as the store answers again (with work or without), and cut short by a wake-up
/// (new work in this process) or by shutdown.
pub(super) struct ErrorBackoff {
    next: Duration,
}

impl Default for ErrorBackoff {
    fn default() -> Self {
        ErrorBackoff { next: Self::FIRST }
    }
}

impl ErrorBackoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Waits before the next try. Returns false on shutdown.
    pub(super) async fn wait(&mut self, woken: Pin<&mut Notified<'_>>, shutdown: &mut Shutdown) -> bool {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        shutdown.idle(woken, wait).await
    }
}

/// The delay before an item is offered again after an attempt that did not run it
/// (unreadable history, not registered here): doubling from 100 ms with the attempt, at
/// most `max_unregistered_backoff`.
pub(super) fn retry_delay(attempt: u32, opts: &RuntimeOptions) -> Duration {
    let exp = attempt.saturating_sub(1).min(10);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(opts.max_unregistered_backoff)
}
