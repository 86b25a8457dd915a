use duroxide::prelude::*;

#[orchestration(retry(max_attempts = 3))]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    Ok(input)
}

fn main() {}
