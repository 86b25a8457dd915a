//! Error types users meet when writing activities and orchestrations.
//!
//! Provider and client errors live next to their modules ([`crate::provider::ProviderError`],
//! [`crate::client::ClientError`]); failures recorded in history are
//! [`crate::ErrorDetails`].

use crate::history::{ErrorCategory, ErrorDetails};

/// Error returned by an activity handler.
///
/// ```
/// use duroxide::ActivityError;
/// let e: ActivityError = "card declined".into();
/// assert!(e.is_retryable());
/// let e = ActivityError::non_retryable("invalid card number");
/// assert!(!e.is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivityError {
    /// The activity failed; a retry may succeed.
    #[error("{0}")]
    Failed(String),
    /// The activity failed in a way retrying cannot fix (bad input, a business rule).
    #[error("{0}")]
    NonRetryable(String),
}

impl ActivityError {
    /// A retryable failure.
    pub fn new(message: impl Into<String>) -> Self {
        ActivityError::Failed(message.into())
    }
    /// A failure that retry policies must not retry.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        ActivityError::NonRetryable(message.into())
    }
    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ActivityError::Failed(_))
    }
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            ActivityError::Failed(m) | ActivityError::NonRetryable(m) => m,
        }
    }
    pub(crate) fn into_details(self) -> ErrorDetails {
        let retryable = self.is_retryable();
        let mut d = ErrorDetails::application(self.message().to_string());
        d.retryable = retryable;
        d
    }
}

impl From<String> for ActivityError {
    fn from(s: String) -> Self {
        ActivityError::Failed(s)
    }
}

impl From<&str> for ActivityError {
    fn from(s: &str) -> Self {
        ActivityError::Failed(s.to_string())
    }
}

impl From<serde_json::Error> for ActivityError {
    fn from(e: serde_json::Error) -> Self {
        ActivityError::NonRetryable(format!("JSON error: {e}"))
    }
}

/// Error returned by an orchestration.
///
/// `?` works on everything an orchestration awaits: activity and sub-orchestration results
/// (their [`ErrorDetails`]), `serde_json` errors, and plain strings.
///
/// ```
/// use duroxide::{ErrorDetails, OrchestrationError};
/// fn step() -> Result<String, ErrorDetails> { Err(ErrorDetails::application("no stock")) }
/// fn orchestration() -> Result<String, OrchestrationError> {
///     let r = step()?;
///     Ok(r)
/// }
/// assert_eq!(orchestration().unwrap_err().to_string(), "application error: no stock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestrationError {
    /// The orchestration's own error.
    #[error("{0}")]
    Application(String),
    /// An awaited activity or sub-orchestration failed and the orchestration passed it on.
    #[error("{0}")]
    Task(ErrorDetails),
    /// Input or output could not be (de)serialized.
    #[error("serialization error: {0}")]
    Serialization(String),
}

impl OrchestrationError {
    /// An application error with a message.
    pub fn application(message: impl Into<String>) -> Self {
        OrchestrationError::Application(message.into())
    }

    /// The details recorded in history when an orchestration fails with this error.
    pub fn into_details(self) -> ErrorDetails {
        match self {
            OrchestrationError::Application(m) => ErrorDetails::application(m),
            OrchestrationError::Task(d) => d,
            OrchestrationError::Serialization(m) => {
                ErrorDetails::new(ErrorCategory::Application, format!("serialization error: {m}"))
            }
        }
    }
}

impl From<ErrorDetails> for OrchestrationError {
    fn from(d: ErrorDetails) -> Self {
        OrchestrationError::Task(d)
    }
}

impl From<String> for OrchestrationError {
    fn from(s: String) -> Self {
        OrchestrationError::Application(s)
    }
}

impl From<&str> for OrchestrationError {
    fn from(s: &str) -> Self {
        OrchestrationError::Application(s.to_string())
    }
}

impl From<serde_json::Error> for OrchestrationError {
    fn from(e: serde_json::Error) -> Self {
        OrchestrationError::Serialization(e.to_string())
    }
}

impl From<OrchestrationError> for String {
    fn from(e: OrchestrationError) -> String {
        e.to_string()
    }
}
