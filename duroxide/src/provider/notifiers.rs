//! In-process wake-ups ([`Notifiers`]) a store hands to the runtime, and the notice that an
//! instance finished ([`Finished`]). Not here: PostgreSQL's LISTEN/NOTIFY relay, which lives
//! in the PostgreSQL store and feeds these.

use super::InstanceRecord;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// In-process wake-ups, so dispatchers in the same process react to new work at once
/// instead of waiting for the next poll.
#[derive(Debug)]
pub struct Notifiers {
    /// New orchestration messages are visible. Stores wake one idle dispatcher per notice
    /// (`notify_one`, through [`wake_orchestrator_at`](Self::wake_orchestrator_at)): its
    /// fetch takes instances for the node's other idle dispatchers too, so waking them all
    /// would only send the rest to the store for nothing.
    pub orchestrator: Notify,
    /// New activity work is visible.
    pub worker: Notify,
    /// An instance reached a terminal state.
    pub finished: broadcast::Sender<Finished>,
    /// A committed turn changed an instance's custom status (the instance id; empty: some
    /// instance, read the store again). PostgreSQL relays it to other processes; SQLite,
    /// a single process's store, needs no relay.
    pub status_changed: broadcast::Sender<String>,
    /// Whether every writer's notices reach this process (see
    /// [`seeing_every_writer`](Self::seeing_every_writer)).
    sees_every_writer: bool,
}

/// Notice that an instance reached a terminal state (see [`Notifiers::finished`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The instance id.
    pub instance: String,
    /// The instance as the finishing turn committed it, when the commit happened in this
    /// process; `None` for a notice relayed from another process (read the store then).
    pub record: Option<Arc<InstanceRecord>>,
}

impl Finished {
    /// A notice without the record (relayed from another process).
    pub fn id_only(instance: impl Into<String>) -> Self {
        Self { instance: instance.into(), record: None }
    }

    /// A notice that some instance finished, which one unknown (relayed from another
    /// process that could not name it); every waiter should read the store again.
    pub fn unknown() -> Self {
        Self { instance: String::new(), record: None }
    }

    /// Whether this notice may be about `instance` (it names it, or names none).
    pub fn concerns(&self, instance: &str) -> bool {
        self.instance.is_empty() || self.instance == instance
    }
}

impl Default for Notifiers {
    fn default() -> Self {
        Self {
            orchestrator: Notify::new(),
            worker: Notify::new(),
            finished: broadcast::channel(1024).0,
            status_changed: broadcast::channel(1024).0,
            sees_every_writer: false,
        }
    }
}

impl Notifiers {
    /// Notifiers of a store whose notices reach this process from every process that
    /// writes to it: PostgreSQL with its listener, or a store no other process can open
    /// (SQLite in memory). Clients then wait for notices and read the store again only on
    /// one, or once a second as a safety net, instead of polling with a backoff. Such a
    /// store calls [`notices_missed`](Self::notices_missed) whenever notices may have been
    /// lost (a listener that reconnected).
    pub fn seeing_every_writer() -> Self {
        Self { sees_every_writer: true, ..Self::default() }
    }

    /// Whether every writer's notices reach this process (see
    /// [`seeing_every_writer`](Self::seeing_every_writer)).
    pub fn sees_every_writer(&self) -> bool {
        self.sees_every_writer
    }

    /// Notices may have been lost: wakes every dispatcher and tells every waiting client to
    /// read the store again.
    pub fn notices_missed(&self) {
        self.orchestrator.notify_waiters();
        self.worker.notify_waiters();
        let _ = self.finished.send(Finished::unknown());
        let _ = self.status_changed.send(String::new());
    }

    /// Wakes one orchestration dispatcher now, or at `visible_at_ms` for delayed messages.
    /// With none idle, the first to finish its turn fetches again at once.
    pub fn wake_orchestrator_at(self: &Arc<Self>, visible_at_ms: Option<u64>) {
        let delay = visible_at_ms.map(|t| t.saturating_sub(crate::now_ms())).unwrap_or(0);
        if delay == 0 {
            self.orchestrator.notify_one();
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let me = Arc::downgrade(self);
            handle.spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if let Some(me) = me.upgrade() {
                    me.orchestrator.notify_one();
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_notices_send_every_waiter_back_to_the_store() {
        let n = Notifiers::seeing_every_writer();
        let mut finished = n.finished.subscribe();
        let mut status = n.status_changed.subscribe();
        n.notices_missed();
        assert!(finished.try_recv().unwrap().concerns("any instance"));
        assert_eq!(status.try_recv().unwrap(), "", "an empty id: some instance, read again");
    }
}
