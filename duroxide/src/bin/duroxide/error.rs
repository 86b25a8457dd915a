//! Exit statuses and the errors the tool prints: what went wrong, then what to do next.

use duroxide::{ClientError, ProviderError};

/// Not found, or refused (unfinished without --force, finished, not confirmed), or the
/// store cannot be opened.
pub const EXIT_REFUSED: u8 = 1;
/// A usage error: bad flags or values (clap's own usage errors exit 2 as well).
pub const EXIT_USAGE: u8 = 2;

/// A failed command: its exit status, message and a hint saying what to do.
#[derive(Debug)]
pub struct CliError {
    pub exit: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    /// Exit 1: not found, refused, or the store failed.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            exit: EXIT_REFUSED,
            message: message.into(),
            hint: Some(hint.into()).filter(|h| !h.is_empty()),
        }
    }

    /// Exit 2: the command line asks for something that cannot be done as written.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self { exit: EXIT_USAGE, message: message.into(), hint: Some(hint.into()).filter(|h| !h.is_empty()) }
    }

    /// Prints the error on stderr.
    pub fn print(&self) {
        eprintln!("error: {}", self.message);
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let message = e.to_string();
        match e {
            ClientError::NotFound(_) => CliError::refused(
                message,
                "check the id (`duroxide list --prefix ...` finds instances) and that --store \
                 names the right store",
            ),
            ClientError::InstanceRunning(id) => CliError::refused(
                message,
                format!(
                    "end it first with `duroxide terminate {id}`, or pass --force to delete it as it \
                     stands"
                ),
            ),
            ClientError::InstanceFinished { instance, .. } => CliError::refused(
                message,
                format!("nothing would read it now; `duroxide show {instance}` shows how it ended"),
            ),
            ClientError::InstanceExists(_) => CliError::refused(message, ""),
            ClientError::InvalidCursor(_) => CliError::usage(
                message,
                "copy the cursor printed after the previous page, and keep the same filters and --order",
            ),
            ClientError::EmptyFilter => CliError::usage(
                "a bulk delete needs at least one filter",
                "select instances with --state, --name, --version, --prefix, --updated-before, ... \
                 or pass --all to delete every finished instance (try --dry-run first)",
            ),
            ClientError::InvalidArgument(_)
            | ClientError::TooLong { .. }
            | ClientError::InvalidVersion(_)
            | ClientError::PayloadTooLarge { .. } => CliError::usage(message, ""),
            ClientError::Provider(p) => store_error(p),
            _ => CliError::refused(message, ""),
        }
    }
}

/// A store failure, with a hint fitting its kind.
pub fn store_error(e: ProviderError) -> CliError {
    match e {
        ProviderError::Configuration(m) => CliError::refused(m, ""),
        ProviderError::Migration(m) => CliError::refused(
            format!("the store's schema cannot be used: {m}"),
            "open it with a runtime of this duroxide version, or use the duroxide CLI of the version \
             its runtimes run",
        ),
        other => CliError::refused(other.to_string(), "check that the store is reachable and try again"),
    }
}
