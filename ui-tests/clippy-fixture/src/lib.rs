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
