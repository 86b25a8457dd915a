//! [`TestHarnessBuilder`]: what a [`TestHarness`] runs with: its registries, the activity
//! mocks that replace registered activities, the clock's start and the store.

use super::clock::VirtualClock;
use super::mocks::ActivityMock;
use super::store::VirtualTimeStore;
use super::{HarnessError, TestHarness};
use crate::registry::{ActivityRegistry, OrchestrationRegistry};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Builds a [`TestHarness`] (from [`TestHarness::builder`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use duroxide::prelude::*;
/// use duroxide::testing::{ActivityMock, TestHarness};
/// let orchestrations = OrchestrationRegistry::builder()
///     .register("Notify", |ctx: OrchestrationContext, to: String| async move {
///         Ok(ctx.schedule_activity("SendEmail", to).await?)
///     })
///     .build();
/// let email = ActivityMock::returning("SendEmail", "sent");
/// let harness = TestHarness::builder(ActivityRegistry::builder().build(), orchestrations)
///     .mock(&email)
///     .build()
///     .await
///     .unwrap();
/// assert_eq!(harness.run("Notify", "ada@example.com").await.unwrap(), "sent");
/// assert_eq!(email.inputs(), ["ada@example.com"]);
/// harness.shutdown().await;
/// # }
/// ```
pub struct TestHarnessBuilder {
    activities: Arc<ActivityRegistry>,
    orchestrations: Arc<OrchestrationRegistry>,
    mocks: Vec<ActivityMock>,
    start_ms: Option<u64>,
    store: Option<Arc<dyn crate::Provider>>,
    instance_cache_size: Option<usize>,
    timeout: Duration,
}

impl std::fmt::Debug for TestHarnessBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHarnessBuilder")
            .field("activities", &self.activities)
            .field("orchestrations", &self.orchestrations)
            .field("mocks", &self.mocks)
            .field("start_ms", &self.start_ms)
            .field("store", &self.store.as_ref().map(|s| s.kind()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TestHarnessBuilder {
    pub(super) fn new(activities: Arc<ActivityRegistry>, orchestrations: Arc<OrchestrationRegistry>) -> Self {
        Self {
            activities,
            orchestrations,
            mocks: Vec::new(),
            start_ms: None,
            store: None,
            instance_cache_size: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Runs `mock` in place of the activity of its name (registered or not). Pass a
    /// reference (`.mock(&email)`) and keep the mock to assert on its calls.
    pub fn mock(mut self, mock: impl Into<ActivityMock>) -> Self {
        self.mocks.push(mock.into());
        self
    }

    /// Starts the virtual clock at `time` (default: the system time at `build`).
    pub fn start_at(mut self, time: SystemTime) -> Self {
        self.start_ms = Some(time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0));
        self
    }

    /// Runs on `store` instead of a private in-memory SQLite store (a file store whose
    /// histories a test reads with the command-line tool, say). The harness must be the
    /// only runtime on it.
    pub fn store(mut self, store: Arc<dyn crate::Provider>) -> Self {
        self.store = Some(store);
        self
    }

    /// The runtime's instance cache size (0: every turn replays its history).
    pub fn instance_cache_size(mut self, size: usize) -> Self {
        self.instance_cache_size = Some(size);
        self
    }

    /// Longest real time one wait for idleness may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the store and starts the runtime.
    pub async fn build(self) -> Result<TestHarness, HarnessError> {
        let clock = match self.start_ms {
            Some(ms) => VirtualClock::starting_at_ms(ms),
            None => VirtualClock::starting_now(),
        };
        let inner: Arc<dyn crate::Provider> = match self.store {
            Some(store) => store,
            None => default_store().await?,
        };
        let store = Arc::new(VirtualTimeStore::new(inner));
        let mut activities = (*self.activities).clone();
        for mock in &self.mocks {
            activities = activities.with_handler(mock.name(), mock.handler(clock.clone()));
        }
        let defaults = crate::RuntimeOptions::default();
        let options = crate::RuntimeOptions {
            dispatcher_poll_interval: Duration::from_millis(10),
            queue_metrics_interval: None,
            instance_cache_size: self.instance_cache_size.unwrap_or(defaults.instance_cache_size),
            clock: Arc::new(clock.clone()),
            ..defaults
        };
        let provider: Arc<dyn crate::Provider> = store.clone();
        let runtime =
            crate::Runtime::start_with_options(provider.clone(), activities, self.orchestrations, options)
                .await;
        Ok(TestHarness {
            runtime,
            client: crate::Client::new(provider),
            store,
            clock,
            counter: AtomicU64::new(0),
            timeout: self.timeout,
        })
    }
}

#[cfg(feature = "sqlite")]
async fn default_store() -> Result<Arc<dyn crate::Provider>, HarnessError> {
    let store = crate::SqliteProvider::new("sqlite::memory:", None)
        .await
        .map_err(|e| HarnessError::Setup(e.to_string()))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
async fn default_store() -> Result<Arc<dyn crate::Provider>, HarnessError> {
    Err(HarnessError::Setup(
        "no store given and the sqlite feature is off: pass one with TestHarnessBuilder::store".into(),
    ))
}
