//! The runtime: orchestration and activity dispatchers over a [`Provider`].
//!
//! The orchestration dispatcher fetches a locked batch of messages for one instance, runs a
//! turn with the [`crate::replay::ReplayEngine`] and commits the result in one
//! [`Provider::commit_turn`] call. The activity dispatcher fetches peek-locked work items,
//! renews their locks while they run and completes them atomically. Both wake at once on
//! work enqueued in this process (through [`Notifiers`]) and poll only as a fallback for work
//! written by other processes and for due timers.

use crate::context::tokio_util_lite::CancellationToken;
use crate::context::{ActivityContext, SessionState};
use crate::history::{ErrorDetails, Event, EventKind, ParentLink};
use crate::provider::{
    ActivityWorkItem, FetchFilter, InstanceState, InstanceUpdate, LockAfterComplete, Notifiers,
    OrchestrationItem, OrchestratorMessage, OutboundMessage, Provider, ProviderError, SemverRange,
    TurnCommit, WorkerIdentity,
};
use crate::registry::{ActivityRegistry, OrchestrationRegistry};
use crate::replay::{Action, ReplayEngine, TurnEnv, TurnOutcome, panic_message, started_event};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    pub orchestration_concurrency: usize,
    /// Activities run concurrently. A node also holds some activities locked for its own
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
        }
    }
}

struct Inner {
    store: Arc<dyn Provider>,
    activities: Arc<ActivityRegistry>,
    orchestrations: Arc<OrchestrationRegistry>,
    options: RuntimeOptions,
    notifiers: Option<Arc<Notifiers>>,
    filter: FetchFilter,
    worker: WorkerIdentity,
    /// In-memory state of the sessions this worker holds (see `ActivityContext::session_state`).
    sessions: Mutex<HashMap<String, Arc<SessionState>>>,
    cache: Mutex<InstanceCache>,
    /// Activity completions being committed in the background, and a bound on them.
    completions: Mutex<tokio::task::JoinSet<()>>,
    completion_slots: Arc<tokio::sync::Semaphore>,
    pending: Arc<Mutex<PendingCompletions>>,
    /// Activities a turn locked for this node's workers (see `EagerActivities`).
    eager: EagerActivities,
    /// Instances that completing activities locked for this node's dispatchers (see
    /// `ReadyTurns`).
    ready: ReadyTurns,
}

/// A running node: dispatchers for orchestrations and activities.
///
/// Dropping the runtime aborts its tasks at once (as a crash would; nothing committed is
/// lost). Call [`shutdown`](Self::shutdown) to let in-flight work finish first.
pub struct Runtime {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts a runtime with default options.
    pub async fn start_with_store(
        store: Arc<dyn Provider>,
        activities: impl Into<Arc<ActivityRegistry>>,
        orchestrations: impl Into<Arc<OrchestrationRegistry>>,
    ) -> Runtime {
        Self::start_with_options(store, activities, orchestrations, RuntimeOptions::default()).await
    }

    /// Starts a runtime.
    pub async fn start_with_options(
        store: Arc<dyn Provider>,
        activities: impl Into<Arc<ActivityRegistry>>,
        orchestrations: impl Into<Arc<OrchestrationRegistry>>,
        options: RuntimeOptions,
    ) -> Runtime {
        let orchestrations = orchestrations.into();
        let filter = FetchFilter {
            orchestrations: None,
            duroxide_versions: options.supported_replay_versions.clone(),
        };
        let inner = Arc::new(Inner {
            notifiers: store.notifiers(),
            store,
            activities: activities.into(),
            orchestrations,
            worker: WorkerIdentity {
                worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
                session_lease: options.session_lock_timeout,
                max_sessions: options.max_sessions_per_worker.max(1),
            },
            sessions: Mutex::new(HashMap::new()),
            cache: Mutex::new(InstanceCache::default()),
            completions: Mutex::new(tokio::task::JoinSet::new()),
            pending: Arc::default(),
            eager: EagerActivities::default(),
            ready: ReadyTurns::default(),
            completion_slots: Arc::new(tokio::sync::Semaphore::new(options.worker_concurrency.max(1) * 2)),
            options,
            filter,
        });
        warn_about_missing_versions(&inner).await;
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(blocked_scan_loop(inner.clone(), stop.subscribe())));
        tasks.push(tokio::spawn(session_heartbeat_loop(inner.clone(), stop.subscribe())));
        for _ in 0..inner.options.orchestration_concurrency.max(1) {
            tasks.push(tokio::spawn(orchestration_loop(inner.clone(), stop.subscribe())));
        }
        for _ in 0..inner.options.worker_concurrency.max(1) {
            tasks.push(tokio::spawn(worker_loop(inner.clone(), stop.subscribe())));
        }
        Runtime { inner, stop, tasks: Mutex::new(tasks) }
    }

    /// The store this runtime uses.
    pub fn store(&self) -> Arc<dyn Provider> {
        self.inner.store.clone()
    }

    /// Stops fetching new work and waits for in-flight turns and activities to finish,
    /// at most `timeout` (`None`: 30 s); whatever is still running then is aborted (its
    /// work is retried by the next runtime). Returns as soon as everything stopped.
    pub async fn shutdown(&self, timeout: Option<Duration>) {
        let _ = self.stop.send(true);
        // Completions still committing lock no more instances for this node.
        self.inner.ready.close();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let inner = self.inner.clone();
        let all = async move {
            futures::future::join_all(tasks).await;
            // Then the activity completions still being committed.
            loop {
                let mut pending =
                    std::mem::take(&mut *inner.completions.lock().unwrap_or_else(|e| e.into_inner()));
                if pending.is_empty() {
                    break;
                }
                while pending.join_next().await.is_some() {}
            }
            // Instances locked for a turn that no dispatcher started: released at once
            // rather than left to their lock timeout.
            while let Some((item, _)) = inner.ready.pop() {
                if let Err(e) =
                    inner.store.abandon_orchestration_item(&item.lock_token, None, None, false).await
                {
                    tracing::debug!(instance = %item.instance, error = %e, "releasing an unstarted turn failed; its lock will expire");
                }
            }
        };
        if tokio::time::timeout(timeout.unwrap_or(Duration::from_secs(30)), all).await.is_err() {
            tracing::warn!("runtime shutdown timed out; aborting in-flight work");
            for a in aborts {
                a.abort();
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
        // Completions being committed die too, as in a crash.
        self.inner.completions.lock().unwrap_or_else(|e| e.into_inner()).abort_all();
    }
}

/// Logs a warning for each (name, version) with running or pending instances that this node
/// cannot run, so operators see a half-finished rollout or a version removed too early.
async fn warn_about_missing_versions(inner: &Inner) {
    let counts = match inner.store.count_instances_by_version().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "could not list running versions");
            return;
        }
    };
    for c in counts.into_iter().filter(|c| !c.state.is_terminal()) {
        let missing = match &c.version {
            Some(v) => !inner.orchestrations.has(&c.name, v),
            None => inner.orchestrations.resolve(&c.name, None).is_err(),
        };
        if missing {
            tracing::warn!(
                orchestration = %c.name,
                version = c.version.as_deref().unwrap_or("(not pinned)"),
                instances = c.count,
                state = c.state.as_str(),
                "instances exist that this node cannot run; another node must have this version registered"
            );
        }
    }
}

