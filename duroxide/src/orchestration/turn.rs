//! What a turn takes from the outside world ([`TurnEnv`]) and the work it hands back to
//! the runtime ([`Action`]). Plain data: the context records actions as the code makes new
//! decisions, and the replay engine returns them with the turn's result.

/// Work the runtime must do because the orchestration made a new decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Enqueue an activity for the workers.
    ScheduleActivity {
        /// The `ActivityScheduled` event id.
        event_id: u64,
        /// Activity name.
        name: String,
        /// Input.
        input: String,
        /// Session it must run on.
        session_id: Option<String>,
        /// Worker tag it is routed to (`None`: untagged).
        tag: Option<String>,
    },
    /// Deliver a `TimerFired` at `fire_at_ms`.
    CreateTimer {
        /// The `TimerCreated` event id.
        event_id: u64,
        /// Due time, ms since the epoch.
        fire_at_ms: u64,
    },
    /// Start a child instance linked to this one.
    StartSubOrchestration {
        /// The `SubOrchestrationScheduled` event id.
        event_id: u64,
        /// Orchestration name.
        name: String,
        /// Requested version.
        version: Option<String>,
        /// Child instance id.
        instance: String,
        /// Input.
        input: String,
    },
    /// Start an unrelated instance.
    StartDetached {
        /// Orchestration name.
        name: String,
        /// Requested version.
        version: Option<String>,
        /// Instance id.
        instance: String,
        /// Input.
        input: String,
    },
    /// Tell the activity's worker to stop, or drop it from the queue.
    CancelActivity {
        /// The `ActivityScheduled` event id.
        event_id: u64,
    },
    /// Cancel a child instance.
    CancelSubOrchestration {
        /// Child instance id.
        instance: String,
        /// Reason passed to the child.
        reason: String,
    },
    /// Read a value of another instance and deliver it as a `ValueReadCompleted`.
    ReadValue {
        /// The `ValueReadScheduled` event id.
        event_id: u64,
        /// The instance whose value is read.
        instance: String,
        /// The key.
        key: String,
    },
}

/// Default limit on the events of one execution's history: 50,000.
///
/// Far above what a well-shaped execution records (a loop of 10,000 activities writes about
/// 20,000 events), and about where Temporal stops a workflow (51,200 events), yet small
/// enough that a cold replay of the longest allowed history stays in the tens of
/// milliseconds and its rows stay cheap to load. An execution that needs more should call
/// `continue_as_new`.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 50_000;

/// Inputs a turn needs from the outside world.
#[derive(Debug, Clone)]
pub struct TurnEnv {
    /// Wall-clock time of this turn (ms since the Unix epoch); used only for new decisions.
    pub now_ms: u64,
    /// Largest payload (activity input, orchestration output, custom status, ...) in bytes.
    pub max_payload_bytes: usize,
    /// Most events one execution's history may hold. A turn that would append past it fails
    /// the execution (a configuration error that points to `continue_as_new`); only the
    /// failure's own events (cancellation of open work, the terminal event) go past it.
    pub max_history_events: usize,
    /// Limits on the instance's durable values (keys, key length, value size).
    pub value_limits: super::values::ValueLimits,
}

impl Default for TurnEnv {
    fn default() -> Self {
        Self {
            now_ms: 0,
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
            value_limits: super::values::ValueLimits::default(),
        }
    }
}
