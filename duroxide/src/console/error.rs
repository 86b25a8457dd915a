//! What can go wrong serving a console request, and the status code each gets. A handler
//! returns a [`ConsoleError`]; its response carries the error, and the page frame
//! (`html::finish`) renders it as a page that says what was wrong and where to go next.

use crate::ClientError;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// A console request that could not be served.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// A query parameter or form field is malformed, unknown or out of range (400).
    #[error("bad parameter '{parameter}': {problem}")]
    BadParameter {
        /// The parameter's name.
        parameter: String,
        /// What is wrong with it, and what is expected.
        problem: String,
    },
    /// The management API refused an argument (an event name too long, a payload too
    /// large) (400).
    #[error("{0}")]
    Invalid(String),
    /// No instance (or execution) has this id (404).
    #[error("{0} not found")]
    NotFound(String),
    /// No page has this path (404).
    #[error("no page at {0}")]
    NoSuchPage(String),
    /// The instance is not in a state that allows the action: finished for raise, cancel
    /// and terminate, unfinished for delete without force (409).
    #[error("{0}")]
    Conflict(String),
    /// The console is read-only and the request is an action (403).
    #[error("this console is read-only: actions are switched off")]
    ReadOnly,
    /// An action without the console's form token, or sent from another site's page (403).
    #[error("refused a possible cross-site request: {0}; reload the page and submit its form again")]
    Forgery(String),
    /// The authorization predicate wants to know who is asking (401).
    #[error("sign in to use this console")]
    Unauthenticated,
    /// The authorization predicate refused the request (403).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The store failed (500).
    #[error("the store failed: {0}")]
    Store(ClientError),
}

impl ConsoleError {
    /// A [`ConsoleError::BadParameter`].
    pub(crate) fn bad(parameter: &str, problem: impl Into<String>) -> Self {
        ConsoleError::BadParameter { parameter: parameter.to_string(), problem: problem.into() }
    }

    /// The status code the error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadParameter { .. } | ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) | ConsoleError::NoSuchPage(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::ReadOnly | ConsoleError::Forgery(_) | ConsoleError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            ConsoleError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ConsoleError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ClientError> for ConsoleError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::NotFound(what) => ConsoleError::NotFound(format!("instance '{what}'")),
            ClientError::InstanceFinished { .. } | ClientError::InstanceRunning(_) => {
                ConsoleError::Conflict(e.to_string())
            }
            ClientError::InvalidArgument(_)
            | ClientError::TooLong { .. }
            | ClientError::PayloadTooLarge { .. }
            | ClientError::InvalidVersion(_) => ConsoleError::Invalid(e.to_string()),
            ClientError::InvalidCursor(c) => ConsoleError::bad("cursor", c.to_string()),
            other => ConsoleError::Store(other),
        }
    }
}

/// The error a response carries, for the page frame to render.
#[derive(Clone)]
pub(crate) struct ErrorPage(pub(crate) Arc<ConsoleError>);

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::Store(e) = &self {
            tracing::warn!(error = %e, "duroxide console: the store failed");
        }
        let mut response = (self.status(), self.to_string()).into_response();
        response.extensions_mut().insert(ErrorPage(Arc::new(self)));
        response
    }
}

/// The fallback: a 404 page for any other path.
pub(crate) async fn no_such_page(uri: Uri) -> ConsoleError {
    ConsoleError::NoSuchPage(uri.path().to_string())
}