/// Every few poll intervals, notes on instances this node cannot run why they wait, so a
/// status query shows it (e.g. an orchestration or version no node has registered).
async fn blocked_scan_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let every = (inner.options.dispatcher_poll_interval * 5).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let blocked = match inner.store.list_blocked_instances(&inner.filter, 100).await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(error = %e, "listing blocked instances failed");
                continue;
            }
        };
        for b in blocked {
            let why = match (&b.version, &b.duroxide_version) {
                (_, Some(dv)) if !duroxide_version_supported(&inner.options, dv) => format!(
                    "its history was written by duroxide {dv}, outside this node's supported_replay_versions"
                ),
                (Some(v), _) if inner.orchestrations.resolve(&b.name, Some(v)).is_err() => {
                    format!("orchestration '{}' version {v} is not registered on this node", b.name)
                }
                _ => match inner.orchestrations.resolve(&b.name, None) {
                    Err(e) => e.to_string(),
                    Ok(_) => continue,
                },
            };
            let note = format!("waiting for a node that can run it: {why}");
            if let Err(e) = inner.store.set_status_note(&b.instance, &note).await {
                tracing::debug!(error = %e, "recording a status note failed");
            }
        }
    }
}

fn duroxide_version_supported(opts: &RuntimeOptions, dv: &str) -> bool {
    match (&opts.supported_replay_versions, semver::Version::parse(dv)) {
        (None, _) => true,
        (Some(range), Ok(v)) => range.contains(&v),
        (Some(_), Err(_)) => false,
    }
}

/// Waits for a wake-up, the poll interval, or shutdown. Returns false on shutdown.
async fn idle(
    notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = notified => true,
        _ = tokio::time::sleep(poll) => true,
        _ = stop.changed() => false,
    }
}

/// The wait between fetches that failed: doubling from 50 ms up to 5 s, back to the start
/// as soon as the store answers again (with work or without), and cut short by a wake-up
/// (new work in this process) or by shutdown.
struct ErrorBackoff {
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

    fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Waits before the next try. Returns false on shutdown.
    async fn wait(
        &mut self,
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        idle(notified, wait, stop).await
    }
}

async fn orchestration_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let fallback = Arc::new(Notifiers::default());
    let notifiers = inner.notifiers.clone().unwrap_or(fallback);
    let mut error_backoff = ErrorBackoff::default();
    while !*stop.borrow() {
        let notified = notifiers.orchestrator.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let readied = inner.ready.notify.notified();
        tokio::pin!(readied);
        readied.as_mut().enable();
        // An instance a completing activity already locked for this node first.
        if let Some((item, since)) = inner.ready.pop() {
            if let Some(item) = turn_still_locked(&inner, item, since).await {
                process_orchestration_item(&inner, item).await;
            }
            continue;
        }
        // One fetch for this dispatcher and, where several instances are ready, for the
        // idle ones too (the extra items wait in `ReadyTurns`).
        let known = |instance: &str| cached_position(&inner, instance);
        let max = 1 + inner.ready.room(inner.options.orchestration_concurrency.max(1) - 1);
        let fetched = inner
            .store
            .fetch_orchestration_items_cached(
                inner.options.orchestration_lock_timeout,
                &inner.filter,
                &known,
                max,
            )
            .await
            .map(|mut items| {
                let first = (!items.is_empty()).then(|| items.remove(0));
                inner.ready.push(items);
                first
            });
        match fetched {
            Ok(Some(item)) => {
                error_backoff.reset();
                process_orchestration_item(&inner, item).await;
            }
            Ok(None) => {
                error_backoff.reset();
                let go_on = tokio::select! {
                    _ = readied => true,
                    go_on = idle(notified, inner.options.dispatcher_poll_interval, &mut stop) => go_on,
                };
                if !go_on {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching orchestration work failed; retrying");
                if !error_backoff.wait(notified, &mut stop).await {
                    break;
                }
            }
        }
    }
}

/// An instance locked a while ago and not run yet runs only while its lock holds: past
/// half the lock timeout the lock is renewed first; if it was lost, another node has the
/// instance and the item is dropped here.
async fn turn_still_locked(
    inner: &Inner,
    item: OrchestrationItem,
    since: std::time::Instant,
) -> Option<OrchestrationItem> {
    let timeout = inner.options.orchestration_lock_timeout;
    if since.elapsed() < timeout / 2 {
        return Some(item);
    }
    match inner.store.renew_orchestration_lock(&item.lock_token, timeout).await {
        Ok(()) => Some(item),
        Err(e) => {
            tracing::debug!(instance = %item.instance, error = %e, "a locked instance lost its lock before its turn ran");
            None
        }
    }
}

/// Instances that completing activities locked in their own transaction, waiting for a
/// dispatcher of this node (which takes them before fetching from the store). At most
/// `orchestration_concurrency` wait at once; on shutdown the unstarted ones are released.
#[derive(Default)]
struct ReadyTurns {
    state: Mutex<ReadyState>,
    /// Wakes one idle dispatcher per queued instance.
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct ReadyState {
    queue: std::collections::VecDeque<(OrchestrationItem, std::time::Instant)>,
    closed: bool,
}

impl ReadyTurns {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many more instances may be locked for this node (0 once shutting down).
    fn room(&self, capacity: usize) -> usize {
        let s = self.lock();
        if s.closed { 0 } else { capacity.saturating_sub(s.queue.len()) }
    }

