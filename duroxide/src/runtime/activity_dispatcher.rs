//! The activity dispatcher: the worker loops that take locked activities (handed over by
//! turns, fetched ahead, or fetched from the store) and run them, and
//! [`EagerActivities`], the backlog of activities locked for this node's workers.
//!
//! Running one activity lives in `activity_run`; keeping its lock lives in `lock_renewal`.

use super::Inner;
use super::activity_run::run_activity;
use super::backlog::Backlog;
use super::backoff::ErrorBackoff;
use super::lock_renewal::{HeldActivity, WaitingLock};
use super::options::RuntimeOptions;
use super::shutdown::Shutdown;
use crate::provider::{Notifiers, ProviderError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A worker busy with handed-over activities still fetches from the store every this many.
const STORE_LOOK_EVERY: u32 = 8;

pub(super) async fn worker_loop(inner: Arc<Inner>, mut shutdown: Shutdown) {
    let fallback = Arc::new(Notifiers::default());
    let notifiers = inner.notifiers.clone().unwrap_or(fallback);
    let mut error_backoff = ErrorBackoff::default();
    // Activities run since this worker last looked at the store.
    let mut since_store = 0u32;
    while !shutdown.is_shutdown() {
        let notified = notifiers.worker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Handed-over and fetched-ahead work first, then the store. A held item whose
        // renewal ended lost its lock (another worker has it) or was cancelled: it is
        // dropped here without running.
        let held = match inner.eager.pop() {
            Some(waiting) => waiting.still_locked(&inner).await,
            None => None,
        };
        let next = match held {
            Some(item) => Ok(Some(item)),
            None => fetch_activities(&inner, Busy::Wait).await,
        };
        match next {
            Ok(Some(item)) => {
                error_backoff.reset();
                run_and_fetch_ahead(&inner, item, &mut since_store).await;
            }
            Ok(None) => {
                error_backoff.reset();
                // Idle: wait for work in the store, or for a turn of this node to hand
                // over an activity it locked for an idle worker.
                let handed = inner.eager.notified();
                tokio::pin!(handed);
                handed.as_mut().enable();
                if !inner.eager.mark_idle() {
                    continue; // an activity was handed over meanwhile
                }
                let go_on = tokio::select! {
                    _ = handed => true,
                    go_on = shutdown.idle(notified, inner.options.dispatcher_poll_interval) => go_on,
                };
                inner.eager.unmark_idle();
                if !go_on {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching activity work failed; retrying");
                if !error_backoff.wait(notified, &mut shutdown).await {
                    break;
                }
            }
        }
    }
    release_unstarted(&inner).await;
}

/// Runs an activity and, meanwhile, fetches a next one from the store, unless handed-over
/// work is waiting; even then every few activities, so the store's queue (work from other
/// nodes, retries) is never starved by a steady local stream.
///
/// What the look-ahead takes goes to the node's backlog at once, not to this worker: if
/// the running activity is long, an idle worker takes it instead of it waiting behind one
/// that may run for hours (its lock is renewed all the while it waits).
async fn run_and_fetch_ahead(inner: &Arc<Inner>, item: HeldActivity, since_store: &mut u32) {
    *since_store += 1;
    let look = inner.eager.is_empty() || *since_store >= STORE_LOOK_EVERY;
    if look {
        *since_store = 0;
    }
    let fetch_ahead = async {
        if !look {
            return;
        }
        match fetch_activities(inner, Busy::Skip).await {
            Ok(Some(next)) => inner.eager.push(vec![next]),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "fetching ahead failed"),
        }
    };
    inner.eager.started();
    tokio::join!(run_activity(inner, item), fetch_ahead);
}

/// Shutting down: hands fetched-ahead and handed-over items back at once instead of letting
/// their locks expire.
async fn release_unstarted(inner: &Inner) {
    let unstarted: Vec<HeldActivity> = std::iter::from_fn(|| inner.eager.pop()).collect();
    for held in unstarted {
        let item = held.release();
        if let Err(e) = inner.store.abandon_work_item(&item.lock_token, None).await {
            tracing::debug!(error = %e, "releasing an unstarted activity failed; its lock will expire");
        }
    }
}

/// What a worker loop does when another loop of its node is fetching already.
#[derive(Clone, Copy)]
enum Busy {
    /// Wait for that fetch and take nothing from the store: its batch lands in the backlog,
    /// which the caller reads next (`Ok(None)` tells it to look there).
    Wait,
    /// Return at once with nothing (a fetch ahead: the other fetch covers it).
    Skip,
}

/// Fetches an activity for the calling worker and, in the same store call, as many more as
/// the node's backlog of handed-over work has room for (queued for the other workers).
///
/// One fetch at a time per node: when new work is announced every idle worker loop wakes,
/// and without the gate each would race the others to the store for the same rows (on
/// SQLite each a write transaction on the one writer connection, mostly returning nothing).
/// With it, the first loop fetches a batch for all and the rest take from the backlog.
///
/// A loop that waited takes nothing from the store and goes back to its idle wait, whose
/// notice it armed before it came here, so nothing announced is left behind: work announced
/// after that wakes it again at once, and work announced before it either was visible to
/// the fetch it waited for or was announced after that fetch's loop armed its own notice,
/// which then sends that loop back to the store (through its next fetch or its fetch ahead).
async fn fetch_activities(inner: &Inner, busy: Busy) -> Result<Option<HeldActivity>, ProviderError> {
    let _gate = match inner.work_fetch.try_lock() {
        Ok(gate) => gate,
        Err(_) => {
            if let Busy::Wait = busy {
                drop(inner.work_fetch.lock().await);
            }
            return Ok(None);
        }
    };
    let max = 1 + inner.eager.room(eager_backlog(&inner.options));
    let items = inner.store.fetch_work_items(inner.options.activity_lock_timeout, &inner.worker, max).await?;
    let mut held = items.into_iter().map(|item| HeldActivity::hold(inner, item));
    let first = held.next();
    inner.eager.push(held.collect());
    Ok(first)
}

/// Most activities locked for this node's workers and not started yet (the pace of the
/// workers may allow fewer, see `WorkerPace::limit`).
pub(super) fn eager_backlog(options: &RuntimeOptions) -> usize {
    4 * options.worker_concurrency.max(1)
}

/// How long handed-over activities are expected to wait for a worker of this node at most:
/// the backlog holds no more than the workers start in this time at their recent pace.
/// Short activities then flow through the backlog; long ones are only handed to idle
/// workers and otherwise stay in the store, for whichever node is free first.
const BACKLOG_WAIT_MS: u64 = 50;

/// Activities a turn stored already locked for this node's workers ("eager" dispatch), and
/// those a fetch locked for the other workers: a turn reserves room in the bounded backlog
/// (see `WorkerPace::limit`), and hands them over after its commit. A worker takes them
/// before fetching from the store (and still looks at the store every few activities, so
/// work from elsewhere is not starved); on shutdown the unstarted ones are released.
pub(super) type EagerActivities = Backlog<HeldActivity, WorkerPace>;

/// The workers' bookkeeping the backlog's size follows.
#[derive(Default)]
pub(super) struct WorkerPace {
    idle: usize,
    reserved: usize,
    /// Activities started in the current and the previous one-second window.
    window_start: Option<Instant>,
    started_now: u64,
    started_before: u64,
}

impl WorkerPace {
    fn roll(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            self.started_before = if elapsed >= Duration::from_secs(2) { 0 } else { self.started_now };
            self.started_now = 0;
            self.window_start = Some(now);
        }
    }

    /// The backlog allowed now: what the workers start in `BACKLOG_WAIT_MS` at their recent
    /// pace, at most `cap`, and never less than the idle workers.
    fn limit(&mut self, cap: usize) -> usize {
        self.roll(Instant::now());
        let per_s = self.started_now.max(self.started_before);
        let by_pace = usize::try_from(per_s * BACKLOG_WAIT_MS / 1000).unwrap_or(usize::MAX);
        by_pace.min(cap).max(self.idle)
    }
}

