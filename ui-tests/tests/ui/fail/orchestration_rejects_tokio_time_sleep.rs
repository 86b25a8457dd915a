use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    Ok(input)
}

fn main() {}
