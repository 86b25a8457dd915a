//! What orchestration code sees: [`OrchestrationContext`], the durable futures its calls
//! return, deterministic `select`/`join`, retried calls and typed calls.
//!
//! Everything here is the code-facing side of a turn. Matching decisions against history
//! and driving the orchestration's future is the replay engine's job ([`crate::replay`]),
//! which depends on this module and never the reverse. Activity code's context is in
//! [`crate::activity`](mod@crate::activity).

pub mod combinators;
pub mod context;
pub mod futures;
pub mod retry;
pub(crate) mod state;
pub mod turn;
pub(crate) mod typed;
pub mod values;

pub use combinators::{Either2, Join, Join2, Select, Select2};
pub use context::OrchestrationContext;
pub use futures::{
    ActivityFuture, DurableFuture, EventFuture, SubOrchestrationFuture, SystemCallFuture, TimerFuture,
    UtcNowFuture,
};
pub use values::{ValueError, ValueLimits, ValueReadFuture};
