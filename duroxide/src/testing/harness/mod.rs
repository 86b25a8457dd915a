//! [`TestHarness`]: a runtime for unit tests on a private in-memory store, with a virtual
//! clock and activity mocks.
//!
//! Time in a harness stands still while the test does its own calls, and moves only while
//! the test awaits the harness: [`TestHarness::wait_for`] (and `run*`) move it to the next
//! timer whenever nothing else can run, and [`TestHarness::advance`] moves it by hand. So a
//! 30-day timeout completes in milliseconds, and an event raised after `advance(2 days)`
//! arrives at exactly that virtual time.
//!
//! "Nothing else can run" means: no message is queued for any instance (no turn to run or
//! running), no activity is queued or running except mocks that wait for virtual time
//! ([`ActivityMock::taking`]), and no turn is being committed. Activities take no virtual
//! time unless mocked so: an activity racing a timer in a `select` wins whenever it
//! completes, however long it runs in real time.
//!
//! `clock.rs` holds the [`VirtualClock`], `store.rs` the store wrapper that holds timers
//! until virtual time reaches them, `mocks.rs` the activity mocks, `builder.rs` the
//! [`TestHarnessBuilder`].

mod builder;
pub(crate) mod clock;
pub(crate) mod mocks;
mod store;

pub use builder::TestHarnessBuilder;
pub use clock::VirtualClock;
pub use mocks::{ActivityMock, TypedActivityMock};
pub use store::PendingTimer;

use crate::client::{Client, ClientError, OrchestrationStatus};
use crate::history::{ErrorDetails, Event};
use crate::orchestration::typed::OrchestrationDefinition;
use crate::registry::{ActivityRegistry, OrchestrationRegistry};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use store::VirtualTimeStore;

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
    /// Work kept running for this long of real time without the harness becoming idle (an
    /// activity that never returns, an instance retried with a real-time delay).
    #[error("orchestration did not finish within {0:?}")]
    Timeout(Duration),
    /// The instance waits, nothing can run and no timer is pending: it waits for an event
    /// or a cancellation the test has not sent.
    #[error(
        "instance '{instance}' can make no progress: nothing can run and no timer is pending (it waits for an event or a cancellation); status {status}"
    )]
    Stuck {
        /// The instance waited for.
        instance: String,
        /// Its status then.
        status: String,
    },
    /// The output did not decode as the orchestration's output type.
    #[error("instance '{instance}': output does not decode as {expected}: {message}")]
    Decode {
        /// The instance.
        instance: String,
        /// The expected type.
        expected: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// Setting up or talking to the store failed.
    #[error("harness error: {0}")]
    Setup(String),
}

impl From<ClientError> for HarnessError {
    fn from(e: ClientError) -> Self {
        HarnessError::Setup(e.to_string())
    }
}

impl From<crate::ProviderError> for HarnessError {
    fn from(e: crate::ProviderError) -> Self {
        HarnessError::Setup(e.to_string())
    }
}

/// Runs orchestrations in-process on a private in-memory SQLite store, on a virtual clock,
/// with activities optionally replaced by mocks.
///
/// The clock stands still while the test makes its own calls and moves only while the test
/// awaits the harness: [`wait_for`](Self::wait_for) and `run*` move it to the next timer
/// whenever nothing else can run (no message queued for any instance, no activity queued
/// or running, no turn being committed); [`advance`](Self::advance) moves it by hand.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use duroxide::prelude::*;
/// use duroxide::testing::TestHarness;
/// use std::time::Duration;
/// let orchestrations = OrchestrationRegistry::builder()
///     .register("Remind", |ctx: OrchestrationContext, _input: String| async move {
///         ctx.schedule_timer(Duration::from_secs(30 * 24 * 3600)).await;
///         Ok("reminded".to_string())
///     })
///     .build();
/// let harness = TestHarness::new(ActivityRegistry::builder().build(), orchestrations).await.unwrap();
/// let start = harness.now_ms();
/// assert_eq!(harness.run("Remind", "").await.unwrap(), "reminded"); // at once, not in 30 days
/// assert_eq!(harness.now_ms() - start, 30 * 24 * 3600 * 1000);
/// harness.shutdown().await;
/// # }
/// ```
pub struct TestHarness {
    runtime: crate::Runtime,
    client: Client,
    store: Arc<VirtualTimeStore>,
    clock: VirtualClock,
    counter: AtomicU64,
    /// Longest real time one wait for idleness may take before [`HarnessError::Timeout`].
    pub timeout: Duration,
}

