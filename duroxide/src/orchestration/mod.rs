//! What orchestration code sees: [`OrchestrationContext`], the durable futures its calls
//! return, deterministic `select`/`join` (also over multi-step [`Composite`] blocks),
//! event queues, retried calls and typed calls.
//!
//! Everything here is the code-facing side of a turn. Matching decisions against history
//! and driving the orchestration's future is the replay engine's job ([`crate::replay`]),
//! which depends on this module and never the reverse. Activity code's context is in
//! [`crate::activity`](mod@crate::activity).

pub mod combinators;
pub mod composite;
pub mod context;
pub mod futures;
mod queues;
pub mod retry;
pub mod select3;
pub(crate) mod state;
pub mod turn;
pub(crate) mod typed;
pub mod typed_events;
pub mod values;

pub use combinators::{Either2, Join, Join2, Select, Select2};
pub use composite::Composite;
pub use context::OrchestrationContext;
pub use futures::{
    ActivityFuture, DurableFuture, EventFuture, Map, SubOrchestrationFuture, SystemCallFuture, TimerFuture,
    UtcNowFuture,
};
pub use select3::{Either3, Join3, Select3};
pub use typed_events::TypedEventFuture;
pub use values::{ValueError, ValueLimits, ValueReadFuture};
