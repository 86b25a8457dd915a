use duroxide::prelude::*;

#[orchestration(version = "1.0")]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    Ok(input)
}

fn main() {}
