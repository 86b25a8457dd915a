//! The runtime: orchestration and activity dispatchers over a [`Provider`].
//!
//! The orchestration dispatcher fetches a locked batch of messages for one instance, runs a
//! turn with the [`crate::replay::ReplayEngine`] and commits the result in one
//! [`Provider::commit_turn`] call. The activity dispatcher fetches peek-locked work items,
//! renews their locks while they run and completes them atomically. Both wake at once on
//! work enqueued in this process (through [`Notifiers`]) and poll only as a fallback for work
//! written by other processes and for due timers.
//!
//! This file holds [`Runtime`] (start, shutdown) and the state its tasks share. Along the
//! data path: `orchestration_dispatcher` takes instances, `turn` runs one (`turn_commit`
//! builds what it writes, `failure` ends one without running it, `cache` keeps live
//! engines); `activity_dispatcher` takes activities, `activity_run` runs one, `completions`
//! commits results and locks the next turns, `lock_renewal` keeps locks; `backlog` is the
//! queue of items locked for this node, `sessions` and `versions` hold the background loops,
//! `presence` the node's presence record (its heartbeat),
//! `shutdown` and `backoff` the waits, `options` the settings, `clock` the time turns run at; `metrics` names and records
//! every metric, `queue_metrics` samples the store's queue depths.

mod activity_dispatcher;
mod activity_run;
mod backlog;
mod backoff;
mod cache;
mod clock;
mod completions;
mod failure;
mod lock_renewal;
pub(crate) mod metrics;
mod options;
mod orchestration_dispatcher;
mod presence;
mod queue_metrics;
mod sessions;
mod shutdown;
mod turn;
mod turn_commit;
mod values;
mod versions;

pub use clock::{Clock, SystemClock};
pub use options::RuntimeOptions;

use crate::context::SessionState;
use crate::provider::instrumented::Instrumented;
use crate::provider::{Attempt, FetchFilter, Notifiers, Provider, TagFilter, WorkerIdentity};
use crate::registry::{ActivityRegistry, OrchestrationRegistry};
use activity_dispatcher::{EagerActivities, worker_loop};
use cache::InstanceCache;
use completions::PendingCompletions;
use orchestration_dispatcher::{ReadyTurn, ReadyTurns, orchestration_loop};
use queue_metrics::queue_metrics_loop;
use sessions::session_heartbeat_loop;
use shutdown::ShutdownSignal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use versions::{blocked_scan_loop, warn_about_missing_versions};

