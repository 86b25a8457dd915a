use std::time::SystemTime;

use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, started: SystemTime) -> Result<u64, OrchestrationError> {
    let waited = started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    let deadline = SystemTime::elapsed(&started);
    ctx.trace_info(format!("{deadline:?}"));
    Ok(waited)
}

fn main() {}
