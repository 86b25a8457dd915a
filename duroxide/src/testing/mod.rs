//! What users need to test their own orchestrations.
//!
//! - [`TestHarness`] runs orchestrations to completion in-process on a private in-memory
//!   store, at a version of your choice ([`TestHarness::run_with_version`]).
//! - [`replay_history`] replays a recorded history against the code you have now and fails
//!   with the nondeterminism error if the code would no longer produce it: record histories
//!   of real instances (e.g. with [`crate::Client::read_execution_history`] and
//!   [`crate::history::to_json`]), keep them as fixtures, and replay them in CI so a change
//!   that would break running instances fails a test instead of production.
//! - [`faults`] wraps any store in a [`FaultyProvider`] that injects seeded failures,
//!   delays and lost locks, to test that the runtime (or your own store) survives them.

use crate::history::{ErrorCategory, ErrorDetails, Event, EventKind};
use crate::registry::{ActivityRegistry, OrchestrationRegistry};
use crate::replay::{ReplayEngine, TurnEnv, TurnOutcome};
use std::sync::Arc;
use std::time::Duration;

pub mod faults;

pub use faults::{FaultConfig, FaultyProvider};

/// Why a recorded history does not replay against the current code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCheckError {
    /// The history is malformed or cannot be parsed.
    #[error("corrupt history: {0}")]
    Corrupt(String),
    /// The orchestration (name, version) of the history is not in the registry.
    #[error("{0}")]
    NotRegistered(String),
    /// The code makes different decisions than the history records.
    #[error("{0}")]
    Nondeterminism(String),
    /// The code replays the decisions but ends differently than the history says.
    #[error("history ended with {recorded} but the code now ends with {replayed}")]
    DifferentOutcome {
        /// The recorded terminal event.
        recorded: String,
        /// What the code produced.
        replayed: String,
    },
}

/// What replaying a history produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    /// Orchestration name from the history.
    pub name: String,
    /// Version from the history.
    pub version: String,
    /// How the code ended (Pending for histories of running instances).
    pub outcome: TurnOutcome,
}

/// Replays one execution's `history` (of `instance`, execution `execution_id`) against the
/// code registered in `orchestrations` for the history's own name and version.
///
/// Succeeds when every decision matches and, if the history is finished, the code ends the
/// same way. A history of a running instance succeeds when its recorded decisions replay.
/// The instance id and execution matter because default sub-orchestration ids derive from
/// them.
pub fn replay_history(
    orchestrations: &OrchestrationRegistry,
    instance: &str,
    execution_id: u64,
    history: &[Event],
) -> Result<ReplayReport, ReplayCheckError> {
    let (name, version) = match history.first().map(|e| &e.kind) {
        Some(EventKind::OrchestrationStarted { name, version, .. }) => (name.clone(), version.clone()),
        _ => {
            return Err(ReplayCheckError::Corrupt("history does not start with OrchestrationStarted".into()));
        }
    };
    let (_, handler) = orchestrations
        .resolve(&name, Some(&version))
        .map_err(|e| ReplayCheckError::NotRegistered(e.to_string()))?;
    // The terminal event is what we compare against; replay the rest.
    let recorded_end = history.last().filter(|e| e.kind.is_terminal()).cloned();
    let body: Vec<Event> = match &recorded_end {
        Some(_) => history[..history.len() - 1].to_vec(),
        None => history.to_vec(),
    };
    let n = body.len();
    let mut engine = ReplayEngine::new(handler, instance, execution_id, body, n)
        .map_err(|e| ReplayCheckError::Corrupt(e.to_string()))?;
    let result = engine.run_turn(Vec::new(), TurnEnv::default());
    if let TurnOutcome::Failed(d) = &result.outcome {
        match d.category {
            ErrorCategory::Nondeterminism => return Err(ReplayCheckError::Nondeterminism(d.message.clone())),
            ErrorCategory::CorruptHistory => return Err(ReplayCheckError::Corrupt(d.message.clone())),
            _ => {}
        }
    }
    if let Some(end) = recorded_end {
        let same = match (&end.kind, &result.outcome) {
            (EventKind::OrchestrationCompleted { output }, TurnOutcome::Completed(o)) => output == o,
            (EventKind::OrchestrationFailed { details }, TurnOutcome::Failed(d)) => {
                details.message == d.message
            }
            (
                EventKind::OrchestrationContinuedAsNew { input, version },
                TurnOutcome::ContinuedAsNew { input: i, version: v },
            ) => input == i && version == v,
            _ => false,
        };
        if !same {
            return Err(ReplayCheckError::DifferentOutcome {
                recorded: format!("{:?}", end.kind),
                replayed: format!("{:?}", result.outcome),
            });
        }
    }
    Ok(ReplayReport { name, version, outcome: result.outcome })
}

