//! The client: start instances, raise events, cancel, read status and history.
//!
//! A [`Client`] talks only to the store, never to a runtime, so any process that can reach
//! the store can drive instances served by runtimes elsewhere.

use crate::history::{ErrorCategory, ErrorDetails, Event};
use crate::provider::{
    ExecutionRecord, InstanceRecord, InstanceState, OrchestratorMessage, OutboundMessage, Provider,
    ProviderError, VersionCount,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where an instance stands, as seen by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrchestrationStatus {
    /// No instance has this id.
    NotFound,
    /// Created, not started by any node yet.
    Pending {
        /// Why it has not started, when a node recorded a reason (for example: no node has
        /// the orchestration registered).
        note: Option<String>,
    },
    /// Started and not finished.
    Running {
        /// The custom status the orchestration set, if any.
        custom_status: Option<String>,
    },
    /// Finished with an output.
    Completed {
        /// The output.
        output: String,
    },
    /// Finished with an error.
    Failed {
        /// Why.
        details: ErrorDetails,
    },
    /// Cancelled through [`Client::cancel_instance`] (or by its parent).
    Cancelled {
        /// The reason given.
        reason: String,
    },
}

impl OrchestrationStatus {
    /// True when the instance finished (completed, failed or cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            OrchestrationStatus::Completed { .. }
                | OrchestrationStatus::Failed { .. }
                | OrchestrationStatus::Cancelled { .. }
        )
    }

    pub(crate) fn from_record(r: Option<InstanceRecord>) -> Self {
        let Some(r) = r else { return OrchestrationStatus::NotFound };
        match r.state {
            InstanceState::Pending => OrchestrationStatus::Pending { note: r.status_note },
            InstanceState::Running => OrchestrationStatus::Running { custom_status: r.custom_status },
            InstanceState::Completed => {
                OrchestrationStatus::Completed { output: r.output.unwrap_or_default() }
            }
            InstanceState::Failed => {
                let details =
                    r.error.unwrap_or_else(|| ErrorDetails::infrastructure("failed without details"));
                if details.category == ErrorCategory::Cancelled {
                    OrchestrationStatus::Cancelled { reason: details.message }
                } else {
                    OrchestrationStatus::Failed { details }
                }
            }
        }
    }
}

/// A client call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `start_orchestration` with an id that is taken.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// The instance does not exist.
    #[error("instance '{0}' not found")]
    NotFound(String),
    /// A payload is larger than the configured limit.
    #[error("{what} is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Which payload.
        what: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A version string is not semver.
    #[error("'{0}' is not a semantic version")]
    InvalidVersion(String),
    /// An instance id or name is empty or otherwise unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// `wait_for_orchestration` timed out; the instance is still running.
    #[error("instance '{instance}' did not finish within {waited:?}")]
    Timeout {
        /// Instance id.
        instance: String,
        /// How long the call waited.
        waited: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Provider(ProviderError),
}

impl From<ProviderError> for ClientError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::InstanceExists(i) => ClientError::InstanceExists(i),
            ProviderError::InstanceNotFound(i) => ClientError::NotFound(i),
            other => ClientError::Provider(other),
        }
    }
}

