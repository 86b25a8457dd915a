use duroxide::prelude::*;

#[orchestration]
async fn o(ctx: OrchestrationContext, input: u64) -> Result<u64, OrchestrationError> {
    ctx.trace_info("checking stock");
    let _task = tokio::task::spawn_blocking(|| 1);
    Ok(input)
}

fn main() {}
