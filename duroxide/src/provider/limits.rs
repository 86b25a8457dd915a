//! Identifier limits every store shares: the longest instance id, orchestration, activity
//! and event name, and the check that applies them. Not here: payload sizes (stores have
//! none) and how each caller reports a refusal (the client and the orchestration context
//! each name the limit in their own error).

/// Longest instance id, in bytes (UTF-8), that every store accepts.
///
/// One limit for all stores, so an id that works on SQLite also works on PostgreSQL, whose
/// index entries must stay under about 2,700 bytes and whose notifications under 8,000. The
/// [`Client`](crate::Client) refuses longer ids with
/// [`ClientError::TooLong`](crate::ClientError::TooLong).
pub const MAX_INSTANCE_ID_BYTES: usize = 1024;

/// Longest orchestration or activity name, in bytes (UTF-8).
pub const MAX_NAME_BYTES: usize = 512;

/// Longest external event name, in bytes (UTF-8).
pub const MAX_EVENT_NAME_BYTES: usize = 512;

/// Longest activity tag (the worker pool an activity is routed to), in bytes (UTF-8).
pub const MAX_TAG_BYTES: usize = 128;

/// Checks an identifier (instance id, orchestration, activity or event name) against the
/// limits every store shares: not empty or only whitespace, at most `limit` bytes, and no
/// control characters (PostgreSQL cannot store a NUL byte in text). Returns what is wrong.
pub fn check_identifier(value: &str, limit: usize) -> Result<(), IdentifierProblem> {
    if value.trim().is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    if value.len() > limit {
        return Err(IdentifierProblem::TooLong { length: value.len(), limit });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(IdentifierProblem::ControlCharacter(c));
    }
    Ok(())
}

/// Why [`check_identifier`] refused a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierProblem {
    /// Empty or only whitespace.
    Empty,
    /// Longer than the limit.
    TooLong {
        /// Its length in bytes.
        length: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Contains a control character (NUL, newline, ...).
    ControlCharacter(char),
}

impl std::fmt::Display for IdentifierProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentifierProblem::Empty => write!(f, "is empty"),
            IdentifierProblem::TooLong { length, limit } => {
                write!(f, "is {length} bytes; the limit is {limit} bytes")
            }
            IdentifierProblem::ControlCharacter(c) => write!(f, "contains the control character {c:?}"),
        }
    }
}
