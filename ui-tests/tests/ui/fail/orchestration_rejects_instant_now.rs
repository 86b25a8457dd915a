use duroxide::prelude::*;

use std::time::Instant;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let started = Instant::now();
    Ok(input + started.elapsed().as_secs())
}

fn main() {}