    fn push(&self, items: Vec<OrchestrationItem>) {
        let n = items.len();
        {
            let now = std::time::Instant::now();
            self.lock().queue.extend(items.into_iter().map(|i| (i, now)));
        }
        for _ in 0..n {
            self.notify.notify_one();
        }
    }

    fn pop(&self) -> Option<(OrchestrationItem, std::time::Instant)> {
        self.lock().queue.pop_front()
    }

    fn close(&self) {
        self.lock().closed = true;
    }
}

/// Where this node's live copy of an instance stands, `(execution_id, history_len)`, so the
/// store may skip reading its history.
fn cached_position(inner: &Inner, instance: &str) -> Option<(u64, u64)> {
    let cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.peek(instance).map(|c| (c.execution_id, c.engine.history_len() as u64))
}

fn update_from(item: &OrchestrationItem, name: &str, version: &str, state: InstanceState) -> InstanceUpdate {
    InstanceUpdate {
        name: name.to_string(),
        version: version.to_string(),
        state,
        output: item.record.output.clone(),
        error: item.record.error.clone(),
        custom_status: None,
    }
}

/// Commits a turn; on failure releases the lock so the messages are retried (the attempt
/// counts, with the error as the reason a later poison failure gives). Returns whether the
/// turn is now stored.
async fn commit_or_abandon(inner: &Inner, item: &OrchestrationItem, commit: TurnCommit) -> bool {
    match inner.store.commit_turn(&item.lock_token, commit).await {
        Ok(()) => true,
        Err(e) => {
            release_after_failed_commit(inner, item, e).await;
            false
        }
    }
}

async fn release_after_failed_commit(inner: &Inner, item: &OrchestrationItem, e: ProviderError) {
    if let ProviderError::LockLost(msg) = e {
        tracing::warn!(instance = %item.instance, "turn discarded, lock lost: {msg}");
        return;
    }
    tracing::warn!(instance = %item.instance, error = %e, "turn commit failed; messages will be retried");
    let note = Some(format!("the turn could not be stored: {e}"));
    let delay = Some(Duration::from_millis(100));
    let _ = inner.store.abandon_orchestration_item(&item.lock_token, delay, note, true).await;
}

/// Commits a turn's changes. A store that refuses them for good (invalid input such as a
/// NUL byte, corrupt data) would refuse them again on every retry, so the instance fails at
/// once with the store's reason. Returns whether the turn is now stored.
async fn commit_or_fail(inner: &Inner, item: &OrchestrationItem, commit: TurnCommit) -> bool {
    match inner.store.commit_turn(&item.lock_token, commit).await {
        Ok(()) => true,
        Err(e @ (ProviderError::InvalidInput(_) | ProviderError::Corrupt(_))) => {
            let details = ErrorDetails::configuration(format!("the store refused the turn's changes: {e}"));
            fail_without_replay(inner, item, details).await;
            false
        }
        Err(e) => {
            release_after_failed_commit(inner, item, e).await;
            false
        }
    }
}

/// Fails the instance without running its code (poison, corrupt history).
async fn fail_without_replay(inner: &Inner, item: &OrchestrationItem, details: ErrorDetails) {
    tracing::error!(instance = %item.instance, error = %details, "instance failed");
    let name = item.record.name.clone();
    let version = item.record.version.clone().unwrap_or_else(|| "0.0.0".into());
    let exec = item.record.execution_id.max(1);
    let mut new_events = Vec::new();
    if item.history_len == 0 {
        let input = item
            .messages
            .iter()
            .find_map(|m| match m {
                OrchestratorMessage::StartOrchestration { input, .. } => Some(input.clone()),
                _ => None,
            })
            .unwrap_or_default();
        new_events.push(started_event(&name, &version, &input, None, crate::now_ms()));
    }
    new_events.push(Event {
        event_id: item.history_len.max(new_events.len() as u64) + 1,
        timestamp_ms: crate::now_ms(),
        kind: EventKind::OrchestrationFailed { details: details.clone() },
    });
    let mut update = update_from(item, &name, &version, InstanceState::Failed);
    update.error = Some(details.clone());
    let mut messages = Vec::new();
    if let Some(parent) = parent_of(item) {
        messages.push(OutboundMessage {
            instance: parent.instance.clone(),
            message: OrchestratorMessage::SubOrchestrationFailed {
                execution_id: parent.execution_id,
                event_id: parent.event_id,
                details,
            },
            visible_at_ms: None,
        });
    }
    let commit = TurnCommit {
        execution_id: exec,
        new_events,
        update,
        next_execution_id: None,
        activities: Vec::new(),
        activity_lock_timeout: Duration::ZERO,
        cancelled_activities: Vec::new(),
        messages,
    };
    match inner.store.commit_turn(&item.lock_token, commit.clone()).await {
        Ok(()) => {}
        Err(ProviderError::LockLost(msg)) => {
            tracing::warn!(instance = %item.instance, "failing the instance was discarded, lock lost: {msg}");
        }
        Err(e) => {
            // The history itself may be what cannot be written to (e.g. rows missing or
            // taken ids). The failure is then recorded on the instance alone, so the instance
            // still ends, visibly, instead of failing the same commit forever.
            tracing::error!(instance = %item.instance, error = %e, "recording the failure in history failed; recording it on the instance only");
            let bare = TurnCommit { new_events: Vec::new(), ..commit };
            commit_or_abandon(inner, item, bare).await;
        }
    }
}

fn parent_of(item: &OrchestrationItem) -> Option<ParentLink> {
    let from_history = item.history.first().and_then(|e| match &e.kind {
        EventKind::OrchestrationStarted { parent, .. } => parent.clone(),
        _ => None,
    });
    from_history.or_else(|| {
        item.messages.iter().find_map(|m| match m {
            OrchestratorMessage::StartOrchestration { parent, .. }
            | OrchestratorMessage::ContinueAsNew { parent, .. } => parent.clone(),
            _ => None,
        })
    })
}

async fn process_orchestration_item(inner: &Inner, item: OrchestrationItem) {
    let opts = &inner.options;
    let now = crate::now_ms();

    // A finished instance consumes late messages without running anything.
    if item.record.state.is_terminal() {
        let version = item.record.version.clone().unwrap_or_default();
        let update = update_from(&item, &item.record.name, &version, item.record.state);
        let commit = TurnCommit {
            execution_id: item.record.execution_id,
            new_events: Vec::new(),
            update,
            next_execution_id: None,
            activities: Vec::new(),
            activity_lock_timeout: Duration::ZERO,
            cancelled_activities: Vec::new(),
            messages: Vec::new(),
        };
        commit_or_abandon(inner, &item, commit).await;
        return;
    }

    if item.attempt > opts.max_attempts {
        let why =
            item.history_error.clone().or_else(|| item.record.status_note.clone()).unwrap_or_else(|| {
                "earlier turns did not commit (crash, lock expiry or storage errors)".into()
            });
        let details = ErrorDetails::poison(format!(
            "instance '{}' was fetched {} times, more than max_attempts = {}; last problem: {why}",
            item.instance, item.attempt, opts.max_attempts
        ));
        fail_without_replay(inner, &item, details).await;
        return;
    }

    if let Some(err) = &item.history_error {
        tracing::warn!(instance = %item.instance, attempt = item.attempt, "unreadable history: {err}");
        let _ = inner
            .store
            .abandon_orchestration_item(
                &item.lock_token,
                Some(backoff(item.attempt, opts)),
                Some(err.clone()),
                true,
            )
            .await;
        return;
    }

    // A live engine from this node's previous turn continues without replay, if it is
    // exactly at the stored history (no other node ran a turn in between). The store may
    // then have skipped reading the history at all.
    // A stored history row changed or removed in place (corruption, a hand edit) raises the
    // store's revision: the copy is then not trusted, and the history is read and checked.
    let live = inner.cache.lock().unwrap_or_else(|e| e.into_inner()).take(&item.instance).filter(|c| {
        item.history_len > 0
            && c.execution_id == item.record.execution_id
            && c.engine.history_len() as u64 == item.history_len
            && c.history_rev == item.history_rev
    });
    let (name, version, exec, mut engine) = match live {
        Some(c) => {
            let version = item.record.version.clone().unwrap_or_default();
            (item.record.name.clone(), version, c.execution_id, c.engine)
        }
        None => match prepare_engine(inner, &item, now).await {
            Some(prepared) => prepared,
            None => return,
        },
    };
    let messages = item.messages.iter().filter_map(|m| to_event(m, exec)).collect();
    let result = engine.run_turn(
        messages,
        TurnEnv {
            now_ms: now,
            max_payload_bytes: opts.max_payload_bytes,
            max_history_events: opts.max_history_events,
        },
    );
    let finished = result.outcome.is_terminal();
    for d in &result.dropped {
        tracing::debug!(instance = %item.instance, "{d}");
    }
    // The engine holds the execution's start event, also when the store skipped the history.
    let parent = engine.parent();

    let mut commit = TurnCommit {
        execution_id: exec,
        new_events: result.new_events,
        update: InstanceUpdate {
            name: name.clone(),
            version: version.clone(),
            state: InstanceState::Running,
            output: None,
            error: None,
            custom_status: result.custom_status,
        },
        next_execution_id: None,
        activities: Vec::new(),
        activity_lock_timeout: opts.activity_lock_timeout,
        cancelled_activities: Vec::new(),
        messages: Vec::new(),
    };
    for action in result.actions {
        match action {
            Action::ScheduleActivity { event_id, name, input, session_id } => {
                commit.activities.push(ActivityWorkItem {
                    instance: item.instance.clone(),
                    execution_id: exec,
                    event_id,
                    name,
                    input,
                    session_id,
                    lock_token: String::new(),
                    attempt: 0,
                    session_claimed: false,
                })
            }
            Action::CreateTimer { event_id, fire_at_ms } => commit.messages.push(OutboundMessage {
                instance: item.instance.clone(),
                message: OrchestratorMessage::TimerFired { execution_id: exec, event_id, fire_at_ms },
                visible_at_ms: Some(fire_at_ms),
            }),
            Action::StartSubOrchestration { event_id, name, version, instance, input } => {
                commit.messages.push(OutboundMessage {
                    instance,
                    message: OrchestratorMessage::StartOrchestration {
                        name,
                        version,
                        input,
                        parent: Some(ParentLink {
                            instance: item.instance.clone(),
                            execution_id: exec,
                            event_id,
                        }),
                    },
                    visible_at_ms: None,
                })
            }
            Action::StartDetached { name, version, instance, input } => {
                commit.messages.push(OutboundMessage {
                    instance,
                    message: OrchestratorMessage::StartOrchestration { name, version, input, parent: None },
                    visible_at_ms: None,
                })
            }
            Action::CancelActivity { event_id } => commit.cancelled_activities.push(event_id),
            Action::CancelSubOrchestration { instance, reason } => commit.messages.push(OutboundMessage {
                instance,
                message: OrchestratorMessage::CancelRequested { reason },
                visible_at_ms: None,
            }),
        }
    }
    let to_parent = |message: OrchestratorMessage| OutboundMessage {
        instance: parent.as_ref().map(|p| p.instance.clone()).unwrap_or_default(),
        message,
        visible_at_ms: None,
    };
    match result.outcome {
        TurnOutcome::Pending => {}
        TurnOutcome::Completed(output) => {
            commit.update.state = InstanceState::Completed;
            commit.update.output = Some(output.clone());
            if let Some(p) = &parent {
                commit.messages.push(to_parent(OrchestratorMessage::SubOrchestrationCompleted {
                    execution_id: p.execution_id,
                    event_id: p.event_id,
                    result: output,
                }));
            }
        }
        TurnOutcome::Failed(details) => {
            if details.category != crate::ErrorCategory::Cancelled {
                tracing::warn!(instance = %item.instance, error = %details, "orchestration failed");
            }
            commit.update.state = InstanceState::Failed;
            commit.update.error = Some(details.clone());
            if let Some(p) = &parent {
                commit.messages.push(to_parent(OrchestratorMessage::SubOrchestrationFailed {
                    execution_id: p.execution_id,
                    event_id: p.event_id,
                    details,
                }));
            }
        }
        TurnOutcome::ContinuedAsNew { input, version: next_version } => {
            let next = exec + 1;
            commit.next_execution_id = Some(next);
            commit.update.custom_status = Some(None);
            commit.messages.push(OutboundMessage {
                instance: item.instance.clone(),
                message: OrchestratorMessage::ContinueAsNew {
                    execution_id: next,
                    name: name.clone(),
                    version: next_version.clone(),
                    input,
                    parent,
                },
                visible_at_ms: None,
            });
            commit.update.version = next_version;
        }
    }
    let keep = !finished && inner.options.instance_cache_size > 0;
    // Activities this node's workers can take (up to one waiting per worker) are stored
    // locked for them and handed over after the commit, saving each a fetch from the store.
    let can_hand_over =
        |a: &ActivityWorkItem| a.session_id.is_none() && inner.activities.get(&a.name).is_some();
    let reserved = inner.eager.reserve(
        commit.activities.iter().filter(|a| can_hand_over(a)).count(),
        eager_backlog(&inner.options),
    );
    let mut handed = Vec::with_capacity(reserved);
    for a in commit.activities.iter_mut().filter(|a| can_hand_over(a)).take(reserved) {
        a.lock_token = format!("eager-{}", uuid::Uuid::new_v4());
        a.attempt = 1;
        handed.push(a.clone());
    }
    let committed = commit_or_fail(inner, &item, commit).await;
    let handed = if committed {
        handed.into_iter().map(|a| HeldActivity::hold(inner, a)).collect()
    } else {
        Vec::new()
    };
    inner.eager.hand_over(reserved, handed);
    if committed && keep {
        let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.put(
            item.instance.clone(),
            CachedInstance { execution_id: exec, history_rev: item.history_rev, engine },
            inner.options.instance_cache_size,
        );
    }
}

/// A live orchestration kept between turns (see `RuntimeOptions::instance_cache_size`).
struct CachedInstance {
    execution_id: u64,
    /// The store's history revision when this copy was last checked against it.
    history_rev: u64,
    engine: ReplayEngine,
}

/// A bounded least-recently-used map of live orchestrations.
#[derive(Default)]
struct InstanceCache {
    tick: u64,
    entries: HashMap<String, (u64, CachedInstance)>,
    order: std::collections::BTreeMap<u64, String>,
}

impl InstanceCache {
    fn peek(&self, instance: &str) -> Option<&CachedInstance> {
        self.entries.get(instance).map(|(_, c)| c)
    }