impl Backlog<HeldActivity, WorkerPace> {
    /// Room left in the backlog (of at most `cap`, see `WorkerPace::limit`).
    pub(super) fn room(&self, cap: usize) -> usize {
        let mut s = self.lock();
        let waiting = s.extra.reserved + s.queue.len();
        s.extra.limit(cap).saturating_sub(waiting)
    }

    /// Reserves room for up to `wanted` activities in a backlog of at most `cap` (see
    /// `WorkerPace::limit`); returns how many.
    pub(super) fn reserve(&self, wanted: usize, cap: usize) -> usize {
        if wanted == 0 {
            return 0;
        }
        let mut s = self.lock();
        let waiting = s.extra.reserved + s.queue.len();
        let free = s.extra.limit(cap).saturating_sub(waiting);
        let n = free.min(wanted);
        s.extra.reserved += n;
        n
    }

    /// Ends a reservation of `reserved` workers, queueing the items that were committed
    /// (and waking a worker for each).
    pub(super) fn hand_over(&self, reserved: usize, items: Vec<HeldActivity>) {
        if reserved > 0 {
            self.push_with(items, |pace| pace.reserved = pace.reserved.saturating_sub(reserved));
        }
    }

    /// Counts an activity a worker of this node started (the pace `limit` goes by).
    pub(super) fn started(&self) {
        let mut s = self.lock();
        s.extra.roll(Instant::now());
        s.extra.started_now += 1;
    }

    /// Counts the caller as idle, unless an item is queued (then returns false).
    pub(super) fn mark_idle(&self) -> bool {
        let mut s = self.lock();
        if !s.queue.is_empty() {
            return false;
        }
        s.extra.idle += 1;
        true
    }

    pub(super) fn unmark_idle(&self) {
        let mut s = self.lock();
        s.extra.idle = s.extra.idle.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_follows_the_workers_pace_within_its_bounds() {
        let mut s = WorkerPace::default();
        // No pace yet: only idle workers are handed work.
        assert_eq!(s.limit(32), 0);
        s.idle = 3;
        assert_eq!(s.limit(32), 3);
        s.idle = 0;
        // 100 starts a second: 5 may wait (50 ms of work).
        s.started_now = 100;
        assert_eq!(s.limit(32), 5);
        // A fast pace is capped.
        s.started_now = 100_000;
        assert_eq!(s.limit(32), 32);
        // The previous window counts too, until it is two windows old.
        s.started_now = 0;
        s.started_before = 200;
        assert_eq!(s.limit(32), 10);
        s.window_start = Some(Instant::now() - Duration::from_millis(2500));
        assert_eq!(s.limit(32), 0);
    }
}
