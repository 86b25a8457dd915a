//! [`ProviderError`], the one error type of every store call, and which of its kinds are
//! worth retrying. Not here: client or orchestration errors, which wrap it.

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// An instance with this id exists already.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// No instance with this id.
    #[error("instance '{0}' not found")]
    InstanceNotFound(String),
    /// The instance (or one of its sub-orchestrations, named here) has not finished, and
    /// the call removes only finished instances unless forced.
    #[error("instance '{0}' has not finished")]
    InstanceRunning(String),
    /// The lock token is no longer valid (expired and taken by someone else).
    #[error("lock lost: {0}")]
    LockLost(String),
    /// The work item was cancelled by its orchestration.
    #[error("work item cancelled by its orchestration")]
    Cancelled,
    /// Stored data cannot be read (corrupt, or written by a newer duroxide). Permanent.
    #[error("corrupt or unreadable data: {0}")]
    Corrupt(String),
    /// The database failed; retrying may help.
    #[error("storage error: {0}")]
    Storage(String),
    /// The schema could not be created or upgraded.
    #[error("migration error: {0}")]
    Migration(String),
    /// The provider was configured wrongly (bad URL, bad option).
    #[error("invalid configuration: {0}")]
    Configuration(String),
    /// The store refused the data itself (a NUL byte PostgreSQL cannot store, a value too
    /// large for an index or a column). Permanent: retrying the same write fails again.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl ProviderError {
    /// A short constant naming the kind of error (`"lock_lost"`, `"storage"`, ...), the
    /// `error` label of the store metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::InstanceExists(_) => "instance_exists",
            ProviderError::InstanceNotFound(_) => "instance_not_found",
            ProviderError::InstanceRunning(_) => "instance_running",
            ProviderError::LockLost(_) => "lock_lost",
            ProviderError::Cancelled => "cancelled",
            ProviderError::Corrupt(_) => "corrupt",
            ProviderError::Storage(_) => "storage",
            ProviderError::Migration(_) => "migration",
            ProviderError::Configuration(_) => "configuration",
            ProviderError::InvalidInput(_) => "invalid_input",
        }
    }

    /// True for errors that may go away when retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Storage(_))
    }
}