/// What the runtime's tasks share: the store, the registries, the settings, and the
/// node's in-memory state (sessions, cache, backlogs, completions in flight).
struct Inner {
    /// The store, wrapped so that every call is timed and traced (`provider::instrumented`).
    store: Arc<dyn Provider>,
    activities: Arc<ActivityRegistry>,
    orchestrations: Arc<OrchestrationRegistry>,
    options: RuntimeOptions,
    notifiers: Option<Arc<Notifiers>>,
    filter: FetchFilter,
    /// This node's identity and the activities its workers take (`RuntimeOptions::activity_tags`,
    /// `TagFilter::None` when it has no workers).
    worker: WorkerIdentity,
    /// A client over the same store, handed to activities (`ActivityContext::client`).
    client: crate::Client,
    /// In-memory state of the sessions this worker holds (see `ActivityContext::session_state`).
    sessions: Mutex<HashMap<String, Arc<SessionState>>>,
    /// Live orchestrations kept between turns (see `RuntimeOptions::instance_cache_size`).
    cache: Mutex<InstanceCache>,
    /// Activity completions being committed in the background, and a bound on them.
    completions: Mutex<tokio::task::JoinSet<()>>,
    completion_slots: Arc<tokio::sync::Semaphore>,
    pending: Arc<Mutex<PendingCompletions>>,
    /// Activities a turn locked for this node's workers (see `EagerActivities`).
    eager: EagerActivities,
    /// Held while one of this node's worker loops fetches activities from the store: the
    /// others wait for that fetch's batch instead of racing it for the same rows (see
    /// `activity_dispatcher::fetch_activities`).
    work_fetch: tokio::sync::Mutex<()>,
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
    /// The store as given (`store()` returns it; `inner.store` wraps it).
    given: Arc<dyn Provider>,
    /// Stops every loop of this node (see `Shutdown`).
    shutdown: ShutdownSignal,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The loop that refreshes this node's presence record, kept apart from `tasks`: a
    /// graceful shutdown waits for it to stop before removing the record, so no late
    /// refresh writes the record back.
    presence: Mutex<Option<JoinHandle<()>>>,
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
        metrics::describe();
        let given = store.clone();
        let inner = Arc::new(Inner {
            notifiers: store.notifiers(),
            store: Instrumented::wrap(store),
            activities: activities.into(),
            orchestrations,
            worker: WorkerIdentity {
                worker_id: options
                    .worker_node_id
                    .clone()
                    .unwrap_or_else(|| format!("worker-{}", uuid::Uuid::new_v4())),
                session_lease: options.session_lock_timeout,
                max_sessions: options.max_sessions_per_worker.max(1),
                tags: match options.worker_concurrency {
                    0 => TagFilter::None,
                    _ => options.activity_tags.clone(),
                },
            },
            client: crate::Client::new(given.clone()),
            sessions: Mutex::new(HashMap::new()),
            cache: Mutex::new(InstanceCache::default()),
            completions: Mutex::new(tokio::task::JoinSet::new()),
            pending: Arc::default(),
            eager: EagerActivities::default(),
            work_fetch: tokio::sync::Mutex::new(()),
            ready: ReadyTurns::default(),
            completion_slots: Arc::new(tokio::sync::Semaphore::new(options.worker_concurrency.max(1) * 2)),
            options,
            filter,
        });
        warn_about_missing_versions(&inner).await;
        // The record exists once start returns, so operators (and tests) see the node at once.
        let started_at_ms = crate::now_ms();
        presence::announce(&inner, started_at_ms).await;
        let shutdown = ShutdownSignal::new();
        let presence =
            tokio::spawn(presence::presence_loop(inner.clone(), started_at_ms, shutdown.subscribe()));
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(blocked_scan_loop(inner.clone(), shutdown.subscribe())));
        tasks.push(tokio::spawn(session_heartbeat_loop(inner.clone(), shutdown.subscribe())));
        if let Some(every) = inner.options.queue_metrics_interval {
            tasks.push(tokio::spawn(queue_metrics_loop(inner.clone(), every, shutdown.subscribe())));
        }
        for _ in 0..inner.options.orchestration_concurrency.max(1) {
            tasks.push(tokio::spawn(orchestration_loop(inner.clone(), shutdown.subscribe())));
        }
        // An orchestration-only node (no workers, or a filter that takes nothing) runs no
        // worker loops: it never fetches activities.
        if !inner.worker.tags.takes_nothing() {
            for _ in 0..inner.options.worker_concurrency {
                tasks.push(tokio::spawn(worker_loop(inner.clone(), shutdown.subscribe())));
            }
        }
        Runtime { inner, given, shutdown, tasks: Mutex::new(tasks), presence: Mutex::new(Some(presence)) }
    }

    /// The store this runtime uses.
    pub fn store(&self) -> Arc<dyn Provider> {
        self.given.clone()
    }

    /// Stops fetching new work and waits for in-flight turns and activities to finish,
    /// at most `timeout` (`None`: 30 s); whatever is still running then is aborted (its
    /// work is retried by the next runtime). Returns as soon as everything stopped. The
    /// node's presence record is removed first: a node that takes no new work serves no
    /// tag.
    pub async fn shutdown(&self, timeout: Option<Duration>) {
        self.shutdown.trigger();
        // Completions still committing lock no more instances for this node.
        self.inner.ready.close();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let presence = self.presence.lock().unwrap_or_else(|e| e.into_inner()).take();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let inner = self.inner.clone();
        let all = async move {
            if let Some(presence) = presence {
                let _ = presence.await;
                presence::withdraw(&inner).await;
            }
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
            while let Some(ReadyTurn { item, .. }) = inner.ready.pop() {
                if let Err(e) = inner
                    .store
                    .abandon_orchestration_item(&item.lock_token, None, None, Attempt::GivenBack)
                    .await
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
        self.shutdown.trigger();
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            t.abort();
        }
        // As in a crash, the presence record stays; readers see it as gone three
        // heartbeats later.
        if let Some(p) = self.presence.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            p.abort();
        }
        // Completions being committed die too, as in a crash.
        self.inner.completions.lock().unwrap_or_else(|e| e.into_inner()).abort_all();
    }
}