impl TestHarness {
    /// A harness with these registries and no mocks, its clock starting at the system time.
    pub async fn new(
        activities: impl Into<Arc<ActivityRegistry>>,
        orchestrations: impl Into<Arc<OrchestrationRegistry>>,
    ) -> Result<Self, HarnessError> {
        Self::builder(activities, orchestrations).build().await
    }

    /// A builder, to add activity mocks, a start time or another store.
    pub fn builder(
        activities: impl Into<Arc<ActivityRegistry>>,
        orchestrations: impl Into<Arc<OrchestrationRegistry>>,
    ) -> TestHarnessBuilder {
        TestHarnessBuilder::new(activities.into(), orchestrations.into())
    }

    /// A client on the harness's store (to read history, list instances, ...). Its calls
    /// do not move the clock.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The harness's clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The virtual time, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The virtual time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Timers created and not yet fired, earliest first.
    pub fn pending_timers(&self) -> Vec<PendingTimer> {
        self.store.pending_timers()
    }

    /// Starts `instance` of `name` (the version its policy picks). No time passes.
    pub async fn start(
        &self,
        instance: &str,
        name: &str,
        input: impl Into<String>,
    ) -> Result<(), HarnessError> {
        Ok(self.client.start_orchestration(instance, name, input).await?)
    }

    /// Starts `instance` of `name` pinned to `version`. No time passes.
    pub async fn start_versioned(
        &self,
        instance: &str,
        name: &str,
        version: &str,
        input: impl Into<String>,
    ) -> Result<(), HarnessError> {
        Ok(self.client.start_orchestration_versioned(instance, name, version, input).await?)
    }

