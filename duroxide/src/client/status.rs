//! Waiting for progress: [`Client::wait_for_status_change`] and the [`StatusChange`] it
//! returns.
//!
//! Every custom status change an orchestration records raises the instance's status
//! version by one (the store counts the turn's `CustomStatusSet` events in the same commit).
//! A waiter names the last version it saw and is woken by the next change. In the process
//! that commits the turn the wake-up is immediate (the store's in-process notifier), and so
//! it is in other processes where the store relays its notices (PostgreSQL); there the
//! client reads the instance row again only on a notice or once a second. Where changes
//! made by other processes send no notice (a shared SQLite file) it re-reads with a bounded
//! backoff (5 ms doubling to 250 ms), one primary-key read each time.

use super::{Client, ClientError, OrchestrationStatus, poll_bounds};
use crate::provider::{InstanceRecord, MAX_INSTANCE_ID_BYTES};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The longest pause between two reads on a store whose notices do not cover every writer.
const MAX_POLL: Duration = Duration::from_millis(250);

/// An instance's custom status at a version, as [`Client::wait_for_status_change`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The status version (how many changes so far); pass it to the next call.
    pub version: u64,
    /// The custom status at that version (`None`: never set, or cleared). Kept when the
    /// instance finishes and carried across continue-as-new.
    pub custom_status: Option<String>,
    /// Where the instance stands (running, or how it ended).
    pub status: OrchestrationStatus,
}

impl StatusChange {
    fn of(record: InstanceRecord) -> Self {
        StatusChange {
            version: record.custom_status_version,
            custom_status: record.custom_status.clone(),
            status: OrchestrationStatus::from_record(Some(record)),
        }
    }
}

impl Client {
    /// Waits until the instance's custom status version is above `last_seen_version` and
    /// returns the new status and version, so a progress view never polls by itself. Start
    /// with `0` (returns at once if the status was ever set).
    ///
    /// Also returns, with the current version, when the instance has finished: no change
    /// can follow. Fails with [`ClientError::NotFound`] for an unknown instance and
    /// [`ClientError::Timeout`] if nothing changed within `timeout`.
    ///
    /// ```no_run
    /// # async fn demo(client: duroxide::Client) -> Result<(), duroxide::ClientError> {
    /// use std::time::Duration;
    /// let mut seen = 0;
    /// loop {
    ///     let change = client.wait_for_status_change("import-7", seen, Duration::from_secs(60)).await?;
    ///     println!("progress: {:?}", change.custom_status);
    ///     if change.status.is_terminal() {
    ///         break;
    ///     }
    ///     seen = change.version;
    /// }
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "duroxide.client", level = "info", skip_all, fields(operation = "wait_for_status_change", instance = %instance))]
    pub async fn wait_for_status_change(
        &self,
        instance: &str,
        last_seen_version: u64,
        timeout: Duration,
    ) -> Result<StatusChange, ClientError> {
        Self::check_id("instance id", instance, MAX_INSTANCE_ID_BYTES)?;
        let start = Instant::now();
        let deadline = start + timeout;
        let notifiers = self.calls.notifiers();
        // Subscribed before the first read, so a change committed in between is not missed.
        let mut changed = notifiers.as_ref().map(|n| n.status_changed.subscribe());
        let mut finished = notifiers.as_ref().map(|n| n.finished.subscribe());
        let (mut poll, max_poll) = poll_bounds(notifiers.as_deref(), MAX_POLL);
        loop {
            let Some(record) = self.calls.get_instance(instance).await? else {
                return Err(ClientError::NotFound(instance.to_string()));
            };
            if record.custom_status_version > last_seen_version || record.state.is_terminal() {
                return Ok(StatusChange::of(record));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout { instance: instance.to_string(), waited: now - start });
            }
            let wait = poll.min(deadline - now);
            let notice = async {
                loop {
                    tokio::select! {
                        Some(id) = recv(&mut changed) => if id.as_deref().is_none_or(|i| i.is_empty() || i == instance) { return },
                        Some(f) = recv(&mut finished) => if f.as_ref().is_none_or(|f| f.concerns(instance)) { return },
                        else => std::future::pending::<()>().await,
                    }
                }
            };
            let _ = tokio::time::timeout(wait, notice).await;
            poll = (poll * 2).min(max_poll);
        }
    }
}

/// The next notice of a channel: `Some(Some(v))`, `Some(None)` when notices were missed
/// (read the store again), `None` when there is no channel or it closed.
async fn recv<T: Clone>(rx: &mut Option<broadcast::Receiver<T>>) -> Option<Option<T>> {
    let r = rx.as_mut()?;
    match r.recv().await {
        Ok(v) => Some(Some(v)),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(None),
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            None
        }
    }
}