/// [`replay_history`] for a history stored as JSON (as [`crate::history::to_json`] writes it).
pub fn replay_history_json(
    orchestrations: &OrchestrationRegistry,
    instance: &str,
    execution_id: u64,
    json: &str,
) -> Result<ReplayReport, ReplayCheckError> {
    let history = crate::history::from_json(json).map_err(|e| ReplayCheckError::Corrupt(e.to_string()))?;
    replay_history(orchestrations, instance, execution_id, &history)
}

/// Why [`TestHarness`] could not produce a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The orchestration failed.
    #[error("orchestration failed: {0}")]
    Failed(ErrorDetails),
    /// It was cancelled.
    #[error("orchestration cancelled: {0}")]
    Cancelled(String),
    /// It did not finish in time.
    #[error("orchestration did not finish within {0:?}")]
    Timeout(Duration),
    /// Setting up or talking to the store failed.
    #[error("harness error: {0}")]
    Setup(String),
}

/// Runs orchestrations to completion in-process, on a private in-memory SQLite store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use duroxide::prelude::*;
/// use duroxide::testing::TestHarness;
/// let activities = ActivityRegistry::builder()
///     .register("Double", |_ctx: ActivityContext, x: String| async move {
///         Ok((x.parse::<i64>().unwrap_or(0) * 2).to_string())
///     })
///     .build();
/// let orchestrations = OrchestrationRegistry::builder()
///     .register_versioned("Calc", "1.0.0", |_ctx: OrchestrationContext, x: String| async move { Ok(x) })
///     .register_versioned("Calc", "2.0.0", |ctx: OrchestrationContext, x: String| async move {
///         Ok(ctx.schedule_activity("Double", x).await?)
///     })
///     .build();
/// let harness = TestHarness::new(activities, orchestrations).await.unwrap();
/// assert_eq!(harness.run_with_version("Calc", "1.0.0", "21").await.unwrap(), "21");
/// assert_eq!(harness.run_with_version("Calc", "2.0.0", "21").await.unwrap(), "42");
/// harness.shutdown().await;
/// # }
/// ```
#[cfg(feature = "sqlite")]
pub struct TestHarness {
    runtime: crate::Runtime,
    client: crate::Client,
    counter: std::sync::atomic::AtomicU64,
    /// How long `run*` waits for an instance.
    pub timeout: Duration,
}

#[cfg(feature = "sqlite")]
impl TestHarness {
    /// Starts a runtime with these registries on a fresh in-memory store.
    pub async fn new(
        activities: impl Into<Arc<ActivityRegistry>>,
        orchestrations: impl Into<Arc<OrchestrationRegistry>>,
    ) -> Result<Self, HarnessError> {
        let store: Arc<dyn crate::Provider> = Arc::new(
            crate::SqliteProvider::new("sqlite::memory:", None)
                .await
                .map_err(|e| HarnessError::Setup(e.to_string()))?,
        );
        let options = crate::RuntimeOptions {
            dispatcher_poll_interval: Duration::from_millis(10),
            ..Default::default()
        };
        let runtime =
            crate::Runtime::start_with_options(store.clone(), activities, orchestrations, options).await;
        Ok(Self {
            runtime,
            client: crate::Client::new(store),
            counter: std::sync::atomic::AtomicU64::new(0),
            timeout: Duration::from_secs(30),
        })
    }

    /// A client on the harness's store (to raise events, read history, ...).
    pub fn client(&self) -> &crate::Client {
        &self.client
    }

    /// Runs `name` at the version its policy picks and returns its output.
    pub async fn run(&self, name: &str, input: impl Into<String>) -> Result<String, HarnessError> {
        self.run_inner(name, None, input.into()).await
    }

    /// Runs `name` pinned to `version` and returns its output.
    pub async fn run_with_version(
        &self,
        name: &str,
        version: &str,
        input: impl Into<String>,
    ) -> Result<String, HarnessError> {
        self.run_inner(name, Some(version), input.into()).await
    }