    /// Starts `instance` of a typed orchestration. No time passes.
    pub async fn start_typed<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: &str,
        input: &O::Input,
    ) -> Result<(), HarnessError> {
        self.client
            .start_typed(orchestration, instance, input)
            .await
            .map_err(|e| HarnessError::Setup(e.to_string()))
    }

    /// Raises event `name` on `instance` at the current virtual time.
    pub async fn raise_event(
        &self,
        instance: &str,
        name: &str,
        data: impl Into<String>,
    ) -> Result<(), HarnessError> {
        Ok(self.client.raise_event(instance, name, data).await?)
    }

    /// Requests cancellation of `instance` at the current virtual time.
    pub async fn cancel(&self, instance: &str, reason: impl Into<String>) -> Result<(), HarnessError> {
        Ok(self.client.cancel_instance(instance, reason).await?)
    }

    /// The status of `instance`, custom status included.
    pub async fn status(&self, instance: &str) -> Result<OrchestrationStatus, HarnessError> {
        Ok(self.client.get_orchestration_status(instance).await?)
    }

    /// The custom status `instance` set last (`None`: never set, or cleared).
    pub async fn custom_status(&self, instance: &str) -> Result<Option<String>, HarnessError> {
        let record = self.client.get_instance_info(instance).await?;
        Ok(record.and_then(|r| r.custom_status))
    }

    /// The history of the current execution of `instance`.
    pub async fn history(&self, instance: &str) -> Result<Vec<Event>, HarnessError> {
        Ok(self.client.read_execution_history(instance, None).await?)
    }

    /// Runs everything that can run without time passing, and returns when nothing can.
    pub async fn settle(&self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.store.is_quiet(self.clock.sleeping()).await? == Some(true) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(self.timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Moves the clock forward by `by`: whenever nothing else can run, time jumps to the
    /// next timer (or mock) due within `by`, which fires; at the end the clock reads
    /// exactly `by` later than at the call, with everything due by then done.
    pub async fn advance(&self, by: Duration) -> Result<(), HarnessError> {
        let target = self.clock.now_ms().saturating_add(by.as_millis() as u64);
        loop {
            self.settle().await?;
            match self.next_wake_ms() {
                Some(t) if t <= target => self.move_clock_to(t).await?,
                _ => break,
            }
        }
        self.move_clock_to(target).await?;
        self.settle().await
    }

    /// Waits for `instance` to finish, moving the clock to the next timer whenever nothing
    /// else can run. Returns its final status; [`HarnessError::Stuck`] when it waits for
    /// something only the test can send.
    pub async fn wait_for(&self, instance: &str) -> Result<OrchestrationStatus, HarnessError> {
        loop {
            self.settle().await?;
            let status = self.client.get_orchestration_status(instance).await?;
            if status.is_terminal() {
                return Ok(status);
            }
            if status == OrchestrationStatus::NotFound {
                return Err(HarnessError::Setup(format!("no instance '{instance}'")));
            }
            match self.next_wake_ms() {
                Some(t) => self.move_clock_to(t).await?,
                None => {
                    return Err(HarnessError::Stuck {
                        instance: instance.to_string(),
                        status: format!("{status:?}"),
                    });
                }
            }
        }
    }

    /// [`wait_for`](Self::wait_for), then the output; failure and cancellation are errors.
    pub async fn wait_for_output(&self, instance: &str) -> Result<String, HarnessError> {
        match self.wait_for(instance).await? {
            OrchestrationStatus::Completed { output } => Ok(output),
            OrchestrationStatus::Failed { details } => Err(HarnessError::Failed(details)),
            OrchestrationStatus::Cancelled { reason } => Err(HarnessError::Cancelled(reason)),
            other => Err(HarnessError::Setup(format!("unexpected status {other:?}"))),
        }
    }

    /// [`wait_for_output`](Self::wait_for_output) decoded as a typed orchestration's output.
    pub async fn wait_for_typed<O: OrchestrationDefinition>(
        &self,
        orchestration: O,
        instance: &str,
    ) -> Result<O::Output, HarnessError> {
        let _ = orchestration;
        let output = self.wait_for_output(instance).await?;
        serde_json::from_str(&output).map_err(|e| HarnessError::Decode {
            instance: instance.to_string(),
            expected: std::any::type_name::<O::Output>(),
            message: e.to_string(),
        })
    }

    /// Runs `name` at the version its policy picks, on virtual time, and returns its output.
    pub async fn run(&self, name: &str, input: impl Into<String>) -> Result<String, HarnessError> {
        let instance = self.next_instance(name);
        self.start(&instance, name, input).await?;
        self.wait_for_output(&instance).await
    }

    /// Runs `name` pinned to `version`, on virtual time, and returns its output.
    pub async fn run_with_version(
        &self,
        name: &str,
        version: &str,
        input: impl Into<String>,
    ) -> Result<String, HarnessError> {
        let instance = self.next_instance(name);
        self.start_versioned(&instance, name, version, input).await?;
        self.wait_for_output(&instance).await
    }

    /// Stops the runtime. Mocks still waiting for virtual time (activities whose result
    /// nobody waits for any more) finish at once, so shutdown does not wait for them.
    pub async fn shutdown(self) {
        self.clock.wake_all();
        self.runtime.shutdown(Some(Duration::from_secs(5))).await;
    }

    fn next_instance(&self, name: &str) -> String {
        format!("test-{name}-{}", self.counter.fetch_add(1, Ordering::SeqCst))
    }

    /// The next virtual time something is due: a timer, or a mock that takes time.
    fn next_wake_ms(&self) -> Option<u64> {
        match (self.store.next_fire_ms(), self.clock.next_wake_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sets the clock to `ms` and fires what is due by then.
    async fn move_clock_to(&self, ms: u64) -> Result<(), HarnessError> {
        self.clock.advance_to(ms);
        self.store.fire_due(self.clock.now_ms()).await?;
        Ok(())
    }
}
