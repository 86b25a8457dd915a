//! Shutdown: the signal [`Runtime::shutdown`](super::Runtime::shutdown) sends, and the
//! [`Shutdown`] handle every long-lived loop of the node owns to hear it.
//!
//! The waits a loop does between rounds (poll interval, wake-up, error backoff) go through
//! the handle, so no loop can sleep through a shutdown. Tasks that are aborted rather than
//! stopped (activity runs, lock renewals) do not live here.

use std::pin::Pin;
use std::time::Duration;
use tokio::sync::futures::Notified;
use tokio::sync::watch;

/// The sending side, held by the runtime: one signal stops every loop.
pub(super) struct ShutdownSignal {
    sender: watch::Sender<bool>,
}

impl ShutdownSignal {
    pub(super) fn new() -> Self {
        ShutdownSignal { sender: watch::channel(false).0 }
    }

    /// A handle for one more loop.
    pub(super) fn subscribe(&self) -> Shutdown {
        Shutdown { stopped: false, receiver: self.sender.subscribe() }
    }

    pub(super) fn trigger(&self) {
        let _ = self.sender.send(true);
    }
}

/// A loop's view of the shutdown signal.
pub(super) struct Shutdown {
    /// Set once the signal was received through `recv`, so later checks need no channel.
    stopped: bool,
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    pub(super) fn is_shutdown(&self) -> bool {
        self.stopped || *self.receiver.borrow()
    }

    /// Waits for the signal (or for the runtime to be gone, which means the same).
    pub(super) async fn recv(&mut self) {
        if self.stopped {
            return;
        }
        let _ = self.receiver.changed().await;
        self.stopped = true;
    }

    /// Sleeps for `period`. Returns false if shutdown came first.
    pub(super) async fn sleep(&mut self, period: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(period) => true,
            _ = self.recv() => false,
        }
    }

    /// Waits for a wake-up, for `period`, or for shutdown. Returns false on shutdown.
    pub(super) async fn idle(&mut self, woken: Pin<&mut Notified<'_>>, period: Duration) -> bool {
        tokio::select! {
            _ = woken => true,
            _ = tokio::time::sleep(period) => true,
            _ = self.recv() => false,
        }
    }
}
