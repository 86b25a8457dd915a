//! Why work failed, as recorded in history: [`ErrorDetails`] and its [`ErrorCategory`].
//!
//! Part of the durable format: a category's serde name never changes, and new categories
//! are only added, so every stored failure keeps loading. The message is for people; code
//! that must tell failures apart matches on the category. The error types user code returns
//! ([`crate::ActivityError`], [`crate::OrchestrationError`]) live in [`crate::error`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// Broad class of a failure, so operators and retry logic can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The user's code returned an error or panicked.
    Application,
    /// The deployment is wrong in a way no more specific category names: undecodable
    /// input, an identifier no store can take, a turn the store refused. Failures recorded
    /// before the specific categories below existed carry this one too.
    Configuration,
    /// Storage or runtime trouble.
    Infrastructure,
    /// The item was attempted more than `max_attempts` times.
    Poison,
    /// The work was cancelled.
    Cancelled,
    /// The orchestration code no longer makes the decisions its history records (a code
    /// change that running instances cannot replay).
    Nondeterminism,
    /// The stored history cannot be replayed at all (no start event, ids out of order, a
    /// completion without its scheduling event).
    CorruptHistory,
    /// The execution would grow past `max_history_events`; it should `continue_as_new`.
    HistoryLimit,
    /// A payload (input, output, custom status) is larger than `max_payload_bytes`.
    PayloadTooLarge,
    /// An operator ended the instance without running its code
    /// ([`Client::terminate_instance`](crate::Client::terminate_instance)).
    Terminated,
}

impl ErrorCategory {
    /// The category's name as [`Display`](fmt::Display) prints it (`"application"`,
    /// `"corrupt history"`, ...); also the `error_kind` label of the metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCategory::Application => "application",
            ErrorCategory::Configuration => "configuration",
            ErrorCategory::Infrastructure => "infrastructure",
            ErrorCategory::Poison => "poison",
            ErrorCategory::Cancelled => "cancelled",
            ErrorCategory::Nondeterminism => "nondeterminism",
            ErrorCategory::CorruptHistory => "corrupt history",
            ErrorCategory::HistoryLimit => "history limit",
            ErrorCategory::PayloadTooLarge => "payload too large",
            ErrorCategory::Terminated => "terminated",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an activity, sub-orchestration or orchestration failed. Stored in history and
/// returned to the code that awaited the failed work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{category} error: {message}")]
pub struct ErrorDetails {
    /// What kind of failure this is.
    pub category: ErrorCategory,
    /// Human-readable description.
    pub message: String,
    /// Whether retrying may help (set by activities through [`crate::ActivityError`]).
    #[serde(default = "default_true")]
    pub retryable: bool,
}

fn default_true() -> bool {
    true
}

impl ErrorDetails {
    /// An error raised by user code.
    pub fn application(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Application, message)
    }
    /// A deployment or code-change error.
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Configuration, message)
    }
    /// A storage or runtime error.
    pub fn infrastructure(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Infrastructure, message)
    }
    /// A poison error: too many attempts.
    pub fn poison(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Poison, message)
    }
    /// Cancelled work.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Cancelled, message)
    }
    /// The code diverged from its recorded history.
    pub fn nondeterminism(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::Nondeterminism, message)
    }
    /// A history that cannot be replayed.
    pub fn corrupt_history(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::CorruptHistory, message)
    }
    /// An execution that would outgrow `max_history_events`.
    pub fn history_limit(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::HistoryLimit, message)
    }
    /// A payload over `max_payload_bytes`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCategory::PayloadTooLarge, message)
    }
    /// An instance an operator terminated (not retryable).
    pub fn terminated(message: impl Into<String>) -> Self {
        Self { retryable: false, ..Self::new(ErrorCategory::Terminated, message) }
    }
    /// Any category.
    pub fn new(category: ErrorCategory, message: impl Into<String>) -> Self {
        Self { category, message: message.into(), retryable: true }
    }
}

impl From<ErrorDetails> for String {
    fn from(e: ErrorDetails) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_keep_their_stored_names() {
        let stored = [
            (ErrorCategory::Application, "application"),
            (ErrorCategory::Configuration, "configuration"),
            (ErrorCategory::Infrastructure, "infrastructure"),
            (ErrorCategory::Poison, "poison"),
            (ErrorCategory::Cancelled, "cancelled"),
            (ErrorCategory::Nondeterminism, "nondeterminism"),
            (ErrorCategory::CorruptHistory, "corrupt_history"),
            (ErrorCategory::HistoryLimit, "history_limit"),
            (ErrorCategory::PayloadTooLarge, "payload_too_large"),
        ];
        for (category, name) in stored {
            let json = format!("\"{name}\"");
            assert_eq!(serde_json::to_string(&category).unwrap(), json);
            assert_eq!(serde_json::from_str::<ErrorCategory>(&json).unwrap(), category);
        }
    }

    #[test]
    fn details_written_before_retryable_existed_load() {
        let d: ErrorDetails = serde_json::from_str(r#"{"category":"configuration","message":"m"}"#).unwrap();
        assert_eq!(d, ErrorDetails::configuration("m"));
    }

    #[test]
    fn error_details_convert_to_string_with_category() {
        let s: String = ErrorDetails::application("boom").into();
        assert_eq!(s, "application error: boom");
    }
}