/// Starts and manages instances through a store.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use duroxide::{Client, OrchestrationStatus, SqliteProvider};
/// use std::{sync::Arc, time::Duration};
/// let store = Arc::new(SqliteProvider::new("sqlite:./duroxide.db", None).await?);
/// let client = Client::new(store);
/// client.start_orchestration("greeting-1", "Hello", "World").await?;
/// if let OrchestrationStatus::Completed { output } =
///     client.wait_for_orchestration("greeting-1", Duration::from_secs(10)).await?
/// {
///     println!("{output}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Provider>,
    max_payload_bytes: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("max_payload_bytes", &self.max_payload_bytes).finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `store` with the default payload limit.
    pub fn new(store: Arc<dyn Provider>) -> Self {
        Self { store, max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES }
    }

    /// Sets the largest input or event payload this client accepts (keep it equal to the
    /// runtime's `RuntimeOptions::max_payload_bytes`).
    pub fn with_max_payload_bytes(mut self, limit: usize) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// The store this client uses.
    pub fn store(&self) -> &Arc<dyn Provider> {
        &self.store
    }

    fn check_payload(&self, what: impl Into<String>, payload: &str) -> Result<(), ClientError> {
        if payload.len() > self.max_payload_bytes {
            return Err(ClientError::PayloadTooLarge {
                what: what.into(),
                size: payload.len(),
                limit: self.max_payload_bytes,
            });
        }
        Ok(())
    }

    fn check_id(what: &str, id: &str) -> Result<(), ClientError> {
        if id.trim().is_empty() {
            return Err(ClientError::InvalidArgument(format!("{what} must not be empty")));
        }
        Ok(())
    }

    /// Starts a new instance of `name`; the version is chosen by the policy of the node
    /// that runs it. Fails with [`ClientError::InstanceExists`] if `instance` is taken.
    pub async fn start_orchestration(
        &self,
        instance: &str,
        name: &str,
        input: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.start(instance, name, None, input.into()).await
    }

    /// Starts a new instance pinned to `version`.
    pub async fn start_orchestration_versioned(
        &self,
        instance: &str,
        name: &str,
        version: &str,
        input: impl Into<String>,
    ) -> Result<(), ClientError> {
        semver::Version::parse(version).map_err(|_| ClientError::InvalidVersion(version.to_string()))?;
        self.start(instance, name, Some(version), input.into()).await
    }

    async fn start(
        &self,
        instance: &str,
        name: &str,
        version: Option<&str>,
        input: String,
    ) -> Result<(), ClientError> {
        Self::check_id("instance id", instance)?;
        Self::check_id("orchestration name", name)?;
        self.check_payload(format!("input of instance '{instance}'"), &input)?;
        self.store.create_instance(instance, name, version, &input).await?;
        Ok(())
    }

    /// Raises an external event for an instance. Events raised before the orchestration
    /// waits for them are kept until it does.
    pub async fn raise_event(
        &self,
        instance: &str,
        name: &str,
        data: impl Into<String>,
    ) -> Result<(), ClientError> {
        let data = data.into();
        self.check_payload(format!("event '{name}' for instance '{instance}'"), &data)?;
        self.store
            .enqueue_message(OutboundMessage {
                instance: instance.to_string(),
                message: OrchestratorMessage::ExternalRaised { name: name.to_string(), data },
                visible_at_ms: None,
            })
            .await?;
        Ok(())
    }

    /// Cancels an instance: it ends with status `Cancelled { reason }`, its running
    /// activities are told to stop and its sub-orchestrations are cancelled too.
    pub async fn cancel_instance(
        &self,
        instance: &str,
        reason: impl Into<String>,
    ) -> Result<(), ClientError> {
        self.store
            .enqueue_message(OutboundMessage {
                instance: instance.to_string(),
                message: OrchestratorMessage::CancelRequested { reason: reason.into() },
                visible_at_ms: None,
            })
            .await?;
        Ok(())
    }

    /// The instance's status.
    pub async fn get_orchestration_status(&self, instance: &str) -> Result<OrchestrationStatus, ClientError> {
        Ok(OrchestrationStatus::from_record(self.store.get_instance(instance).await?))
    }

    /// Everything the store knows about the instance (versions, execution, notes).
    pub async fn get_instance_info(&self, instance: &str) -> Result<Option<InstanceRecord>, ClientError> {
        Ok(self.store.get_instance(instance).await?)
    }

    /// Waits until the instance finishes, returning its final status, or
    /// [`ClientError::Timeout`]. Returns as soon as the instance ends when the runtime
    /// shares this process; otherwise it polls.
    pub async fn wait_for_orchestration(
        &self,
        instance: &str,
        timeout: Duration,
    ) -> Result<OrchestrationStatus, ClientError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut finished = self.store.notifiers().map(|n| n.finished.subscribe());
        let mut poll = Duration::from_millis(5);
        loop {
            let status = self.get_orchestration_status(instance).await?;
            match status {
                OrchestrationStatus::NotFound => return Err(ClientError::NotFound(instance.to_string())),
                s if s.is_terminal() => return Ok(s),
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout { instance: instance.to_string(), waited: now - start });
            }
            let wait = poll.min(deadline - now);
            match finished.as_mut() {
                Some(rx) => {
                    // Re-read the status when this instance finishes (or notifications were
                    // missed), not on every other instance's completion; `wait` bounds the
                    // sleep for instances finished by other processes.
                    let ours = async {
                        loop {
                            match rx.recv().await {
                                Ok(f) if f.instance != instance => continue,
                                Ok(f) => return f.record,
                                Err(_) => return None,
                            }
                        }
                    };
                    // A notice from a commit in this process carries the final record:
                    // no need to read it back.
                    if let Ok(Some(record)) = tokio::time::timeout(wait, ours).await {
                        let status = OrchestrationStatus::from_record(Some((*record).clone()));
                        if status.is_terminal() {
                            return Ok(status);
                        }
                    }
                    poll = (poll * 2).min(Duration::from_millis(500));
                }
                None => {
                    tokio::time::sleep(wait).await;
                    poll = (poll * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// History of an execution (`None`: the current one).
    pub async fn read_execution_history(
        &self,
        instance: &str,
        execution_id: Option<u64>,
    ) -> Result<Vec<Event>, ClientError> {
        Ok(self.store.read_history(instance, execution_id).await?)
    }

    /// All executions of an instance.
    pub async fn list_executions(&self, instance: &str) -> Result<Vec<ExecutionRecord>, ClientError> {
        Ok(self.store.list_executions(instance).await?)
    }

    /// Instance counts per (name, version, state): a version whose `Pending` and `Running`
    /// counts are zero can be removed from the registries.
    pub async fn count_instances_by_version(&self) -> Result<Vec<VersionCount>, ClientError> {
        Ok(self.store.count_instances_by_version().await?)
    }

    /// Running and pending instances per (name, version).
    pub async fn list_running_versions(&self) -> Result<Vec<(String, Option<String>, u64)>, ClientError> {
        let mut out: Vec<(String, Option<String>, u64)> = Vec::new();
        for c in self.count_instances_by_version().await? {
            if c.state.is_terminal() {
                continue;
            }
            match out.last_mut() {
                Some((n, v, k)) if *n == c.name && *v == c.version => *k += c.count,
                _ => out.push((c.name, c.version, c.count)),
            }
        }
        Ok(out)
    }

    /// All instance ids.
    pub async fn list_instances(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.store.list_instances().await?)
    }
}
