use duroxide::prelude::*;

#[orchestration(accepts(u32, upgrade))]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    Ok(input)
}

fn main() {}
