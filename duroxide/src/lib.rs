//! # duroxide: durable code execution for Rust
//!
//! Write long-running processes as plain async Rust. duroxide records every step of an
//! *orchestration* in a history log; after a crash or a deploy, the orchestration resumes by
//! deterministic replay of that log. *Activities* (the side-effecting steps) run at least
//! once on workers; orchestrations (the control flow) must be deterministic.
//!
//! ```no_run
//! use duroxide::prelude::*;
//! use std::{sync::Arc, time::Duration};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let activities = ActivityRegistry::builder()
//!     .register("Greet", |_ctx: ActivityContext, name: String| async move {
//!         Ok(format!("Hello, {name}!"))
//!     })
//!     .build();
//! let orchestrations = OrchestrationRegistry::builder()
//!     .register("HelloWorld", |ctx: OrchestrationContext, name: String| async move {
//!         let greeting = ctx.schedule_activity("Greet", name).await?;
//!         Ok(greeting)
//!     })
//!     .build();
//! let store = Arc::new(SqliteProvider::new("sqlite:./hello.db", None).await?);
//! let rt = Runtime::start_with_store(store.clone(), activities, orchestrations).await;
//! let client = Client::new(store);
//! client.start_orchestration("hello-1", "HelloWorld", "World").await?;
//! let status = client.wait_for_orchestration("hello-1", Duration::from_secs(10)).await?;
//! println!("{status:?}");
//! rt.shutdown(None).await;
//! # Ok(()) }
//! ```
//!
//! ## Map of the crate
//!
//! In the order an instance's data travels (client -> store -> dispatcher -> replay ->
//! store):
//! - [`client`] starts instances, raises events, cancels, reads status and waits; it only
//!   writes messages to the store and reads back what the runtime recorded.
//! - [`provider`] defines the [`Provider`] storage trait (queues, instance locks, the
//!   atomic commit of a turn) and the SQLite and PostgreSQL stores.
//! - [`runtime`] runs the dispatchers: it locks an instance, runs one turn, commits the
//!   turn's events and work in one store call; workers run activities from the store's
//!   queue under a renewed lock.
//! - [`replay`] is the engine a turn runs: a pure function of history, new messages and
//!   the orchestration's code to new events, [`replay::Action`]s and an outcome, with
//!   nondeterminism detection. It drives [`orchestration`](mod@orchestration), never the reverse.
//! - [`orchestration`](mod@orchestration) is what orchestration code sees:
//!   [`OrchestrationContext`], durable futures, deterministic `select`/`join`, [`retry`]
//!   policies and typed calls. [`activity`](mod@activity) is what activity code sees:
//!   [`ActivityContext`], session state, cancellation.
//! - [`model`] holds the durable formats written back to the store: [`history`] events and
//!   [`ErrorDetails`] with its [`ErrorCategory`]; serde-stable.
//!
//! Beside the path: [`registry`] keeps activity and orchestration registries, versions and
//! [`VersionPolicy`]; [`error`] has the errors user code returns ([`ActivityError`],
//! [`OrchestrationError`]); [`testing`] runs orchestrations in tests and replays recorded
//! histories against new code; [`transfer`] moves instances between stores; `compat` keeps
//! the early history-store API; [`context`] keeps the contexts' original import path.
//!
//! Observability: the runtime records `duroxide_*` metrics through the `metrics` facade
//! and opens `tracing` spans per turn, activity attempt, store call and client call
//! (`docs/observability.md` lists them all); both cost nothing until a recorder or
//! subscriber is installed.
//!
//! `console` (feature `console`) is the web console, an `axum::Router` over the same
//! management calls the `duroxide` command uses.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Lets the macros' absolute `::duroxide::..` paths resolve inside this crate too.
extern crate self as duroxide;

pub mod activity;
pub mod client;
#[cfg(feature = "sqlite")]
pub mod compat;
#[cfg(feature = "console")]
pub mod console;
pub mod context;
pub mod error;
pub mod model;
pub mod orchestration;
pub mod provider;
pub mod registry;
pub mod replay;
pub mod runtime;
pub mod testing;
pub mod transfer;

pub use model::history;
pub use orchestration::retry;

#[doc(hidden)]
pub mod __private;

pub use client::{BulkDelete, Client, ClientError, OrchestrationStatus, StatusChange, WorkerPresence};
pub use context::{
    ActivityContext, ActivityFuture, DurableFuture, Either2, EventFuture, OrchestrationContext, SessionState,
    SubOrchestrationFuture, SystemCallFuture, TimerFuture, UtcNowFuture,
};
pub use duroxide_macros::{activity, deterministic, orchestration};
pub use error::{ActivityError, OrchestrationError};
pub use history::{ErrorCategory, ErrorDetails, Event, EventKind};
pub use orchestration::typed::*;
pub use orchestration::{Composite, Either3, Map, TypedEventFuture};
#[cfg(feature = "postgres")]
pub use provider::postgres::{PostgresOptions, PostgresProvider};
#[cfg(feature = "sqlite")]
pub use provider::sqlite::{SqliteDurability, SqliteOptions, SqliteProvider};
pub use provider::{Provider, ProviderError, SemverRange};
pub use registry::{
    ActivityRegistry, ActivityRegistryBuilder, OrchestrationRegistry, OrchestrationRegistryBuilder,
    RegistryError, VersionPolicy,
};
pub use retry::{Backoff, RetryFuture, RetryPolicy};
pub use runtime::{Runtime, RuntimeOptions};

/// Everything an application usually needs, in one import.
pub mod prelude {
    #[cfg(feature = "postgres")]
    pub use crate::PostgresProvider;
    #[cfg(feature = "sqlite")]
    pub use crate::SqliteProvider;
    pub use crate::{
        ActivityContext, ActivityError, ActivityRegistry, Backoff, Client, ErrorDetails,
        OrchestrationContext, OrchestrationError, OrchestrationRegistry, OrchestrationStatus, RetryPolicy,
        Runtime, RuntimeOptions, SemverRange, VersionPolicy,
    };
    pub use crate::{
        ActivityDefinition, OrchestrationDefinition, TypedClientError, activity, deterministic, orchestration,
    };
    pub use serde::{Deserialize, Serialize};
}

/// Default limit for payloads (inputs, outputs, event data): 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
