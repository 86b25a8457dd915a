use duroxide::prelude::*;

use std::time::Instant;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _at = Some(1).map(|_| ()).map(|()| Instant::now);
    let _clock: fn() -> Instant = Instant::now;
    Ok(input)
}

fn main() {}
