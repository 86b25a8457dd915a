//! The long-standing home of the code-facing contexts, kept so existing imports work.
//!
//! [`OrchestrationContext`] and its futures now live in [`crate::orchestration`](mod@crate::orchestration),
//! [`ActivityContext`] and [`SessionState`] in [`crate::activity`](mod@crate::activity). Nothing is defined here.

pub use crate::activity::{ActivityContext, SessionState};
pub use crate::orchestration::{
    ActivityFuture, DurableFuture, Either2, EventFuture, Join, Join2, OrchestrationContext, Select, Select2,
    SubOrchestrationFuture, SystemCallFuture, TimerFuture, UtcNowFuture,
};

/// The old home of the activity cancellation token.
pub(crate) mod tokio_util_lite {
    pub(crate) use crate::activity::cancellation::CancellationToken;
}
