use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _tick = tokio::time::interval(std::time::Duration::from_secs(1));
    Ok(input)
}

fn main() {}
