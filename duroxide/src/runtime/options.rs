//! [`RuntimeOptions`]: the settings a node runs with, and their defaults.
//!
//! Only settings live here; the delays derived from them live with the code that waits.

use super::clock::{Clock, SystemClock};
use crate::provider::{SemverRange, TagFilter};
use std::sync::Arc;
use std::time::Duration;

/// Runtime settings. Construct with struct-update syntax:
///
/// ```
/// use duroxide::RuntimeOptions;
/// let opts = RuntimeOptions { max_attempts: 5, ..Default::default() };
/// assert_eq!(opts.max_attempts, 5);
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Orchestration turns run concurrently (on different instances). Also how many
    /// instances this node may hold locked for its next turns (locked by a completing
    /// activity or fetched several at once) before a dispatcher is free to run them.
    /// On PostgreSQL, where each turn waits for its commit's flush on the server, more
    /// turn slots (with about twice as many workers) let commits share flushes: see
    /// "Concurrency" in docs/providers.md.
    pub orchestration_concurrency: usize,
    /// Activities run concurrently (0: none; an orchestration-only node, as with
    /// `activity_tags: TagFilter::None`). A node also holds some activities locked for its own
    /// workers before they start (handed over by its turns or fetched several at once): at
    /// most what its workers start in about 50 ms at their recent pace, never more than 4
    /// per worker, and otherwise only as many as workers are idle.
    pub worker_concurrency: usize,
    /// How often idle dispatchers look for work written by other processes and for due
    /// timers. Work enqueued in this process wakes them at once.
    pub dispatcher_poll_interval: Duration,
    /// How long an instance stays locked by a turn before another node may take it.
    pub orchestration_lock_timeout: Duration,
    /// How long an activity stays locked without renewal; running activities renew at a
    /// third of this.
    pub activity_lock_timeout: Duration,
    /// Fetches of one item (orchestration messages or activity) before it fails as poison.
    pub max_attempts: u32,
    /// Largest payload (input, output, event data) in bytes.
    pub max_payload_bytes: usize,
    /// Only run executions written by duroxide versions in this range (`None`: any this
    /// node can read).
    pub supported_replay_versions: Option<SemverRange>,
    /// Longest wait before retrying an instance this node cannot run yet (unregistered
    /// orchestration); the wait doubles from 100 ms up to this.
    pub max_unregistered_backoff: Duration,
    /// How long a session stays with this worker without a heartbeat; after a crash, other
    /// workers take its sessions over once this has passed.
    pub session_lock_timeout: Duration,
    /// A session with no activity for this long (and none running) is released.
    pub session_idle_timeout: Duration,
    /// Most sessions with work (queued or running) this worker holds at once. Idle sessions
    /// it keeps until `session_idle_timeout` do not count against it.
    pub max_sessions_per_worker: u32,
    /// Live orchestrations kept in memory between turns, so a turn on this node does not
    /// replay the history from the start (0 disables; every turn replays then). Cached and
    /// replayed execution write identical histories.
    pub instance_cache_size: usize,
    /// Most events one execution's history may hold (default
    /// [`DEFAULT_MAX_HISTORY_EVENTS`](crate::replay::DEFAULT_MAX_HISTORY_EVENTS)). An
    /// execution that would grow past it fails with a configuration error: a guard against
    /// runaway loops and histories too long to replay cheaply. Orchestrations that loop for
    /// long call `continue_as_new`, which starts a new execution with an empty history.
    pub max_history_events: usize,
    /// How often this node samples the store's queue depths and the counts of pending and
    /// running instances into the `duroxide_queue_depth` and `duroxide_instances` gauges
    /// (one `Provider::live_summary` call each time, read from indexes; `None`: never). With no metrics recorder installed the samples go
    /// nowhere: set `None` to save the call.
    pub queue_metrics_interval: Option<Duration>,
    /// Limits on each instance's durable values: keys per instance, key length, value size
    /// (defaults: 100 keys, 256-byte keys, 64 KiB values; see
    /// [`ValueLimits`](crate::orchestration::ValueLimits)). A write past them is refused
    /// with a [`ValueError`](crate::orchestration::ValueError) the code can handle.
    pub value_limits: crate::orchestration::ValueLimits,
    /// Which activities this node's workers take, by tag (default
    /// [`TagFilter::Untagged`]: only activities scheduled without a tag). A GPU pool serves
    /// `TagFilter::tags(["gpu"])`; an orchestration-only node serves `TagFilter::None`.
    /// Turns of this node hand their activities straight to its own workers only when
    /// this filter accepts them. See `docs/activity-routing.md`.
    pub activity_tags: TagFilter,
    /// This node's stable identity (`None`: a fresh `worker-<uuid>` each start). Sessions
    /// are held by it: a node restarted with the same id holds its sessions again at once,
    /// instead of waiting `session_lock_timeout` for their leases to expire. Two nodes
    /// running at the same time must never share an id. Activities see it as
    /// `ActivityContext::worker_id`.
    pub worker_node_id: Option<String>,
    /// How often this node refreshes its presence record in the store (default 10 s;
    /// at least 10 ms). Every runtime writes one when it starts (its id, tag filter, slots
    /// and duroxide version; orchestration-only nodes too, with no activity slots) and
    /// removes it on a graceful shutdown. A record not refreshed for three intervals
    /// counts as gone: `Client::workers`, the per-tag `served_by` of
    /// `Client::store_summary` and `duroxide workers` count only live ones. See
    /// `docs/activity-routing.md`.
    pub worker_heartbeat_interval: Duration,
    /// How long a cancelled activity (the orchestration no longer wants its result: it
    /// ended, the activity lost a select, or it was cancelled) may keep running after its
    /// cancellation token was signalled. One that has not returned by then is aborted and
    /// its worker slot freed. Either way the outcome is logged and counted in
    /// `duroxide_activity_cancellations_total` (`outcome` = `stopped` or `aborted`).
    pub cancellation_grace_period: Duration,
    /// The time turns run at: what `ctx.utc_now()` returns, the timestamps of the events
    /// they write and the base of their timers' due times. The system clock
    /// ([`SystemClock`]) unless a test injects a virtual one
    /// (`duroxide::testing::VirtualClock`, which `TestHarness` sets up). Lock expiry and
    /// queue visibility always use the store's system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            orchestration_concurrency: 2,
            worker_concurrency: 4,
            dispatcher_poll_interval: Duration::from_millis(100),
            orchestration_lock_timeout: Duration::from_secs(30),
            activity_lock_timeout: Duration::from_secs(30),
            max_attempts: 10,
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
            supported_replay_versions: None,
            max_unregistered_backoff: Duration::from_secs(10),
            session_lock_timeout: Duration::from_secs(30),
            session_idle_timeout: Duration::from_secs(300),
            max_sessions_per_worker: 64,
            instance_cache_size: 1024,
            max_history_events: crate::replay::DEFAULT_MAX_HISTORY_EVENTS,
            queue_metrics_interval: Some(Duration::from_secs(10)),
            value_limits: crate::orchestration::ValueLimits::default(),
            activity_tags: TagFilter::Untagged,
            worker_node_id: None,
            worker_heartbeat_interval: Duration::from_secs(10),
            cancellation_grace_period: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }
}