    fn take(&mut self, instance: &str) -> Option<CachedInstance> {
        let (tick, c) = self.entries.remove(instance)?;
        self.order.remove(&tick);
        Some(c)
    }

    fn put(&mut self, instance: String, c: CachedInstance, capacity: usize) {
        self.take(&instance);
        self.tick += 1;
        self.order.insert(self.tick, instance.clone());
        self.entries.insert(instance, (self.tick, c));
        while self.entries.len() > capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }
}

/// Builds the replay engine for an item from its history (read now if the store skipped
/// it), starting a fresh execution when there is none. Returns `None` after handling the
/// item some other way (abandoned, failed).
async fn prepare_engine(
    inner: &Inner,
    item: &OrchestrationItem,
    now: u64,
) -> Option<(String, String, u64, ReplayEngine)> {
    let opts = &inner.options;
    let mut history = item.history.clone();
    if history.is_empty() && item.history_len > 0 {
        match inner.store.read_history(&item.instance, Some(item.record.execution_id)).await {
            Ok(h) => history = h,
            Err(e) => {
                // Counted: an unreadable history fails the instance as poison after
                // max_attempts, with this note as the reason.
                tracing::warn!(instance = %item.instance, error = %e, "reading history failed; retrying");
                let delay = Some(backoff(item.attempt, opts));
                let note = Some(format!("reading the history failed: {e}"));
                let _ = inner.store.abandon_orchestration_item(&item.lock_token, delay, note, true).await;
                return None;
            }
        }
    }
    let persisted_len = history.len();
    let mut exec = item.record.execution_id;
    if history.is_empty() {
        // Never started and already cancelled: it ends here, without its code (which no
        // node may have) and without waiting for its start message (held back while no
        // node could run it, it may not be in this batch).
        if exec == 0
            && let Some(reason) = cancel_reason(item)
        {
            fail_without_replay(inner, item, ErrorDetails::cancelled(reason)).await;
            return None;
        }
        let start = item.messages.iter().find_map(|m| match m {
            OrchestratorMessage::StartOrchestration { name, version, input, parent } if exec == 0 => {
                Some((1, name.clone(), version.clone(), input.clone(), parent.clone()))
            }
            OrchestratorMessage::ContinueAsNew { execution_id, name, version, input, parent }
                if *execution_id == exec =>
            {
                Some((*execution_id, name.clone(), Some(version.clone()), input.clone(), parent.clone()))
            }
            _ => None,
        });
        let Some((e, name, version, input, parent)) = start else {
            // The start message is queued but held back (no node could run it yet): the
            // other messages wait for it. Not counted toward poison, as for the start
            // itself: the instance is not at fault.
            let note = Some("messages arrived before the instance's start message".to_string());
            let delay = Some(opts.max_unregistered_backoff);
            let _ = inner.store.abandon_orchestration_item(&item.lock_token, delay, note, false).await;
            return None;
        };
        let resolved = match inner.orchestrations.resolve(&name, version.as_deref()) {
            Ok((v, _)) => v,
            Err(err) => {
                not_runnable_here(inner, item, err.to_string()).await;
                return None;
            }
        };
        exec = e;
        history.push(started_event(&name, &resolved, &input, parent, now));
    }
    let (name, version) = match &history[0].kind {
        EventKind::OrchestrationStarted { name, version, .. } => (name.clone(), version.clone()),
        _ => {
            let details =
                ErrorDetails::configuration("corrupt history: first event is not OrchestrationStarted");
            fail_without_replay(inner, item, details).await;
            return None;
        }
    };
    let handler = match inner.orchestrations.resolve(&name, Some(&version)) {
        Ok((_, h)) => h,
        Err(err) => {
            not_runnable_here(inner, item, err.to_string()).await;
            return None;
        }
    };
    match ReplayEngine::new(handler, &item.instance, exec, history, persisted_len) {
        Ok(engine) => Some((name, version, exec, engine)),
        Err(err) => {
            fail_without_replay(inner, item, ErrorDetails::configuration(err.to_string())).await;
            None
        }
    }
}

/// The reason of a cancel request among the item's messages, if there is one.
fn cancel_reason(item: &OrchestrationItem) -> Option<String> {
    item.messages.iter().find_map(|m| match m {
        OrchestratorMessage::CancelRequested { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// This node cannot run the instance (name or version not registered): leave it for a node
/// that can, with a growing delay and a note for operators. Does not count toward poison:
/// the instance is not at fault.
async fn not_runnable_here(inner: &Inner, item: &OrchestrationItem, why: String) {
    tracing::warn!(instance = %item.instance, "{why}; will retry");
    let delay = backoff(item.attempt, &inner.options).min(inner.options.max_unregistered_backoff);
    let _ = inner.store.abandon_orchestration_item(&item.lock_token, Some(delay), Some(why), false).await;
}

fn backoff(attempt: u32, opts: &RuntimeOptions) -> Duration {
    let exp = attempt.saturating_sub(1).min(10);
    (Duration::from_millis(100) * 2u32.pow(exp)).min(opts.max_unregistered_backoff)
}

/// Converts a queued message into the history event the engine delivers, dropping those
/// addressed to another execution.
fn to_event(m: &OrchestratorMessage, exec: u64) -> Option<EventKind> {
    let mine = |e: u64| e == exec;
    Some(match m.clone() {
        OrchestratorMessage::StartOrchestration { .. } | OrchestratorMessage::ContinueAsNew { .. } => {
            return None;
        }
        OrchestratorMessage::ActivityCompleted { execution_id, event_id, result } if mine(execution_id) => {
            EventKind::ActivityCompleted { source_event_id: event_id, result }
        }
        OrchestratorMessage::ActivityFailed { execution_id, event_id, details } if mine(execution_id) => {
            EventKind::ActivityFailed { source_event_id: event_id, details }
        }
        OrchestratorMessage::TimerFired { execution_id, event_id, fire_at_ms } if mine(execution_id) => {
            EventKind::TimerFired { source_event_id: event_id, fire_at_ms }
        }
        OrchestratorMessage::SubOrchestrationCompleted { execution_id, event_id, result }
            if mine(execution_id) =>
        {
            EventKind::SubOrchestrationCompleted { source_event_id: event_id, result }
        }
        OrchestratorMessage::SubOrchestrationFailed { execution_id, event_id, details }
            if mine(execution_id) =>
        {
            EventKind::SubOrchestrationFailed { source_event_id: event_id, details }
        }
        OrchestratorMessage::ExternalRaised { name, data } => EventKind::ExternalRaised { name, data },
        OrchestratorMessage::CancelRequested { reason } => EventKind::OrchestrationCancelRequested { reason },
        _ => return None,
    })
}

/// A worker busy with handed-over activities still fetches from the store every this many.
const STORE_LOOK_EVERY: u32 = 8;

async fn worker_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let fallback = Arc::new(Notifiers::default());
    let notifiers = inner.notifiers.clone().unwrap_or(fallback);
    let mut error_backoff = ErrorBackoff::default();
    // The next activity, locked while the current one ran, so the fetch is off the critical
    // path (one item ahead per worker slot). Its lock is renewed from the moment it was taken.
    let mut prefetched: Option<HeldActivity> = None;
    // Activities run since this worker last looked at the store.
    let mut since_store = 0u32;
    while !*stop.borrow() {
        let notified = notifiers.worker.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // The item fetched ahead first (so the next look-ahead never replaces one that
        // was not run), then handed-over work, then the store.
        // A held item whose renewal ended lost its lock (another worker has it) or was
        // cancelled: it is dropped here without running.
        let held = prefetched.take().or_else(|| inner.eager.pop()).filter(HeldActivity::still_held);
        let next = match held {
            Some(item) => Ok(Some(item)),
            None => fetch_activities(&inner).await,
        };
        match next {
            Ok(Some(item)) => {
                error_backoff.reset();
                // Fetch ahead from the store while this one runs, unless handed-over work is
                // waiting; even then every few activities, so the store's queue (work from
                // other nodes, retries) is never starved by a steady local stream.
                since_store += 1;
                let look = !inner.eager.has_queued() || since_store >= STORE_LOOK_EVERY;
                if look {
                    since_store = 0;
                }
                let fetch_ahead = async {
                    if !look {
                        return None;
                    }
                    match fetch_activities(&inner).await {
                        Ok(next) => next,
                        Err(e) => {
                            tracing::debug!(error = %e, "fetching ahead failed");
                            None
                        }
                    }
                };
                inner.eager.started();
                let ((), ahead) = tokio::join!(run_activity(&inner, item), fetch_ahead);
                debug_assert!(prefetched.is_none(), "a fetched-ahead item would be lost");
                prefetched = ahead;
            }
            Ok(None) => {
                error_backoff.reset();
                // Idle: wait for work in the store, or for a turn of this node to hand
                // over an activity it locked for an idle worker.
                let handed = inner.eager.notify.notified();
                tokio::pin!(handed);
                handed.as_mut().enable();
                if !inner.eager.mark_idle() {
                    continue; // an activity was handed over meanwhile
                }
                let go_on = tokio::select! {
                    _ = handed => true,
                    go_on = idle(notified, inner.options.dispatcher_poll_interval, &mut stop) => go_on,
                };
                inner.eager.unmark_idle();
                if !go_on {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "fetching activity work failed; retrying");
                if !error_backoff.wait(notified, &mut stop).await {
                    break;
                }
            }
        }
    }
    // Shutting down: hand fetched-ahead and handed-over items back at once instead of
    // letting their locks expire.
    let unstarted = prefetched.into_iter().chain(std::iter::from_fn(|| inner.eager.pop()));
    for held in unstarted.collect::<Vec<_>>() {
        let item = held.release();
        if let Err(e) = inner.store.abandon_work_item(&item.lock_token, None).await {
            tracing::debug!(error = %e, "releasing an unstarted activity failed; its lock will expire");
        }
    }
}

/// Fetches an activity for the calling worker and, in the same store call, as many more as
/// the node's backlog of handed-over work has room for (queued for the other workers).
async fn fetch_activities(inner: &Inner) -> Result<Option<HeldActivity>, ProviderError> {
    let max = 1 + inner.eager.room(eager_backlog(&inner.options));
    let items = inner.store.fetch_work_items(inner.options.activity_lock_timeout, &inner.worker, max).await?;
    let mut held = items.into_iter().map(|item| HeldActivity::hold(inner, item));
    let first = held.next();
    inner.eager.push(held.collect());
    Ok(first)
}

/// Most activities locked for this node's workers and not started yet (the pace of the
/// workers may allow fewer, see `EagerActivities::limit`).
fn eager_backlog(options: &RuntimeOptions) -> usize {
    4 * options.worker_concurrency.max(1)
}

/// How long handed-over activities are expected to wait for a worker of this node at most:
/// the backlog holds no more than the workers start in this time at their recent pace.
/// Short activities then flow through the backlog; long ones are only handed to idle
/// workers and otherwise stay in the store, for whichever node is free first.
const BACKLOG_WAIT_MS: u64 = 50;

/// An activity locked for this node and not finished yet (fetched, fetched ahead, or handed
/// over by a turn). Its lock is renewed from the moment it was taken until it finishes or is
/// released, however long it waits for a worker and however long it runs: a lock that
/// lapsed while an item waited would let another worker take it, and two workers could then
/// keep taking each other's items until the attempts run out.
struct HeldActivity {
    item: ActivityWorkItem,
    /// Signalled when the renewal learns that the activity was cancelled or its lock lost.
    cancel: CancellationToken,
    /// The renewal task; it ends only when the lock is lost or the activity cancelled.
    renewal: AbortOnDrop<Option<ProviderError>>,
}

impl HeldActivity {
    /// Starts renewing the lock of an item this node has just locked.
    fn hold(inner: &Inner, item: ActivityWorkItem) -> Self {
        let cancel = CancellationToken::new();
        let renewal = AbortOnDrop(tokio::spawn(renew_loop(
            inner.store.clone(),
            item.lock_token.clone(),
            inner.options.activity_lock_timeout,
            cancel.clone(),
        )));
        HeldActivity { item, cancel, renewal }
    }

    /// Whether the lock still holds and the activity was not cancelled (a held item that
    /// fails this is dropped without running: another worker has it, or nobody needs it).
    fn still_held(&self) -> bool {
        if self.renewal.0.is_finished() {
            tracing::debug!(activity = %self.item.name, instance = %self.item.instance, "a held activity lost its lock or was cancelled before it started");
            return false;
        }
        true
    }

    /// Stops renewing and gives the item back (to release its lock).
    fn release(self) -> ActivityWorkItem {
        self.renewal.0.abort();
        self.item
    }

    /// Stops renewing; returns the error that ended the renewal before, if any.
    async fn finish(mut self) -> Option<ProviderError> {
        self.renewal.0.abort();
        (&mut self.renewal.0).await.ok().flatten()
    }
}

/// Activities a turn stored already locked for this node's workers ("eager" dispatch): the
/// turn reserves room in a bounded backlog (see `limit`), and hands them over after its
/// commit. A worker takes them before fetching from the store (and still looks at
/// the store every few activities, so work from elsewhere is not starved); on shutdown the
/// unstarted ones are released.
#[derive(Default)]
struct EagerActivities {
    state: Mutex<EagerState>,
    /// Wakes one idle worker per handed-over activity.
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct EagerState {
    idle: usize,
    reserved: usize,
    queue: std::collections::VecDeque<HeldActivity>,
    /// Activities started in the current and the previous one-second window.
    window_start: Option<std::time::Instant>,
    started_now: u64,
    started_before: u64,
}

impl EagerState {
    fn roll(&mut self, now: std::time::Instant) {
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
        self.roll(std::time::Instant::now());
        let per_s = self.started_now.max(self.started_before);
        let by_pace = usize::try_from(per_s * BACKLOG_WAIT_MS / 1000).unwrap_or(usize::MAX);
        by_pace.min(cap).max(self.idle)
    }
}

impl EagerActivities {
    fn lock(&self) -> std::sync::MutexGuard<'_, EagerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves room for up to `wanted` activities in a backlog of at most `cap` (see
    /// `EagerState::limit`); returns how many.
    fn reserve(&self, wanted: usize, cap: usize) -> usize {
        if wanted == 0 {
            return 0;
        }
        let mut s = self.lock();
        let free = s.limit(cap).saturating_sub(s.reserved + s.queue.len());
        let n = free.min(wanted);
        s.reserved += n;
        n
    }

    /// Ends a reservation of `reserved` workers, queueing the items that were committed.
    fn hand_over(&self, reserved: usize, items: Vec<HeldActivity>) {
        if reserved > 0 {
            self.queue(reserved, items);
        }
    }

    fn pop(&self) -> Option<HeldActivity> {
        self.lock().queue.pop_front()
    }

    /// Room left in the backlog (of at most `cap`, see `EagerState::limit`).
    fn room(&self, cap: usize) -> usize {
        let mut s = self.lock();
        s.limit(cap).saturating_sub(s.reserved + s.queue.len())
    }

    /// Counts an activity a worker of this node started (the pace `limit` goes by).
    fn started(&self) {
        let mut s = self.lock();
        s.roll(std::time::Instant::now());
        s.started_now += 1;
    }

    /// Queues activities fetched for this node's workers.
    fn push(&self, items: Vec<HeldActivity>) {
        self.queue(0, items);
    }

    /// Queues `items` (ending a reservation of `reserved` in the same step) and wakes a
    /// worker for each.
    fn queue(&self, reserved: usize, items: Vec<HeldActivity>) {
        let n = items.len();
        {
            let mut s = self.lock();
            s.reserved = s.reserved.saturating_sub(reserved);
            s.queue.extend(items);
        }
        for _ in 0..n {
            self.notify.notify_one();
        }
    }

    fn has_queued(&self) -> bool {
        !self.lock().queue.is_empty()
    }

    /// Counts the caller as idle, unless an item is queued (then returns false).
    fn mark_idle(&self) -> bool {
        let mut s = self.lock();
        if !s.queue.is_empty() {
            return false;
        }
        s.idle += 1;
        true
    }

    fn unmark_idle(&self) {
        let mut s = self.lock();
        s.idle = s.idle.saturating_sub(1);
    }
}

async fn run_activity(inner: &Arc<Inner>, held: HeldActivity) {
    let opts = &inner.options;
    let item = held.item.clone();
    let fail = |details: ErrorDetails| OrchestratorMessage::ActivityFailed {
        execution_id: item.execution_id,
        event_id: item.event_id,
        details,
    };
    let message = if item.attempt > opts.max_attempts {
        fail(ErrorDetails::poison(format!(
            "activity '{}' (instance '{}', event {}) was fetched {} times, more than max_attempts = {}; \
             earlier attempts did not complete (worker crash, lock expiry or not registered on the nodes that fetched it)",
            item.name, item.instance, item.event_id, item.attempt, opts.max_attempts
        )))
    } else if let Some(handler) = inner.activities.get(&item.name) {
        let cancel = held.cancel.clone();
        let session_state = item.session_id.as_ref().map(|sid| {
            let mut sessions = inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if item.session_claimed {
                // New on this worker (first use, or taken over): state from an earlier tenure
                // may be stale, since another worker may have run the session meanwhile.
                sessions.remove(sid);
            }
            sessions.entry(sid.clone()).or_default().clone()
        });
        let ctx = ActivityContext {
            instance: item.instance.clone(),
            execution_id: item.execution_id,
            event_id: item.event_id,
            name: item.name.clone(),
            attempt: item.attempt,
            cancel: cancel.clone(),
            session_id: item.session_id.clone(),
            session_new: item.session_claimed,
            session_state,
            worker_id: inner.worker.worker_id.clone(),
        };
        // Both the activity and its lock renewal die with this task (shutdown timeout,
        // runtime dropped): an orphaned renewal would keep the lock alive forever and no
        // other worker could retry.
        let mut run = AbortOnDrop(tokio::spawn(handler.invoke(ctx, item.input.clone())));
        let outcome = (&mut run.0).await;
        if let Some(ProviderError::LockLost(_)) = held.finish().await {
            tracing::warn!(activity = %item.name, instance = %item.instance, "activity lock lost; result dropped, another worker retries");
            return;
        }
        match outcome {
            Ok(Ok(output)) if output.len() > opts.max_payload_bytes => {
                fail(ErrorDetails::configuration(format!(
                    "output of activity '{}' is {} bytes; the limit is {} bytes",
                    item.name,
                    output.len(),
                    opts.max_payload_bytes
                )))
            }
            Ok(Ok(output)) => OrchestratorMessage::ActivityCompleted {
                execution_id: item.execution_id,
                event_id: item.event_id,
                result: output,
            },
            Ok(Err(e)) => fail(e.into_details()),
            Err(join) if join.is_panic() => {
                let msg = panic_message(&join.into_panic());
                fail(ErrorDetails::application(format!("activity '{}' panicked: {msg}", item.name)))
            }
            Err(_) => return, // aborted by shutdown: the lock expires and the work is retried
        }
    } else {
        tracing::warn!(activity = %item.name, "activity not registered on this node; leaving it for another node");
        let _ = inner.store.abandon_work_item(&item.lock_token, Some(backoff(item.attempt, opts))).await;
        return;
    };
    let completion = OutboundMessage { instance: item.instance.clone(), message, visible_at_ms: None };
    // The completion commits in the background so this worker slot can run the next
    // activity while the store writes; completions that queue up meanwhile share one
    // commit. The work item stays locked until its commit lands (a crash before it means the
    // activity runs again). Bounded by `completion_slots`, awaited on shutdown.
    let Ok(permit) = inner.completion_slots.clone().acquire_owned().await else { return };
    let start_flush = {
        let mut pending = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.items.push(PendingCompletion {
            token: item.lock_token.clone(),
            completion,
            name: item.name.clone(),
            _permit: permit,
        });
        !std::mem::replace(&mut pending.flushing, true)
    };
    if start_flush {
        let me = inner.clone();
        inner.completions.lock().unwrap_or_else(|e| e.into_inner()).spawn(flush_completions(me));
    }
}

/// An activity result waiting to be committed.
struct PendingCompletion {
    token: String,
    completion: OutboundMessage,
    name: String,
    /// Released when the completion is committed (bounds the backlog).
    _permit: tokio::sync::OwnedSemaphorePermit,
}

#[derive(Default)]
struct PendingCompletions {
    items: Vec<PendingCompletion>,
    /// A flush task is running; it takes whatever queues up until the queue is empty.
    flushing: bool,
}

/// Commits queued activity completions until the queue is empty. Where `ReadyTurns` has
/// room, the same transaction locks the instances the completions go to, and a dispatcher
/// of this node runs their next turn without fetching it from the store.
async fn flush_completions(inner: Arc<Inner>) {
    loop {
        let batch = {
            let mut p = inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.items.is_empty() {
                p.flushing = false;
                return;
            }
            std::mem::take(&mut p.items)
        };
        let mut targets: Vec<&str> = batch.iter().map(|c| c.completion.instance.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        // Lock at most as many instances as may wait for this node's dispatchers.
        let free = inner.ready.room(inner.options.orchestration_concurrency.max(1)).min(targets.len());
        let request = batch.iter().map(|c| (c.token.clone(), c.completion.clone())).collect();
        let (results, items) = if free == 0 {
            (inner.store.complete_work_items(request).await, Vec::new())
        } else {
            let known = |instance: &str| cached_position(&inner, instance);
            let lock = LockAfterComplete {
                max_instances: free,
                lock_timeout: inner.options.orchestration_lock_timeout,
                filter: &inner.filter,
                cached: &known,
            };
            inner.store.complete_work_items_and_lock(request, lock).await
        };
        for (c, r) in batch.iter().zip(results) {
            if let Err(e) = r {
                tracing::warn!(activity = %c.name, instance = %c.completion.instance, error = %e, "could not complete activity; it will be retried");
            }
        }
        drop(batch);
        inner.ready.push(items);
    }
}

/// Renews this worker's session leases and releases idle sessions (and their state).
async fn session_heartbeat_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let every = (inner.options.session_lock_timeout / 3).max(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match inner.store.renew_sessions(&inner.worker, inner.options.session_idle_timeout).await {
            Ok(released) if !released.is_empty() => {
                let mut sessions = inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
                for sid in released {
                    tracing::debug!(session = %sid, "session released after being idle");
                    sessions.remove(&sid);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "renewing sessions failed; retrying"),
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews an activity lock until aborted. Returns the error that ended renewal (the
/// activity was cancelled or its lock lost), after signalling the activity.
async fn renew_loop(
    store: Arc<dyn Provider>,
    token: String,
    lock_timeout: Duration,
    cancel: CancellationToken,
) -> Option<ProviderError> {
    let every = (lock_timeout / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        match store.renew_work_item(&token, lock_timeout).await {
            Ok(()) => {}
            Err(e @ (ProviderError::Cancelled | ProviderError::LockLost(_))) => {
                cancel.cancel();
                return Some(e);
            }
            Err(e) => tracing::warn!(error = %e, "activity lock renewal failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_follows_the_workers_pace_within_its_bounds() {
        let mut s = EagerState::default();
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
        s.window_start = Some(std::time::Instant::now() - Duration::from_millis(2500));
        assert_eq!(s.limit(32), 0);
    }
}
