//! An orchestration and an activity that both read the wall clock through an alias, which the
//! token scan of `#[orchestration]` cannot see. Clippy must flag the orchestration only.

use duroxide::{
    ActivityContext, ActivityError, OrchestrationContext, OrchestrationError, activity, orchestration,
};
use std::time::SystemTime as Clock;

#[orchestration]
pub async fn stamp_in_orchestration(
    _ctx: OrchestrationContext,
    input: String,
) -> Result<String, OrchestrationError> {
    let at = Clock::now(); // FLAGGED: nondeterministic inside an orchestration
    Ok(format!("{input} {at:?}"))
}

#[activity]
pub async fn stamp_in_activity(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    let at = Clock::now(); // ALLOWED: activities may read the clock
    Ok(format!("{input} {at:?}"))
}

// What the macro's own checks cannot see and clippy, which resolves paths and types, can: a
// module imported by `use` (a bare `time::sleep` may be the user's own module, so the macro
// leaves it alone), and iteration or clock reads on values returned by calls (the macro's
// type checks only probe places, never re-evaluating a call).
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::time;

fn regions() -> HashMap<String, u32> {
    HashMap::from([("eu".to_string(), 1)])
}

fn started() -> Instant {
    Instant::now() // ALLOWED: not an orchestration (mark it `#[deterministic]` to check it)
}

#[orchestration]
pub async fn through_imports_and_calls(_ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    time::sleep(Duration::from_millis(input)).await; // FLAGGED: tokio::time::sleep
    let names: Vec<String> = regions().keys().cloned().collect(); // FLAGGED: HashMap::keys
    let waited = started().elapsed(); // FLAGGED: Instant::elapsed
    Ok(input + names.len() as u64 + waited.as_secs())
}

#[activity]
pub async fn the_same_in_an_activity(_ctx: ActivityContext, input: u64) -> Result<u64, ActivityError> {
    time::sleep(Duration::from_millis(input)).await; // ALLOWED
    let names: Vec<String> = regions().keys().cloned().collect(); // ALLOWED
    Ok(input + names.len() as u64 + started().elapsed().as_secs()) // ALLOWED
}
