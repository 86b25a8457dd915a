//! Sending the cross-process wake-ups (`pg_notify` payloads, see `notify`) after the
//! writes they announce have committed, several commits' worth in one statement.
//!
//! A transaction that calls `pg_notify` takes a lock shared by the whole database when it
//! commits and keeps it until its commit is flushed, so that notices reach listeners in
//! commit order. Every durable write that notified inside its own transaction (starts,
//! turns) therefore waited for the previous one's WAL flush before its own could begin:
//! notifying writers could not share a flush. Sent here instead, in a transaction of their
//! own that commits without waiting for the flush (it writes nothing durable), the lock is
//! held for microseconds, and while one batch is on its way the next gathers.
//!
//! A wake-up only saves the other processes a wait: their dispatchers and workers look at
//! the store every poll interval anyway. So a batch that cannot be sent is logged and
//! dropped, and a process that ends between a commit and its wake-up costs the others at
//! most one poll interval. Client calls (a start, an event, a cancellation) wait for their
//! batch to go out, so a short-lived process such as the command line does not exit first;
//! the runtime's own writes do not wait.

use super::*;
use std::sync::Mutex;
use tokio::sync::{Notify, watch};

/// The queue of wake-ups and the task that sends them.
pub(super) struct Wakeups {
    queue: Mutex<Queue>,
    /// Rung when the queue gains payloads or the store closes.
    kick: Notify,
    /// The last batch number that was sent (or given up on).
    sent: watch::Sender<u64>,
}

#[derive(Default)]
struct Queue {
    /// Payloads waiting, without repeats (a repeated wake-up wakes no one more).
    pending: Vec<String>,
    /// The number of the batch the pending payloads will go in.
    batch: u64,
    closed: bool,
}

/// The batch a posted wake-up goes in; [`Wakeups::sent_through`] waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

impl Wakeups {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue { batch: 1, ..Queue::default() }),
            kick: Notify::new(),
            sent: watch::Sender::new(0),
        })
    }

    /// Queues `payloads` for the sending task; `None` when there is nothing to send.
    pub(super) fn post(&self, payloads: impl IntoIterator<Item = String>) -> Option<Ticket> {
        let ticket = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            for p in payloads {
                if !q.pending.contains(&p) {
                    q.pending.push(p);
                }
            }
            if q.pending.is_empty() {
                return None;
            }
            Ticket(q.batch)
        };
        self.kick.notify_one();
        Some(ticket)
    }

    /// Waits until the batch of `ticket` was sent or given up on, at most `SEND_WAIT`: a
    /// client call never hangs on a wake-up.
    pub(super) async fn sent_through(&self, ticket: Option<Ticket>) {
        const SEND_WAIT: Duration = Duration::from_secs(5);
        let Some(Ticket(batch)) = ticket else { return };
        let mut sent = self.sent.subscribe();
        let _ = tokio::time::timeout(SEND_WAIT, sent.wait_for(|s| *s >= batch)).await;
    }

    /// Asks the sending task to send what is queued and stop.
    pub(super) fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.kick.notify_one();
    }

    /// The next batch to send (numbered), or `None` when closed with nothing left.
    async fn next_batch(&self) -> Option<(u64, Vec<String>)> {
        loop {
            let kicked = self.kick.notified();
            {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if !q.pending.is_empty() {
                    let batch = q.batch;
                    q.batch += 1;
                    return Some((batch, std::mem::take(&mut q.pending)));
                }
                if q.closed {
                    return None;
                }
            }
            kicked.await;
        }
    }

    /// Sends batches on `channel` until closed: one statement each, committed without
    /// waiting for the WAL flush.
    pub(super) async fn run(self: Arc<Self>, pool: PgPool, channel: String) {
        while let Some((batch, payloads)) = self.next_batch().await {
            let sent = sqlx::query(concat!(
                "WITH n AS (SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p) \
                 SELECT (SELECT COUNT(*) FROM n) AS notices, ",
                async_commit!()
            ))
            .bind(&channel)
            .bind(&payloads)
            .execute(&pool)
            .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, wake_ups = payloads.len(), "postgres wake-ups not sent; other processes find the work at their next poll");
            }
            self.sent.send_replace(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_payloads_share_one_place_and_one_batch() {
        let w = Wakeups::new();
        assert_eq!(w.post(Vec::new()), None);
        let a = w.post(["o::me".to_string(), "w".to_string()]);
        let b = w.post(["w".to_string(), "f:x".to_string()]);
        assert_eq!(a, b, "both go in the batch that is gathering");
        let q = w.queue.lock().unwrap();
        assert_eq!(q.pending, ["o::me", "w", "f:x"]);
    }

    #[tokio::test]
    async fn a_batch_taken_for_sending_is_numbered_and_the_next_gathers() {
        let w = Wakeups::new();
        let first = w.post(["w".to_string()]);
        let (n, payloads) = w.next_batch().await.unwrap();
        assert_eq!((Some(Ticket(n)), payloads), (first, vec!["w".to_string()]));
        let second = w.post(["w".to_string()]);
        assert_eq!(second, Some(Ticket(n + 1)), "a payload taken already is queued again");
        w.sent.send_replace(n);
        // The first batch counts as sent; the second does not yet.
        tokio::time::timeout(Duration::from_secs(1), w.sent_through(first)).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(20), w.sent_through(second)).await.is_err());
        w.close();
        assert!(w.next_batch().await.is_some(), "what was queued is still sent after close");
        assert!(w.next_batch().await.is_none());
    }
}