    async fn run_inner(
        &self,
        name: &str,
        version: Option<&str>,
        input: String,
    ) -> Result<String, HarnessError> {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let instance = format!("test-{name}-{n}");
        let setup = |e: crate::ClientError| HarnessError::Setup(e.to_string());
        match version {
            Some(v) => {
                self.client.start_orchestration_versioned(&instance, name, v, input).await.map_err(setup)?
            }
            None => self.client.start_orchestration(&instance, name, input).await.map_err(setup)?,
        }
        match self.client.wait_for_orchestration(&instance, self.timeout).await {
            Ok(crate::OrchestrationStatus::Completed { output }) => Ok(output),
            Ok(crate::OrchestrationStatus::Failed { details }) => Err(HarnessError::Failed(details)),
            Ok(crate::OrchestrationStatus::Cancelled { reason }) => Err(HarnessError::Cancelled(reason)),
            Ok(other) => Err(HarnessError::Setup(format!("unexpected status {other:?}"))),
            Err(crate::ClientError::Timeout { .. }) => Err(HarnessError::Timeout(self.timeout)),
            Err(e) => Err(setup(e)),
        }
    }

    /// Stops the runtime.
    pub async fn shutdown(self) {
        self.runtime.shutdown(Some(Duration::from_secs(5))).await;
    }
}

/// Implements [`Provider`](crate::provider::Provider) for a wrapper that intercepts some
/// calls: the methods written in the block, plus the management methods
/// (`list_instances_page` … `store_summary`) forwarded unchanged to the field named after
/// `forward_management_to`, so a test wrapper of the dispatch path need not spell them out.
/// [`Provider::kind`](crate::Provider::kind) is forwarded too.
/// The shape (the wrapper's own methods elided; `duroxide/tests/dispatch_paths.rs` has a
/// complete one):
///
/// ```text
/// duroxide::provider_wrapper! {
///     impl Provider for Counting {
///         forward_management_to: inner;
///         async fn create_instance(&self, ...) -> Result<(), ProviderError> { ... }
///         // ... every other method this wrapper intercepts or forwards ...
///     }
/// }
/// ```
#[macro_export]
macro_rules! provider_wrapper {
    (impl Provider for $ty:ty { forward_management_to: $inner:ident; $($body:tt)* }) => {
        #[$crate::__private::async_trait]
        impl $crate::provider::Provider for $ty {
        $($body)*
        async fn list_instances_page(
            &self,
            filter: &$crate::provider::InstanceFilter,
            page: &$crate::provider::PageRequest,
        ) -> Result<$crate::provider::InstancePage, $crate::ProviderError> {
            self.$inner.list_instances_page(filter, page).await
        }
        async fn count_instances(&self, filter: &$crate::provider::InstanceFilter) -> Result<u64, $crate::ProviderError> {
            self.$inner.count_instances(filter).await
        }
        async fn count_instances_by_state(
            &self,
            filter: &$crate::provider::InstanceFilter,
        ) -> Result<Vec<$crate::provider::StateCount>, $crate::ProviderError> {
            self.$inner.count_instances_by_state(filter).await
        }
        async fn describe_instance(
            &self,
            instance: &str,
        ) -> Result<Option<$crate::provider::InstanceDescription>, $crate::ProviderError> {
            self.$inner.describe_instance(instance).await
        }
        async fn read_history_page(
            &self,
            instance: &str,
            execution_id: Option<u64>,
            after_event_id: u64,
            limit: u32,
        ) -> Result<$crate::provider::HistoryPage, $crate::ProviderError> {
            self.$inner.read_history_page(instance, execution_id, after_event_id, limit).await
        }
        async fn delete_instance(&self, instance: &str, force: bool) -> Result<Vec<String>, $crate::ProviderError> {
            self.$inner.delete_instance(instance, force).await
        }
        async fn delete_instances(
            &self,
            filter: &$crate::provider::InstanceFilter,
            after: Option<&$crate::provider::InstanceCursor>,
            max: u32,
        ) -> Result<$crate::provider::DeleteBatch, $crate::ProviderError> {
            self.$inner.delete_instances(filter, after, max).await
        }
        async fn prune_executions(
            &self,
            instance: &str,
            options: &$crate::provider::PruneOptions,
        ) -> Result<u64, $crate::ProviderError> {
            self.$inner.prune_executions(instance, options).await
        }
        async fn terminate_instance(
            &self,
            instance: &str,
            reason: &str,
        ) -> Result<$crate::provider::TerminateOutcome, $crate::ProviderError> {
            self.$inner.terminate_instance(instance, reason).await
        }
        async fn store_summary(&self) -> Result<$crate::provider::StoreSummary, $crate::ProviderError> {
            self.$inner.store_summary().await
        }
        async fn get_value(&self, instance: &str, key: &str) -> Result<Option<String>, $crate::ProviderError> {
            self.$inner.get_value(instance, key).await
        }
        async fn get_values(
            &self,
            instance: &str,
        ) -> Result<::std::collections::BTreeMap<String, String>, $crate::ProviderError> {
            self.$inner.get_values(instance).await
        }
        fn kind(&self) -> &'static str {
            self.$inner.kind()
        }
        }
    };
}
